"""Invoke entry point: `inv --list` shows every task (see fabfile/tasks/)."""
from fabfile.tasks import namespace  # noqa: F401  (Invoke looks for `namespace`)

ns = namespace
