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
        r = inv("deploy", "--env", name, "--check", "--json")       # as the acceptance types it
        assert r.returncode == EXIT_PENDING, r.stderr
        plan = json.loads(r.stdout)
        assert plan["pending"] is True and plan["vip_moves"] == []
        for n in plan["nodes"]:
            assert [f["path"] for f in n["files"]] == [CONF] and "weight" in n["files"][0]["diff"]
            assert [(a["verb"], a["unit"]) for a in n["actions"]] == [("reload", "keepalived")]
        inv("deploy", "--env", name, check=True)
        r = inv("deploy", "--env", name, "--check", "--json", "--detailed-exitcode")
        assert r.returncode == 0 and json.loads(r.stdout)["pending"] is False


def test_diff_drain_and_rollback_as_json(deployed):
    """`--json` on diff, drain/undrain and rollback; `rollback --check` plans without applying."""
    def weigh(d):
        d["virtual_servers"][0]["real_servers"][0]["weight"] += 2
    r = inv("diff", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["drifted"] == 0, r.stderr
    r = inv("drain", "--server", "node3", "--json")
    got = json.loads(r.stdout)
    assert r.returncode == 0 and got["drained"] is True and got["changed"] is True, r.stderr
    assert all(n["status"] in ("changed", "no changes") for n in got["nodes"])
    got = json.loads(inv("undrain", "--server", "node3", "--json", check=True).stdout)
    assert got["drained"] is False and got["changed"] is True
    with lab_variant("lab-weight2", weigh) as name:
        inv("deploy", "--env", name, check=True)
        r = inv("diff", "--json")                      # the lab's inventory against the variant's files
        assert r.returncode == 1 and json.loads(r.stdout)["drifted"] >= 1
        r = inv("rollback", "--env", name, "--check", "--json")
        plan = json.loads(r.stdout)
        assert r.returncode == 0 and plan["check"] is True and plan["pending"] is True, r.stderr
        assert all(CONF in [f["path"] for f in n["files"]] for n in plan["nodes"]) and plan["batches"]
        r = inv("diff", "--json")                      # --check touched nothing
        assert r.returncode == 1
        got = json.loads(inv("rollback", "--env", name, "--json", check=True).stdout)
        assert got["check"] is False and all(n["status"] == "changed" for n in got["nodes"])
    r = inv("diff", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["drifted"] == 0


def test_status_and_check_of_a_glob_are_one_table(deployed):
    """Issue 29's acceptance: `inv status --env 'lab*'` shows the clusters in one table (the labs
    not up are UNREACHABLE rows, exit 1); `check` of the same glob, one keepalived -t table."""
    r = inv("status", "--env", "lab,lab-multi", "--json")
    got = json.loads(r.stdout)
    assert [c["inventory"] for c in got["clusters"]] == ["lab.yaml", "lab-multi.yaml"], r.stderr
    lab = got["clusters"][0]
    assert lab["ok"] is True and lab["vip_holders"] == {"10.189.0.100": ["node1"]}
    r = inv("status", "--env", "lab*")
    assert "lab.yaml" in r.stdout and "lab-trixie" in r.stdout and r.stdout.count(" clusters") == 1
    r = inv("check", "--env", "lab*")
    assert r.returncode == 0 and r.stdout.count("keepalived -t") == 1, r.stderr


def test_verify_and_the_tables_of_two_inventories_are_one_table_each(deployed):
    """verify, addrs over `--env lab,lab-multi`: lab (deployed) green, lab-multi (the same nodes, not
    deployed) failing, in one table each; exit 1."""
    r = inv("verify", "--env", "lab,lab-multi", "--no-http", "--json")
    got = json.loads(r.stdout)
    assert r.returncode == 1 and [c["inventory"] for c in got["clusters"]] == ["lab.yaml", "lab-multi.yaml"]
    assert got["clusters"][0]["ok"] is True and got["clusters"][1]["ok"] is False and got["failed"] == {}
    r = inv("addrs", "--env", "lab,lab-multi")
    assert r.stdout.count("addresses (ip -j addr)") == 1 and "lab/node1" in r.stdout and "lab-multi/node1" in r.stdout
    # history and watch of the same two: one table, one view, a cluster column (issue 29)
    r = inv("history", "--env", "lab,lab-multi", "--json", "--limit", "3")
    got = json.loads(r.stdout)
    assert r.returncode == 0 and 0 < len(got["changes"]) <= 3 and got["failed"] == {}, r.stderr
    assert {c["cluster"] for c in got["changes"]} <= {"lab", "lab-multi"} and "lab" in {c["cluster"] for c in got["changes"]}
    assert [c["id"] for c in got["changes"]] == sorted((c["id"] for c in got["changes"]), reverse=True)
    r = inv("watch", "--env", "lab,lab-multi")                   # no terminal: one snapshot
    assert r.returncode == 0 and "2 clusters (lab, lab-multi)" in r.stdout, r.stderr
    assert r.stdout.count("last transitions") == 1 and "lab-multi" in r.stdout.split("keepalived's view")[1]
