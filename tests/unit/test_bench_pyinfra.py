"""The scale bench's pyinfra side (issue 25) without a lab: the inventory it writes for lab-3, the
files its deploy ships against what the toolkit renders, its checks, its failure line, the sitting's
tables and targets, and `scale.py --dry-run`. With pyinfra installed in bench/.venv-pyinfra
(bench/pyinfra/setup.sh), also: pyinfra reads the inventory and loads deploy.py and verify.py into
their operations, against @local only (nothing runs: -y --dry, no fact is gathered)."""
from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from invoke import Context

import fabfile.lab.hooks  # noqa: F401 (lab-N, fabfile.model.extensions)
from fabfile.core.render import ASSUMED, render_node
from fabfile.model.context import load_env
from fabfile.tasks.core import render

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
PYINFRA = BENCH / ".venv-pyinfra" / "bin" / "pyinfra"
needs_pyinfra = pytest.mark.skipif(not PYINFRA.exists(), reason="bench/.venv-pyinfra absent (bench/pyinfra/setup.sh)")


BENCH_MODULES = ("ansible_side", "cost", "peer", "pyinfra_side", "scale", "wanted")


@pytest.fixture
def bench(monkeypatch):
    """bench/ importable as scale.py sees it (its own directory first), for this test only: its
    modules (top-level names such as `peer`) leave sys.modules after it."""
    monkeypatch.syspath_prepend(str(BENCH / "pyinfra"))
    monkeypatch.syspath_prepend(str(BENCH))
    import peer
    import pyinfra_side
    import scale
    import wanted
    yield peer, pyinfra_side, scale, wanted
    for name in BENCH_MODULES:
        sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """lab-3 rendered with assumed node facts (what `inv render --env lab-3 --out` writes, no node asked)."""
    out = tmp_path_factory.mktemp("render") / "rendered"
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        render(Context(), env="lab-3", out=str(out))
    finally:
        os.chdir(cwd)
    return out


def load_inventory(text: str) -> tuple[list[tuple[str, dict]], dict]:
    scope: dict = {}
    exec(compile(text, "inventory.py", "exec"), scope)
    hosts, data = scope["lbtk"]
    return hosts, data


def test_the_inventory_is_lab_3_with_its_rendered_priorities_and_checked_host_keys(bench, tree):
    peer, pyinfra_side, _, _ = bench
    hosts, data = load_inventory(pyinfra_side.inventory(tree, 3))
    lab = peer.lab_numbers(tree, 3)
    assert [(name, d["ssh_hostname"], d["lbtk_priority"]) for name, d in hosts] == lab.hosts
    assert [a for _, a, _ in lab.hosts] == ["10.189.0.11", "10.189.0.12", "10.189.0.13"]
    assert data == {"ssh_user": "root", "ssh_key": "/var/tmp/lbtk-lab/id_ed25519",
                    "ssh_known_hosts_file": "/var/tmp/lbtk-lab/known_hosts", "ssh_strict_host_key_checking": "yes",
                    "lbtk_vip": lab.vip, "lbtk_interface": lab.interface}
    assert len({d["lbtk_priority"] for _, d in hosts}) == 3


def test_the_ansible_side_reads_the_same_numbers(bench, tree):
    peer = bench[0]
    import ansible_side
    import yaml
    inv = yaml.safe_load(ansible_side.inventory(tree, 3))["all"]
    lab = peer.lab_numbers(tree, 3)
    assert inv["vars"] == {"lbtk_vip": lab.vip, "lbtk_interface": lab.interface}
    assert [(k, v["ansible_host"], v["lbtk_priority"]) for k, v in inv["hosts"].items()] == lab.hosts


def test_an_inventory_with_two_top_priorities_is_refused(bench, tree, tmp_path):
    _, pyinfra_side, _, _ = bench
    import shutil
    copy = tmp_path / "tree"
    shutil.copytree(tree, copy)
    conf = copy / "node2" / "etc/keepalived/keepalived.conf"
    top = re.search(r"priority (\d+)", (copy / "node1" / "etc/keepalived/keepalived.conf").read_text()).group(1)
    conf.write_text(re.sub(r"priority \d+", f"priority {top}", conf.read_text(), count=1))
    with pytest.raises(SystemExit, match="highest VRRP priority .* on node1, node2"):
        pyinfra_side.inventory(copy, 3)


def test_pyinfra_ships_every_file_the_toolkit_renders_with_its_mode_and_removes_what_it_removes(bench, tree):
    _, _, _, wanted = bench
    for node in ("node1", "node2", "node3"):
        written = {"/" + str(p.relative_to(tree / node)): int(oct(stat.S_IMODE(p.stat().st_mode))[2:])
                   for p in (tree / node).rglob("*") if p.is_file()}
        assert written == wanted.SHIPPED
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        e = load_env("lab-3")
        must_not_exist = {f.path for f in render_node(e.inv, "node1", e.secrets, ASSUMED) if f.content is None}
    finally:
        os.chdir(cwd)
    # the rest are the toolkit's own files of other settings: on no node it did not deploy
    assert set(wanted.ABSENT) <= must_not_exist
    assert all("lbtk" in path for path in must_not_exist - set(wanted.ABSENT)), must_not_exist


def test_deploy_puts_every_shipped_file_and_stages_keepalived_conf(bench):
    _, _, _, wanted = bench
    text = (BENCH / "pyinfra" / "deploy.py").read_text()
    for path in wanted.SHIPPED:
        assert (f'put("{path}")' in text) != (path == wanted.KA_CONF), path
    assert "dest=wanted.STAGED_KA_CONF" in text and "keepalived -t -f {wanted.STAGED_KA_CONF}" in text


GOOD_IP = json.dumps([
    {"ifname": "lo", "addr_info": [{"local": "127.0.0.1"}, {"local": "10.189.0.100"}]},
    {"ifname": "eth0", "addr_info": [{"local": "10.189.0.11"}, {"local": "10.189.0.100"}]}])
BACKUP_IP = json.dumps([
    {"ifname": "lo", "addr_info": [{"local": "127.0.0.1"}, {"local": "10.189.0.100"}]},
    {"ifname": "eth0", "addr_info": [{"local": "10.189.0.12"}]}])
IPVS = "TCP  10.189.0.100:80 wrr\n  -> 10.189.0.11:80 Route 1\n  -> 10.189.0.12:80 Route 1\n"


def checks(wanted, **over):
    args = dict(ip_json=GOOD_IP, active=["active"] * 4, sysctl=["1", "2"] * 3, ipvs=IPVS,
                vrrp_json=json.dumps([{"data": {"state": 2}}]), vip="10.189.0.100", interface="eth0",
                real_servers=["10.189.0.11", "10.189.0.12"], master=True)
    args.update(over)
    return wanted.problems(**args)


def test_the_checks_pass_on_a_healthy_master_and_backup(bench):
    _, _, _, wanted = bench
    assert checks(wanted) == []
    assert checks(wanted, ip_json=BACKUP_IP, vrrp_json=json.dumps([{"data": {"state": 1}}]), master=False) == []
    assert checks(wanted, ipvs="NO-IPVS\n", real_servers=["10.189.0.99"]) == []


@pytest.mark.parametrize("over, phrase", [
    ({"active": ["active", "inactive", "active", "active"]}, "not all active: {'lbtk-vip-lo': 'active', "
                                                             "'lbtk-fwmark': 'inactive'"),
    ({"sysctl": ["1", "2", "0", "2", "1", "2"]}, "wrong sysctls: {'net.ipv4.conf.all.arp_ignore': '1'"),
    ({"ip_json": json.dumps([{"ifname": "eth0", "addr_info": [{"local": "10.189.0.100"}]}])}, "is not on lo"),
    ({"real_servers": ["10.189.0.11", "10.189.0.13"]}, "not in the IPVS table: 10.189.0.13"),
    ({"master": False}, "VIP 10.189.0.100 held here but this node is not the highest priority"),
    ({"ip_json": BACKUP_IP}, "not held here but this node is the highest priority"),
    ({"vrrp_json": json.dumps([{"data": {"state": 1}}])}, "holds VIP 10.189.0.100 but keepalived says ['BACKUP']"),
    ({"vrrp_json": "[]"}, "keepalived says []"),
])
def test_each_check_names_what_it_found(bench, over, phrase):
    _, _, _, wanted = bench
    found = checks(wanted, **over)
    assert len(found) == 1 and phrase in found[0], found


def test_the_package_check_fails_on_a_missing_package_and_on_dpkg_querys_own_failure(bench, tmp_path):
    _, _, _, wanted = bench
    fake = tmp_path / "dpkg-query"

    def rc(body: str) -> int:
        fake.write_text("#!/bin/sh\n" + body)
        fake.chmod(0o755)
        return subprocess.run(["sh", "-c", wanted.packages_check()], env={"PATH": f"{tmp_path}:/usr/bin:/bin"}).returncode

    all_in = "".join(f"echo 'ii {p}'\n" for p in wanted.PACKAGES)
    assert rc(all_in) == 0
    assert rc(all_in.replace("ii nginx-light", "un nginx-light")) != 0
    assert rc(all_in + "exit 1\n") != 0


def test_the_vrrp_wait_wants_the_vip_on_the_master_only(bench):
    _, _, _, wanted = bench
    assert wanted.vrrp_settled("10.189.0.100", "eth0", True) == "ip -4 -o addr show dev eth0 | grep -qF ' 10.189.0.100/'"
    assert wanted.vrrp_settled("10.189.0.100", "eth0", False).startswith("! ip -4 -o addr show dev eth0 |")
    assert wanted.top_priority_hosts({"node1": 200, "node2": 199}) == ["node1"]


def test_a_failed_pyinfra_run_is_one_line_naming_the_node(bench):
    _, pyinfra_side, _, _ = bench
    out = ("--> Beginning operation run...\n--> Starting operation: keepalived -t, then keepalived.conf in place\n"
           "    [node2] Configuration file /etc/keepalived/keepalived.conf.lbtk-new: bad line\n"
           "    \x1b[31m[node2] Error: executed 0 commands\x1b[0m\n    [node1] Success\n"
           "--> pyinfra error: No hosts remaining!\n")
    assert pyinfra_side.last_error(out) == ("[node2] Error: executed 0 commands [node2] Configuration file "
                                            "/etc/keepalived/keepalived.conf.lbtk-new: bad line")
    check = "    [node3] Unexpected error in Python callback: AssertionError('node3: 10.189.0.100 is not on lo')\n"
    assert pyinfra_side.last_error(out + check) == check.strip()
    assert pyinfra_side.last_error("") == "no output"


def fake_results(sizes, sides, per_task):
    return {n: {s: {t: [per_task(s, t, n)] * 2 for t in ["first deploy", "no-op deploy", "one change", "verify", "render"]}
                for s in sides} for n in sizes}


def test_the_sitting_compares_three_sides_and_judges_issue_25s_targets(bench):
    _, _, scale, _ = bench
    sizes, sides = [3, 10, 30], ["toolkit", "ansible", "pyinfra"]
    speed = {"toolkit": 1.0, "ansible": 10.0, "pyinfra": 2.0}
    results = fake_results(sizes, sides, lambda s, t, n: speed[s] * (0.5 + n / 30))
    rows = scale.comparison(results, sizes, sides)
    assert rows[0] == ("| task | toolkit 3 / 10 / 30 nodes (median s) | Ansible 3 / 10 / 30 nodes (median s) | "
                       "pyinfra 3 / 10 / 30 nodes (median s) | Ansible / toolkit | pyinfra / toolkit | "
                       "s per added node (toolkit / Ansible / pyinfra) |")
    assert rows[2] == ("| first deploy | 0.60 / 0.83 / 1.50 | 6.00 / 8.33 / 15.00 | 1.20 / 1.67 / 3.00 "
                       "| 10.0x / 10.0x / 10.0x | 2.0x / 2.0x / 2.0x | 0.033 / 0.333 / 0.067 |")
    judged = scale.targets(results, sizes, sides)
    assert all(ok for _, _, ok in judged) and len(judged) == 3 + 2 + 4
    report = scale.target_report(results, sizes, sides, runs=2)
    assert report[-1].startswith("9 of 9 met (all).")

    slow_drain = fake_results(sizes, sides, lambda s, t, n: 5.0 if (s, t) == ("toolkit", "one change") else speed[s])
    missed = [what for what, _, ok in scale.targets(slow_drain, sizes, sides) if not ok]
    assert missed == ["one change (a drain), 3 nodes: <= 2 s", "one change (a drain), 10 nodes: <= 2.5 s",
                      "one change (a drain), 30 nodes: <= 4 s", "one change faster than pyinfra at 3 / 10 / 30 nodes"]
    assert "not a judging sitting" in scale.target_report(slow_drain, sizes, sides, runs=1)[-1]
    assert scale.targets(results, sizes, ["ansible", "pyinfra"]) == []


def test_a_dry_run_prints_the_sitting_and_runs_none_of_it():
    r = subprocess.run([sys.executable, str(BENCH / "scale.py"), "--dry-run", "--sizes", "3", "--runs", "1",
                        "--side", "pyinfra"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any(ln.endswith("bash " + str(BENCH / "pyinfra" / "setup.sh") + ")") for ln in lines)
    assert any(re.search(r"invoke lab\.up --env lab-3\)$", ln) for ln in lines)
    runs = [ln for ln in lines if "/.venv-pyinfra/bin/pyinfra -y --parallel 3 " in ln]
    assert [re.search(r"inventory\.py (\S+\.py)", ln).group(1) for ln in runs] == ["deploy.py"] * 2 + ["verify.py"] + ["deploy.py"] * 2
    assert runs[3].endswith("/drained)") and runs[0].endswith("/rendered)")
    diff = [i for i, ln in enumerate(lines) if ln.endswith("invoke diff --env lab-3)")]
    assert len(diff) == 1 and lines[diff[0] - 1] == runs[0]
    assert lines[-1] == "(dry run: nothing ran, no figures)"


def pyinfra(*args: str, cwd: Path = BENCH / "pyinfra") -> subprocess.CompletedProcess:
    return subprocess.run([str(PYINFRA), *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "NO_COLOR": "1"})


@needs_pyinfra
def test_pyinfra_reads_the_lab_3_inventory(bench, tree, tmp_path):
    _, pyinfra_side, _, _ = bench
    inv = tmp_path / "inventory.py"
    inv.write_text(pyinfra_side.inventory(tree, 3))
    r = pyinfra(str(inv), "debug-inventory", "--json")    # read only: nothing connects
    assert r.returncode == 0, r.stderr
    hosts = {h["name"]: h["data"] for h in json.loads(r.stdout)}
    assert sorted(hosts) == ["node1", "node2", "node3"]
    assert hosts["node2"]["ssh_hostname"] == "10.189.0.12" and hosts["node2"]["ssh_strict_host_key_checking"] == "yes"


def operation_names(output: str) -> list[str]:
    order = output.split("--> Operation order:", 1)[1]
    return [m[1] for m in re.findall(r"\(names=\{(['\"])(.*?)\1\}", order)]


@needs_pyinfra
def test_pyinfra_loads_deploy_and_verify_into_their_operations(bench, tree, tmp_path):
    """The lab-3 inventory's node1, renamed @local: pyinfra's local connector, so nothing leaves this
    machine; -y --dry: the deploy files are loaded and every operation's arguments bound, no fact is
    gathered and nothing runs."""
    _, pyinfra_side, _, wanted = bench
    hosts, data = load_inventory(pyinfra_side.inventory(tree, 3))
    inv = tmp_path / "local.py"
    inv.write_text(f"lbtk = ([('@local', {hosts[0][1]!r})], {data!r})\n")
    r = pyinfra("-y", "--dry", str(inv), "deploy.py", "--data", f"lbtk_rendered={tree}", "--debug-operations")
    assert r.returncode == 0, r.stderr[-2000:]
    puts = [f"Put {p}" for p in wanted.SHIPPED if p != wanted.KA_CONF]
    assert operation_names(r.stdout + r.stderr) == (
        ["Packages present (checked, never installed)", "Directory /etc/lbtk", "Directory /var/www/lbtk"]
        + puts[:4] + ["No Debian default site"] + puts[4:]
        + ["Stage keepalived.conf", "keepalived -t, then keepalived.conf in place", "systemd daemon-reload",
           "Load the sysctls", "Restart lbtk-vip-lo", "Restart lbtk-fwmark", "Check the nginx config", "Reload nginx",
           "Restart keepalived", "Reload keepalived"]
        + [f"{u} enabled at boot and running" for u in wanted.UNITS] + ["Wait for VRRP"])
    assert "'_retries': 80, '_retry_delay': 0.25" in r.stdout + r.stderr
    r = pyinfra("-y", "--dry", str(inv), "verify.py", "--debug-operations")
    assert r.returncode == 0, r.stderr[-2000:]
    assert operation_names(r.stdout + r.stderr) == [
        "Addresses", "Units", "ARP sysctls", "IPVS table (this lab's kernel may have no IPVS)",
        "Keepalived's own view of its VRRP instances", "What the node holds, what keepalived says"]
