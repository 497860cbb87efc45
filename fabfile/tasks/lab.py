"""`inv lab.up / lab.down / lab.status`: the local lab of real systemd nodes (fabfile/lab/)."""
from __future__ import annotations

from invoke import Collection, task

from .. import output
from .common import DEFAULT_ENV, LbtkError, load_env, one_line_errors

HELP = {"env": "inventory whose nodes the lab creates (default: lab)"}


def spec_for(env: str):
    from ..lab import LabNode, LabSpec
    e = load_env(env)
    if e.inv.lab is None:
        raise LbtkError(f"{e.path.name}: no `lab:` section — the lab only builds inventories made for it (--env lab)")
    return LabSpec(nodes=tuple(LabNode(n.name, n.host, n.mac) for n in e.inv.nodes),
                   bridge=e.inv.lab.bridge, gateway=e.inv.lab.gateway)


def _lab_call(fn, *args, **kw):
    from ..lab import LabError
    try:
        return fn(*args, **kw)
    except LabError as e:
        raise LbtkError(str(e)) from None


@task(help=HELP)
@one_line_errors
def up(c, env=DEFAULT_ENV):
    """Bring up the lab: one systemd node per inventory node (builds the rootfs once)."""
    from .. import lab
    spec = spec_for(env)
    _lab_call(lab.build_rootfs, spec, progress=output.say)
    _lab_call(lab.up, spec, progress=output.say)
    _show(spec)


@task(help=HELP)
@one_line_errors
def down(c, env=DEFAULT_ENV):
    """Tear the lab down: nodes, namespaces, bridge, mounts."""
    from .. import lab
    _lab_call(lab.down, spec_for(env), progress=output.say)


@task(help={**HELP, "json": "print JSON"})
@one_line_errors
def status(c, env=DEFAULT_ENV, json=False, format=None):
    """Show each lab node: running, systemd state, SSH reachable."""
    st = _show(spec_for(env), json=json, format=format)
    if not all(s.running and s.ssh_ok for s in st):
        from invoke import Exit
        raise Exit(code=1)


def _show(spec, json=False, format=None):
    from .. import lab
    st = _lab_call(lab.status, spec)
    if json:
        output.show_json([s.__dict__ for s in st])
        return st
    t = output.Table("lab nodes", ["node", "host", "running", "pid", "systemd", "ssh"])
    for s in st:
        t.add(s.name, s.host, s.running, s.pid, s.systemd_state, s.ssh_ok, ok=s.running and s.ssh_ok)
    output.show(t, format)
    return st


collection = Collection("lab", up, down, status)
