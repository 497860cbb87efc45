"""lbtk's metrics in the exposition formats (fabfile/core/monitoring/exposition.py, `inv metrics`),
from CAPTURED tool output only, each value checked against the capture's own.

Every NodeState is built as `inv metrics` builds it: the METRICS facts' outputs framed as
fabfile.infra.observe frames them and read by observe.parse_state (tests/unit/core_fixtures.py).
- the lab (inventories/lab.yaml): keepalived's JSON dumps of node1 MASTER and node2 BACKUP, node3
  with keepalived stopped (tests/fixtures/keepalived_json/), a kernel without IPVS (the fact's
  mark), the runtime record tests/fixtures/lbtk_state/runtime.json (10.189.0.12 drained);
- the fx cluster of test_tables.py: the kernel-tier director's `ipvsadm -L -n`
  (tests/fixtures/ipvsadm/L_n.txt), rs3 not answering;
- the lab with IPVS and a sync daemon of syncid 5: `ipvsadm -L -n` of an empty table and
  `ipvsadm -L --daemon` of a master sync daemon (L_n_empty.txt, L_daemon_master.txt).

The text is checked by the real tools: Debian's `promtool check metrics` (the text format, lint
included) once for this module, and prometheus_client's OpenMetrics parser (the reference Python
implementation; promtool 2.42 reads no OpenMetrics).
"""
from __future__ import annotations

import json
import re
import subprocess

import pytest
from invoke import Context, Exit
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families as text_families

from fabfile.core.monitoring import exposition as X, metrics as M
from fabfile.core.vrrp import plan
from fabfile.errors import UsageError
from fabfile.infra import facts as F
from fabfile.infra.facts import NodeState
from fabfile.infra.observe import parse_state
from fabfile.model.loading import load, parse
from fabfile.parsers.ipvsadm import NO_IPVS_MARK
from fabfile.tasks import metrics as task

from .core_fixtures import TOKEN, frame, read, units_output
from .test_alert_rules import promtool
from .test_tables import ACTIVE_ALL, ACTIVE_KA_STOPPED, FX_DATA, UNREACHABLE

RUNTIME = "lbtk_state/runtime.json"
DRAINED = json.loads(read(RUNTIME))["drained"]


def observed(node: str, units: str, vrrp: str, ipvs: str = NO_IPVS_MARK + "\n",
             daemons: str = NO_IPVS_MARK + "\n", runtime: str = read(RUNTIME)) -> NodeState:
    out = {"units": units, "ipvs": ipvs, "sync_daemons": daemons, "vrrp": vrrp, "runtime": runtime}
    return parse_state(node, F.METRICS, frame({f.name: (out[f.name], "", 0) for f in F.METRICS}), TOKEN)


def lab_states() -> dict[str, NodeState]:
    return {"node1": observed("node1", ACTIVE_ALL, read("keepalived_json/healthy_node1.json")),
            "node2": observed("node2", ACTIVE_ALL, read("keepalived_json/healthy_node2.json")),
            "node3": observed("node3", ACTIVE_KA_STOPPED, read("keepalived_json/not_running_node3.txt"))}


def fx_states() -> dict[str, NodeState]:
    return {"dir": observed("dir", ACTIVE_ALL, read("keepalived_json/not_running_node3.txt"),
                            ipvs=read("ipvsadm/L_n.txt"), daemons=read("ipvsadm/L_daemon_none.txt"), runtime=""),
            "rs3": NodeState("rs3", reachable=False, error=UNREACHABLE)}


def sync_inventory():
    inv = load("lab")[0]
    sd = inv.sync_daemon.model_copy(update={"syncid": 5})           # the capture's syncid
    return inv.model_copy(update={"cluster": "lab-sync", "sync_daemon": sd})


def sync_states() -> dict[str, NodeState]:
    """Both run the master daemon: right for node1 (MASTER), wrong for node2 (BACKUP)."""
    return {n: observed(n, ACTIVE_ALL, read(f"keepalived_json/healthy_{n}.json"), ipvs=read("ipvsadm/L_n_empty.txt"),
                        daemons=read("ipvsadm/L_daemon_master.txt")) for n in ("node1", "node2")}


@pytest.fixture(scope="module")
def lab():
    return load("lab")[0]


@pytest.fixture(scope="module")
def fx():
    return parse(FX_DATA, "fx.yaml")


def values(samples, metric: M.Metric, **match) -> dict[tuple, float]:
    """{label values not in `match`: value} of the samples of `metric` matching."""
    out = {}
    for s in samples:
        labels = dict(s.labels)
        if s.metric is metric and all(labels[k] == v for k, v in match.items()):
            out[tuple(v for k, v in s.labels if k not in match)] = s.value
    return out


def one(samples, metric: M.Metric, **match) -> float:
    found = values(samples, metric, **match)
    assert len(found) == 1, (metric.name, match, found)
    return next(iter(found.values()))


# -- the values are the captures' own ----------------------------------------------------------

def test_vrrp_metrics_are_keepaliveds_own_numbers(lab):
    samples = X.cluster_samples(lab, lab_states())
    p = plan(lab)[0]
    for node in ("node1", "node2"):
        dump = json.loads(read(f"keepalived_json/healthy_{node}.json"))[0]
        d, s = dump["data"], dump["stats"]
        at = {"node": node, "vrrp_instance": d["iname"], "vip": M.vip_label(p)}
        assert one(samples, M.VRRP_STATE, **at) == d["state"]
        assert one(samples, M.VRRP_PRIORITY, **at) == d["effective_priority"]
        assert one(samples, M.VRRP_WANTED_PRIORITY, **at) == p.priorities[node]
        assert one(samples, M.VRRP_ADVERTS_RECEIVED, **at) == s["advert_rcvd"]
        assert one(samples, M.VRRP_ADVERTS_SENT, **at) == s["advert_sent"]
        assert one(samples, M.VRRP_AUTH_FAILURES, **at) == s["auth_failure"] + s["authtype_mismatch"] + s["invalid_authtype"]
        assert one(samples, M.VRRP_TRANSITIONS, **at) == s["become_master"] + s["release_master"]
        assert one(samples, M.VRRP_PRIORITY_ZERO_RECEIVED, **at) == s["pri_zero_rcvd"]
        assert one(samples, M.VRRP_PRIORITY_ZERO_SENT, **at) == s["pri_zero_sent"]
        assert one(samples, M.VRRP_LAST_TRANSITION, **at) == d["last_transition"]
    assert [one(samples, M.VRRP_STATE, node=n) for n in ("node1", "node2")] == [int(M.VrrpState.MASTER),
                                                                                int(M.VrrpState.BACKUP)]
    # keepalived stopped on node3: no view, but the inventory's priority and keepalived down
    assert not values(samples, M.VRRP_STATE, node="node3")
    assert one(samples, M.VRRP_WANTED_PRIORITY, node="node3") == p.priorities["node3"]
    assert one(samples, M.SERVICE_UP, node="node3", service="keepalived") == 0
    assert one(samples, M.SERVICE_UP, node="node3", service="nginx") == 1
    assert one(samples, M.SERVICE_UP, node="node1", service="keepalived") == 1


def test_a_recorded_drain_is_wanted_weight_0_and_no_ipvs_no_live_weight(lab):
    samples = X.cluster_samples(lab, lab_states())
    assert DRAINED == ["10.189.0.12"]
    for node in ("node1", "node2", "node3"):
        assert one(samples, M.NODE_INFO, node=node) == 1
        assert values(samples, M.NODE_INFO, node=node) == {("lab", "0"): 1}        # cluster, ipvs="0"
        # the lab's service: a fwmark (director_fix), its real servers at port 0 as ipvsadm shows them
        wanted = values(samples, M.REAL_SERVER_WANTED_WEIGHT, node=node, virtual_server="FWM 1")
        drained = values(samples, M.REAL_SERVER_DRAINED, node=node, virtual_server="FWM 1")
        assert wanted == {("lab", "10.189.0.11:0"): 1, ("lab", "10.189.0.12:0"): 0, ("lab", "10.189.0.13:0"): 1}
        assert drained == {("lab", "10.189.0.11:0"): 0, ("lab", "10.189.0.12:0"): 1, ("lab", "10.189.0.13:0"): 0}
    assert not values(samples, M.REAL_SERVER_WEIGHT)          # the lab's kernel has no IPVS
    assert not values(samples, M.SERVICE_UP, service="sync_daemon")


def ipvsadm_weights(capture: str) -> dict[tuple[str, str], int]:
    """{(service, real server): weight} read off the capture's own columns."""
    out, service = {}, None
    for line in read(capture).splitlines():
        head = re.match(r"(TCP|UDP|FWM)\s+(\S+)(\s+IPv6)?", line)
        if head:
            service = f"{head.group(1)} {head.group(2)}{' IPv6' if head.group(3) else ''}"
        rs = re.match(r"\s+-> (\S+)\s+\w+\s+(\d+)", line)
        if rs and service:
            out[(service, rs.group(1))] = int(rs.group(2))
    return out


def test_live_weights_are_the_ipvs_tables_and_a_silent_node_publishes_nothing(fx):
    states = fx_states()
    samples = X.cluster_samples(fx, states)
    live = {(vs, rs): v for (_, vs, rs), v in values(samples, M.REAL_SERVER_WEIGHT, node="dir").items()}
    assert live == ipvsadm_weights("ipvsadm/L_n.txt")
    at = {"node": "dir", "virtual_server": "TCP 10.190.0.100:8080", "real_server": "10.190.0.131:8080"}
    assert (one(samples, M.REAL_SERVER_WEIGHT, **at), one(samples, M.REAL_SERVER_WANTED_WEIGHT, **at)) == (0, 1)
    # the inventory's third real server on :80, not in the capture's pool: wanted, no live weight
    at = {"node": "dir", "virtual_server": "TCP 10.190.0.100:80", "real_server": "10.190.0.13:80"}
    assert one(samples, M.REAL_SERVER_WANTED_WEIGHT, **at) == 1 and not values(samples, M.REAL_SERVER_WEIGHT, **at)
    assert values(samples, M.NODE_INFO, node="dir") == {("fx", "1"): 1}
    assert not [s for s in samples if dict(s.labels)["node"] == "rs3"]
    assert X.silent(states) == [f"rs3: no metrics: unreachable: {UNREACHABLE}"]


def test_the_sync_daemon_is_up_where_the_role_vrrp_gives_runs():
    samples = X.cluster_samples(sync_inventory(), sync_states())
    assert one(samples, M.SERVICE_UP, node="node1", service="sync_daemon") == 1      # MASTER runs master
    assert one(samples, M.SERVICE_UP, node="node2", service="sync_daemon") == 0      # BACKUP runs master too
    assert values(samples, M.NODE_INFO, node="node1") == {("lab-sync", "1"): 1}


# -- the text, read by the real tools ----------------------------------------------------------

def every_sample(lab, fx) -> list[X.Sample]:
    return [*X.cluster_samples(lab, lab_states()), *X.cluster_samples(fx, fx_states()),
            *X.cluster_samples(sync_inventory(), sync_states())]


def test_every_metric_is_published_and_the_real_parsers_read_it_back(lab, fx):
    samples = every_sample(lab, fx)
    assert {s.metric.name for s in samples} == {m.name for m in M.LBTK}
    prometheus, openmetrics = X.text(samples, X.PROMETHEUS), X.text(samples, X.OPENMETRICS)
    r = subprocess.run([promtool(), "check", "metrics"], input=prometheus, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not r.stdout + r.stderr, r.stdout + r.stderr
    assert openmetrics.endswith("\n# EOF\n") and "# EOF" not in prometheus

    def read_back(families) -> dict:
        return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}

    om = list(openmetrics_families(openmetrics))
    assert {f.name: f.type for f in om}[M.NODE_INFO.name.removesuffix("_info")] == "info"
    assert {f.name: f.type for f in om}[M.VRRP_TRANSITIONS.name.removesuffix("_total")] == "counter"
    want = {(s.metric.name, tuple(sorted((k, v) for k, v in s.labels if v))): s.value for s in samples}
    assert read_back(om) == want
    assert read_back(text_families(prometheus)) == want
    assert len(want) == len(samples)             # no label set twice


def test_label_values_and_help_are_escaped():
    odd = 'a "b" \\ c\nd'
    s = X.Sample(M.SERVICE_UP, (("cluster", odd), ("node", "n"), ("service", "nginx")), 1)
    for fmt, parser in ((X.OPENMETRICS, openmetrics_families), (X.PROMETHEUS, text_families)):
        text = X.text([s], fmt)
        assert len(text.splitlines()) == 3 + (fmt == X.OPENMETRICS)
        (fam,) = parser(text)
        assert fam.samples[0].labels["cluster"] == odd
    assert X.number(1796139169.842291) == "1796139169.842291" and X.number(3.0) == "3" and X.number(True) == "1"


def test_format_is_checked_before_any_node_is_read():
    assert X.check_format(None) == X.OPENMETRICS and X.check_format("prometheus") == X.PROMETHEUS
    with pytest.raises(UsageError, match="--format json: choose from openmetrics, prometheus"):
        X.check_format("json")


# -- the task ------------------------------------------------------------------------------------

def test_inv_metrics_prints_the_exposition_alone_and_exits_1_for_a_silent_node(fx, monkeypatch, capsys):
    from types import SimpleNamespace
    asked = []
    monkeypatch.setattr(task, "node_env", lambda env, node, quiet: (SimpleNamespace(inv=fx), [env, node, quiet]))
    monkeypatch.setattr(task, "observe_nodes", lambda e, nodes, facts: asked.append(facts) or fx_states())
    with pytest.raises(Exit) as e:
        task.metrics(Context(), env="fx", format="prometheus")
    out, err = capsys.readouterr()
    assert e.value.code == 1 and asked == [F.METRICS]
    assert out == X.exposition(fx, fx_states(), X.PROMETHEUS)
    assert err == f"rs3: no metrics: unreachable: {UNREACHABLE}\n"
