"""Deploy phases as tasks: each runnable alone, all chained by `inv deploy`."""
from __future__ import annotations

from typing import TYPE_CHECKING

from invoke import Exit

from fabfile import output
from fabfile.core.phase import DEPLOY_ORDER, Phase
from fabfile.model.context import Env
from fabfile.errors import EXIT_PENDING
from fabfile.tasks.common import DEFAULT_ENV, UsageError, check_format, node_env, number, one_line_errors, task

HELP = {"env": "inventory name (inventories/NAME.yaml)",
        "check": "show what would change (a diff per file) and touch nothing",
        "format": "auto|rich|plain|markdown",
        "node": "only this node (a change every node must see at once is refused)",
        "parallel": "at most N nodes at once (default: all)",
        "batch": "backups changed N at a time (Ansible's serial), VIP holders one by one. Default: sized by "
                 "what the change risks — reload-only and no VIP can move: one canary backup, the other "
                 "backups at once, then the VIP holders; anything that can move a VIP: one by one",
        "skip_unreachable": "go ahead on the nodes that answer (refused for a change every node must see at "
                            "once); the others are recorded as owed and caught up by the next deploy",
        "break_lock": "take over a deploy lock left by a run that died (a live run's lock is never broken)",
        "rotation": "this deploy replaces the VRRP secret the nodes run (else a secret other than the "
                    "nodes' recorded one is refused: another clone may hold a newer one)"}
DEPLOY_HELP = {**HELP, "json": "with --check: the plan as one JSON object (files with their diffs, actions, "
                                "VIP moves, the order); exit 4 when changes are pending, 0 when nothing is",
               "detailed_exitcode": "with --check: exit 4 when changes are pending, 0 when there is nothing to "
                                    "do (Terraform's -detailed-exitcode; --json implies it)"}
if TYPE_CHECKING:
    from fabfile.ops.deploy import Outcome


def _phase_task(phase: Phase):
    """`inv PHASE`: one phase alone; its help line is the phase's own summary."""
    @task(name=phase.value, help=HELP)
    @one_line_errors
    def t(c, env=DEFAULT_ENV, check=False, format=None, node=None, parallel=None, skip_unreachable=False,
          batch=None, break_lock=False, rotation=False):
        check_format(format)
        e, nodes = node_env(env, node, parallel=parallel)
        run_and_settle(e, [phase], check, format, nodes, skip_unreachable, number(batch, "batch", None, int, 1),
                       break_lock, rotation)
    t.__doc__ = t.body.__doc__ = phase.summary
    return t


PHASE_TASKS = {p: _phase_task(p) for p in Phase if p.has_task}
install, arp, nginx, lvs, keepalived = (PHASE_TASKS[p] for p in (Phase.INSTALL, Phase.ARP, Phase.NGINX, Phase.LVS,
                                                                 Phase.KEEPALIVED))


@task(help=DEPLOY_HELP)
@one_line_errors
def deploy(c, env=DEFAULT_ENV, check=False, format=None, node=None, parallel=None, skip_unreachable=False,
           batch=None, break_lock=False, rotation=False, json=False, detailed_exitcode=False):
    check_format(format)
    for flag, given in (("--json", json), ("--detailed-exitcode", detailed_exitcode)):
        if given and not check:
            raise UsageError(f"{flag} goes with --check (the plan): add --check")
    e, nodes = node_env(env, node, quiet=json, parallel=parallel)
    out = run_and_settle(e, list(DEPLOY_ORDER), check, format, nodes, skip_unreachable,
                         number(batch, "batch", None, int, 1), break_lock, rotation, json=json)
    # the plan as data is for pipelines, which read "changes pending" from the exit code; a person's
    # `--check` keeps 0 unless asked (--detailed-exitcode)
    if (detailed_exitcode or json) and out.pending:
        raise Exit(code=EXIT_PENDING)


deploy.__doc__ = deploy.body.__doc__ = (f"Every phase in order ({', '.join(DEPLOY_ORDER)}), "
                                        "then wait for VRRP.")


def deploy_and_show(e: Env, phases: list[Phase], check: bool = False, fmt=None, nodes=None,
                    skip_unreachable: bool = False, batch: int | None = None, break_lock: bool = False,
                    change=None, rotation: bool = False, lock=None, json: bool = False, annotate=None) -> Outcome:
    """The phases with progress, then their tables; a node that refused is raised after the summary.
    `lock`: the deploy lock the caller holds already (os-upgrade's drain runs under it). `json`:
    nothing but the plan (and, when applied, what each node took) as one JSON object on stdout,
    with `annotate(out)`'s keys added (drain's server and record)."""
    from fabfile.ops.deploy import run_phases
    from fabfile.progress import Progress
    from fabfile.views import deploy as view
    steps: dict[str, int] = {}

    def progress(runs):
        steps.update({r.node: max(1, (2 if r.plan.changes else 0) + len(r.plan.actions)) for r in runs})
        return Progress([r.node for r in runs], total=lambda n: steps[n])
    out = run_phases(e, phases, check=check, say=(lambda s: None) if json else output.say,
                     progress=None if json else progress,
                     nodes=[n.name for n in nodes] if nodes else None, skip_unreachable=skip_unreachable,
                     batch=batch, break_lock=break_lock, change=change,
                     on_moves=(lambda moves: None) if json else view.say_moves, rotation=rotation, lock=lock)
    if json:
        output.show_json({**view.as_json(out), **(annotate(out) if annotate else {})})
    else:
        view.show(out, fmt)
    if not check:
        record_owed(e, out, say=output.note if json else output.say)
    if out.error:
        raise out.error
    return out


def record_owed(e: Env, out: Outcome, say=output.say) -> None:
    """--skip-unreachable: nodes that missed this change are owed it; a node that took its phases
    again is caught up. `say`: where that is told (stderr when stdout is JSON)."""
    from datetime import datetime, timezone
    from fabfile.model import clone_state as overrides
    owed = overrides.owed(e.path)
    for n, why in out.skipped.items():
        entry = owed.setdefault(n, {"since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                    "phases": []})
        entry["phases"] = sorted(set(entry.get("phases", [])) | {p.value for p in out.phases})
        entry["why"] = why
        say(f"{n}: UNREACHABLE, skipped — owed {', '.join(entry['phases'])} since {entry['since']} "
                   f"(the next deploy that reaches it catches up): {why}")
    for r in out.runs:
        if r.node in owed and r.status.took_it and set(owed[r.node].get("phases", [])) <= set(out.phases):
            say(f"{r.node}: caught up on what it was owed since {owed.pop(r.node)['since']}")
    overrides.set_owed(e.path, owed)


def run_and_settle(e: Env, phases: list[Phase], check: bool, fmt, nodes=None, skip_unreachable=False,
                   batch: int | None = None, break_lock: bool = False, rotation: bool = False,
                   json: bool = False) -> Outcome:
    """The phases, then (when keepalived changed anywhere) return only once VRRP has settled."""
    from fabfile.ops.settle import wait_for_vips
    out = deploy_and_show(e, phases, check, fmt, nodes, skip_unreachable, batch, break_lock, rotation=rotation,
                          json=json)
    if {Phase.LVS, Phase.KEEPALIVED} & set(phases) and not check and any(r.done for r in out.runs):
        # an isolated node (`inv isolate`) holds no VIP on purpose: VRRP settles without it
        _, line = wait_for_vips(e, exclude=set(out.skipped) | set(out.runtime.isolated if out.runtime else ()))
        output.say(line)
    return out
