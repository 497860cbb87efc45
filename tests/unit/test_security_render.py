"""Issue 24, rendering: VRRP on the wire (check_unicast_src, vrrp_firewall), every value in a shell
script quoted, every value in a unit or rules file one plain word, templates in Jinja2's sandbox."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fabfile.core.render import ASSUMED, Templates, UnsafeValue, render_all, shquote, unit_word
from fabfile.core.render import fwmark
from fabfile.core.render.keepalived import CONF
from fabfile.model.loading import InventoryError, load, parse
from fabfile.model.secrets import resolve_all

ROOT = Path(__file__).resolve().parents[2]
GOOD = sorted((ROOT / "tests/inventories/good").glob("*.yaml"))
FIREWALL = ROOT / "tests/inventories/good/vrrp_firewall.yaml"
HOSTILE = ["$(touch PWNED)", "`touch PWNED`", "a;touch PWNED", "a'b", 'a"b', "a b", "a\nb"]


@pytest.fixture(autouse=True)
def _secret(monkeypatch):
    monkeypatch.setenv("TEST_VRRP_PASS", "s3cret")


def rendered(path):
    inv, _ = load(str(path))
    return inv, render_all(inv, resolve_all(inv, str(path)), ASSUMED)


def blocks(conf: str) -> list[str]:
    return ["vrrp_instance " + b.split("\n}\n")[0] for b in conf.split("\nvrrp_instance ")[1:]]


# ---------------------------------------------------------------- check_unicast_src

@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_every_unicast_instance_checks_the_advert_source(path):
    inv, per_node = rendered(path)
    for node, files in per_node.items():
        conf = next(f.content for f in files if f.path == CONF)
        for b in blocks(conf):
            assert ("check_unicast_src" in b) == ("unicast_peer" in b), (node, b)
        assert ("check_unicast_src" in conf) == any(vi.unicast for vi in inv.vrrp_instances)


# ---------------------------------------------------------------- vrrp_firewall

def test_vrrp_firewall_admits_only_the_peers_on_the_instances_interface():
    inv, per_node = rendered(FIREWALL)
    files = {f.path: f.content for f in per_node["node3"]}
    v4, v6 = files[fwmark.RULES], files[fwmark.RULES6]
    assert "-A LBTK-VRRP -i eth1 -s 10.189.0.241/32 -j RETURN\n-A LBTK-VRRP -i eth1 -s 10.189.0.242/32 -j RETURN\n" \
           "-A LBTK-VRRP -i eth1 -j DROP\n-I INPUT 1 -p 112 -j LBTK-VRRP\n" in v4
    assert "10.189.0.243" not in v4 and "-s fd00:189::241/128 -j RETURN" in v6
    assert "-t filter -X LBTK-VRRP" in files[fwmark.UNIT]
    node1 = {f.path: f.content for f in per_node["node1"]}
    assert "-i eth0 -s 10.189.0.243/32 -j RETURN" in node1[fwmark.RULES]


def test_vrrp_firewall_off_renders_no_filter_rules():
    for path in GOOD:
        if path != FIREWALL:
            _, per_node = rendered(path)
            assert not any(f.content and "*filter" in f.content for fs in per_node.values() for f in fs), path


def test_vrrp_firewall_needs_unicast():
    data = __import__("yaml").safe_load(FIREWALL.read_text())
    data["vrrp_instances"][0]["unicast"] = False
    with pytest.raises(InventoryError, match=r"vrrp_instances\[0\]\.vrrp_firewall: .* — set unicast: true"):
        parse(data, "x.yaml")


def _unit_lines(unit: str, key: str) -> list[list[str]]:
    return [ln.split("=", 1)[1].lstrip("-").split() for ln in unit.splitlines() if ln.startswith(key + "=")]


def _run(lines):
    for argv in lines:
        subprocess.run(argv, capture_output=True)      # systemd's `-`: a failure is ignored


needs_netns = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare")
                                 or not shutil.which("iptables-restore"), reason="needs root, unshare, iptables")


@needs_netns
def test_vrrp_firewall_unit_starts_restarts_and_stops_clean_in_a_throwaway_netns(tmp_path):
    """The unit's own lines, as systemd runs them, in a network namespace of their own: start,
    restart twice (no second jump), then a restart by a unit without vrrp_firewall (no stale
    chain), then stop."""
    _, per_node = rendered(FIREWALL)
    files = {f.path: f.content for f in per_node["node3"]}
    off = {f.path: f.content for f in rendered(ROOT / "tests/inventories/good/dual_stack.yaml")[1]["node1"]}
    for path in (fwmark.RULES, fwmark.RULES6):
        (tmp_path / Path(path).name).write_text(files[path])
    script = tmp_path / "lifecycle.py"
    script.write_text(f"""
import subprocess, sys
sys.path.insert(0, {str(ROOT)!r})
from tests.unit.test_security_render import _unit_lines, _run
on, off = {files[fwmark.UNIT]!r}.replace("/etc/lbtk", {str(tmp_path)!r}), {off[fwmark.UNIT]!r}
def rules():
    return subprocess.run(["sh", "-c", "iptables -S; ip6tables -S"], capture_output=True, text=True).stdout
start = lambda u: _run(_unit_lines(u, "ExecStartPre") + _unit_lines(u, "ExecStart"))
start(on); first = rules()
_run(_unit_lines(on, "ExecStop")); start(on); start(on)
print(first == rules() and rules().count("-j LBTK-VRRP") == 2 and "-i eth1 -j DROP" in first)
start(off.replace("ExecStart=", "#"))
print("LBTK-VRRP" not in rules())
start(on); _run(_unit_lines(on, "ExecStop"))
print("LBTK-VRRP" not in rules())
""")
    r = subprocess.run(["unshare", "--net", os.sys.executable, str(script)], capture_output=True, text=True,
                       timeout=60)
    assert r.stdout.split() == ["True", "True", "True"], r.stdout + r.stderr


# ---------------------------------------------------------------- values in shell scripts and units

def test_shquote_makes_every_value_one_inert_word():
    for v in HOSTILE:
        out = subprocess.run(["sh", "-c", f"printf %s {shquote(v)}"], capture_output=True, text=True,
                             cwd="/tmp").stdout
        assert out == v


def test_the_sync_script_quotes_its_interface_and_runs_nothing_from_it(tmp_path):
    """The ipvs-sync script rendered with hostile values (as if the model let them through): its
    `ip ... dev IFACE` gets the name as one argument and no command inside it runs."""
    t = Templates(None)
    script = t("ipvs-sync.sh.j2", instance="VI_1", vip="10.0.0.1", vrrp_interface=HOSTILE[0],
               interface=HOSTILE[1], syncid="1")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "ip").write_text('#!/bin/sh\nfor a in "$@"; do printf "<%s>" "$a"; done > "$ARGS"\n')
    (fake / "ip").chmod(0o755)
    body = script.replace("/run/", f"{tmp_path}/").replace("/usr/sbin/ipvsadm", "true")
    (tmp_path / "s.sh").write_text(body)
    r = subprocess.run(["sh", str(tmp_path / "s.sh")], cwd=tmp_path, capture_output=True, text=True, timeout=20,
                       env={"PATH": f"{fake}:/usr/bin:/bin", "ARGS": str(tmp_path / "args")})
    assert not (tmp_path / "PWNED").exists(), r.stderr
    assert (tmp_path / "args").read_text() == "<-4><-o><addr><show><dev><$(touch PWNED)>"


@pytest.mark.parametrize("template,values", [
    ("vip-lo.service.j2", dict(vips=["10.0.0.1\nExecStart=/bin/sh -c id"])),
    ("fwmark.service.j2", dict(rules="/x $(id)", marks=[], snats=[], vrrp=[], vrrp_tools=[])),
    ("fwmark.rules.j2", dict(peer_macs=[], marks=[], snats=[], tool="iptables", plen=32,
                             vrrp=[dict(interface="eth0 -j ACCEPT", peers=["10.0.0.2"])])),
    ("default_keepalived.j2", dict(ipvs=True, args=['x" ; id ; "'], logging=None, rule="")),
])
def test_a_unit_or_rules_file_refuses_a_value_that_is_more_than_a_word(template, values):
    with pytest.raises(InventoryError, match=r"is not one plain word .* — fix the inventory value"):
        Templates(None, "inv.yaml")(template, **values)


def test_unit_word_keeps_what_the_model_renders():
    for v in ("10.189.0.100", "fd00:189::250", "/etc/lbtk/fwmark.rules", "--log-facility=local0", "eth0.100", 443):
        assert unit_word(v) == str(v)
    with pytest.raises(UnsafeValue):
        unit_word("")


@pytest.mark.parametrize("name", HOSTILE + ["eth0$", "a|b", "a&b", "a*"])
def test_the_model_refuses_an_interface_name_a_shell_would_act_on(name):
    data = __import__("yaml").safe_load(FIREWALL.read_text())
    data["defaults"]["interface"] = name
    with pytest.raises(InventoryError, match=r"defaults\.interface: .* is not a valid interface name"):
        parse(data, "x.yaml")


# ---------------------------------------------------------------- the sandbox

def test_a_template_cannot_reach_python_internals():
    """(tests/inventories/broken/template_sandbox_escape.yaml runs the same through `inv check`.)"""
    t = Templates(None, "inv.yaml")
    for text in ("{{ cycler.__init__.__globals__.os.getpid() }}", "{{ ''.__class__.__mro__ }}",
                 "{% set _ = x.append(1) %}"):
        with pytest.raises(Exception) as e:
            t.env.from_string(text).render(x=[])
        assert type(e.value).__name__ == "SecurityError", text
