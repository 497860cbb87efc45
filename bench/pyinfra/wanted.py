"""What the pyinfra side's deploy.py ships and verify.py checks, as plain data and pure functions:
the same as bench/ansible/deploy.yml and verify.yml (and the toolkit's deploy and `verify --no-http`).

No pyinfra import here, so the toolkit's own Python reads it too (tests/unit/test_bench_pyinfra.py
checks SHIPPED and ABSENT against what `inv render` writes for lab-3, and the checks below).
"""
from __future__ import annotations

import json
import shlex

KA_CONF = "/etc/keepalived/keepalived.conf"
# keepalived.conf is checked by the node's keepalived before it replaces the live file: staged
# beside it (the same filesystem, so the move is an atomic rename), where `inv deploy` stages it
STAGED_KA_CONF = KA_CONF + ".lbtk-new"

# every file `inv render --out` writes for a node, with the mode `inv deploy` leaves (owner root:root)
SHIPPED = {
    "/etc/sysctl.d/60-lbtk-lvs.conf": 644,
    "/etc/systemd/system/lbtk-vip-lo.service": 644,
    "/etc/nginx/sites-enabled/lbtk.conf": 644,
    "/var/www/lbtk/index.html": 644,
    "/etc/default/keepalived": 644,
    "/etc/lbtk/fwmark.rules": 644,
    "/etc/systemd/system/lbtk-fwmark.service": 644,
    KA_CONF: 600,
}
# what the toolkit's render says must not exist and a fresh Debian node has: the default site (it also
# claims default_server on :80); the render's other must-not-exist files are lbtk's own of other
# settings (fwmark6.rules, lbtk-ipvs-sync, ...), never on a node no toolkit deployed (as deploy.yml)
ABSENT = ["/etc/nginx/sites-enabled/default"]
DIRECTORIES = ["/etc/lbtk", "/var/www/lbtk"]
# phase install, as the lab's inventory has it (install.method detect): checked, never installed
PACKAGES = ["keepalived", "ipvsadm", "iptables", "nginx-light"]
# enabled at boot and running after a deploy, active at verify
UNITS = ["lbtk-vip-lo", "lbtk-fwmark", "nginx", "keepalived"]
VRRP_STATES = {0: "INIT", 1: "BACKUP", 2: "MASTER", 3: "FAULT"}

# keepalived writes /tmp/keepalived.json on the signal `keepalived --signum=JSON` names; wait (at most
# about 1 s) for a new, complete dump rather than read the previous one (verify.yml's script)
KEEPALIVED_JSON = """\
p=$(cat /run/keepalived.pid 2>/dev/null) && kill -0 "$p" 2>/dev/null || { echo '[]'; exit 0; }
# a keepalived younger than 2 s may not handle the signal yet: its default action would end it
[ "$(ps -o etimes= -p "$p" | tr -d " ")" -ge 2 ] 2>/dev/null || sleep 2
s=$(keepalived --signum=JSON) || { echo '[]'; exit 0; }
b=$(stat -c %y /tmp/keepalived.json 2>/dev/null)
kill -"$s" "$p"
for i in $(seq 100); do
  a=$(stat -c %y /tmp/keepalived.json 2>/dev/null)
  [ -n "$a" ] && [ "$a" != "$b" ] && [ "$(tail -c 2 /tmp/keepalived.json)" = ']' ] && break
  sleep 0.01
done
cat /tmp/keepalived.json"""

IPVS_TABLE = "if [ -e /proc/net/ip_vs ]; then ipvsadm -L -n; else echo NO-IPVS; fi"


def packages_check() -> str:
    """A command that fails unless every package is installed (dpkg's `ii`); dash has no pipefail,
    so dpkg-query's own failure (an unknown package) is kept apart from the grep."""
    names = " ".join(PACKAGES)
    return (f"s=$(dpkg-query -W -f='${{db:Status-Abbrev}}${{Package}}\\n' {names}) && "
            "! printf '%s\\n' \"$s\" | grep -qv '^ii '")


def vrrp_settled(vip: str, interface: str, master: bool) -> str:
    """A command that succeeds once VRRP has settled as seen from this node: the VIP on its interface
    when it is the highest priority node, not there otherwise (retried, as deploy.yml's until)."""
    has_vip = f"ip -4 -o addr show dev {shlex.quote(interface)} | grep -qF {shlex.quote(f' {vip}/')}"
    return has_vip if master else f"! {has_vip}"


def sysctls(interface: str) -> list[tuple[str, str]]:
    """The values 60-lbtk-lvs.conf sets on a DR real server (fabfile/core/render/arp.py)."""
    return [(f"net.ipv4.conf.{dev}.{key}", value)
            for dev in ("all", interface, "lo") for key, value in (("arp_ignore", "1"), ("arp_announce", "2"))]


def top_priority_hosts(priorities: dict[str, int]) -> list[str]:
    """The hosts VRRP elects: the highest priority (one, in a lab the toolkit rendered)."""
    top = max(priorities.values())
    return sorted(name for name, prio in priorities.items() if prio == top)


def addresses(ip_json: str, on_lo: bool) -> set[str]:
    """The addresses `ip -j addr` lists on lo (on_lo) or on every other interface."""
    return {a.get("local") for link in json.loads(ip_json or "[]") if (link.get("ifname") == "lo") == on_lo
            for a in link.get("addr_info", [])}


def problems(*, ip_json: str, active: list[str], sysctl: list[str], ipvs: str, vrrp_json: str,
             vip: str, interface: str, real_servers: list[str], master: bool) -> list[str]:
    """verify.yml's assertions for one node, each failure as one phrase (empty: all passed). The
    playbook's cross-host one (the VIP on exactly one node, the highest priority one, where keepalived
    says MASTER) is per node here: the elected node holds the VIP and keepalived says MASTER there,
    no other node holds it (with one top priority, which the inventory guarantees, the same check)."""
    out = []
    if active != ["active"] * len(UNITS):
        out.append(f"not all active: {dict(zip(UNITS, active))}")
    wanted = sysctls(interface)
    if sysctl != [value for _, value in wanted]:
        out.append(f"wrong sysctls: {dict(zip([name for name, _ in wanted], sysctl))}")
    if vip not in addresses(ip_json, on_lo=True):
        out.append(f"{vip} is not on lo")
    if ipvs.strip() != "NO-IPVS":
        missing = [a for a in real_servers if f"{a}:" not in ipvs]
        if missing:
            out.append(f"not in the IPVS table: {', '.join(missing)}")
    holds = vip in addresses(ip_json, on_lo=False)
    states = [VRRP_STATES.get(i.get("data", {}).get("state"), "?") for i in json.loads(vrrp_json or "[]")]
    if holds != master:
        out.append(f"VIP {vip} {'held here' if holds else 'not held here'} but this node "
                   f"{'is' if master else 'is not'} the highest priority; keepalived says {states}")
    elif holds and (not states or set(states) != {"MASTER"}):
        out.append(f"holds VIP {vip} but keepalived says {states}")
    return out
