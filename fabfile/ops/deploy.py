"""Run deploy phases against nodes: facts, plans, rolling batches, settle, planned failovers.

The shell around the pure planner: `plan_runs`, `roll_plan` (and `rolling_batches`) and `planned_moves` are pure
(facts in, plans out, unit-tested); `run_phases` gathers facts in one round trip per node, then
applies. Nothing here prints: progress goes to the `say` and `progress` callbacks the task layer
passes, and the result (`Outcome`) is drawn by fabfile/views/deploy.py.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum

from fabfile.infra import facts as F
from fabfile.infra import remote, runinfo
from fabfile.ops import lock as runlock, settle
from fabfile.core import runtime, secret_record, sync_rules as sync
from fabfile.core.actions import Action
from fabfile.core.checks import needs_ipvs, no_ipvs_error, no_ipvs_words
from fabfile.ops.apply import Applied, ApplyError, apply_node
from fabfile.model.context import Env
from fabfile.errors import LbtkError
from fabfile.infra.facts import NodeState
from fabfile.infra.observe import observe_except, observe_reachable, state_of
from fabfile.infra.observe import script as observe_script
from fabfile.parsers.lbtk_state import RuntimeRecord
from fabfile.core.phase import FILE_PHASES, RUNTIME_PHASE, Phase
from fabfile.core.plan import (FileChange, NodePlan, PlannedMove, RollKind, RollPlan, VipIntent, changes_wire,
                               file_changes, reload_only_refusal, service_actions)
from fabfile.core.render import NodeFile, RenderFacts, managed_paths, render_node
from fabfile.core.render import monitoring as monitoring_render
from fabfile.infra.runinfo import RunInfo

# what the install phase needs on every node, and the package that brings it
REQUIRED = {"keepalived": "keepalived", "ipvsadm": "ipvsadm", "nginx": "nginx-light", "iptables": "iptables"}
LOGGING_NEEDS = "rsyslog"   # the package `logging:` needs (its rule writes keepalived's log file)
MONITORING_NEEDS = monitoring_render.PACKAGE     # the package monitoring.publish needs


def required(inv) -> dict[str, str]:
    """REQUIRED, plus rsyslog where the inventory asks for keepalived's own log file (never else:
    a node without rsyslog is fine when keepalived logs to the journal only), and node_exporter
    where it publishes metrics (monitoring.publish)."""
    return {**REQUIRED, **({LOGGING_NEEDS: LOGGING_NEEDS} if inv.logging else {}),
            **({MONITORING_NEEDS: MONITORING_NEEDS} if inv.monitoring.publish else {})}


class DeployFailed(LbtkError):
    """A node refused the change. `changed`: nodes that had already taken it (rolling order)."""

    def __init__(self, message: str, changed: list[str]):
        super().__init__(message)
        self.changed = changed


class RunStatus(StrEnum):
    """Where one node's run ended."""
    PLANNED = "planned"        # not applied: --check, or not reached yet
    UNCHANGED = "no changes"   # nothing to do
    CHANGED = "changed"        # took its plan
    SKIPPED = "skipped"        # not touched: an earlier node failed
    FAILED = "FAILED"          # refused the change (NodeRun.error says why)

    @property
    def took_it(self) -> bool:
        """The node is on what the run wanted (changed, or had nothing to change)."""
        return self in (RunStatus.CHANGED, RunStatus.UNCHANGED)


@dataclass
class NodeRun:
    node: str
    facts: NodeState
    plan: NodePlan
    done: Applied = field(default_factory=Applied)
    status: RunStatus = RunStatus.PLANNED
    error: str | None = None   # FAILED: the node's own words


@dataclass
class Outcome:
    """What a deploy planned and did; the views draw it, the caller raises `error` after."""
    phases: list[Phase]
    runs: list[NodeRun]
    moves: list[PlannedMove]               # VIPs whose holder the new inventory changes
    check: bool                            # --check: nothing was touched
    batches: list[list[str]] = field(default_factory=list)
    roll: RollPlan | None = None                            # the order it chose, and why (roll_plan)
    error: DeployFailed | None = None
    skipped: dict[str, str] = field(default_factory=dict)   # --skip-unreachable: node -> why
    runtime_before: RuntimeRecord | None = None             # the cluster's runtime record as found
    runtime: RuntimeRecord | None = None                    # ... and as this run wrote it

    @property
    def pending(self) -> bool:
        """Something to do (what --check reports): a file, an action or a VIP move."""
        return any(not r.plan.empty for r in self.runs) or any(m.moves for m in self.moves)


def deploy_paths(env: Env, node: str) -> list[str]:
    """The files a deploy reads on a node: every managed one and the runtime record."""
    return [*managed_paths(env.inv, node, env.secrets), F.RUNTIME_PATH, F.SECRET_RECORD_PATH]


def deploy_facts(env: Env, nodes: list[str]) -> dict[str, list[F.Fact]]:
    """Per node: the managed files to read besides fabfile.infra.facts.DEPLOY."""
    present = [p for p, s in env.inv.scripts.items() if s.present]
    return {n: [F.files(deploy_paths(env, n))] + ([F.script_files(present)] if present else []) for n in nodes}


def read_looked(lock: runlock.Lock, per_node: dict[str, list[F.Fact]]) -> dict[str, NodeState]:
    """The deploy facts each node printed under the lock (Lock(look=)) as NodeStates (observe's rules)."""
    return {n: state_of(n, [*F.DEPLOY, *per_node[n]], out) for n, out in lock.looked.items()}


def gather(env: Env, nodes: list | None = None) -> dict[str, NodeState]:
    """Deploy facts of these nodes (default: every node), one round trip each, in parallel; every
    node must answer."""
    with remote.nodes(env, nodes) as group:
        return observe_reachable(group, F.DEPLOY, deploy_facts(env, group.names))


def plan_node(env: Env, node: str, facts: NodeState, phases,
              setter: secret_record.Setter = secret_record.Setter()) -> NodePlan:
    """Pure: one node's facts -> its plan for these phases (Phase members or their names). `setter`:
    the run a new secret fingerprint is recorded for (fabfile/core/secret_record.py)."""
    phases = check_phases(phases)
    p = NodePlan(node)
    desired = render_node(env.inv, node, env.secrets, RenderFacts.of(facts))
    if Phase.INSTALL in phases:
        missing = [pkg for what, pkg in required(env.inv).items()
                   if not (facts.nginx_installed if what == "nginx" else facts.has(pkg))]
        if missing and env.inv.install.method == "apt":
            p.actions.append(Action("apt-install", arg=" ".join(missing), why="packages missing"))
        elif missing:
            raise LbtkError(f"{node}: {', '.join(missing)} not installed and install.method is "
                            "'detect' — install them on the node (or set install.method: apt)"
                            + (f"; {LOGGING_NEEDS} is there for logging: (or drop logging: from the inventory)"
                               if LOGGING_NEEDS in missing else ""))
    elif Phase.LVS in phases and env.inv.logging and not facts.has(LOGGING_NEEDS):
        raise LbtkError(f"{node}: logging: needs {LOGGING_NEEDS} (its rule writes {env.inv.logging.file}) and it "
                        "is not installed — run `inv install` (or drop logging: from the inventory); "
                        "nothing was changed on any node")
    if Phase.MONITORING in phases and Phase.INSTALL not in phases and env.inv.monitoring.publish \
            and not facts.has(MONITORING_NEEDS):
        raise LbtkError(f"{node}: monitoring.publish needs {MONITORING_NEEDS} and it is not installed — run "
                        "`inv install` (or set monitoring.publish: false); nothing was changed on any node")
    if Phase.KEEPALIVED in phases:
        for path, state in facts.script_files.items():
            if state != "ok":
                raise LbtkError(f"{node}: {path} is {'not executable' if state == 'noexec' else 'missing'} "
                                f"(scripts: declares it present) — put it there, root's and executable "
                                "(or ship it: source/content); nothing was changed on any node")
    for phase in phases:
        if phase.binary and phase.binary not in facts.binaries:
            raise LbtkError(f"{node}: {phase.binary} is not installed (no {phase.binary} on PATH) — "
                            f"run `inv install` or install it on the node; nothing was changed on any node")
    if facts.pending:
        owed = []
        for rec in facts.pending:
            try:
                owed.append(Action.from_record(rec))
            except ValueError:
                p.notes.append(f"ignored an owed action this lbtk does not know: {' '.join(rec)}")
        if owed:
            p.notes.append("finishing an interrupted deploy: " + "; ".join(a.short() for a in owed))
            p.actions += owed
    if {Phase.LVS, Phase.SYNC_DAEMON} & set(phases) and facts.has_ipvs is False:
        if needs_ipvs(env.inv):      # production: nothing would be load balanced
            raise LbtkError(no_ipvs_error(node, facts.no_ipvs_why))
        if Phase.LVS in phases:
            p.notes.append(f"{no_ipvs_words(env.inv)}: keepalived runs VRRP-only (--vrrp); virtual_server blocks are inert")
    if Phase.SYNC_DAEMON in phases and env.inv.sync_daemon:
        p.notes.append("sync daemon: " + sync_note(env, facts))
    if RUNTIME_PHASE in phases and env.runtime is not None:
        desired.append(NodeFile(F.RUNTIME_PATH, runtime.content(env.runtime), RUNTIME_PHASE, mode=F.RECORD_MODE))
    if RUNTIME_PHASE in phases:     # the secret's fingerprint rides with the keepalived.conf that carries it
        desired.append(NodeFile(F.SECRET_RECORD_PATH, secret_record.record_text(
            env.secrets, secret_record.live_record(facts), setter), RUNTIME_PHASE, mode=F.RECORD_MODE))
    for phase in phases:
        mine = [f for f in desired if f.phase == phase]
        changes = secret_record.with_fingerprints(file_changes(mine, facts, node), facts)
        p.changes += changes
        p.add_actions(service_actions(phase, {ch.file.path for ch in changes}, facts, mine))
    if env.runtime is not None and node in env.runtime.isolated and {Phase.LVS, RUNTIME_PHASE} & set(phases):
        p.actions = runtime.keep_isolated(p.actions, facts, stop=RUNTIME_PHASE in phases)
        p.notes.append(isolated_note(env, node))
    return p


def isolated_note(env: Env, node: str) -> str:
    """The one line a deploy says about an isolated node (its plan's note)."""
    rec = env.runtime
    return (f"isolated (`inv isolate`{f', by {rec.by} at {rec.at}' if rec and rec.by else ''}): keepalived "
            f"left stopped, files shipped — `inv isolate --env {env.name} --node {node} --undo` brings it back")


def check_phases(phases) -> list[Phase]:
    """Phases or their names -> phases; an unknown name is refused in one line."""
    try:
        return Phase.parse(phases)
    except ValueError as e:
        raise LbtkError(str(e)) from None


def plan_runs(env: Env, states: dict[str, NodeState], phases, info: RunInfo | None = None) -> list[NodeRun]:
    """Every node's plan; `info`: the run that records a new secret fingerprint (None: not known yet)."""
    phases = check_phases(phases)
    setter = secret_record.Setter(info.run, info.operator, info.since) if info else secret_record.Setter()
    return [NodeRun(n, s, plan_node(env, n, s, phases, setter)) for n, s in states.items()]


def drift(env: Env, states: dict[str, NodeState]) -> dict[str, list[FileChange]]:
    """Pure: per node, how its live managed files differ from what the inventory renders, in every
    phase that writes files (`inv diff`)."""
    return {n: plan_node(env, n, s, FILE_PHASES).changes for n, s in states.items()}


def run_phases(env: Env, phases, check: bool = False, say=lambda s: None,
               progress=None, nodes: list[str] | None = None, skip_unreachable: bool = False,
               batch: int | None = None, change=None, info: RunInfo | None = None, break_lock: bool = False,
               on_moves=lambda moves: None, rotation: bool = False, lock: runlock.Lock | None = None) -> Outcome:
    """Under the deploy lock (fabfile/ops/lock.py; --check takes none): facts, plans, then (unless
    check) the rolling apply. Returns the Outcome; a node that refused is in Outcome.error (the
    caller shows the summary, then raises it). `progress(runs)` makes the context manager that
    shows per-node steps (step / finish). `change(record, states) -> record` changes the cluster's
    runtime record (drain, undrain, isolate) before planning, seeing the facts read under the lock; `info` is who runs it (default: this process).
    `on_moves(moves)`: the planned VIP moves, told before the apply starts (the view words them).
    `batch`: None lets roll_plan size the roll by what the change risks; N is --batch N.
    `rotation`: this run replaces the nodes' VRRP secret on purpose (else a secret other than the
    one the nodes recorded is refused: fabfile/core/secret_record.py).
    `lock`: the deploy lock the caller already holds on these nodes (os-upgrade's drain): the run
    goes on under it, as the caller's run (its RunInfo), instead of taking the lock again."""
    phases = check_phases(phases)
    chosen = [n for n in env.inv.nodes if nodes is None or n.name in nodes]
    with remote.nodes(env, chosen) as group:
        if lock is not None:
            if not lock.covers(n.name for n in chosen):
                raise RuntimeError("run_phases(lock=): the lock is not held on every node the run changes")
            return _locked(env, phases, group, check, say, progress, skip_unreachable, batch, change,
                           info or lock.info, lock.down, on_moves, rotation)
        if not check and change is None:
            # Look before locking. The everyday case, a deploy that finds nothing to do, takes no
            # lock: one round trip. A node that cannot be reached (or whose sudo refuses) fails here,
            # before any lock is taken. A lock record on any node (a run going on, or a dead one), a
            # node skipped or any planned change: take the lock and look again under it. A runtime
            # change (drain, undrain) changes something by definition: it goes to the lock at once,
            # which saves one round trip per node.
            out = _locked(env, phases, group, False, say, progress, skip_unreachable, batch, change, info, {},
                          on_moves, rotation, quick=True)
            if out is not None:
                return out
        # who runs it (git's commit and status, for the lock record and the history): only now, when a
        # change may follow — a deploy that found nothing to do never pays for it
        info = info or runinfo.current(env.name, env.path)
        if check:
            return _locked(env, phases, group, True, say, progress, skip_unreachable, batch, change, info, {},
                           on_moves, rotation)
        # the facts are read under the lock in the lock's own round trip (a drain: two round trips
        # before the apply, not three)
        per_node = deploy_facts(env, group.names)
        look = lambda n: observe_script([*F.DEPLOY, *per_node[n]])   # noqa: E731
        with runlock.Lock(group, info, break_lock, look=look) as lock:
            for node, holder in lock.broken:
                say(f"{node}: broke the stale deploy lock left by {runlock.who(holder)}")
            return _locked(env, phases, group, False, say, progress, skip_unreachable, batch, change, info,
                           lock.down, on_moves, rotation, looked=read_looked(lock, per_node))


def _locked(env: Env, phases: list[Phase], group: remote.NodeGroup, check: bool, say, progress,
            skip_unreachable: bool, batch: int | None, change, info: RunInfo, lock_down: dict[str, str], on_moves,
            rotation: bool, quick: bool = False, looked: dict[str, NodeState] | None = None) -> Outcome | None:
    """run_phases' work once the lock is held (lock_down: nodes the lock could not reach). `quick`:
    no lock is held yet — None unless every node answered, none has a lock record and none has
    anything to do (then the Outcome of a deploy that changed nothing). `looked`: the deploy facts
    the lock read under it (read_looked), else they are observed here."""
    if looked is not None:
        states = {n: looked.get(n) or NodeState(n, reachable=False, error=lock_down.get(n, f"{n}: not observed"))
                  for n in group.names}
    else:
        states = observe_except(group, (*F.DEPLOY, F.LOCK) if quick else F.DEPLOY,
                                deploy_facts(env, group.names), lock_down)
    down = {n: s.error for n, s in states.items() if not s.reachable}
    if down and not skip_unreachable:
        raise remote.RemoteError(next(iter(down.values())) + " — nothing was changed on any node "
                                 "(--skip-unreachable goes ahead on the nodes that answer)")
    if quick and (down or any(s.lock is not None for s in states.values())):
        return None
    if len(down) == len(states):
        raise remote.RemoteError(next(iter(down.values())) + " — no node answered; nothing was changed")
    live = group.only(n for n in group.names if n not in down)
    current = runtime.newest(states)
    env = runtime.effective(env, change(current, states) if change else current)
    runs = plan_runs(env, {n: s for n, s in states.items() if n not in down}, phases, None if quick else info)
    if len(live) < len(env.inv.nodes):
        refuse_partial_wire_change(runs, missing=sorted(set(down) | {n.name for n in env.inv.nodes} - set(states)))
    out = Outcome(phases, runs, planned_moves(env, runs) if Phase.KEEPALIVED in phases else [], check,
                  skipped=down, runtime_before=current, runtime=env.runtime)
    if quick:
        if any(not r.plan.empty for r in runs):
            return None
        with (progress or NoProgress)(runs) as p:     # the summary says "no changes" per node
            for r in runs:
                r.status = RunStatus.UNCHANGED
                p.finish(r.node, "no changes")
        return out
    refuse_secret_drift(env, runs, phases, rotation, check)
    out.roll = roll_plan(env, runs, batch, moves=out.moves)
    if check:
        return out
    on_moves(out.moves)
    apply_runs(env, live, out, say, (progress or NoProgress)(runs), batch, info)
    return out


class NoProgress:
    def __init__(self, *a, **kw):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def step(self, node, msg):
        pass

    def finish(self, node, msg, ok=True):
        pass


def apply_runs(env: Env, group: remote.NodeGroup, out: Outcome, say, progress, batch: int | None = None,
               info: RunInfo | None = None, intent: VipIntent | None = None) -> None:
    """Apply out.runs in roll_plan's batches (`batch`: as run_phases), each batch in parallel; a
    node that fails stops the batches after its own. A VRRP settle only after a batch the plan marks
    (a VIP holder's, where a VIP can move) and only when that holder took a keepalived change, then
    a wait for the planned moves. Deploy and rollback both come through here. `intent`: where the
    VIPs go once the change is in (default: the inventory's plan)."""
    runs = out.runs
    intent = intent or VipIntent.of(env.inv)
    stamp = info.run if info else runinfo.stamp()   # the backup set's name; the history entry's id
    roll = roll_plan(env, runs, batch, intent, moves=out.moves)
    say(roll.line())
    out.roll, out.batches = roll, roll.batches
    batches = roll.batches
    held_before = {v for r in runs for v in intent.owners if r.facts.holds(v)}
    failed = False
    done_at: dict[str, float] = {}
    by_run = {r.node: r for r in runs}

    def work(c):
        run = by_run[c.name]
        if failed:
            run.status = RunStatus.SKIPPED
            progress.finish(run.node, "skipped", ok=False)
            return
        if run.plan.empty:
            run.status = RunStatus.UNCHANGED
            progress.finish(run.node, "no changes")
            return
        try:
            run.done = apply_node(c, run.plan, stamp, say=lambda s: progress.step(run.node, s), info=info)
            run.status = RunStatus.CHANGED
            done_at[run.node] = time.monotonic()
            progress.finish(run.node, f"{len(run.done.files) + len(run.done.actions)} change(s)")
        except (ApplyError, remote.RemoteError) as e:
            run.status, run.error = RunStatus.FAILED, str(e)
            progress.finish(run.node, "FAILED", ok=False)

    with progress:
        for names, settle_after in zip(batches, roll.settle_after):
            batch_runs = [by_run[n] for n in names]
            group.only(names).parallel(work)
            failed = failed or any(r.status is RunStatus.FAILED for r in batch_runs)
            # VRRP can only move where a VIP holder took a change: backups roll on without waiting
            holder_touched = any(r.done.touches("keepalived") and any(r.facts.holds(v) for v in held_before)
                                 for r in batch_runs)
            if not failed and settle_after and holder_touched:
                settle.settle_between(env, group, held_before)
    if any(m.moves for m in out.moves) and not failed:
        for line in settle.finish_moves(env, group, done_at, intent):
            say(line)
    errors = [r.error for r in runs if r.status is RunStatus.FAILED]
    if errors:
        changed = [r.node for r in runs if r.status is RunStatus.CHANGED]
        out.error = DeployFailed(errors[0] + (f" (and {len(errors) - 1} more node(s) failed)" if len(errors) > 1 else "")
                                 + ("; later nodes were not touched" if len(batches) > 1 else "")
                                 + (f"; already on the new config: {', '.join(changed)}" if changed else ""),
                                 changed)


def refuse_partial_wire_change(runs: list[NodeRun], missing: list[str] | None = None) -> None:
    """A change every node must see at once (what VRRP adverts carry) cannot go to some nodes only:
    nodes that disagree ignore each other's adverts (a split brain)."""
    wire = [r.node for r in runs if changes_wire(r.plan.changes, r.facts.files)]
    if wire:
        raise LbtkError(f"{', '.join(wire)}: this change alters what VRRP adverts carry (virtual_router_id, "
                        "advert_int, auth or first VIP), which every node must take at once, and "
                        f"{', '.join(missing or []) or 'some nodes'} would miss it — run it on every node "
                        "(without --node, once all nodes answer); nothing was changed on any node")


def refuse_secret_drift(env: Env, runs: list[NodeRun], phases: list[Phase], rotation: bool, check: bool) -> None:
    """A run that installs a VRRP secret other than the one the nodes recorded, unasked, is refused
    (a clone holding an older secret would undo a rotation); --check says it would be."""
    if RUNTIME_PHASE not in phases or rotation:
        return
    found = secret_record.drifts(env.secrets, {r.node: r.facts for r in runs})
    if not found:
        return
    if not check:
        raise LbtkError(secret_record.refusal(found))
    runs[0].plan.notes.append("refused without --rotation: " + secret_record.refusal(found).split(" — ")[0])


def sync_note(env: Env, facts: NodeState) -> str:
    if not facts.has_ipvs:
        return "kernel has no IPVS, no connection sync"
    if env.inv.sync_daemon.mode == "static":
        return "static mode: start it with `inv sync-start` (master on the VRRP MASTER, backup elsewhere)"
    return sync.describe(env.inv)


def rolling_batches(env: Env, runs: list[NodeRun], batch: int | None = None, intent: VipIntent | None = None, *,
                    moves: list[PlannedMove] | None = None) -> tuple[list[list[str]], str | None]:
    """Pure: roll_plan's batches, and why they are not one node at a time (None when they are).
    `batch` None: the planner sizes the roll by what the change risks; N: backups N at a time."""
    plan = roll_plan(env, runs, batch, intent, moves=moves)
    return plan.batches, (None if plan.kind in (RollKind.ROLLING, RollKind.FIRST) else plan.reason)


def roll_plan(env: Env, runs: list[NodeRun], batch: int | None = None, intent: VipIntent | None = None, *,
              moves: list[PlannedMove] | None = None) -> RollPlan:
    """Pure: the order a change goes to these nodes, sized by what it risks.

    - First deploy (no keepalived runs anywhere): the nodes the VRRP plan makes MASTER first
      (together), then every other node in one parallel batch, with no wait between: the masters'
      keepalived spends its master-down wait (~3.6 s) while the others are deployed (issue 14), and
      a nopreempt VIP lands on its planned owner instead of whichever keepalived started first.
    - A change of what adverts carry: every node in one batch (nodes that disagree ignore each
      other's adverts).
    - Reload-only and no VIP can move (weights, drains, real servers, checkers, nginx pages:
      core.plan.reload_only_refusal on every node, and no planned move): one canary backup (the
      lowest priority one with something to change), then every other backup at once, then the VIP
      holder(s) together, and no VRRP settle anywhere. Each node validates (keepalived -t) before
      its swap and passes apply's health check after its reload; a canary that fails stops the run
      before any other node is touched.
    - Anything else (restarts, priorities, states, VIPs, a move; or `batch` given: --batch N):
      backups lowest priority first, `batch` (default 1) at a time, then each VIP holder alone; a
      VRRP settle after each holder's batch.

    `moves`: planned_moves(env, runs, intent) (computed here when not given). `intent`: where the
    VIPs go (default: the inventory's plan; a rollback's: the restored confs')."""
    intent = intent or VipIntent.of(env.inv)
    names = [r.node for r in runs]
    if not any(r.facts.active.get("keepalived") == "active" for r in runs):
        owners = set(intent.owners.values())
        first = [n for n in names if n in owners]
        rest = [n for n in names if n not in owners]
        batches = [first, rest] if first and rest else [names]
        return RollPlan(RollKind.FIRST, batches, [False] * len(batches),
                        "first deploy: no keepalived runs yet, the planned MASTERs start first")
    if any(changes_wire(r.plan.changes, r.facts.files) for r in runs):
        return RollPlan(RollKind.AT_ONCE, [names], [False],
                        "advert-visible change (virtual_router_id, advert_int, auth or first VIP): applied to "
                        "every node at once — nodes that disagree ignore each other's adverts")
    vips = list(intent.owners)
    prio = {n.name: n.priority for n in env.inv.nodes}
    holders = sorted((r.node for r in runs if any(r.facts.holds(v) for v in vips)), key=lambda n: prio[n])
    backups = sorted((n for n in names if n not in holders), key=lambda n: prio[n])
    held = frozenset(holders)
    if batch is None:
        refusal = _why_a_vip_can_move(env, runs, moves, intent)
        if refusal is None:
            changing = {r.node for r in runs if not r.plan.empty}
            canary = next((n for n in backups if n in changing), None)
            batches = [b for b in ([canary] if canary else [], [n for n in backups if n != canary], holders) if b]
            return RollPlan(RollKind.CANARY, batches, [False] * len(batches),
                            "reload-only, no VIP can move", held)
        reason = f"a VIP can move ({refusal})"
    else:
        reason = f"--batch {batch}"
    size = max(1, batch or 1)
    batches = [backups[k:k + size] for k in range(0, len(backups), size)] + [[n] for n in holders]
    return RollPlan(RollKind.ROLLING, batches, [len(batches) > 1 and bool(set(b) & held) for b in batches],
                    reason, held)


def _why_a_vip_can_move(env: Env, runs: list[NodeRun], moves: list[PlannedMove] | None,
                        intent: VipIntent | None = None) -> str | None:
    """Pure: the first reason this change is not reload-only with every VIP staying put (None: it is)."""
    if not any(not r.plan.empty for r in runs):
        return "nothing planned to judge it by"     # e.g. a caller that plans its work elsewhere
    for m in (planned_moves(env, runs, intent) if moves is None else moves):
        return f"VIP {m.vip} " + ("stays by nopreempt, priorities change" if m.nopreempt
                                  else f"moves {'+'.join(m.holders)} -> {m.owner}")
    for r in runs:
        refusal = reload_only_refusal(r.plan, r.facts.files, F.RUNTIME_PATH)
        if refusal:
            return refusal
    return None


def planned_moves(env: Env, runs: list[NodeRun], intent: VipIntent | None = None) -> list[PlannedMove]:
    """Pure. VIPs whose holder the change moves (`intent`, default the new inventory's plan): each
    is one planned failover (unless nopreempt keeps it where it is)."""
    intent = intent or VipIntent.of(env.inv)
    out = []
    isolated = set(env.runtime.isolated) if env.runtime else set()
    for vip, owner in intent.owners.items():
        if owner in isolated:       # out of VRRP (`inv isolate`): the VIP stays where VRRP put it
            continue
        now = tuple(r.node for r in runs if r.facts.holds(vip))
        if now and not intent.stays(vip, now):
            out.append(PlannedMove(vip, now, owner, nopreempt=vip in intent.nopreempt))
    return out
