"""`inv os-upgrade --env NAME --node NODE --release trixie [--check] [--force]`: one node's Debian
release (fabfile/ops/upgrade.py). The runbook runbooks/upgrade-debian-12-to-13.md calls it once per
node, backups first, the VIP holder last, with `inv deploy --node NODE` and `inv verify` after each.

A lab inventory (a `lab:` section) swaps the OS by re-imaging the node onto the new release's base
(fabfile/lab: lab nodes have no route to the archive); any other inventory takes the apt path.
"""
from __future__ import annotations

import time

from invoke import task

from fabfile import output
from fabfile.tasks.common import DEFAULT_ENV, UsageError, node_env, one_line_errors

HELP = {"env": "inventory name (inventories/NAME.yaml)", "node": "the node to upgrade (one at a time)",
        "release": "the Debian release to go to (the next one after the node's: trixie from bookworm)",
        "check": "print the steps and the commands they run, touch nothing",
        "force": "also the VIP holder: its keepalived stops gracefully first and VRRP hands the VIP over"}


@task(name="os-upgrade", help=HELP)
@one_line_errors
def os_upgrade(c, node=None, release=None, env=DEFAULT_ENV, check=False, force=False):
    """Upgrade one node's Debian release: drain, keepalived out, OS swap (apt + reboot; lab: re-image).
    Then `inv deploy --node NODE` puts the toolkit's config back and starts keepalived."""
    from fabfile.ops import upgrade
    from fabfile.core import runtime
    if not node or not release:
        raise UsageError("name the node and the release: --node NODE --release trixie")
    e, _ = node_env(env, node)
    spec = _lab_spec(env) if e.inv.lab is not None else None
    obs = upgrade.observe_all(e.inv)
    rec = runtime.newest(obs)
    d = upgrade.decide(e.inv, node, release, obs, force=force, drained=set(rec.drained))
    if d.nothing_to_do:
        output.say(f"{node} already runs {release}: nothing to do")
        return
    base = ""
    if spec is not None:
        from fabfile.lab import rootfs
        base = str(rootfs.base_dir(spec, release))
    steps = upgrade.plan(d, obs[node].packages, lab=spec is not None, base=base)
    output.say(f"{node}: Debian {d.current} -> {d.target}"
               + (" (lab: re-image)" if spec is not None else " (apt)") + (", --check: nothing is changed" if check else ""))
    for note in d.notes:
        output.say(f"note: {note}")
    for k, s in enumerate(steps, 1):
        output.say(f"{k}. {s.what}")
        for cmd in s.commands:
            output.say(f"     $ {cmd}")
    if check:
        return
    t0 = time.monotonic()
    if not d.drained:
        from fabfile.tasks.oncall import _drain
        _drain(env, node, True)
    upgrade.take_out(e, d, output.say)
    if spec is not None:
        from fabfile.tasks.lab import _lab_call
        from fabfile import lab
        _lab_call(lab.reimage, spec, node, release, progress=output.say)
    else:
        upgrade.apt_swap(e.inv, d, obs[node].packages, output.say)
    now = upgrade.release_of(e.inv, node)
    if now != release:
        raise UsageError(f"{node} runs {now} after the upgrade, not {release} — keepalived stays off there; "
                         "check the node's console and apt's log (/var/log/apt/term.log)")
    output.say(f"{node}: now on Debian {release}, in {time.monotonic() - t0:.1f}s; keepalived not running, "
               f"real server drained — next: `inv deploy --env {env} --node {node}`, `inv verify --env {env}`, "
               f"`inv undrain --env {env} --server {node}`")


def _lab_spec(env: str):
    from fabfile.tasks.lab import spec_for
    from fabfile.lab import kernel
    spec = spec_for(env)
    if isinstance(spec, kernel.KernelSpec):
        raise UsageError(f"--env {env}: the kernel tier builds bookworm nodes only; os-upgrade re-images "
                         "nodes of the plain lab (lab.kernel: false)")
    return spec
