"""Deploy's tables: packages per node (install), the --check diff and plan, the summary."""
from __future__ import annotations

from fabfile import output
from fabfile.core.phase import Phase
from fabfile.core.plan import PlannedMove
from fabfile.ops.deploy import REQUIRED, NodeRun, Outcome, RunStatus

SKIPPED = "skipped: an earlier node failed, this node was not touched"


def show(out: Outcome, fmt=None, task: str = "deploy") -> None:
    """Everything a deploy (or --check; `task`: which task planned it) prints after its progress lines."""
    if Phase.INSTALL in out.phases:
        packages(out.runs, fmt)
    if out.check:
        check(out.runs, fmt, task)
        say_moves(out.moves)
        if out.roll and any(not r.plan.empty for r in out.runs):
            output.say(out.roll.line())
    else:
        summary(out.runs, out.phases, fmt)
        if any(r.done for r in out.runs):
            output.say(rolled(out.batches))


def as_json(out: Outcome) -> dict:
    """The plan as data (a review bot's), diffs masked like every output: deploy --check --json,
    rollback --check --json. A run that applied it (drain, undrain, rollback --json) adds what
    each node took (`status`, `done`, `error`) and the batches it rolled in."""
    def actions(acts):
        return [{"verb": a.verb, "unit": a.unit, "arg": a.arg, "why": a.why, "shell": a.shell()} for a in acts]

    def applied(r: NodeRun) -> dict:
        return {"status": r.status.value, "error": r.error,
                "done": {"files": [ch.file.path for ch in r.done.files], "actions": actions(r.done.actions)}}
    return {"check": out.check, "pending": out.pending, "phases": [p.value for p in out.phases],
            "nodes": [{"node": r.node,
                       "files": [{"path": ch.file.path, "kind": ch.kind, "diff": ch.diff} for ch in r.plan.changes],
                       "actions": actions(r.plan.actions),
                       "notes": list(r.plan.notes), **({} if out.check else applied(r))} for r in out.runs],
            "vip_moves": [{"vip": m.vip, "holders": list(m.holders), "owner": m.owner, "moves": m.moves,
                           "nopreempt": m.nopreempt} for m in out.moves],
            "batches": [list(b) for b in out.roll.batches] if out.roll and out.pending else [],
            "order": out.roll.line() if out.roll and out.pending else None,
            "skipped": dict(out.skipped),
            **({} if out.check else {"rolled": [list(b) for b in out.batches],
                                     "error": str(out.error) if out.error else None})}


def rolled(batches: list[list[str]]) -> str:
    """How a change rolled (--batch): `batches: node3+node2, then node1`, a `+` taken at once."""
    return "batches: " + ", then ".join("+".join(b) for b in batches)


def packages(runs: list[NodeRun], fmt) -> None:
    t = output.Table("install: packages on each node", ["node", "kernel", "IPVS", *REQUIRED])
    for r in runs:
        f = r.facts
        vers = []
        for what, pkg in REQUIRED.items():
            name = next((p for p in ("nginx-light", "nginx-core", "nginx") if p in f.packages), pkg) \
                if what == "nginx" else pkg
            vers.append(f.packages.get(name, "MISSING"))
        t.add(r.node, f.kernel, "yes" if f.has_ipvs else "no", *vers, ok="MISSING" not in vers or None)
    output.show(t, fmt)


def check(runs: list[NodeRun], fmt, task: str = "deploy") -> None:
    """--check: per-file diffs and the actions that would run; nothing is touched."""
    total = 0
    for r in runs:
        for ch in r.plan.changes:
            total += 1
            output.say(f"--- {r.node}: {ch.kind} {ch.file.path}")
            if ch.diff:
                output.say(ch.diff.rstrip("\n"), lines=True)
        for n in r.plan.notes:
            output.say(f"{r.node}: note: {n}")
    t = output.Table(f"{task} --check: what would change (nothing was touched)",
                     ["node", "files", "actions"])
    for r in runs:
        t.add(r.node, ", ".join(f"{ch.kind} {ch.file.path}" for ch in r.plan.changes) or "no changes",
              "; ".join(a.shell() for a in r.plan.actions) or "none", ok=True if r.plan.empty else None)
    output.show(t, fmt)
    output.say(f"{total} file change(s) pending" if total else "no changes pending")


def move_line(m: PlannedMove) -> str:
    if m.nopreempt:
        return f"VIP {m.vip} stays on {'+'.join(m.holders)}: nopreempt (the new priorities apply at the next failover)"
    return f"VIP {m.vip} will move {'+'.join(m.holders)} -> {m.owner} (a planned failover)"


def say_moves(moves: list[PlannedMove]) -> None:
    for m in moves:
        output.say(move_line(m))


def result(r: NodeRun) -> str:
    """A node's summary cell. A node skipped after an earlier one failed did not fail itself."""
    if r.status is RunStatus.FAILED:
        return f"FAILED: {r.error}"
    if r.status is RunStatus.SKIPPED:
        return SKIPPED
    return "changed" if r.done else "no changes"


def summary(runs: list[NodeRun], phases: list[Phase], fmt) -> None:
    t = output.Table(f"deploy: {', '.join(phases)}", ["node", "result", "files changed", "actions run"])
    for r in runs:
        acts = list(dict.fromkeys(a.short() for a in r.done.actions))
        t.add(r.node, result(r), len(r.done.files), ", ".join(acts) or "none",
              ok=r.status not in (RunStatus.FAILED, RunStatus.SKIPPED))
        for n in r.plan.notes:
            output.say(f"{r.node}: {n}")
    output.show(t, fmt)
    changed = sum(1 for r in runs if r.done)
    output.say("no changes: nothing written, nothing restarted" if not changed
               else f"{changed} node(s) changed")
