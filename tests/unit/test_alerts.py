"""`inv alerts`: Prometheus's /api/v1/alerts read by fabfile/parsers/prometheus.py on answers captured
from a real Prometheus running lbtk's own rules for the lab (tests/fixtures/prometheus/README.md),
the cluster's alerts picked out and drawn beside verify's findings, the inventory's
`monitoring.prometheus_url` validated, and an address that does not answer one line naming it.
The task is run against a loopback server answering with the captures.
"""
from __future__ import annotations

import json
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest
from invoke import Context, Exit
from pydantic import ValidationError

from fabfile.core.checks import Check, CheckKind
from fabfile.core.diagnose import Finding
from fabfile.model.loading import InventoryError, load, parse
from fabfile.model.monitoring import Monitoring
from fabfile.ops.alerts import AlertsReport, of_cluster
from fabfile.ops.verify import Report
from fabfile.parsers import ParseError
from fabfile.parsers.prometheus import parse_alerts
from fabfile.views import alerts as view

from . import loopback_http

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "prometheus"


def captured(name: str) -> str:
    return (FIX / name).read_text()


def lab_with(url: str | None):
    """The lab's inventory with monitoring.prometheus_url set (validated, as the loader would)."""
    inv = load("lab")[0]
    mon = Monitoring.model_validate({**inv.monitoring.model_dump(), "prometheus_url": url})
    return inv.model_copy(update={"monitoring": mon})


# ------------------------------------------------------------------ the parser, on the captures
def test_the_captured_alerts_parse():
    got = parse_alerts(captured("alerts.json"))
    assert [(a.name, a.state) for a in got] == [("LbtkNoMaster", "firing")] + [("LbtkDirectorSilent", "pending")] * 3 \
        + [("CaptureAlwaysFiring", "firing")]
    no_master = got[0]
    assert no_master.labels == {"cluster": "lab", "severity": "critical", "vip": "10.189.0.100",
                                "vrrp_instance": "VI_1"}
    assert no_master.annotations["runbook_url"] == "runbooks/vip-not-answering.md#steps"
    assert "10.189.0.100" in no_master.annotations["summary"]                  # Prometheus filled the template in
    assert no_master.active_at == pytest.approx(1796665592.202449) and no_master.value == "1e+00"
    assert [a.label("node") for a in got[1:4]] == ["node1", "node2", "node3"]
    assert parse_alerts(captured("alerts_none.json")) == []


def test_an_error_answer_is_prometheus_s_own_words():
    with pytest.raises(ParseError, match=r"Prometheus answered an error \(bad_data\): invalid parameter "
                                         r"\"query\": 1:2: parse error: unclosed left parenthesis"):
        parse_alerts(captured("query_bad_data.json"))


@pytest.mark.parametrize("text", ["404 page not found\n", "", '{"status": "success", "data": {"alerts": [{}]}}',
                                  '{"status": "success", "data": {"alerts": [{"labels": {"alertname": "A"}, '
                                  '"state": "firing", "activeAt": "yesterday"}]}}', '{"status": "maybe"}'])
def test_what_is_not_the_api_s_answer_is_a_parse_error(text):
    with pytest.raises(ParseError):
        parse_alerts(text)


def test_the_cluster_s_alerts_firing_first():
    mine = of_cluster(parse_alerts(captured("alerts.json")), "lab")
    assert [(a.name, a.state) for a in mine] == [("LbtkNoMaster", "firing")] + [("LbtkDirectorSilent", "pending")] * 3
    assert of_cluster(parse_alerts(captured("alerts.json")), "shop-prod") == []


# ------------------------------------------------------------------ beside verify
def test_tables_beside_verify():
    alerts = of_cluster(parse_alerts(captured("alerts.json")), "lab")
    v = Report([Check("VIP 10.189.0.100", "cluster", False, "held by no node", CheckKind.VIP, "10.189.0.100"),
                Check("keepalived", "node1", True, "active", CheckKind.SERVICE)], {"10.189.0.100": []}, {},
               [Finding("10.189.0.100", "VIP moved 3 times in the last 10 min", "warning")])
    r = AlertsReport("http://127.0.0.1:9090", "lab", alerts, 1, v)
    now = alerts[0].active_at + 90
    t = view.alerts_table(r, now)
    assert t.rows[0] == ["LbtkNoMaster", "firing", "critical", "vip=10.189.0.100, vrrp_instance=VI_1", "90s",
                         alerts[0].annotations["summary"]] and t.ok[:2] == [False, None]
    assert [row[:2] for row in view.verify_table(r).rows] == [["VIP 10.189.0.100", "cluster"],
                                                              ["finding (warning)", "10.189.0.100"]]
    assert view.verdict(r) == ("alerts: 1 firing, 3 pending in Prometheus (and 1 of other clusters or rules, not "
                               "listed); verify: 1 of 2 checks FAILED")
    assert not r.ok and set(r.as_json()) == {"ok", "prometheus_url", "alerts", "other_alerts", "verify"}


# ------------------------------------------------------------------ the inventory field
@pytest.mark.parametrize("url", ["prometheus:9090", "ftp://p.example", "http://u:secret@p.example:9090",
                                 "http://p.example:9090/?x=1", "http://p.example:99999", "http://p.example :9090"])
def test_a_bad_prometheus_url_is_refused(url):
    with pytest.raises(ValidationError, match="prometheus_url"):
        Monitoring(prometheus_url=url)


def test_a_bad_prometheus_url_is_one_line_naming_the_field():
    with pytest.raises(InventoryError) as e:
        parse({**load("lab")[0].model_dump(exclude_none=True, by_alias=True), "lab": None,
               "monitoring": {"prometheus_url": "http://u:secret@p.example:9090"}}, "x.yaml")
    assert str(e.value) == ("x.yaml: monitoring.prometheus_url: the address holds credentials (USER:PASSWORD@), and "
                            "the inventory holds no secret — give the address alone (a Prometheus that needs a login "
                            "is not supported)")                      # the password is never echoed
    assert Monitoring(prometheus_url="https://p.example/prometheus/").prometheus_url == "https://p.example/prometheus"


# ------------------------------------------------------------------ the task, against a loopback server
@pytest.fixture(scope="module")
def prometheus():
    """A loopback server answering /api/v1/alerts with the capture, 404 elsewhere (as Prometheus does)."""
    def answer(path: str) -> tuple[int, str, bytes]:
        if path == "/api/v1/alerts":
            return 200, "application/json", captured("alerts.json").encode()
        return 404, "text/plain; charset=utf-8", b"404 page not found\n"
    with loopback_http.serving(answer) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}"


def run(monkeypatch, url, **kw):
    from fabfile.tasks import alerts as task
    inv = lab_with(url)
    monkeypatch.setattr(task, "node_env", lambda env, quiet: (SimpleNamespace(inv=inv, path=env, name=env), []))
    task.alerts(Context(), env="lab", no_verify=True, **kw)
    return inv


def test_the_task_lists_what_fires(prometheus, monkeypatch, capsys):
    with pytest.raises(Exit) as e:
        run(monkeypatch, prometheus, json=True)
    assert e.value.code == 1                                               # LbtkNoMaster fires
    j = json.loads(capsys.readouterr().out)
    assert j["prometheus_url"] == prometheus and j["other_alerts"] == 1 and j["verify"] is None
    assert [(a["alert"], a["state"], a["severity"]) for a in j["alerts"]][:2] == [
        ("LbtkNoMaster", "firing", "critical"), ("LbtkDirectorSilent", "pending", "warning")]
    with pytest.raises(Exit):
        run(monkeypatch, prometheus + "/", format="plain")
    out = capsys.readouterr().out
    assert f"Prometheus {prometheus}: alerts of cluster lab" in out and "LbtkNoMaster" in out
    assert out.rstrip().endswith(
        "alerts: 1 firing, 3 pending in Prometheus (and 1 of other clusters or rules, not listed)")


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("where, why", [
    (lambda p: f"http://127.0.0.1:{closed_port()}", "no answer from Prometheus's API (Connection refused)"),
    (lambda p: p + "/prometheus", "no answer from Prometheus's API (HTTP 404 Not Found: '404 page not found')"),
    (lambda p: None, "monitoring.prometheus_url is not set"),
])
def test_no_prometheus_is_one_line_naming_the_field(where, why, prometheus, monkeypatch):
    url = where(prometheus)
    with pytest.raises(Exit) as e:
        run(monkeypatch, url)
    assert e.value.code == 2 and "\n" not in e.value.message
    assert e.value.message.startswith(f"error: {load('lab')[0].source}: monitoring.prometheus_url")
    assert why in e.value.message
