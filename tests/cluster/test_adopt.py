"""Issue 27 on the lab: a cluster built by hand the way the seed tutorial builds it, adopted with
`inv import`, then deployed by lbtk without a lost probe or a VIP move.

The nodes are first stripped of everything lbtk put there (its units, sysctl file, site, state),
then a script does what the tutorial does: the three keepalived.conf texts (the tutorial's final
ones with the lab's addresses: router_id LVS_NODEn, state/priority 100/90/80, unicast peers, auth
PASS 123456, the DR virtual_server with its mistakes nat_mask and nb_get_retry kept), the ARP
sysctls in /etc/sysctl.d/99-lvs.conf, the VIP on lo by a unit of its own, `systemctl restart`. The
plain lab's kernel has no IPVS, so /etc/default/keepalived says --vrrp (keepalived exits on a
virtual_server without IPVS): the kernel tier runs the real thing.
"""
from __future__ import annotations

import time

import pytest
import yaml

from fabfile.model.loading import inventory_dir

from .conftest import inv, inv_json, sh

VIP = "10.189.0.100"
HOSTS = {"node1": "10.189.0.11", "node2": "10.189.0.12", "node3": "10.189.0.13"}
PRIO = {"node1": 100, "node2": 90, "node3": 80}
ENV = "adopted-test"

STRIP = ("systemctl stop keepalived; systemctl disable --now lbtk-vip-lo lbtk-fwmark 2>/dev/null; "
         "rm -rf /var/lib/lbtk /run/lbtk /etc/systemd/system/lbtk-* /etc/sysctl.d/60-lbtk* "
         "/etc/nginx/sites-enabled/lbtk.conf /usr/local/sbin/lbtk-* /etc/rsyslog.d/*lbtk* "
         "/etc/logrotate.d/*lbtk* /etc/keepalived/*; ip addr flush dev lo scope global; "
         "systemctl daemon-reload; true")


def tutorial_conf(node: str, hosts: dict = HOSTS, vip: str = VIP, real_servers: list[str] | None = None) -> str:
    """The tutorial's keepalived.conf for one director of `hosts`; its real servers are the directors
    themselves unless `real_servers` names others."""
    me = hosts[node]
    peers = "\n".join(f"        {a}" for n, a in hosts.items() if n != node)
    rss = "".join(f"""    real_server {a} 80 {{
        weight 1
        TCP_CHECK {{
            connect_timeout 5
            nb_get_retry 3
            delay_before_retry 3
        }}
    }}
""" for a in (real_servers or list(hosts.values())))
    return f"""! Configuration File for keepalived (built by hand, as the tutorial does)
global_defs {{
   router_id LVS_{node.upper()}
}}

vrrp_instance VI_1 {{
    state {"MASTER" if node == "node1" else "BACKUP"}
    interface eth0
    virtual_router_id 51
    priority {PRIO[node]}
    advert_int 1
    unicast_src_ip {me}
    unicast_peer {{
{peers}
    }}
    authentication {{
        auth_type PASS
        auth_pass 123456
    }}
    virtual_ipaddress {{
        {vip}
    }}
}}

virtual_server {vip} 80 {{
    delay_loop 5
    lb_algo rr
    lb_kind DR
    nat_mask 255.255.255.0
    persistence_timeout 60
    protocol TCP
{rss}}}
"""


def hand_build(c, node: str, hosts: dict = HOSTS, vip: str = VIP, vrrp_only: bool = True,
               real_servers: list[str] | None = None) -> None:
    """What the tutorial's operator does on one node. vrrp_only: this lab's kernel has no IPVS, and
    keepalived exits on a virtual_server without it (the kernel tier has IPVS: no --vrrp there).
    A node not in `hosts` is a real server only: the ARP sysctls, the VIP on lo and nginx, no keepalived."""
    unit = f"""[Unit]
Description=VIP on lo for LVS-DR
After=network.target
[Service]
Type=oneshot
ExecStart=/usr/sbin/ip addr add {vip}/32 dev lo
RemainAfterExit=yes
[Install]
WantedBy=multi-user.target
"""
    director = node in hosts
    keepalived = f"""cat > /etc/keepalived/keepalived.conf <<'EOF'
{tutorial_conf(node, hosts, vip, real_servers)}EOF
echo 'DAEMON_ARGS="{"--vrrp" if vrrp_only else ""}"' > /etc/default/keepalived
""" if director else ""
    script = f"""set -e
{keepalived}cat > /etc/sysctl.d/99-lvs.conf <<'EOF'
net.ipv4.conf.all.arp_ignore = 1
net.ipv4.conf.all.arp_announce = 2
net.ipv4.conf.lo.arp_ignore = 1
net.ipv4.conf.lo.arp_announce = 2
EOF
sysctl -p /etc/sysctl.d/99-lvs.conf >/dev/null   # (sysctl --system: a container refuses kernel.* keys)
cat > /etc/systemd/system/lvs-vip.service <<'EOF'
{unit}EOF
echo '{node}' > /var/www/html/index.nginx-debian.html
ln -sf /etc/nginx/sites-available/default /etc/nginx/sites-enabled/default
systemctl daemon-reload
systemctl enable --now lvs-vip
systemctl restart nginx{" keepalived" if director else ""}
"""
    r = sh(c, script)
    assert r.exited == 0, (node, r.stdout, r.stderr)


@pytest.fixture
def hand_built(deployed, nodes):
    for c in nodes.values():
        sh(c, STRIP)
    for name, c in nodes.items():
        hand_build(c, name)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and f"{VIP}/" not in sh(nodes["node1"], "ip -o addr show dev eth0").stdout:
        time.sleep(0.3)
    yield
    (inventory_dir() / f"{ENV}.yaml").unlink(missing_ok=True)
    (inventory_dir() / "secrets" / f"{ENV}.auth_pass").unlink(missing_ok=True)
    for c in nodes.values():      # the lab's own state back: its secret record went with the adoption
        sh(c, "systemctl disable --now lvs-vip; rm -f /etc/systemd/system/lvs-vip.service "
              "/etc/sysctl.d/99-lvs.conf; " + STRIP)
    inv("deploy", "--env", "lab", check=True)


def _import():
    return inv("import", "--env", ENV, "--hosts", ",".join(HOSTS.values()), "--user", "root",
               "--key-filename", "/var/tmp/lbtk-lab/id_ed25519", "--known-hosts", "/var/tmp/lbtk-lab/known_hosts")


def test_a_hand_built_cluster_is_adopted_and_deployed_without_a_lost_probe(hand_built, nodes):
    from fabfile.ops.drill import Probe
    r = _import()
    assert r.returncode == 0, r.stderr
    assert "123456" not in r.stdout + r.stderr
    path = inventory_dir() / f"{ENV}.yaml"
    text = path.read_text()
    assert "123456" not in text and oct((inventory_dir() / "secrets" / f"{ENV}.auth_pass").stat().st_mode)[-3:] == "600"
    data = yaml.safe_load(text)
    assert [n["name"] for n in data["nodes"]] == ["LVS_NODE1", "LVS_NODE2", "LVS_NODE3"]
    assert [n["priority"] for n in data["nodes"]] == [100, 90, 80]
    assert data["vrrp_instances"][0]["virtual_router_id"] == 51
    assert "nat_mask" in r.stdout and "director_fix" in r.stdout          # the notes say what changes
    assert r.stdout.count("keepalived.conf keeps its meaning") == 3, r.stdout

    # the plain lab's kernel has no IPVS: a production deploy refuses that (no_ipvs_error); the lab's
    # own section is what tells lbtk to run VRRP-only there (the kernel tier has no such excuse)
    path.write_text(text + "lab: {bridge: lbtk-br0, gateway: 10.189.0.1/24}\n")
    check = inv("deploy", "--env", ENV, "--check")
    assert check.returncode == 0, check.stderr

    probe = Probe(VIP, 80, 0.010, list(HOSTS)).start()
    try:
        time.sleep(0.3)
        deployed = inv("deploy", "--env", ENV)
        time.sleep(0.5)
    finally:
        probe.finish()
    assert deployed.returncode == 0, deployed.stderr
    failed = [x for x in probe.results if not x[1]]
    assert len(probe.results) > 100 and failed == [], failed[:5]
    assert {x[2] for x in probe.results} <= {"node1", "?"}        # the VIP never left node1
    assert "restart keepalived" not in deployed.stdout
    rc, report = inv_json("verify", "--env", ENV)
    assert rc == 0, report


def test_import_refuses_what_lbtk_cannot_express_and_touches_nothing(hand_built, nodes):
    sh(nodes["node2"], "sed -i 's/    advert_int 1/    advert_int 1\\n    promote_secondaries/' "
                       "/etc/keepalived/keepalived.conf")
    r = _import()
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert any("10.189.0.12:/etc/keepalived/keepalived.conf:" in ln and "promote_secondaries" in ln for ln in lines)
    assert not (inventory_dir() / f"{ENV}.yaml").exists()
    partial = inv("import", "--env", ENV, "--partial", "--hosts", ",".join(HOSTS.values()), "--user", "root",
                  "--key-filename", "/var/tmp/lbtk-lab/id_ed25519", "--known-hosts", "/var/tmp/lbtk-lab/known_hosts")
    assert partial.returncode == 0, partial.stderr
    assert "left out:" in partial.stdout and "promote_secondaries" in partial.stdout
