"""`inv os-upgrade` without a lab (issue 16): the release read from /etc/os-release (captured from
the lab's real bookworm and trixie rootfs), the apt command plan production runs (the lab swaps
the OS by re-imaging, so this plan is tested here, its sources rewrite run on copies), and the
refusal rules: one node at a time, the VIP holder last, one release at a time."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fabfile.infra import remote
from fabfile.ops import upgrade
from fabfile.errors import UsageError
from fabfile.infra.facts import NodeState
from fabfile.model.loading import load
from fabfile.parsers import ParseError
from fabfile.parsers.ip_addr import Address, Interface
from fabfile.parsers.os_release import parse_codename, parse_os_release

FX = Path(__file__).resolve().parents[1] / "fixtures" / "os_release"
VIP = "10.189.0.190"
BOOKWORM_PKGS = {"keepalived": "1:2.2.7-1+b2", "ipvsadm": "1:1.31-1+b1", "nginx-light": "1.22.1-9+deb12u9",
                 "nginx-common": "1.22.1-9+deb12u9", "iptables": "1.8.9-2", "iproute2": "6.1.0-3"}


# ---------------------------------------------------------------- /etc/os-release

@pytest.mark.parametrize("release,version", [("bookworm", "12"), ("trixie", "13")])
def test_os_release_of_the_real_rootfs(release, version):
    text = (FX / f"{release}.txt").read_text()
    assert parse_codename(text) == release
    f = parse_os_release(text)
    assert f["VERSION_ID"] == version and f["ID"] == "debian"
    assert f["PRETTY_NAME"] == f"Debian GNU/Linux {version} ({release})"     # quotes gone


@pytest.mark.parametrize("text,why", [("", "no VERSION_CODENAME"),
                                      ('PRETTY_NAME="Debian GNU/Linux trixie/sid"\nID=debian\n', "trixie/sid"),
                                      ("this is not os-release\n", "not KEY=value"),
                                      ('VERSION_CODENAME="bookworm\n', "bad quoting")])
def test_os_release_refuses_what_it_cannot_read(text, why):
    with pytest.raises(ParseError, match=why):
        parse_codename(text)


# ---------------------------------------------------------------- the apt plan (production's path)

def test_apt_plan_is_debians_sequence_without_questions():
    cmds = upgrade.apt_commands("bookworm", "trixie", BOOKWORM_PKGS)
    assert len(cmds) == 5 and cmds[0].startswith("for f in /etc/apt/sources.list ")
    assert cmds[1] == "apt-get update"
    for c in cmds[2:]:       # every change: no question asked, changed config files kept
        assert c.startswith("DEBIAN_FRONTEND=noninteractive apt-get -y ")
        assert "--force-confdef" in c and "--force-confold" in c
    assert cmds[2].endswith(" upgrade --without-new-pkgs") and cmds[3].endswith(" full-upgrade")
    # trixie has no nginx-light: the toolkit's packages by the names trixie has
    assert cmds[4].endswith(" install iptables ipvsadm keepalived nginx")


def test_apt_plan_refuses_what_debian_does_not_support():
    for a, b in (("bookworm", "bookworm"), ("trixie", "bookworm"), ("trixie", "forky")):
        with pytest.raises(UsageError, match="no Debian upgrade path"):
            upgrade.apt_commands(a, b, {})


def test_sources_rewrite_runs_on_copies(tmp_path):
    """The first command, run by sh on a copy of /etc/apt: one-line and deb822 sources, security and
    updates suites, and a word that only contains the name left alone; it fails if any stays."""
    apt = tmp_path / "etc/apt"
    (apt / "sources.list.d").mkdir(parents=True)
    (apt / "sources.list").write_text("deb http://deb.debian.org/debian bookworm main\n"
                                      "deb http://security.debian.org/debian-security bookworm-security main\n")
    (apt / "sources.list.d/debian.sources").write_text(
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n")
    (apt / "sources.list.d/other.list").write_text("deb http://example.invalid/x mybookwormish main\n")
    cmd = upgrade.apt_commands("bookworm", "trixie", {})[0].replace("/etc/apt", str(apt))
    r = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True)
    assert (apt / "sources.list").read_text().split("\n")[:2] == [
        "deb http://deb.debian.org/debian trixie main",
        "deb http://security.debian.org/debian-security trixie-security main"]
    assert "Suites: trixie trixie-updates" in (apt / "sources.list.d/debian.sources").read_text()
    assert "mybookwormish" in (apt / "sources.list.d/other.list").read_text()
    assert r.returncode == 0, r.stderr
    # a source the rewrite does not reach (here: *.list left out) still says bookworm: the step fails
    (apt / "sources.list.d/late.list").write_text("deb http://x.invalid bookworm main\n")
    r2 = subprocess.run(["sh", "-c", cmd.replace(str(apt / "sources.list.d") + "/*.list", "/nonexistent")],
                        capture_output=True, text=True)
    assert r2.returncode != 0


# ---------------------------------------------------------------- refusal rules

def _inv():
    return load("lab-upgrade")[0]


def _state(name, release="bookworm", keepalived="active", vip=False, reachable=True):
    addrs = [Address("inet", "10.189.0.18" + name[-1], 24, "global")] + (
        [Address("inet", VIP, 32, "global")] if vip else [])
    return NodeState(name, reachable=reachable, error="" if reachable else "connect failed", release=release,
                     active={"keepalived": keepalived}, packages=dict(BOOKWORM_PKGS),
                     interfaces=[Interface("eth0", 2, "UP", None, addrs)])


def _obs(**kw):
    obs = {n: _state(n, vip=(n == "u1")) for n in ("u1", "u2", "u3")}
    for n, st in kw.items():
        obs[n] = st
    return obs


def test_a_backup_is_upgraded_drained_first_and_masked():
    d = upgrade.decide(_inv(), "u3", "trixie", _obs())
    assert (d.current, d.target, d.holds, d.drained, d.nothing_to_do) == ("bookworm", "trixie", (), False, False)
    steps = upgrade.plan(d, BOOKWORM_PKGS)
    assert steps[0].what.startswith("drain u3") and steps[1].commands == ("systemctl mask --now keepalived",)
    assert steps[2].commands == tuple(upgrade.apt_commands("bookworm", "trixie", BOOKWORM_PKGS))
    assert [s.commands for s in steps[3:5]] == [("systemctl reboot",), ("systemctl unmask keepalived",)]
    assert "runs trixie" in steps[-1].what


def test_already_drained_is_not_drained_again_and_lab_plan_reimages(monkeypatch):
    from fabfile.lab.hooks import os_swap          # what fabfile.model.extensions.os_swap answers for a lab
    monkeypatch.setenv("LBTK_LAB_DIR", "/var/tmp/lbtk-lab")
    d = upgrade.decide(_inv(), "u3", "trixie", _obs(), drained={"10.189.0.183"})
    steps = upgrade.plan(d, BOOKWORM_PKGS, os_swap(_inv(), "lab-upgrade"))
    assert d.drained and not steps[0].what.startswith("drain")
    swap = steps[1]
    assert swap.what.startswith("lab: re-image u3 onto /var/tmp/lbtk-lab/base-trixie") and swap.commands == ()
    assert "apt-get update" in swap.what and not any("reboot" in c for s in steps for c in s.commands)


def test_the_vip_holder_is_refused_unless_forced():
    with pytest.raises(UsageError, match=r"u1 holds 10.189.0.190: the VIP holder goes last — upgrade u2, u3 first"):
        upgrade.decide(_inv(), "u1", "trixie", _obs())
    obs = _obs(u2=_state("u2", "trixie"), u3=_state("u3", "trixie"))
    with pytest.raises(UsageError, match="--force hands the VIP over first .* u2 takes it"):
        upgrade.decide(_inv(), "u1", "trixie", obs)
    d = upgrade.decide(_inv(), "u1", "trixie", obs, force=True)
    assert d.holds == (VIP,) and d.takes_over == "u2" and not d.notes
    steps = upgrade.plan(d, BOOKWORM_PKGS)
    assert "priority 0" in steps[1].what and steps[2].what.startswith("wait until 10.189.0.190")
    forced_early = upgrade.decide(_inv(), "u1", "trixie", _obs(), force=True)
    assert forced_early.notes and "still runs bookworm" in forced_early.notes[0]


def test_one_node_at_a_time():
    with pytest.raises(UsageError, match=r"one node at a time: keepalived on u3 is inactive .*inv deploy --node u3"):
        upgrade.decide(_inv(), "u2", "trixie", _obs(u3=_state("u3", "trixie", keepalived="inactive")))
    with pytest.raises(UsageError, match="one node at a time: u2 does not answer"):
        upgrade.decide(_inv(), "u3", "trixie", _obs(u2=_state("u2", reachable=False)))
    # the node itself may be down in keepalived (a rerun after a failed attempt)
    assert upgrade.decide(_inv(), "u3", "trixie", _obs(u3=_state("u3", keepalived="inactive"))).target == "trixie"


def test_release_rules():
    assert upgrade.decide(_inv(), "u3", "trixie", _obs(u3=_state("u3", "trixie"))).nothing_to_do
    assert upgrade.plan(upgrade.decide(_inv(), "u3", "trixie", _obs(u3=_state("u3", "trixie"))), {}) == []
    with pytest.raises(UsageError, match="--release forky: the toolkit knows bookworm, trixie"):
        upgrade.decide(_inv(), "u3", "forky", _obs())
    with pytest.raises(UsageError, match="runs Debian trixie: Debian upgrades a node from the release before bookworm"):
        upgrade.decide(_inv(), "u3", "bookworm", _obs(u3=_state("u3", "trixie")))
    with pytest.raises(UsageError, match="--node u9: not a node"):
        upgrade.decide(_inv(), "u9", "trixie", _obs())
    with pytest.raises(UsageError, match="u3 does not answer"):
        upgrade.decide(_inv(), "u3", "trixie", _obs(u3=_state("u3", reachable=False)))


def test_execute_drains_takes_out_swaps_and_reads_the_release_back(monkeypatch):
    """ops.upgrade.execute, the order the task used to run by hand: the caller's drain, keepalived out,
    the OS swap (here an extension's, as the lab's re-image), the release read back."""
    from fabfile.model.extensions import OsSwap
    done = []
    monkeypatch.setattr(upgrade, "take_out", lambda e, group, d, say: done.append("take out"))
    monkeypatch.setattr(upgrade, "release_of", lambda e, node: "trixie")
    swap = OsSwap("test swap", lambda n, r: f"swap {n} to {r}", lambda n, r, say: done.append(f"swap {n} {r}"))
    d = upgrade.decide(_inv(), "u3", "trixie", _obs())
    p = upgrade.Prepared(d, tuple(upgrade.plan(d, BOOKWORM_PKGS, swap)), dict(BOOKWORM_PKGS), swap)
    assert p.steps[2].what.startswith("swap u3 to trixie; production runs instead: ")
    e = type("E", (), {"inv": _inv(), "name": "lab-upgrade"})()
    group = remote.NodeGroup([remote.NodeLink(n.name, Conn()) for n in e.inv.nodes])
    assert upgrade.execute(e, p, say=lambda s: None, drain=lambda lock: done.append("drain"), group=group) >= 0
    assert done == ["drain", "take out", "swap u3 trixie"]
    monkeypatch.setattr(upgrade, "release_of", lambda e, node: "bookworm")
    with pytest.raises(UsageError, match="u3 runs bookworm after the upgrade, not trixie"):
        upgrade.execute(e, p, say=lambda s: None, drain=lambda lock: None, group=group)


class Conn:
    def close(self):
        pass
