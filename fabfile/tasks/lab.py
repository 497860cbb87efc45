"""`inv lab.up / lab.down / lab.status / lab.demo`: the local lab of real systemd nodes (fabfile/lab/).

An inventory whose `lab:` says `kernel: true` (inventories/kernel.yaml) runs the same nodes inside
a qemu VM on Debian's kernel, which has IPVS (fabfile/lab/kernel.py); `--kernel` picks that one.
"""
from __future__ import annotations

from invoke import Collection

from fabfile import output
from fabfile.lab.hooks import lab_call, spec_for  # noqa: F401 (spec_for: what the lab tests import from here)
from fabfile.lab.schema import release_of
from fabfile.tasks.common import DEFAULT_ENV, LbtkError, load_env, one_line_errors, task

KERNEL_ENV = "kernel"
HELP = {"env": "inventory whose nodes the lab creates (default: lab; kernel tier: kernel)",
        "kernel": "the kernel tier: same as --env kernel (Debian's kernel under qemu, real IPVS)"}


def _env(env: str, kernel: bool) -> str:
    if kernel and env not in (DEFAULT_ENV, KERNEL_ENV):
        raise LbtkError(f"--kernel means --env {KERNEL_ENV}; drop one of them")
    return KERNEL_ENV if kernel else env


def _tier(spec):
    from fabfile import lab
    from fabfile.lab import kernel
    return kernel if isinstance(spec, kernel.KernelSpec) else lab


@task(help=HELP)
@one_line_errors
def up(c, env=DEFAULT_ENV, kernel=False):
    """Bring up the lab: one systemd node per inventory node (builds the rootfs once)."""
    from fabfile import lab
    spec = spec_for(_env(env, kernel))
    tier = _tier(spec)
    if tier is lab:
        lab_call(lab.build_rootfs, spec, progress=output.say)
    lab_call(tier.up, spec, progress=output.say)
    _monitoring(_env(env, kernel))
    _show(spec)


def monitor_spec_for(env: str):
    """The lab monitoring node of an inventory with `lab.prometheus: true` (fabfile/lab/monitor.py),
    else None: its Prometheus loads `inv render --monitoring`'s rules and scrape job."""
    from urllib.parse import urlsplit
    from fabfile.core import monitoring
    from fabfile.lab import monitor
    from fabfile.model.loading import load
    inv = load(env)[0]          # the inventory alone: rules and scrape job name no secret
    if inv.lab is None or not inv.lab.prometheus:
        return None
    u = urlsplit(inv.monitoring.prometheus_url)     # the schema made it http://LOOPBACK:PORT
    return monitor.spec(inv.cluster, f"{u.hostname}:{u.port}", inv.monitoring.scrape_interval,
                        monitoring.scrape_job(inv), monitoring.rules_yaml(inv, env))


def _cluster(env: str) -> str:
    from fabfile.model.loading import load
    return load(env)[0].cluster


def _monitoring(env: str) -> None:
    """The lab's Prometheus and Alertmanager as the inventory says: started or refreshed with
    lab.prometheus, stopped without it."""
    from fabfile.lab import monitor
    ms = monitor_spec_for(env)
    if ms is None:
        lab_call(monitor.down, _cluster(env), progress=output.say)
    else:
        lab_call(monitor.up, ms, progress=output.say)


@task(help=HELP)
@one_line_errors
def down(c, env=DEFAULT_ENV, kernel=False):
    """Tear the lab down: nodes, namespaces, bridge, mounts (kernel tier: the VM, its tap and bridge)."""
    from fabfile.lab import monitor
    spec = spec_for(_env(env, kernel))
    lab_call(monitor.down, _cluster(_env(env, kernel)), progress=output.say)
    lab_call(_tier(spec).down, spec, progress=output.say)


@task(help={**HELP, "json": "print JSON"})
@one_line_errors
def status(c, env=DEFAULT_ENV, kernel=False, json=False, format=None):
    """Show each lab node: running, systemd state, SSH reachable."""
    st = _show(spec_for(_env(env, kernel)), json=json, format=format)
    if not all(s.running and s.ssh_ok for s in st):
        from invoke import Exit
        raise Exit(code=1)


def _show(spec, json=False, format=None):
    st = lab_call(_tier(spec).status, spec)
    if json:
        output.show_json([s.__dict__ for s in st])
        return st
    t = output.Table("lab nodes", ["node", "host", "running", "pid", "systemd", "ssh"])
    for s in st:
        t.add(s.name, s.host, s.running, s.pid, s.systemd_state, s.ssh_ok, ok=s.running and s.ssh_ok)
    output.show(t, format)
    return st


@task(help={**HELP, "requests": "requests the client sends through the VIP (default 30)"})
@one_line_errors
def demo(c, env=DEFAULT_ENV, kernel=False, requests=30):
    """lab.up, deploy, verify in one go; ends with the IPVS table and the counts per real server."""
    import time
    from fabfile.tasks.deploy import deploy
    from fabfile.tasks.verify import verify
    env = _env(env, kernel)
    t0 = time.monotonic()
    up(c, env=env)
    t1 = time.monotonic()
    deploy(c, env=env)
    t2 = time.monotonic()
    try:
        verify(c, env=env, requests=requests)
    finally:
        output.say(f"demo: lab.up {t1 - t0:.0f}s, deploy {t2 - t1:.0f}s, verify {time.monotonic() - t2:.0f}s")


@task(help={"env": "inventory whose lab node it is", "node": "the node to re-image",
            "release": "the Debian release of its new image (default: the inventory's for that node)"})
@one_line_errors
def reimage(c, node, env=DEFAULT_ENV, release=None):
    """Re-install one running lab node on a release's base (name, addresses, keys kept).

    Its name, addresses, MAC and SSH host keys are kept, everything it wrote is gone (what
    `inv os-upgrade` does to a lab node; then `inv deploy --node`)."""
    from fabfile import lab
    from fabfile.lab import kernel
    e = load_env(env)
    spec = spec_for(env)
    if isinstance(spec, kernel.KernelSpec):
        raise LbtkError(f"{e.path.name}: the kernel tier has no lab.reimage (it builds bookworm nodes only)")
    if node not in {n.name for n in e.inv.nodes}:
        raise LbtkError(f"--node {node}: not a node of {e.path.name}")
    lab_call(lab.reimage, spec, node, release or release_of(e.inv, e.inv.node(node)), progress=output.say)


collection = Collection("lab", up, down, status, demo, reimage)
