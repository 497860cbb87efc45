"""vrrp_firewall on the lab (issue 24): deployed from a temporary copy of the lab inventory, every
node holds the LBTK-VRRP chain admitting only the other nodes, VRRP still settles (verify green, a
graceful failover goes through), and the plain lab deployed again takes the chain away. Also:
check_unicast_src is in every live keepalived.conf."""
from __future__ import annotations

import pytest

from .conftest import inv, inv_json, lab_variant, sh

ENV = "lab-vrrp-firewall-test"


def _firewall_on(data):
    for vi in data["vrrp_instances"]:
        vi["vrrp_firewall"] = True


@pytest.fixture
def firewall_env(deployed):
    with lab_variant(ENV, _firewall_on) as env:
        yield env


def test_vrrp_firewall_admits_the_peers_settles_and_goes_away(firewall_env, nodes):
    from fabfile.model.loading import load
    lab, _ = load("lab")
    inv("deploy", "--env", firewall_env, check=True)
    for n, c in nodes.items():
        chain = sh(c, "iptables -S LBTK-VRRP").stdout
        peers = [m.ip for m in lab.nodes if m.name != n]
        for p in peers:
            assert f"-s {p}/32 -i eth0 -j RETURN" in chain, (n, chain)
        assert "-i eth0 -j DROP" in chain and lab.node(n).ip + "/32" not in chain, (n, chain)
        assert "-A INPUT -p vrrp -j LBTK-VRRP" in sh(c, "iptables -S INPUT").stdout
        assert "check_unicast_src" in sh(c, "cat /etc/keepalived/keepalived.conf").stdout
    rc, report = inv_json("verify", "--env", firewall_env)
    assert rc == 0, report
    rc, drill = inv_json("failover-test", "--env", firewall_env, "--mode", "graceful")
    assert rc == 0, drill

    inv("deploy", "--env", "lab", check=True)
    for n, c in nodes.items():
        assert "LBTK-VRRP" not in sh(c, "iptables -S").stdout, n
