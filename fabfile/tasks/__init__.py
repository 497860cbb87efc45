"""The Invoke task tree. `tasks.py` at the repository root exposes `namespace`."""
from invoke import Collection

from . import core

namespace = Collection()
for t in (core.render, core.check):
    namespace.add_task(t)
