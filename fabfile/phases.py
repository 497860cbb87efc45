"""Run deploy phases against every node: gather facts, plan, show or apply. The shell around
the pure planner (fabfile.plan); Invoke tasks in fabfile/tasks/deploy.py stay one-liners.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from . import output, remote, sync
from .apply import ApplyError, apply_node
from .facts import NodeFacts, parse_probe, probe_script
from .plan import PHASES, Action, NodePlan, changes_wire, file_changes, service_actions
from .progress import Progress
from .render import Facts, render_node
from .tasks.common import Env, LbtkError
from .vrrp import expected_holders

# what the install phase needs on every node, and the package that brings it
REQUIRED = {"keepalived": "keepalived", "ipvsadm": "ipvsadm", "nginx": "nginx-light", "iptables": "iptables"}


class DeployFailed(LbtkError):
    """A node refused the change. `changed`: nodes that had already taken it (rolling order)."""

    def __init__(self, message: str, changed: list[str]):
        super().__init__(message)
        self.changed = changed


@dataclass
class NodeRun:
    node: str
    facts: NodeFacts
    plan: NodePlan
    done: list[str] = field(default_factory=list)
    error: str | None = None


def gather(env: Env, conns) -> dict[str, NodeFacts]:
    """One round trip per node, in parallel."""
    def probe(c):
        paths = [f.path for f in render_node(env.inv, c.lbtk_node, env.secrets)]
        return parse_probe(remote.run(c, probe_script(paths)).stdout)
    return dict(zip([c.lbtk_node for c in conns], remote.parallel(conns, probe)))


def plan_node(env: Env, node: str, facts: NodeFacts, phases: list[str]) -> NodePlan:
    p = NodePlan(node)
    desired = render_node(env.inv, node, env.secrets, Facts(ipvs=facts.ipvs))
    if "install" in phases:
        missing = [pkg for what, pkg in REQUIRED.items()
                   if not (facts.nginx_installed if what == "nginx" else facts.has(pkg))]
        if missing and env.inv.install.method == "apt":
            p.actions.append(Action("DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
                                    + " ".join(missing), "packages missing"))
        elif missing:
            raise LbtkError(f"{node}: {', '.join(missing)} not installed and install.method is "
                            "'detect' — install them on the node (or set install.method: apt)")
    needs = {"keepalived": "keepalived", "nginx": "nginx", "lvs": "keepalived"}
    for phase in phases:
        if phase in needs and needs[phase] not in facts.binaries:
            raise LbtkError(f"{node}: {needs[phase]} is not installed (no {needs[phase]} on PATH) — "
                            f"run `inv install` or install it on the node; nothing was changed on any node")
    if facts.pending:
        p.notes.append("finishing an interrupted deploy: " + "; ".join(facts.pending))
        p.actions += [Action(a, "owed by an interrupted deploy") for a in facts.pending]
    if "lvs" in phases and not facts.ipvs:
        p.notes.append("kernel has no IPVS: keepalived runs VRRP-only (--vrrp); virtual_server blocks are inert")
    if "sync-daemon" in phases and env.inv.sync_daemon:
        p.notes.append("sync daemon: " + sync_note(env, facts))
    for phase in phases:
        mine = [f for f in desired if f.phase == phase]
        changes = file_changes(mine, facts, node)
        p.changes += changes
        p.add_actions(service_actions(phase, {ch.file.path for ch in changes}, facts, mine))
    return p


def run_phases(env: Env, phases: list[str], check: bool = False, fmt: str | None = None) -> list[NodeRun]:
    bad = [x for x in phases if x not in PHASES]
    if bad:
        raise LbtkError(f"unknown phase {bad[0]!r} — phases are {', '.join(PHASES)}")
    conns = [remote.connect(env.inv, n) for n in env.inv.nodes]
    try:
        try:
            facts = gather(env, conns)
        except remote.RemoteError as e:
            raise LbtkError(f"{e} — nothing was changed on any node") from None
        runs = [NodeRun(n, facts[n], plan_node(env, n, facts[n], phases)) for n in facts]
        if "install" in phases:
            show_packages(runs, fmt)
        moves = planned_moves(env, runs) if "keepalived" in phases else []
        if check:
            show_check(runs, fmt)
            for m in moves:
                output.say(m)
            return runs
        for m in moves:
            output.say(m)
        stamp = time.strftime("%Y%m%dT%H%M%S") + f"{time.time() % 1:.3f}"[1:]  # sortable, unique per deploy
        batches = rolling_batches(env, runs)
        held_before = {v for r in runs for v in r.facts.vips if v in expected_holders(env.inv)}
        failed = False
        done_at: dict[str, float] = {}
        with Progress([r.node for r in runs], total=lambda n: _steps(next(r for r in runs if r.node == n))) as prog:
            def work(c):
                run = next(r for r in runs if r.node == c.lbtk_node)
                if failed:
                    run.error = "skipped: an earlier node failed, this node was not touched"
                    prog.finish(run.node, "skipped", ok=False)
                    return
                if run.plan.empty:
                    prog.finish(run.node, "no changes")
                    return
                try:
                    run.done = apply_node(c, run.plan, stamp, say=lambda s: prog.step(run.node, s))
                    done_at[run.node] = time.monotonic()
                    prog.finish(run.node, f"{len(run.done)} change(s)")
                except (ApplyError, remote.RemoteError) as e:
                    run.error = str(e)
                    prog.finish(run.node, "FAILED", ok=False)
            by_name = {c.lbtk_node: c for c in conns}
            for batch in batches:
                batch_runs = [r for r in runs if r.node in batch]
                remote.parallel([by_name[n] for n in batch], work)
                failed = failed or any(r.error for r in batch_runs)
                if not failed and len(batches) > 1 and any(_touches_vrrp(r) for r in batch_runs):
                    settle(env, conns, held_before)
        if any("will move" in m for m in moves) and not failed:
            finish_moves(env, conns, done_at)
        show_summary(runs, phases, fmt)
        errors = [r.error for r in runs if r.error and not r.error.startswith("skipped")]
        if errors:
            changed = [r.node for r in runs if r.done and not r.error]
            raise DeployFailed(errors[0] + (f" (and {len(errors) - 1} more node(s) failed)" if len(errors) > 1 else "")
                               + ("; later nodes were not touched" if len(batches) > 1 else "")
                               + (f"; already on the new config: {', '.join(changed)}" if changed else ""),
                               changed)
        return runs
    finally:
        remote.close(conns)


def sync_note(env: Env, facts: NodeFacts) -> str:
    if not facts.ipvs:
        return "kernel has no IPVS, no connection sync"
    if env.inv.sync_daemon.mode == "static":
        return "static mode: start it with `inv sync-start` (master on the VRRP MASTER, backup elsewhere)"
    return sync.describe(env.inv)


def rolling_batches(env: Env, runs: list[NodeRun]) -> list[list[str]]:
    """Backups first (lowest priority first), the current VIP holders last, one node at a time.
    A cluster where no keepalived runs yet (first deploy) goes in one parallel batch."""
    if not any(r.facts.active.get("keepalived") == "active" for r in runs):
        return [[r.node for r in runs]]
    if any(changes_wire(r.plan.changes, r.facts.files) for r in runs):
        output.say("advert-visible change (virtual_router_id, advert_int, auth or first VIP): applied to "
                   "every node at once — nodes that disagree ignore each other's adverts")
        return [[r.node for r in runs]]
    vips = set(expected_holders(env.inv))
    prio = {n.name: n.priority for n in env.inv.nodes}
    holders = [r.node for r in runs if r.facts.vips & vips]
    backups = sorted((r.node for r in runs if r.node not in holders), key=lambda n: prio[n])
    return [[n] for n in backups + sorted(holders, key=lambda n: prio[n])]


def planned_moves(env: Env, runs: list[NodeRun]) -> list[str]:
    """VIPs whose holder the new inventory changes: each is one planned failover."""
    out = []
    held = _nopreempt_vips(env)
    for vip, owner in expected_holders(env.inv).items():
        now = [r.node for r in runs if vip in r.facts.vips]
        if now and owner not in now:
            if vip in held:
                out.append(f"VIP {vip} stays on {'+'.join(now)}: nopreempt (the new priorities apply at the next failover)")
            else:
                out.append(f"VIP {vip} will move {'+'.join(now)} -> {owner} (a planned failover)")
    return out


def _nopreempt_vips(env: Env) -> set[str]:
    from .vrrp import plan
    return {a for p in plan(env.inv) if p.source.nopreempt for a in p.addresses}


def finish_moves(env: Env, conns, done_at: dict[str, float]) -> None:
    """The planned failover(s): wait until each moved VIP is on its new owner alone, and say how
    long after the new owner took its config (preempt: master_down_interval + skew)."""
    from .settle import settle_timeout
    from .verify import wait_until
    held = _nopreempt_vips(env)
    owners = {v: o for v, o in expected_holders(env.inv).items() if v not in held}
    holders, _, ok = wait_until(env.inv, conns, lambda h: all(h.get(v) == [o] for v, o in owners.items()),
                                timeout=settle_timeout(env))
    now = time.monotonic()
    for vip, owner in owners.items():
        if holders.get(vip) == [owner] and owner in done_at:
            output.say(f"planned failover done: VIP {vip} on {owner} {now - done_at[owner]:.1f}s after "
                       "its new config")
    if not ok:
        raise LbtkError("planned failover did not complete: " + ", ".join(
            f"{v} on {'+'.join(h) or 'no node'} (want {owners[v]})" for v, h in holders.items()))


def _touches_vrrp(run: NodeRun) -> bool:
    return any("keepalived" in a for a in run.done)


def settle(env: Env, conns, held_before: set[str] | None = None) -> None:
    """Between nodes of a rolling deploy: no VIP on two nodes, and every VIP that was up before
    is up on exactly one node (a VIP the deploy adds appears when its MASTER is done)."""
    from .settle import settle_timeout
    from .verify import wait_until
    must = held_before if held_before is not None else set(expected_holders(env.inv))
    holders, secs, ok = wait_until(
        env.inv, conns, lambda h: all(len(v) <= 1 for v in h.values()) and all(len(h.get(v, [])) == 1 for v in must),
        timeout=settle_timeout(env))
    if not ok:
        raise LbtkError("VRRP did not settle between nodes: " + ", ".join(
            f"{v} on {'+'.join(h) or 'no node'}" for v, h in holders.items()) + " — stopped the rolling deploy")


def _steps(run: NodeRun) -> int:
    return max(1, (2 if run.plan.changes else 0) + len(run.plan.actions))


def _short(command: str) -> str:
    """`systemctl enable x && systemctl restart x` -> `restart x`: the summary's wording."""
    last = command.split("&&")[-1].split()
    if last[:1] == ["systemctl"]:
        return " ".join(last[1:3]) if last[1] != "daemon-reload" else "daemon-reload"
    return " ".join(w for w in last[:2] if not w.startswith("-q"))


def show_packages(runs: list[NodeRun], fmt) -> None:
    t = output.Table("install: packages on each node", ["node", "kernel", "IPVS", *REQUIRED])
    for r in runs:
        f = r.facts
        vers = []
        for what, pkg in REQUIRED.items():
            name = next((p for p in ("nginx-light", "nginx-core", "nginx") if p in f.packages), pkg) \
                if what == "nginx" else pkg
            vers.append(f.packages.get(name, "MISSING"))
        t.add(r.node, f.kernel, "yes" if f.ipvs else "no", *vers, ok="MISSING" not in vers or None)
    output.show(t, fmt)


def show_check(runs: list[NodeRun], fmt) -> None:
    """--check: per-file diffs and the actions that would run; nothing is touched."""
    total = 0
    for r in runs:
        for ch in r.plan.changes:
            total += 1
            output.say(f"--- {r.node}: {ch.kind} {ch.file.path}")
            if ch.diff:
                output.say(ch.diff.rstrip("\n"))
        for n in r.plan.notes:
            output.say(f"{r.node}: note: {n}")
    t = output.Table("deploy --check: what would change (nothing was touched)",
                     ["node", "files", "actions"])
    for r in runs:
        t.add(r.node, ", ".join(f"{ch.kind} {ch.file.path}" for ch in r.plan.changes) or "no changes",
              "; ".join(a.command for a in r.plan.actions) or "none", ok=True if r.plan.empty else None)
    output.show(t, fmt)
    output.say(f"{total} file change(s) pending" if total else "no changes pending")


def show_summary(runs: list[NodeRun], phases: list[str], fmt) -> None:
    t = output.Table(f"deploy: {', '.join(phases)}", ["node", "result", "files changed", "actions run"])
    for r in runs:
        files = [d for d in r.done if d.split(" ", 1)[0] in ("create", "update", "delete", "mode")]
        acts = list(dict.fromkeys(_short(d) for d in r.done if d not in files))
        result = "FAILED: " + r.error if r.error else ("changed" if r.done else "no changes")
        t.add(r.node, result, len(files), ", ".join(acts) or "none", ok=False if r.error else True)
        for n in r.plan.notes:
            output.say(f"{r.node}: {n}")
    output.show(t, fmt)
    changed = sum(1 for r in runs if r.done)
    output.say("no changes: nothing written, nothing restarted" if not changed
               else f"{changed} node(s) changed")
