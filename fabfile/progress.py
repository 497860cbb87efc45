"""Progress for work on several nodes: a rich display on a terminal, plain lines without one."""
from __future__ import annotations

import sys
import threading

from fabfile.model import secrets


class Progress:
    def __init__(self, nodes: list[str], total=lambda n: 1, title: str = "deploy"):
        self.nodes, self.total, self.title = nodes, total, title
        self.rich = sys.stdout.isatty()
        self._lock = threading.Lock()
        self.masker = secrets.current()      # the run's: step() is called from the node group's threads

    def __enter__(self):
        if self.rich:
            from rich.progress import BarColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn
            self._p = RichProgress(TextColumn("{task.fields[node]:<8}"), BarColumn(),
                                   TextColumn("{task.description}"), TimeElapsedColumn())
            self._ids = {n: self._p.add_task("waiting", node=n, total=self.total(n)) for n in self.nodes}
            self._p.start()
        return self

    def step(self, node: str, msg: str) -> None:
        msg = self.masker.mask(msg)
        if self.rich:
            self._p.update(self._ids[node], advance=1, description=msg)
        else:
            with self._lock:
                print(f"{node}: {msg}", flush=True)

    def finish(self, node: str, msg: str, ok: bool = True) -> None:
        if self.rich:
            t = self._ids[node]
            self._p.update(t, completed=self.total(node),
                           description=f"[green]{msg}" if ok else f"[bold red]{msg}")
        else:
            with self._lock:
                print(f"{node}: {msg}", flush=True)

    def __exit__(self, *exc):
        if self.rich:
            self._p.stop()
        return False
