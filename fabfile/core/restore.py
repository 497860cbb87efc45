"""A rollback as a plan: the files a deploy's backup sets hold, against the live ones. Pure.

A rollback is planned exactly as a deploy: what it wants (the backed-up files) against what is
live gives real FileChanges, so the deploy's batching rules see what a rollback changes
(fabfile/core/plan.py changes_wire: a secret or virtual_router_id put back goes to every node at
once) and its service actions follow from what changed, as a deploy's do.

Each deploy keeps the files it replaced in /var/lib/lbtk/backup/STAMP/PATH (a path that did not
exist then has no copy: the rollback removes it). With several sets (`--to`), each path comes back
as the OLDEST set holding it had it: the files from before that run.
"""
from __future__ import annotations

import posixpath

from fabfile.core.phase import RUNTIME_PHASE, Phase
from fabfile.core.plan import NodePlan, file_changes, service_actions
from fabfile.core.render import NodeFile, monitoring, nginx
from fabfile.errors import LbtkError
from fabfile.infra.facts import BACKUP_DIR, NodeState

Sets = list[tuple[str, list[str]]]      # (stamp, paths), newest first, as facts.BACKUPS reads them


def backup_copy(stamp: str, path: str) -> str:
    """Where deploy `stamp` kept `path`'s previous content (fabfile/ops/apply.py _backup_and_swap)."""
    return f"{BACKUP_DIR}/{stamp}{path}"


def sources(node: str, sets: Sets) -> dict[str, str]:
    """{path: the stamp of the oldest set holding it}. A listed path must be absolute and plain
    (the list is the node's own text): anything else is refused, naming the node."""
    out: dict[str, str] = {}
    for stamp, paths in sets:                       # newest first: the oldest set writes last
        for p in paths:
            if not p.startswith("/") or posixpath.normpath(p) != p or p.startswith("//"):
                raise LbtkError(f"{node}: backup set {stamp} lists {p!r}, not a plain absolute path — "
                                f"remove {BACKUP_DIR}/{stamp} on the node; nothing was changed")
            out[p] = stamp
    return out


def copies(node: str, sets: Sets) -> list[str]:
    """The backup copies a rollback of these sets reads (one file listing: fabfile/infra/facts.files)."""
    return [backup_copy(s, p) for p, s in sources(node, sets).items()]


def restore_plan(node: str, sets: Sets, facts: NodeState, rendered: dict[str, NodeFile]) -> NodePlan:
    """Pure: the plan that puts back what `sets` hold. `facts.files` holds the live files and the
    backup copies (copies()); `rendered`: the node's managed files by path, for each one's phase and
    whether it holds the secret (_phase_of: a path no longer managed)."""
    wanted: list[NodeFile] = []
    for path, stamp in sources(node, sets).items():
        copy = facts.files.get(backup_copy(stamp, path))
        known = rendered.get(path)
        try:
            content = copy.content.decode() if copy is not None else None
        except UnicodeDecodeError:
            raise LbtkError(f"{node}: {backup_copy(stamp, path)} is not UTF-8 text, which lbtk never wrote — "
                            "restore it by hand; nothing was changed") from None
        wanted.append(NodeFile(path, content, known.phase if known else _phase_of(path),
                               mode=copy.mode if copy is not None else 0o644, secret=bool(known and known.secret)))
    plan = NodePlan(node)
    for phase in Phase:
        mine = [f for f in wanted if f.phase == phase]
        if not mine:
            continue
        changes = file_changes(mine, facts, node)
        plan.changes += changes
        # the phase's files as the node will have them: restored, or live as they are
        after = {p: NodeFile(p, _text(facts, p), phase) for p, f in rendered.items() if f.phase == phase}
        after.update({f.path: f for f in mine})
        plan.add_actions(service_actions(phase, {ch.file.path for ch in changes}, facts, list(after.values())))
    return plan


def _phase_of(path: str) -> Phase:
    """The phase of a path this inventory no longer renders (a site an older one had): nginx's
    files reload nginx; node_exporter's defaults (an inventory that published metrics before)
    restart it; anything else rides with keepalived, as the runtime record does."""
    if path == monitoring.DEFAULTS:
        return Phase.MONITORING
    return Phase.NGINX if path.startswith(nginx.SITES + "/") else RUNTIME_PHASE


def _text(facts: NodeState, path: str) -> str | None:
    live = facts.files.get(path)
    return None if live is None else live.content.decode(errors="replace")
