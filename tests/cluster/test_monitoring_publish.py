"""lbtk's metrics published on the lab (inventory monitoring.publish): deployed from a temporary copy
of the lab inventory, node_exporter answers on each node's loopback with lbtk's metrics (the
publisher's lbtk.prom through its textfile collector) and its ipvs collector on; a real VRRP
transition refreshes the published state through keepalived's vrrp_notify_fifo before the timer's
next run; the plain lab deployed again takes the publisher, its units and lbtk.prom away.

Needs prometheus-node-exporter in the lab's rootfs (or install.method apt with a reachable mirror)."""
from __future__ import annotations

import time

import pytest

from .conftest import inv, inv_json, lab_variant, sh

ENV = "lab-monitoring-test"
PROM = "/var/lib/prometheus/node-exporter/lbtk.prom"
TIMER = "lbtk-publish-metrics.timer"
SCRAPE = "curl -fsS http://127.0.0.1:9100/metrics"


@pytest.fixture
def monitoring_env(deployed, nodes):
    if sh(nodes["node1"], "dpkg-query -W -f='${db:Status-Abbrev}' prometheus-node-exporter 2>/dev/null").stdout[:2] != "ii":
        pytest.skip("prometheus-node-exporter is not in the lab's rootfs")
    with lab_variant(ENV, lambda d: d.update(monitoring={**d.get("monitoring", {}), "publish": True,
                                                         "listen_address": "127.0.0.1:9100",
                                                         "publish_interval": 60})) as env:
        yield env


def metric(c, name: str, instance: str = "VI_1") -> float:
    """The value node_exporter serves for lbtk's `name` of the instance (read from the node itself)."""
    lines = [ln for ln in sh(c, f"{SCRAPE} | grep '^{name}{{'").stdout.splitlines()
             if f'vrrp_instance="{instance}"' in ln]
    assert len(lines) == 1, lines
    return float(lines[0].rsplit(" ", 1)[1])


def test_node_exporter_serves_lbtk_metrics_and_the_plain_lab_takes_them_away(monitoring_env, nodes):
    was = sh(nodes["node1"], "systemctl is-active prometheus-node-exporter; true").stdout.strip()
    r = inv("deploy", "--env", monitoring_env, check=True)
    if was != "active":     # a lab fresh from its rootfs: node_exporter is not started at boot
        assert "start prometheus-node-exporter" in r.stdout, r.stdout
    for n, c in nodes.items():
        assert sh(c, f"systemctl is-active {TIMER}; systemctl is-enabled {TIMER}").stdout.split() == ["active", "enabled"]
        page = sh(c, SCRAPE).stdout
        info = [ln for ln in page.splitlines() if ln.startswith("lbtk_node_info{")]
        assert len(info) == 1 and 'cluster="lab"' in info[0] and f'node="{n}"' in info[0], (n, info)
        assert "lbtk_vrrp_wanted_priority{" in page and "lbtk_service_up{" in page
        assert "node_textfile_scrape_error 0" in page
        assert "node_scrape_collector_success{collector=\"ipvs\"}" in page
    # what inv metrics prints names the same metrics the nodes publish
    printed = inv("metrics", "--env", monitoring_env, "--format", "prometheus", check=True).stdout
    published = sh(nodes["node1"], f"grep -v '^#' {PROM}").stdout
    assert {ln.split("{")[0] for ln in published.splitlines()} <= {ln.split("{")[0] for ln in printed.splitlines()}

    # a real transition (the timer runs every 60 s, the drill takes less): node2 becomes MASTER and
    # releases it again, and its published counters say so through keepalived's FIFO alone
    before = metric(nodes["node2"], "lbtk_vrrp_transitions_total")
    rc, drill = inv_json("failover-test", "--env", monitoring_env, "--mode", "graceful")
    assert rc == 0 and drill["to"] == "node2", drill
    deadline = time.monotonic() + 10
    while metric(nodes["node2"], "lbtk_vrrp_transitions_total") < before + 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert metric(nodes["node2"], "lbtk_vrrp_transitions_total") >= before + 2
    assert metric(nodes["node1"], "lbtk_vrrp_state") == 2         # preempted back

    # the plain lab again: the publisher, its units and lbtk.prom gone
    r = inv("deploy", "--env", "lab", check=True)
    for n, c in nodes.items():
        assert sh(c, f"test -e {PROM} || test -e /usr/local/lib/lbtk/publish-metrics || echo gone").stdout.strip() == "gone"
        assert sh(c, f"test -e /etc/systemd/system/{TIMER} || systemctl is-active {TIMER}; true").stdout.strip() \
            == "inactive", n      # the unit file gone, and the timer stopped before it went
        assert "lbtk_" not in sh(c, f"{SCRAPE} || true").stdout
