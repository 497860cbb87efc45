"""Tables and JSON: rich on a terminal, tabulate for plain/markdown, --json for machines.

Every table the toolkit shows goes through `show()`; every string goes through secrets.mask().
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field

from tabulate import tabulate

from .secrets import mask

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
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}")
    if fmt == "auto":
        return "rich" if sys.stdout.isatty() else "plain"
    return fmt


def show(table: Table, fmt: str | None = None) -> None:
    fmt = resolve_format(fmt)
    rows = [[mask(_cell(c)) for c in r] for r in table.rows]
    if fmt == "rich":
        from rich.console import Console
        from rich.table import Table as RichTable
        t = RichTable(title=table.title, title_justify="left")
        for c in table.columns:
            t.add_column(c)
        for r, ok in zip(rows, table.ok):
            t.add_row(*r, style={True: "green", False: "bold red", None: None}[ok])
        Console().print(t)
        return
    tablefmt = "github" if fmt == "markdown" else "simple"
    print(f"\n{table.title}" if fmt == "plain" else f"\n### {table.title}\n")
    print(tabulate(rows, headers=table.columns, tablefmt=tablefmt, disable_numparse=True))


def show_json(obj) -> None:
    print(mask(json.dumps(obj, indent=2, sort_keys=False, default=str)))


def say(line: str) -> None:
    """A progress / status line (plain text, secrets masked)."""
    print(mask(line), flush=True)


def _cell(c) -> str:
    if isinstance(c, bool):
        return "ok" if c else "FAIL"
    return "" if c is None else str(c)
