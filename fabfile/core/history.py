"""Every change leaves a line in /var/lib/lbtk/history on each node it touched: when, who
(fabfile/infra/runinfo.py), the inventory's commit, the task, the files and actions. `inv history`
merges the nodes' lines into one table (one row per run), newest first; `inv rollback --to ID`
names a row.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from fabfile.infra.facts import HISTORY_LINES, HISTORY_PATH, RECORDS_DIR, NodeState, records_private
from fabfile.parsers.lbtk_state import HistoryEntry


def append_command(line: str) -> str:
    """Shell that appends one line (and keeps the file to twice what `inv history` reads), 0600 in
    a 0700 directory (fabfile/infra/facts.py records_private)."""
    q, h = shlex.quote, shlex.quote(HISTORY_PATH)
    keep = 2 * HISTORY_LINES
    return (f"umask 077; mkdir -p {q(RECORDS_DIR)} && printf '%s\\n' {q(line)} >> {h} && "
            f"{records_private(HISTORY_PATH)} && "
            f"if [ \"$(wc -l < {h})\" -gt {keep} ]; then tail -n {keep} {h} > {h}.new && mv -f {h}.new {h}; fi")


@dataclass
class Row:
    """One run across the nodes it touched."""
    entry: HistoryEntry
    nodes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        e = self.entry
        return {"id": e.id, "at": e.at, "operator": e.operator, "commit": e.commit, "dirty": e.dirty,
                "task": e.task, "env": e.env, "nodes": self.nodes, "files": self.files,
                "failed": self.failed}


def rows(states: dict[str, NodeState]) -> list[Row]:
    """Pure: the nodes' history merged by run id, newest first."""
    by_id: dict[str, Row] = {}
    for node, s in states.items():
        for e in s.history if s.reachable else []:
            r = by_id.setdefault(e.id, Row(e))
            r.nodes.append(node)
            r.files += [f for f in e.files if f not in r.files]
            if e.result != "ok":
                r.failed.append(node)
    return sorted(by_id.values(), key=lambda r: r.entry.id, reverse=True)


def fleet_rows(clusters: list[tuple[str, str, list[Row]]]) -> list[tuple[str, Row]]:
    """Pure: several clusters' rows, (inventory name, cluster, its rows()) each, as one list of
    (cluster, row), newest first: ids are the runs' time stamps, so they sort across clusters. Two
    inventories of one estate read the same nodes, so the same runs: each shows once, under the
    inventory that made it (the entry's env), else the first that read it."""
    seen: dict[str, tuple[str, Row]] = {}
    for name, cluster, rows_ in clusters:
        for r in rows_:
            if r.entry.id not in seen or r.entry.env == name:
                seen[r.entry.id] = (cluster, r)
    return sorted(seen.values(), key=lambda cr: cr[1].entry.id, reverse=True)
