"""Invoke entry point: `inv --list` shows every task (see fabfile/tasks/)."""
import gc

# Start-up allocates ~100k long-lived objects (the inventory model's pydantic classes, paramiko,
# the task tree): the cyclic collector ran full passes over them while they were being built,
# ~50 ms of every task's start. Off while importing; then they are frozen out of its sight.
gc.disable()
from fabfile.tasks import namespace  # noqa: E402,F401  (Invoke looks for `namespace`)
import invoke.main  # noqa: E402
from fabfile.tasks.program import adopt  # noqa: E402

adopt(invoke.main.program)   # `inv` keeps lbtk's word: usage errors exit 2, -v (fabfile/tasks/program.py)

gc.freeze()
gc.enable()

ns = namespace
