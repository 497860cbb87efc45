"""The Grafana dashboard (fabfile/core/monitoring/dashboard.py): Grafana's dashboard model (a
minimal JSON schema of it, tests/fixtures/grafana/), a grid without overlaps, and queries that
promtool parses and that read only the metrics fabfile/core/monitoring/metrics.py names, as the
alert rules do."""
from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from fabfile.core.monitoring import alert_rules as R, dashboard as D, dashboard_json, metrics as M
from fabfile.model.loading import load
from tests.unit.test_alert_rules import ALL, run_promtool

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "fixtures/grafana/dashboard.schema.json").read_text())
LABEL_LISTS = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
KEYWORDS = {"and", "or", "unless", "bool", "offset"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: every name that is not a function, a keyword
    or a label (strings, matchers, ranges and label lists taken out first)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = LABEL_LISTS.sub(" ", e)
    return {m.group(1) for m in re.finditer(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*(\()?", e)
            if not m.group(2) and m.group(1) not in KEYWORDS}


def test_metric_names_reads_promql():
    assert metric_names('count by (vip) (lbtk_vrrp_state{cluster="a b"} == 2) or vector(0)') == {"lbtk_vrrp_state"}
    assert metric_names("rate(x_total[$__rate_interval]) * on(job, instance) group_left(node) y") == {"x_total", "y"}
    assert metric_names('a unless on(cluster) b{real_server=~"c|d"} == bool 1') == {"a", "b"}


@pytest.mark.parametrize("env", ALL)
def test_the_dashboard_is_grafanas_model(env):
    board = json.loads(dashboard_json(load(env)[0]))
    jsonschema.validate(board, SCHEMA)
    cells = set()
    for p in board["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= D.WIDTH, p["title"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells, f"{p['title']} overlaps another panel"
        cells |= mine
        assert len({t["refId"] for t in p["targets"]}) == len(p["targets"])
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])


def test_the_schema_refuses_what_grafana_would():
    board = json.loads(dashboard_json(load("lab")[0]))
    del board["panels"][0]["targets"][0]["expr"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(board, SCHEMA)


def expressions() -> list[str]:
    return [t["expr"] for p in D.panels() for t in p["targets"]]


def test_rules_and_dashboard_read_only_known_metrics():
    read = set()
    for expr in expressions():
        names = metric_names(expr)
        assert names <= set(M.KNOWN), f"unknown metric {sorted(names - set(M.KNOWN))} in the dashboard's {expr}"
        read |= names
    for env in ALL:
        for r in R.Rules(load(env)[0], env).all():
            names = metric_names(r["expr"])
            assert names <= set(M.KNOWN), f"{env}: {r['alert']} reads unknown metrics {sorted(names - set(M.KNOWN))}"
            read |= names
    assert set(M.KNOWN) <= read, f"metrics.py names metrics nothing reads: {sorted(set(M.KNOWN) - read)}"


def test_promtool_parses_every_dashboard_query(tmp_path):
    """Grafana's variables given values, each query is a recording rule promtool checks."""
    fill = {"$__rate_interval": "1m", "$cluster": "lab"}
    rules = []
    for k, expr in enumerate(expressions()):
        for var, value in fill.items():
            expr = expr.replace(var, value)
        assert "$" not in expr, expr
        rules.append({"record": f"lbtk:dashboard_query_{k}", "expr": expr})
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    r = run_promtool("check", "rules", str(path))
    assert r.returncode == 0, r.stdout + r.stderr
