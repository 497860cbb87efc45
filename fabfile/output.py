"""Tables and JSON: rich on a terminal, tabulate for plain/markdown, --json for machines.

Every table the toolkit shows goes through `show()`; every string goes through secrets.mask() (the
running task's Masker, fabfile.model.secrets.masking), then `visible()`: strings from the nodes
(interface names, keepalived's instance names, records, journal lines, live files) are not trusted,
and a terminal must never act on what a node printed.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field

from tabulate import tabulate

from fabfile.model.secrets import mask
from fabfile.terminal import visible  # noqa: F401  (callers show node text through output.visible)

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


def safe(text) -> str:
    """The one form of any string shown on a terminal: secrets masked, then visible()."""
    return visible(mask(_cell(text)))


def show(table: Table, fmt: str | None = None, console=None) -> None:
    """Draw `table` on stdout (`console`: a rich Console to draw the rich form on instead)."""
    fmt = resolve_format(fmt)
    if fmt == "rich":
        from rich.console import Console
        (console or Console()).print(rich_table(table))
        return
    rows = [[safe(c) for c in r] for r in table.rows]
    tablefmt = "github" if fmt == "markdown" else "simple"
    title = safe(table.title)
    print(f"\n{title}" if fmt == "plain" else f"\n### {title}\n")
    print(tabulate(rows, headers=[safe(c) for c in table.columns], tablefmt=tablefmt, disable_numparse=True))


def rich_table(table: Table):
    """The rich form of a Table (green / red rows), secrets masked, made visible(). Cells are rich
    Text, never markup: `TCP [fd00::1]:80` or nginx's `[emerg]` would otherwise vanish as unknown
    style tags, and a node's `[/]` would end a style it never opened (a MarkupError)."""
    from rich.table import Table as RichTable
    t = RichTable(title=rich_text(table.title), title_justify="left")
    for c in table.columns:
        t.add_column(rich_text(c))
    for r, ok in zip(table.rows, table.ok):
        t.add_row(*[rich_text(c) for c in r], style={True: "green", False: "bold red", None: None}[ok])
    return t


def rich_text(text, style: str | None = None):
    """A rich Text of safe(text): what a view hands rich for any string (never markup)."""
    from rich.text import Text
    return Text(safe(text), style=style or "")


def show_json(obj) -> None:
    """JSON as is: json.dumps escapes every control character itself (and keeps the exact value)."""
    print(mask(json.dumps(obj, indent=2, sort_keys=False, default=str)))


def say(line: str, lines: bool = False) -> None:
    """A progress / status line: plain text, secrets masked, visible() (a newline a node slipped
    into a record cannot start a line of its own). `lines`: text of several lines (a diff, a
    journal's tail), said at once with its newlines kept."""
    print(visible(mask(line), lines=lines), flush=True)


def note(line: str) -> None:
    """A line about the run itself, on stderr (stdout stays the task's output: JSON, rendered files)."""
    print(visible(mask(line)), file=sys.stderr, flush=True)


def _cell(c) -> str:
    if isinstance(c, bool):
        return "ok" if c else "FAIL"
    return "" if c is None else str(c)
