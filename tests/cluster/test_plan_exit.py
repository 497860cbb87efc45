"""Issue 29's acceptance on the lab: after a weight change, `deploy --check --json
--detailed-exitcode` is the plan as data (keepalived.conf's diff, the reload, no VIP move) and
exits 4 (changes pending); after the deploy, 0 (nothing to do)."""
from __future__ import annotations

import json

from fabfile.errors import EXIT_PENDING

from .conftest import inv, lab_variant

CONF = "/etc/keepalived/keepalived.conf"


def test_a_weight_change_is_pending_then_done(deployed):
    def weigh(d):
        d["virtual_servers"][0]["real_servers"][0]["weight"] += 1
    with lab_variant("lab-weight", weigh) as name:
        r = inv("deploy", "--env", name, "--check", "--json", "--detailed-exitcode")
        assert r.returncode == EXIT_PENDING, r.stderr
        plan = json.loads(r.stdout)
        assert plan["pending"] is True and plan["vip_moves"] == []
        for n in plan["nodes"]:
            assert [f["path"] for f in n["files"]] == [CONF] and "weight" in n["files"][0]["diff"]
            assert [(a["verb"], a["unit"]) for a in n["actions"]] == [("reload", "keepalived")]
        inv("deploy", "--env", name, check=True)
        r = inv("deploy", "--env", name, "--check", "--json", "--detailed-exitcode")
        assert r.returncode == 0 and json.loads(r.stdout)["pending"] is False
