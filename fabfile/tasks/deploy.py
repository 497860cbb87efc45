"""Deploy phases as tasks: each runnable alone, all chained by `inv deploy`."""
from __future__ import annotations

from invoke import task

from .. import output
from ..context import Env
from ..phases import Outcome, run_phases
from ..progress import Progress
from ..views import deploy as view
from .common import DEFAULT_ENV, check_format, load_env, one_line_errors

HELP = {"env": "inventory name (inventories/NAME.yaml)",
        "check": "show what would change (a diff per file) and touch nothing",
        "format": "auto|rich|plain|markdown"}
DEPLOY_ORDER = ["install", "arp", "nginx", "lvs", "keepalived", "sync-daemon"]


def _phase_task(phase: str, doc: str):
    @task(name=phase, help=HELP)
    @one_line_errors
    def t(c, env=DEFAULT_ENV, check=False, format=None):
        run_and_settle(load_env(env), [phase], check, check_format(format))
    t.__doc__ = doc
    t.body.__doc__ = doc
    return t


install = _phase_task("install", "Check packages (keepalived, ipvsadm, nginx, iptables) and versions; apt-install if allowed.")
arp = _phase_task("arp", "ARP sysctls (all + interface + lo) applied with sysctl -p, VIP on lo through a unit.")
nginx = _phase_task("nginx", "nginx site and node-naming page; nginx -t, then reload.")
lvs = _phase_task("lvs", "LVS side: keepalived start options (VRRP-only without IPVS), fwmark rules.")
keepalived = _phase_task("keepalived", "keepalived.conf: keepalived -t on the node, keep the previous file, reload.")


@task(help=HELP)
@one_line_errors
def deploy(c, env=DEFAULT_ENV, check=False, format=None):
    """Every phase in order (install, arp, nginx, lvs, keepalived, sync-daemon), then wait for VRRP."""
    run_and_settle(load_env(env), DEPLOY_ORDER, check, check_format(format))


def deploy_and_show(e: Env, phases: list[str], check: bool = False, fmt=None) -> Outcome:
    """The phases with progress, then their tables; a node that refused is raised after the summary."""
    steps: dict[str, int] = {}

    def progress(runs):
        steps.update({r.node: max(1, (2 if r.plan.changes else 0) + len(r.plan.actions)) for r in runs})
        return Progress([r.node for r in runs], total=lambda n: steps[n])
    out = run_phases(e, phases, check=check, say=output.say, progress=progress)
    view.show(out, fmt)
    if out.error:
        raise out.error
    return out


def run_and_settle(e: Env, phases: list[str], check: bool, fmt) -> None:
    """The phases, then (when keepalived changed anywhere) return only once VRRP has settled."""
    from ..settle import wait_for_vips
    out = deploy_and_show(e, phases, check, fmt)
    if {"lvs", "keepalived"} & set(phases) and not check and any(r.done for r in out.runs):
        _, line = wait_for_vips(e)
        output.say(line)
