"""`inv diff`'s table and JSON: per node and file, how the live files differ from the inventory's."""
from __future__ import annotations

from fabfile import output
from fabfile.core.plan import FileChange

# a change's kind as drift reads it: the live file against what the inventory renders
STATE = {"create": "missing on node", "delete": "present, should not be", "update": "differs",
         "mode": "mode differs"}


def show(path_name: str, found: dict[str, list[FileChange]], fmt=None) -> None:
    t = output.Table(f"drift ({path_name})", ["node", "file", "state"])
    for n, changes in found.items():
        for ch in changes:
            t.add(n, ch.file.path, STATE[ch.kind], ok=False)
            output.say(ch.diff.rstrip("\n"), lines=True)
        if not changes:
            t.add(n, "(all managed files)", "as rendered", ok=True)
    output.show(t, fmt)


def as_json(found: dict[str, list[FileChange]]) -> dict:
    """--json: `drifted` (how many files), per node its files: path, kind (what a deploy would do),
    state, diff (masked like every output)."""
    return {"drifted": sum(len(c) for c in found.values()),
            "nodes": [{"node": n, "files": [{"path": ch.file.path, "kind": ch.kind, "state": STATE[ch.kind],
                                             "diff": ch.diff} for ch in changes]} for n, changes in found.items()]}
