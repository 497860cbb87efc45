"""Who is changing the cluster, from where, with which inventory: written into the deploy lock
while a run holds it and into every node's history after a change.

The operator is LBTK_OPERATOR when set (a shared account, a CI job), else user@host; the commit
is the inventory's git commit, with whether the work tree had uncommitted changes.
"""
from __future__ import annotations

import getpass
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path


@dataclass(frozen=True)
class RunInfo:
    run: str            # unique and sortable: also the name of the run's backup set on each node
    operator: str
    pid: int
    cwd: str
    task: str           # the command line, e.g. `inv deploy --env lab`
    env: str
    since: str          # ISO time, UTC
    commit: str         # the inventory's git commit ("" when not in git)
    dirty: bool         # the work tree had uncommitted changes

    def holder(self) -> str:
        """The lock file's record (parsers.lbtk_state.parse_holder reads it)."""
        return json.dumps({k: getattr(self, k) for k in ("run", "operator", "pid", "cwd", "task", "since")},
                          sort_keys=True)

    def entry(self, files: list[str], actions: list[str], result: str = "ok") -> str:
        """One history line (parsers.lbtk_state.parse_history reads it)."""
        d = asdict(self)
        rec = {"id": d["run"], "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "operator": d["operator"], "commit": d["commit"], "dirty": d["dirty"], "task": d["task"],
               "env": d["env"], "files": files, "actions": actions, "result": result}
        return json.dumps(rec, sort_keys=True)


def operator() -> str:
    if os.environ.get("LBTK_OPERATOR"):
        return os.environ["LBTK_OPERATOR"]
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def git_state(where: Path) -> tuple[str, bool]:
    """(short commit, dirty) of the repository holding `where`; ("", False) outside git."""
    d = where if where.is_dir() else where.parent
    try:
        head = subprocess.run(["git", "-C", str(d), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return "", False
        st = subprocess.run(["git", "-C", str(d), "status", "--porcelain", "--untracked-files=no"],
                            capture_output=True, text=True, timeout=10)
        return head.stdout.strip(), bool(st.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return "", False


def stamp() -> str:
    """Sortable, unique per run: 20261201T183102.123"""
    now = time.time()
    return time.strftime("%Y%m%dT%H%M%S", time.localtime(now)) + f"{now % 1:.3f}"[1:]


def current(env_name: str, inventory_path: Path, task: str | None = None) -> RunInfo:
    commit, dirty = git_state(inventory_path)
    argv = " ".join(["inv", *sys.argv[1:]]) if task is None else task
    return RunInfo(stamp(), operator(), os.getpid(), os.getcwd(), argv, env_name,
                   datetime.now(timezone.utc).isoformat(timespec="seconds"), commit, dirty)
