"""`inv history`'s table and JSON: one row per run, newest first; several clusters (`--env 'prod-*'`):
one table, the cluster first."""
from __future__ import annotations

from fabfile import output
from fabfile.core.history import Row

COLUMNS = ["id", "time", "operator", "commit", "task", "nodes", "files"]


def cells(r: Row) -> list:
    en = r.entry
    commit = (en.commit or "(not in git)") + (" +uncommitted" if en.dirty else "")
    nodes = ", ".join(r.nodes) + (f" (FAILED: {', '.join(r.failed)})" if r.failed else "")
    files = ", ".join(p.rsplit("/", 1)[-1] for p in r.files) or "-"
    return [en.id, en.at, en.operator, commit, en.task, nodes, files]


def show(title: str, rows: list[tuple[str | None, Row]], down: dict[str, str], fmt=None, fleet: bool = False) -> None:
    """`rows`: (cluster, row), the cluster None for one inventory's table; `fleet`: several
    inventories, a cluster column first; `down`: the nodes not read (NODE, or CLUSTER/NODE) and why."""
    t = output.Table(title, (["cluster"] if fleet else []) + COLUMNS)
    for c, r in rows:
        t.add(*([c] if fleet else []), *cells(r), ok=False if r.failed else None)
    output.show(t, fmt)
    for n, why in down.items():
        output.say(f"{n}: UNREACHABLE, its history is not shown: {why}")
    if not rows:
        output.say("no change recorded yet (the history starts with the first deploy of this lbtk version)")


def as_json(rows: list[tuple[str | None, Row]], down: dict[str, str]) -> dict:
    """The rows under stable names; in a fleet each change carries its cluster."""
    return {"changes": [{**({"cluster": c} if c is not None else {}), **r.as_dict()} for c, r in rows],
            "unreachable": down}
