"""The kernel tier (real IPVS): a MISC_CHECK whose command fails takes its real server out of the
pool, and back when it passes again (inventories/kernel-misc.yaml: node3's real server has a
TCP_CHECK and a MISC_CHECK, `test -e /run/lbtk-misc-ok`, which each director runs locally).
"""
from __future__ import annotations

import pytest

from fabfile.model.loading import load

from .conftest import TIMINGS, sh
from .test_kernel import _in_pool, _master, _wait_pool

pytestmark = pytest.mark.kernel
ENV_MISC = "kernel-misc"
FLAG = "/run/lbtk-misc-ok"       # the MISC_CHECK passes while it exists on the director
VICTIM = "node3"


def _flag(nodes, present: bool) -> None:
    for c in nodes.values():       # every director runs the check: each reads its own file
        r = sh(c, f"touch {FLAG}" if present else f"rm -f {FLAG}")
        assert r.exited == 0, r.stderr


def test_failing_misc_check_takes_its_real_server_out_and_back(deployed, nodes):
    inv, _ = load(ENV_MISC)
    vs = inv.virtual_servers[0]
    (misc,) = vs.real_servers[2].MISC_CHECK
    addr = inv.node(VICTIM).host
    others = [inv.node(n).host for n in ("node1", "node2")]
    # a MISC_CHECK retries 0 times: out after one failing run (delay_loop, the run's timeout)
    bound = vs.delay_loop + misc.misc_timeout
    slack = 2.0                                   # TCG: the VM's clock runs under emulation
    _flag(nodes, True)
    try:
        deployed.ensure(ENV_MISC)
        master = _master(nodes)
        assert _wait_pool(nodes[master], addr, True, bound + slack + 10) is not None, "node3 never in the pool"
        _flag(nodes, False)
        gone = _wait_pool(nodes[master], addr, False, bound + slack + 10)
        TIMINGS["  MISC_CHECK: real server removed after (s)"] = gone if gone is not None else -1
        assert gone is not None and gone <= bound + slack, (gone, bound)
        assert all(_in_pool(nodes[master], a) for a in others), "a real server without the MISC_CHECK left too"
        _flag(nodes, True)
        back = _wait_pool(nodes[master], addr, True, bound + slack + 10)
        TIMINGS["  MISC_CHECK: real server back after (s)"] = back if back is not None else -1
        assert back is not None and back <= bound + slack, (back, bound)
    finally:
        _flag(nodes, True)
        deployed.ensure()                         # the kernel's own inventory again
