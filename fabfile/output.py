"""Tables and JSON: rich on a terminal, tabulate for plain/markdown, --json for machines.

Every table the toolkit shows goes through `show()`; every string goes through secrets.mask(),
the running task's Masker (fabfile.model.secrets.masking).
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field

from tabulate import tabulate

from fabfile.model.secrets import mask

FORMATS = ("auto", "rich", "plain", "markdown")


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list] = field(default_factory=list)
    ok: list[bool | None] = field(default_factory=list)   # per row: green / red / neutral

    def add(self, *cells, ok: bool | None = None) -> None:
        self.rows.append(list(cells))
        self.ok.append(ok)


def resolve_format(fmt: str | None) -> str:
    fmt = fmt or os.environ.get("LBTK_FORMAT", "auto")
    if fmt not in FORMATS:
        from fabfile.errors import UsageError
        raise UsageError(f"--format {fmt}: choose from {', '.join(FORMATS)}")
    if fmt == "auto":
        return "rich" if sys.stdout.isatty() else "plain"
    return fmt


def show(table: Table, fmt: str | None = None, console=None) -> None:
    """Draw `table` on stdout (`console`: a rich Console to draw the rich form on instead)."""
    fmt = resolve_format(fmt)
    rows = [[mask(_cell(c)) for c in r] for r in table.rows]
    if fmt == "rich":
        from rich.console import Console
        (console or Console()).print(rich_table(table))
        return
    tablefmt = "github" if fmt == "markdown" else "simple"
    print(f"\n{table.title}" if fmt == "plain" else f"\n### {table.title}\n")
    print(tabulate(rows, headers=table.columns, tablefmt=tablefmt, disable_numparse=True))


def rich_table(table: Table):
    """The rich form of a Table (green / red rows), secrets masked. Cells are plain text, never rich
    markup: `TCP [fd00::1]:80` or nginx's `[emerg]` would otherwise vanish as unknown style tags."""
    from rich.markup import escape
    from rich.table import Table as RichTable
    t = RichTable(title=escape(table.title), title_justify="left")
    for c in table.columns:
        t.add_column(escape(c))
    for r, ok in zip(table.rows, table.ok):
        t.add_row(*[escape(mask(_cell(c))) for c in r], style={True: "green", False: "bold red", None: None}[ok])
    return t


def show_json(obj) -> None:
    print(mask(json.dumps(obj, indent=2, sort_keys=False, default=str)))


def say(line: str) -> None:
    """A progress / status line (plain text, secrets masked)."""
    print(mask(line), flush=True)


def _cell(c) -> str:
    if isinstance(c, bool):
        return "ok" if c else "FAIL"
    return "" if c is None else str(c)
