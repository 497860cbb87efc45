"""The lab's monitoring node (fabfile/lab/monitor.py, `lab.prometheus`): the files its Prometheus
and Alertmanager load are the cluster's own (rules and scrape job of `inv render --monitoring`), the
real promtool accepts them, and an inventory that cannot feed it is refused in one line per field."""
from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from fabfile.core import monitoring
from fabfile.lab import monitor
from fabfile.tasks.lab import monitor_spec_for
from fabfile.model.loading import InventoryError, inventory_dir, load, parse

pytestmark = pytest.mark.unit


def data(**monitoring_keys):
    d = yaml.safe_load((inventory_dir() / "lab-monitoring.yaml").read_text())
    d["monitoring"].update(monitoring_keys)
    return d


def test_the_scrape_job_names_each_directors_node_exporter():
    inv, _ = load("lab-monitoring")
    job = monitoring.scrape_job(inv)
    assert job == {"job_name": "lbtk-lab", "scrape_interval": "2s",
                   "static_configs": [{"targets": ["10.189.0.11:9100", "10.189.0.12:9100", "10.189.0.13:9100"]}]}
    text = next(f.content for f in monitoring.files(inv, "lab-monitoring") if f.path == "lbtk-lab.scrape.yml")
    assert yaml.safe_load(text) == {"scrape_configs": [job]} and "loopback" not in text


def test_a_loopback_or_fixed_listen_address_shows_in_the_scrape_job():
    inv = parse(data(listen_address="127.0.0.1:9100", prometheus_url=None) | {"lab": {"bridge": "lbtk-br0"}}, "x.yaml")
    assert monitoring.scrape_targets(inv)[0] == "10.189.0.11:9100"
    assert "only a Prometheus on each director reaches it" in monitoring.scrape_yaml(inv, "x")
    inv = parse(data(listen_address="192.0.2.7:9100", prometheus_url=None) | {"lab": {"bridge": "lbtk-br0"}}, "x.yaml")
    assert monitoring.scrape_targets(inv) == ["192.0.2.7:9100"] * 3


def test_the_lab_prometheus_loads_the_clusters_rules_and_promtool_accepts_its_files(tmp_path):
    s = monitor_spec_for("lab-monitoring")
    assert (s.prometheus.listen, s.alertmanager.listen, s.url) == ("127.0.0.1:9190", "127.0.0.1:9193",
                                                                   "http://127.0.0.1:9190")
    inv, _ = load("lab-monitoring")
    f = monitor.files(s)
    assert f["rules.yml"] == monitoring.rules_yaml(inv, "lab-monitoring")
    prom = yaml.safe_load(f["prometheus.yml"])
    assert prom["scrape_configs"] == [monitoring.scrape_job(inv)] and prom["rule_files"] == ["rules.yml"]
    assert prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9193"]
    assert "--cluster.listen-address=" in monitor.argv(s, s.alertmanager)   # no gossip on every address
    assert monitor_spec_for("lab") is None
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (scripts/setup.sh installs prometheus)")
    for name, text in f.items():
        (tmp_path / name).write_text(text)
    r = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "SUCCESS: 1 rule files found" in r.stdout + r.stderr, r.stdout + r.stderr


@pytest.mark.parametrize("keys, line", [
    ({"publish": False}, "x.yaml: monitoring.publish: lab.prometheus scrapes lbtk's metrics"),
    ({"prometheus_url": "http://prometheus.example:9090"}, "x.yaml: monitoring.prometheus_url: lab.prometheus "
                                                          "runs Prometheus on this host's loopback"),
    ({"prometheus_url": None}, "x.yaml: monitoring.prometheus_url: lab.prometheus runs Prometheus"),
    ({"listen_address": "127.0.0.1:9100"}, "x.yaml: monitoring.listen_address: lab.prometheus scrapes the "
                                          "directors from this host"),
])
def test_an_inventory_that_cannot_feed_the_lab_prometheus_is_refused_naming_the_field(keys, line):
    with pytest.raises(InventoryError) as e:
        parse(data(**keys), "x.yaml")
    assert len(e.value.lines) == 1 and e.value.lines[0].startswith(line), e.value.lines
