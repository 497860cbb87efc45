"""Progress for work on several nodes: a rich display on a terminal, plain lines without one.

Every message is made safe as fabfile/output.py makes table cells (secrets masked, controls shown
as escapes); on the rich display it is also escaped as markup, so a node's `[/]` cannot end a style.
"""
from __future__ import annotations

import sys
import threading

from fabfile.output import safe
from fabfile.model import secrets


class Progress:
    def __init__(self, nodes: list[str], total=lambda n: 1, title: str = "deploy", console=None):
        """`console`: a rich Console to draw on (default: stdout's, when it is a terminal)."""
        self.nodes, self.total, self.title, self.console = nodes, total, title, console
        self.rich = console is not None or sys.stdout.isatty()
        self._lock = threading.Lock()
        self.masker = secrets.current()      # the run's: step() is called from the node group's threads

    def __enter__(self):
        if self.rich:
            from rich.progress import BarColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn
            self._p = RichProgress(TextColumn("{task.fields[node]:<8}"), BarColumn(),
                                   TextColumn("{task.description}"), TimeElapsedColumn(), console=self.console)
            self._ids = {n: self._p.add_task("waiting", node=_markup(n), total=self.total(n)) for n in self.nodes}
            self._p.start()
        return self

    def step(self, node: str, msg: str) -> None:
        msg = self.masker.mask(msg)
        if self.rich:
            self._p.update(self._ids[node], advance=1, description=_markup(msg))
        else:
            with self._lock:
                print(f"{safe(node)}: {safe(msg)}", flush=True)

    def finish(self, node: str, msg: str, ok: bool = True) -> None:
        if self.rich:
            t = self._ids[node]
            self._p.update(t, completed=self.total(node),
                           description=f"[green]{_markup(msg)}" if ok else f"[bold red]{_markup(msg)}")
        else:
            with self._lock:
                print(f"{safe(node)}: {safe(msg)}", flush=True)

    def __exit__(self, *exc):
        if self.rich:
            self._p.stop()
        return False


def _markup(text: str) -> str:
    """safe(text), escaped for the rich columns that read their text as markup."""
    from rich.markup import escape
    return escape(safe(text))
