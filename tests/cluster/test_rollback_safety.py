"""Issue 24: `inv rollback` of a change VRRP adverts carry goes to every node at once, as the deploy
did: while a 10 ms probe runs through the VIP and every node's addresses are sampled every 50 ms,
no sample has two VIP holders and no probe fails — for a secret rotation rolled back and for a
virtual_router_id change rolled back. The probe and the sampler are bench/rollback_under_probe.py's
(which does the same on any lab size: `--env lab-30`)."""
from __future__ import annotations

import importlib.util
import sys

from .conftest import ROOT, inv, lab_variant

_spec = importlib.util.spec_from_file_location("rollback_under_probe", ROOT / "bench" / "rollback_under_probe.py")
bench = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bench          # its dataclasses look their module up there
_spec.loader.exec_module(bench)


def assert_clean(m):
    assert m.probes > 100, m
    assert m.failed == 0 and m.most_holders <= 1, m.line()


def test_rotate_then_rollback_never_has_two_vip_holders(deployed):
    m = bench.measured("lab", "rotate secret, then rollback", lambda: (
        inv("rotate-vrrp-secret", "--env", "lab", check=True), inv("rollback", "--env", "lab", check=True)))
    try:
        assert_clean(m)
    finally:   # the secret file back on the secret the nodes run: nothing left to deploy
        inv("rotate-vrrp-secret", "--env", "lab", "--previous", check=True)
    r = inv("deploy", "--env", "lab", "--check", check=True)
    assert "no changes pending" in r.stdout


def test_a_virtual_router_id_change_rolled_back_never_has_two_vip_holders(deployed):
    def bump(d):
        d["vrrp_instances"][0]["virtual_router_id"] += 1
    with lab_variant("lab-vrid", bump) as name:
        m = bench.measured("lab", "virtual_router_id change, then rollback", lambda: (
            inv("keepalived", "--env", name, check=True), inv("rollback", "--env", name, check=True)))
        assert_clean(m)
        r = inv("deploy", "--env", "lab", "--check", check=True)
        assert "no changes pending" in r.stdout
