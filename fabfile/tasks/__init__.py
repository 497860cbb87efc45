"""The Invoke task tree. `tasks.py` at the repository root exposes `namespace`."""
from invoke import Collection

from . import core, lab

namespace = Collection()
for t in (core.render, core.check):
    namespace.add_task(t)
namespace.add_collection(lab.collection)
