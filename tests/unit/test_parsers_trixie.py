"""The parsers on real Debian 13 (trixie) output: keepalived 2.3.3, systemd 257, iproute2 6.15,
nginx 1.26 (issue 16). Captured by scripts/capture-fixtures/keepalived_t.sh trixie (keepalived -t
in the trixie rootfs) and scripts/capture-fixtures/trixie.sh (every deploy and verify fact, by its
own command, on the deployed lab-trixie) into tests/fixtures/<parser>/trixie/.

What differs from Debian 12 (keepalived 2.2.7, systemd 252), and what these tests hold:
- keepalived -t: same exit codes, same verdicts, same words, except one message (two unicast
  peers on one line: 2.3.3 names the pair as a range "A - B is missing a value");
- the JSON dump: same file (/tmp/keepalived.json), same signal name, same keys;
- systemctl is-enabled of a unit that does not exist: "not-found" on stdout, exit 4 (252: a
  "Failed to get unit file state" line on stderr, exit 1).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from fabfile.parsers import (dpkg, ip_addr, journal, keepalived_json, keepalived_t, sysctl, systemctl, systemctl_show)

from .test_parsers import KT

FX = Path(__file__).resolve().parents[1] / "fixtures"
VIP = "10.189.0.210"


def read(rel: str) -> str:
    return (FX / rel).read_text()


def rc(rel: str) -> int:
    p = FX / rel
    return int(p.read_text()) if p.exists() else 0


# ------------------------------------------------------------------ coverage
KEEPALIVED_JSON = {   # fixture -> (state, vrid 71 auth errors: 0, >0, or None for "not checked")
    "healthy_t1.json": ("MASTER", 0), "healthy_t2.json": ("BACKUP", 0),
    "split_auth_t1.json": ("MASTER", ">0"), "split_auth_t2.json": ("MASTER", ">0"),
    "split_auth_t3.json": ("BACKUP", None), "not_running_t3.txt": (None, None),
}
JOURNALS = ["journal_t1.txt", "journal_split_t2.txt"]
SYSTEMCTL = ["is_active_t1", "is_active_stopped_t3", "is_enabled_keepalived", "is_enabled_nginx",
             "is_enabled_lbtk-vip-lo", "is_enabled_lbtk-fwmark", "is_enabled_disabled_t3",
             "is_enabled_not_found_t3"]


def test_every_trixie_fixture_is_covered():
    claimed = {f"keepalived_t/trixie/{p.stem}.txt" for p in (FX / "keepalived_t/trixie").glob("*.rc")}
    claimed |= {f"keepalived_json/trixie/{n}" for n in [*KEEPALIVED_JSON, *JOURNALS]}
    claimed |= {f"systemctl/trixie/{n}.txt" for n in SYSTEMCTL + SHOW}
    claimed |= {"ip_addr/trixie/master_t1.txt", "ip_addr/trixie/backup_t2.txt",
                "sysctl/trixie/director_t1.txt", "dpkg/trixie/installed_t1.txt"}
    present = {str(p.relative_to(FX)) for p in FX.glob("*/trixie/*") if p.suffix in (".txt", ".json")}
    assert present == claimed


# ------------------------------------------------------------------ keepalived -t (2.3.3)
# what 2.3.3 says differently from 2.2.7 (tests/unit/test_parsers.py KT holds 2.2.7's words)
KT_233 = {"unicast_peer_one_line": ["(VI_1) 10.190.0.3 - 10.190.0.4 is missing a value"]}


def kt(name: str) -> keepalived_t.KeepalivedCheck:
    d = "keepalived_t/trixie"
    return keepalived_t.parse_keepalived_check(read(f"{d}/{name}.stdout"), read(f"{d}/{name}.txt"),
                                               rc(f"{d}/{name}.rc"))


def test_the_same_cases_were_captured_on_both_releases():
    assert {p.stem for p in (FX / "keepalived_t/trixie").glob("*.rc")} == set(KT)
    for p in (FX / "keepalived_t/trixie").glob("*.conf"):        # the very same configs
        assert p.read_text() == read(f"keepalived_t/{p.name}")


@pytest.mark.parametrize("name", sorted(KT))
def test_keepalived_t_233(name):
    code, verdict, words = KT[name]
    r = kt(name)
    assert (r.exit_code, r.verdict) == (code, verdict)     # exit codes and verdicts did not change
    for w in KT_233.get(name, words):
        assert any(w in m for m in r.messages), (w, r.messages)
    assert bool(r.messages) == bool(words)
    assert read(f"keepalived_t/trixie/{name}.stdout") == ""


def test_keepalived_t_233_differs_from_227_in_one_message_only():
    def old(name):
        return keepalived_t.parse_keepalived_check(read(f"keepalived_t/{name}.stdout"),
                                                   read(f"keepalived_t/{name}.txt"), rc(f"keepalived_t/{name}.rc"))
    differ = sorted(n for n in KT if kt(n).messages != old(n).messages)
    assert differ == ["unicast_peer_one_line"]
    assert keepalived_t.split_location(kt("unicast_peer_one_line").messages[0]) == (
        "unicast_peer_one_line.conf", 16, "(VI_1) 10.190.0.3 - 10.190.0.4 is missing a value")


# ------------------------------------------------------------------ the JSON dump (2.3.3)
@pytest.mark.parametrize("name", sorted(KEEPALIVED_JSON))
def test_keepalived_json_233(name):
    text = read(f"keepalived_json/trixie/{name}")
    state, auth = KEEPALIVED_JSON[name]
    views = keepalived_json.parse_keepalived_json(text)
    if state is None:
        assert views is None
        return
    assert [(v.instance, v.state, v.vrid, v.interface) for v in views] == [("VI_1", state, 71, "eth0")]
    if auth == 0:
        assert views[0].auth_errors == 0
    elif auth == ">0":
        assert views[0].auth_errors > 0
    assert keepalived_json.parse_keepalived_json(text[: len(text) // 2]) is None


def test_keepalived_json_233_has_227s_keys():
    new = json.loads(read("keepalived_json/trixie/healthy_t1.json"))[0]
    old = json.loads(read("keepalived_json/healthy_node1.json"))[0]
    assert set(new) == set(old) == {"data", "stats"}
    assert set(new["data"]) == set(old["data"]) and set(new["stats"]) == set(old["stats"])
    assert '"auth_data":"********"' in read("keepalived_json/trixie/healthy_t1.json")   # masked at capture


def test_keepalived_json_233_counters():
    m = keepalived_json.parse_keepalived_json(read("keepalived_json/trixie/healthy_t1.json"))[0]
    b = keepalived_json.parse_keepalived_json(read("keepalived_json/trixie/healthy_t2.json"))[0]
    assert (m.priority, m.base_priority, m.become_master) == (100, 100, 1) and m.advert_sent > 0
    # t2 was master while t1 restarted (the capture restarts t3, t2, t1), then gave it back
    assert (b.state, b.priority, b.become_master, b.release_master) == ("BACKUP", 90, 1, 1) and b.advert_rcvd > 0


@pytest.mark.parametrize("name", JOURNALS)
def test_journal_233(name):
    changes = journal.state_changes(read(f"keepalived_json/trixie/{name}"))
    assert changes and all(c.instance == "VI_1" and c.state in ("MASTER", "BACKUP") for c in changes)
    assert [c.at for c in changes] == sorted(c.at for c in changes)
    if name == "journal_split_t2.txt":
        assert changes[-1].state == "MASTER"        # the wrong secret made t2 a second master


# ------------------------------------------------------------------ ip -j addr (iproute2 6.15)
def test_ip_addr_615():
    master = ip_addr.parse_ip_addr(read("ip_addr/trixie/master_t1.txt"))
    backup = ip_addr.parse_ip_addr(read("ip_addr/trixie/backup_t2.txt"))
    by = {i.name: i for i in master}
    assert by["eth0"].has(VIP) and by["eth0"].has("10.189.0.201") and by["lo"].has(VIP)
    assert by["eth0"].mac == "02:bd:00:00:02:01"
    assert ip_addr.holds(master, VIP) and ip_addr.holds(backup, "10.189.0.202")
    assert not {i.name: i for i in backup}["eth0"].has(VIP) and {i.name: i for i in backup}["lo"].has(VIP)


# ------------------------------------------------------------------ sysctl (procps 4)
def test_sysctl_trixie_director():
    s = sysctl.parse_sysctl(read("sysctl/trixie/director_t1.txt"))
    assert s.errors == [] and s.missing == []
    for k, v in {"net.ipv4.conf.all.arp_ignore": "1", "net.ipv4.conf.all.arp_announce": "2",
                 "net.ipv4.conf.eth0.arp_ignore": "1", "net.ipv4.conf.lo.arp_ignore": "1"}.items():
        assert s.get(k) == v, k
    assert not any(k.startswith("net.ipv4.vs.") for k in s.values)          # no IPVS in this kernel


# ------------------------------------------------------------------ systemctl (systemd 257)
# fabfile.infra.facts.UNITS when these were captured (before the monitoring phase's units)
UNITS = ["keepalived", "nginx", "lbtk-vip-lo", "lbtk-fwmark", "rsyslog"]


def sc(name):
    p = FX / f"systemctl/trixie/{name}.stderr"
    return read(f"systemctl/trixie/{name}.txt"), p.read_text() if p.exists() else ""


def test_systemctl_257_is_active():
    from fabfile.infra import facts
    assert list(facts.UNITS[:5]) == UNITS
    # rsyslog runs only for an inventory with `logging:` (lab-trixie has none)
    assert systemctl.parse_is_active(UNITS, *sc("is_active_t1")) == {
        "keepalived": "active", "nginx": "active", "lbtk-vip-lo": "active", "lbtk-fwmark": "active",
        "rsyslog": "inactive"}
    assert systemctl.parse_is_active(UNITS, *sc("is_active_stopped_t3")) == {
        "keepalived": "inactive", "nginx": "active", "lbtk-vip-lo": "active", "lbtk-fwmark": "inactive",
        "rsyslog": "inactive"}


def test_systemctl_257_is_enabled():
    for u in UNITS[:4]:
        assert systemctl.parse_is_enabled([u], *sc(f"is_enabled_{u}")) == {u: "enabled"}
    assert systemctl.parse_is_enabled(["lbtk-fwmark"], *sc("is_enabled_disabled_t3")) == {"lbtk-fwmark": "disabled"}
    # 257: a unit that does not exist is a word on stdout (exit 4), not a line on stderr (252, exit 1)
    assert rc("systemctl/trixie/is_enabled_not_found_t3.rc") == 4
    assert sc("is_enabled_not_found_t3") == ("not-found\n", "")
    assert systemctl.parse_is_enabled(["lbtk-fwmark"], *sc("is_enabled_not_found_t3")) == {"lbtk-fwmark": "not-found"}


# ------------------------------------------------------------------ dpkg-query
def test_dpkg_trixie_versions():
    from fabfile.infra.facts import NodeState
    pk = dpkg.parse_installed(read("dpkg/trixie/installed_t1.txt"))
    assert pk["keepalived"] == "1:2.3.3-1" and pk["nginx"].startswith("1.26.")
    assert "nginx-light" not in pk and "nginx-core" not in pk          # gone in trixie: 'un' lines
    assert NodeState("t1", packages=pk).nginx_installed


# ------------------------------------------------------------------ deploy's verdict on keepalived -t
@pytest.mark.parametrize("release", ["", "trixie/"])
@pytest.mark.parametrize("name", sorted(KT))
def test_deploy_refuses_every_message_of_either_release(release, name):
    """apply's verdict on the node's own keepalived -t: a warning (exit 5, or exit 0 with a message:
    a missing include) refuses the file as an error does; only a clean answer passes."""
    from fabfile.ops.apply import keepalived_check_refusal
    d = f"keepalived_t/{release}"
    why = keepalived_check_refusal(read(f"{d}{name}.stdout"), read(f"{d}{name}.txt"), rc(f"{d}{name}.rc"))
    if KT[name][1] == "ok":
        assert why is None
    else:
        assert why.startswith(f"keepalived -t rejected the new keepalived.conf ({KT[name][1]}): ") and "\n" not in why


# ------------------------------------------------------------------ systemctl show (257)
SHOW = ["show_fresh", "show_deployed", "show_disabled_no_reload", "show_enabled_no_reload", "show_stopped",
        "show_failed_missing", "show_hand_removed"]


def test_systemctl_257_show_as_252():
    """The units fact reads the same on systemd 257: blocks in the order asked, a missing unit
    LoadState=not-found with exit 0, UnitFileState following enable/disable --no-reload at once."""
    fresh = systemctl_show.parse_show(UNITS, *sc("show_fresh"))
    assert fresh["keepalived"] == ("inactive", "disabled") and fresh["lbtk-vip-lo"] == ("inactive", "not-found")
    assert rc("systemctl/trixie/show_fresh.rc") == 0
    deployed = systemctl_show.parse_show(UNITS, *sc("show_deployed"))
    assert all(deployed[u] == ("active", "enabled") for u in ("keepalived", "nginx", "lbtk-vip-lo"))
    assert systemctl_show.parse_show(UNITS, *sc("show_disabled_no_reload"))["keepalived"] == ("active", "disabled")
    assert systemctl_show.parse_show(UNITS, *sc("show_enabled_no_reload"))["keepalived"] == ("active", "enabled")
    assert systemctl_show.parse_show(UNITS, *sc("show_stopped"))["keepalived"] == ("inactive", "enabled")
    assert systemctl_show.parse_show(["keepalived", "lbtk-fail", "lbtk-nope", "nginx"], *sc("show_failed_missing")) == {
        "keepalived": ("active", "enabled"), "lbtk-fail": ("failed", "static"),
        "lbtk-nope": ("inactive", "not-found"), "nginx": ("active", "enabled")}
