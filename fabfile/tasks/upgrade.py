"""`inv os-upgrade --env NAME --node NODE --release trixie [--check] [--force]`: one node's Debian
release (fabfile/ops/upgrade.py). The runbook runbooks/upgrade-debian-12-to-13.md calls it once per
node, backups first, the VIP holder last, with `inv deploy --node NODE` and `inv verify` after each.

A lab inventory (a `lab:` section) swaps the OS by re-imaging the node onto the new release's base
(fabfile/lab/hooks.py: lab nodes have no route to the archive); any other inventory takes the apt path.
"""
from __future__ import annotations


from fabfile import output
from fabfile.tasks.common import DEFAULT_ENV, UsageError, node_env, one_line_errors, task

HELP = {"env": "inventory name (inventories/NAME.yaml)", "node": "the node to upgrade (one at a time)",
        "release": "the Debian release to go to (the next one after the node's: trixie from bookworm)",
        "check": "print the steps and the commands they run, touch nothing (takes no lock)",
        "force": "also the VIP holder: its keepalived stops gracefully first and VRRP hands the VIP over",
        "break_lock": "take over a deploy lock left by a run that died (a live run's lock is never broken)"}


@task(name="os-upgrade", help=HELP)
@one_line_errors
def os_upgrade(c, node=None, release=None, env=DEFAULT_ENV, check=False, force=False, break_lock=False):
    """Upgrade one node's Debian release: drain, keepalived out, OS swap (apt + reboot; lab: re-image).

    Then `inv deploy --node NODE` puts the toolkit's config back and starts keepalived."""
    from fabfile.infra import runinfo
    from fabfile.ops import upgrade
    from fabfile.tasks.oncall import _drain
    from fabfile.views import upgrade as view
    if not node or not release:
        raise UsageError("name the node and the release: --node NODE --release trixie")
    e, _ = node_env(env, node)
    p, seconds = upgrade.os_upgrade(
        e, node, release, info=lambda: runinfo.current(e.name, e.path), say=output.say,
        drain=lambda lock: _drain(env, node, True, lock=lock), show_plan=lambda p: view.show_plan(p, check),
        force=force, check=check, break_lock=break_lock)
    if seconds is not None:
        view.show_done(p, env, seconds)
