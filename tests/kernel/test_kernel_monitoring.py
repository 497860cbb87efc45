"""Monitoring on real IPVS (inventories/kernel-monitoring.yaml): the directors publish through
node_exporter, and the lab's monitoring node (a real Prometheus and Alertmanager on this host,
`lab.prometheus`) scrapes them with the cluster's rules.

- node_exporter's IPVS metrics match `ipvsadm -L -n --stats` for a client run's connections: the
  run's new connections, packets and bytes, read on the MASTER in one round trip from both;
- a drain (`inv drain`, recorded on the directors) raises no alert; the same weight 0 set by hand
  with ipvsadm fires LbtkRealServerWeightZero naming the director and the real server, and putting
  the weight back resolves it. The times are in the kernel tier's timings."""
from __future__ import annotations

import subprocess
import time
import urllib.request

import pytest

from .. import prometheus_api as P
from ..prometheus_api import wait
from .conftest import TIMINGS, inv, sh

ENV = "kernel-monitoring"
PROMETHEUS = "http://127.0.0.1:9290"
VIP, CLIENT_NETNS = "10.189.0.150", "lbtk-kclient"
NODE2, NODE3 = "10.189.0.132", "10.189.0.133"
SCRAPE_S, PUBLISH_S, REAL_SERVER_FOR_S = 5, 10, 4          # the inventory's monitoring:
IPVS_TOTALS = {"conns": "node_ipvs_connections_total", "inpkts": "node_ipvs_incoming_packets_total",
               "outpkts": "node_ipvs_outgoing_packets_total", "inbytes": "node_ipvs_incoming_bytes_total",
               "outbytes": "node_ipvs_outgoing_bytes_total"}
SPLIT = "@@lbtk-test@@"


def api(path: str):
    return P.api(PROMETHEUS, path)


def alerts(name: str, state: str | None = "firing") -> list[dict]:
    return P.alerts(PROMETHEUS, name, state)


@pytest.fixture(scope="module")
def monitored(klab, deployed):
    from fabfile.lab import monitor
    from fabfile.tasks.lab import monitor_spec_for
    if klab.release != "bookworm":
        pytest.skip("monitoring is proven on Debian 12's kernel")
    deployed.ensure(ENV)
    t0 = time.monotonic()
    monitor.up(monitor_spec_for(ENV), progress=lambda s: None)
    TIMINGS["monitoring node up (Prometheus + Alertmanager)"] = time.monotonic() - t0
    try:
        # every director scraped and nothing firing: the sync daemon, the real servers, VRRP as wanted
        wait(lambda: P.targets_up(PROMETHEUS), 90, "Prometheus scraping every director", every=0.5)
        wait(lambda: not P.firing(PROMETHEUS), 60, lambda: f"nothing firing (firing: {P.firing(PROMETHEUS)})",
             every=1)
        yield
    finally:
        monitor.down("kernel", progress=lambda s: None)


def snapshot(c) -> tuple[dict, dict]:
    """({counter: sum over services} of ipvsadm -L -n --stats --exact, {metric: value} of
    node_exporter's IPVS totals), read in one round trip so no packet falls between the two."""
    from fabfile.parsers.ipvsadm import parse_stats
    out = sh(c, f"ipvsadm -L -n --stats --exact; echo {SPLIT}; curl -fsS http://127.0.0.1:9100/metrics").stdout
    stats_text, _, page = out.partition(SPLIT + "\n")
    stats = parse_stats(stats_text)
    sums = {k: sum(getattr(s.stats, k) for s in stats.services) for k in IPVS_TOTALS}
    values = {}
    for line in page.splitlines():
        name, _, value = line.partition(" ")
        if name in IPVS_TOTALS.values():
            values[name] = float(value)
    return sums, values


def settled(c) -> tuple[dict, dict]:
    """A snapshot once ipvsadm's counters stand still: IPVS copies a service's per-CPU counters into
    what ipvsadm reads from its estimator, every 2 s (later under TCG), while /proc/net/ip_vs_stats,
    node_exporter's source, is summed at each read."""
    last = snapshot(c)
    for _ in range(10):
        time.sleep(2.5)
        now = snapshot(c)
        if now == last:
            return now
        last = now
    pytest.fail(f"IPVS counters still moving: {last}")


def holder(nodes) -> str:
    held = [n for n, c in nodes.items() if sh(c, f"ip -o addr show dev eth0 to {VIP}").stdout.strip()]
    assert len(held) == 1, held
    return held[0]


def test_ipvs_metrics_match_ipvsadm_stats_for_a_client_runs_connections(monitored, nodes):
    name = holder(nodes)
    master = nodes[name]
    before = settled(master)
    n = 20       # from the client namespace on the lab bridge (lab.client): new connections, one each
    run = subprocess.run(["ip", "netns", "exec", CLIENT_NETNS, "sh", "-c",
                          f"for i in $(seq {n}); do curl -fsS -o /dev/null --noproxy '*' --max-time 3 "
                          f"http://{VIP}/ || exit 1; done"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    after = settled(master)
    stats_delta = {k: after[0][k] - before[0][k] for k in IPVS_TOTALS}
    metric_delta = {k: after[1][m] - before[1][m] for k, m in IPVS_TOTALS.items()}
    assert holder(nodes) == name
    # a new connection each, but for a source port the client reuses while IPVS still holds the
    # earlier run's entry for it (TIME_WAIT): IPVS counts that one as the old connection
    assert 0 < stats_delta["conns"] <= n and stats_delta["inpkts"] >= 5 * stats_delta["conns"], stats_delta
    assert metric_delta == {k: float(v) for k, v in stats_delta.items()}, (metric_delta, stats_delta, before, after)
    # and Prometheus holds node_exporter's per-real-server series for the three real servers
    q = api("/api/v1/query?query=" + urllib.request.quote(f'node_ipvs_backend_weight{{instance="{master.conn.host}:9100"}}'))
    assert sorted(s["metric"]["remote_address"] for s in q["data"]["result"]) == \
        ["10.189.0.131", "10.189.0.132", "10.189.0.133"], q


def _weight_zero(node: str, address: str) -> list[dict]:
    return [a for a in alerts("LbtkRealServerWeightZero", state=None)
            if a["labels"]["node"] == node and a["labels"]["real_server"].startswith(address + ":")]


def test_a_drain_is_no_alert_and_a_hand_set_weight_0_fires_one(monkeypatch, monitored, nodes):
    """At once: node3 drained (recorded), node2's weight set to 0 by hand in node1's IPVS table. Only
    node2's fires, and node3's stays silent through the whole delay of the rule and beyond."""
    rules = {r["name"] for g in api("/api/v1/rules")["data"]["groups"] for r in g["rules"]}
    assert "LbtkRealServerWeightZero" in rules, rules
    monkeypatch.setenv("LBTK_CONTROL_PERSIST", "60")     # drain and undrain: one SSH handshake each under TCG
    inv("drain", "--env", ENV, "--server", "node3", check=True)
    table = sh(nodes["node1"], "ipvsadm -S -n").stdout.splitlines()
    assert "-w 0" in next(ln for ln in table if NODE3 in ln)
    line = next(ln for ln in table if NODE2 in ln)
    assert line.startswith("-a ") and "-w 1" in line, line
    sh(nodes["node1"], "ipvsadm " + line.replace("-a ", "-e ", 1).replace("-w 1", "-w 0"))
    t0 = time.monotonic()
    fired = None
    # the publisher's next run (the timer), a scrape, an evaluation, the rule's `for` (rounded up to
    # the next evaluation), and a publisher run's own time under TCG
    bound = PUBLISH_S + 2 * SCRAPE_S + max(REAL_SERVER_FOR_S, SCRAPE_S) + 10
    while time.monotonic() - t0 < bound + 5:
        assert not any(_weight_zero(n, NODE3) for n in nodes), alerts("LbtkRealServerWeightZero", state=None)
        if fired is None and any(a["state"] == "firing" for a in _weight_zero("node1", NODE2)):
            fired = time.monotonic() - t0
        time.sleep(0.5)
    assert fired is not None and fired <= bound, f"LbtkRealServerWeightZero for node2 on node1: {fired}"
    TIMINGS["weight 0 by hand: LbtkRealServerWeightZero firing after (s)"] = fired
    a = _weight_zero("node1", NODE2)[0]
    assert "node1" in a["annotations"]["summary"] and NODE2 in a["annotations"]["summary"], a
    assert a["annotations"]["runbook_url"].endswith("real-server-out-of-pool.md#steps")
    sh(nodes["node1"], "ipvsadm " + line.replace("-a ", "-e ", 1))          # the weight back
    resolved = wait(lambda: not _weight_zero("node1", NODE2), 90, "LbtkRealServerWeightZero resolved")
    TIMINGS["weight back: resolved after (s)"] = resolved
    inv("undrain", "--env", ENV, "--server", "node3", check=True)
    inv("connections", "--stop", check=True)
