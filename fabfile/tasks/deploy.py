"""Deploy phases as tasks: each runnable alone, all chained by `inv deploy`."""
from __future__ import annotations

from invoke import task

from ..phases import run_phases
from .common import DEFAULT_ENV, load_env, one_line_errors

HELP = {"env": "inventory name (inventories/NAME.yaml)",
        "check": "show what would change (a diff per file) and touch nothing",
        "format": "auto|rich|plain|markdown"}
DEPLOY_ORDER = ["install", "arp", "nginx", "lvs", "keepalived", "sync-daemon"]


def _phase_task(phase: str, doc: str):
    @task(name=phase, help=HELP)
    @one_line_errors
    def t(c, env=DEFAULT_ENV, check=False, format=None):
        run_and_settle(load_env(env), [phase], check, format)
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
    run_and_settle(load_env(env), DEPLOY_ORDER, check, format)


def run_and_settle(e, phases: list[str], check: bool, fmt) -> None:
    """The phases, then (when keepalived changed anywhere) return only once VRRP has settled."""
    from ..settle import wait_for_vips
    runs = run_phases(e, phases, check=check, fmt=fmt)
    if {"lvs", "keepalived"} & set(phases) and not check and any(r.done for r in runs):
        wait_for_vips(e)
