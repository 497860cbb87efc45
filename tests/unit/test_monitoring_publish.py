"""The monitoring phase (inventory monitoring.publish): the files it renders with and without it,
the plan that adds or removes exactly those files and their units, and the publisher script run on
this machine against captured keepalived dumps: `sh -n` clean, a file `promtool check metrics`
accepts, holding the very samples `inv metrics` prints for the same node.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families as text_families

from fabfile.core.monitoring import exposition as X
from fabfile.core.phase import Phase
from fabfile.core.render import RenderFacts, monitoring as MR, render_node
from fabfile.errors import LbtkError
from fabfile.model.loading import InventoryError, parse
from fabfile.ops.deploy import plan_node, required
from fabfile.parsers.keepalived_json import parse_keepalived_json
from fabfile.parsers.lbtk import LiveFile

from .core_fixtures import DPKG_CAPTURE, FX, deploy_state, lab_data, lab_env, live_files
from .test_alert_rules import promtool
from .test_exposition import lab_states

pytestmark = pytest.mark.unit
FILES = (MR.DEFAULTS, MR.SCRIPT, MR.SERVICE, MR.TIMER)
GONE = (MR.SCRIPT, MR.SERVICE, MR.TIMER, MR.PUBLISHED)
WITH_EXPORTER = DPKG_CAPTURE + "prometheus-node-exporter\t1.5.0-1+b6\tii \n"
TIMER_UP = dict(active={MR.TIMER_UNIT: "active"}, enabled={MR.TIMER_UNIT: "enabled"})


def published_env(monkeypatch, **mon):
    data = lab_data()
    data["monitoring"] = {**data.get("monitoring", {}), "publish": True, **mon}
    return lab_env(monkeypatch, data=data)


def phase_files(env, node="node1"):
    return {f.path: f for f in render_node(env.inv, node, env.secrets, RenderFacts(ipvs=True))
            if f.phase is Phase.MONITORING}


def verbs(actions):
    return [(a.verb, a.unit or a.arg) for a in actions]


def test_without_publish_the_phase_only_removes_its_own_files(monkeypatch):
    files = phase_files(lab_env(monkeypatch))
    assert set(files) == set(GONE) and all(f.content is None for f in files.values())
    assert MR.DEFAULTS not in files          # the package's own file: never deleted


def test_with_publish_node_exporter_gets_its_collectors_and_the_timer_its_period(monkeypatch):
    files = phase_files(published_env(monkeypatch, listen_address="127.0.0.1:9200", publish_interval=10))
    assert set(files) == set(FILES)
    args = files[MR.DEFAULTS].content.splitlines()[-1]
    assert args == ('ARGS="--web.listen-address=127.0.0.1:9200 --collector.ipvs --collector.textfile '
                    '--collector.textfile.directory=/var/lib/prometheus/node-exporter"')
    assert "OnUnitActiveSec=10s" in files[MR.TIMER].content
    assert f"ExecStart={MR.SCRIPT}" in files[MR.SERVICE].content
    assert files[MR.SCRIPT].mode == 0o755 and files[MR.SCRIPT].content.startswith("#!/bin/sh\n")


def test_listen_address_is_host_port(monkeypatch):
    data = lab_data()
    data["monitoring"] = {"publish": True, "listen_address": "9100 --web.config.file=/x"}
    with pytest.raises(InventoryError, match="listen_address.*not HOST:PORT"):
        parse(data, "lab.yaml")


def test_node_exporter_is_required_only_where_metrics_are_published(monkeypatch):
    assert MR.PACKAGE not in required(lab_env(monkeypatch).inv)
    assert required(published_env(monkeypatch).inv)[MR.PACKAGE] == MR.PACKAGE


def test_the_phase_without_the_package_is_refused_in_one_line(monkeypatch):
    env = published_env(monkeypatch)
    with pytest.raises(LbtkError, match=r"^node1: monitoring.publish needs prometheus-node-exporter"):
        plan_node(env, "node1", deploy_state(env, "node1"), [Phase.MONITORING])


def test_publishing_adds_exactly_its_files_and_units_then_nothing(monkeypatch):
    off, on = lab_env(monkeypatch), published_env(monkeypatch)
    before = deploy_state(on, "node1", files=live_files(off, "node1") | {MR.DEFAULTS: None}, dpkg=WITH_EXPORTER,
                          active={MR.EXPORTER: "inactive", MR.TIMER_UNIT: "inactive"},
                          enabled={MR.EXPORTER: "enabled", MR.TIMER_UNIT: "not-found"})
    p = plan_node(on, "node1", before, [Phase.MONITORING])
    assert {(c.file.path, c.kind) for c in p.changes} == {(f, "create") for f in FILES}
    assert verbs(p.actions) == [("start", MR.EXPORTER), ("daemon-reload", ""), ("run", MR.SCRIPT),
                                ("enable-restart", MR.TIMER_UNIT)]
    up = deploy_state(on, "node1", dpkg=WITH_EXPORTER, **TIMER_UP)          # the files in, every unit up
    assert plan_node(on, "node1", up, [Phase.MONITORING]).empty


def test_new_start_options_restart_node_exporter(monkeypatch):
    on, moved = published_env(monkeypatch), published_env(monkeypatch, listen_address=":9101")
    p = plan_node(moved, "node1", deploy_state(on, "node1", dpkg=WITH_EXPORTER, **TIMER_UP), [Phase.MONITORING])
    assert [c.file.path for c in p.changes] == [MR.DEFAULTS]
    assert verbs(p.actions) == [("restart", MR.EXPORTER)]


def test_dropping_publish_removes_the_files_and_the_timer(monkeypatch):
    off, on = lab_env(monkeypatch), published_env(monkeypatch)
    live = live_files(on, "node1") | {MR.PUBLISHED: LiveFile(0o644, b"lbtk_node_info 1\n")}
    p = plan_node(off, "node1", deploy_state(off, "node1", files=live, **TIMER_UP),
                  [Phase.MONITORING])
    assert {(c.file.path, c.kind) for c in p.changes} == {(f, "delete") for f in GONE}
    assert verbs(p.actions) == [("stop", MR.TIMER_UNIT), ("daemon-reload", ""), ("disable", MR.TIMER_UNIT)]


# ------------------------------------------------------------------ the publisher, run here
def run_publisher(script: str, tmp: Path, dump: str, *, ipvs: bool = False, up: bool = True,
                  daemons: str = "ipvsadm/L_daemon_none.txt", runtime: Path = FX / "lbtk_state/runtime.json") -> str:
    path = tmp / "publish-metrics"
    path.write_text(script)
    path.chmod(0o755)
    assert subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True).returncode == 0
    env = dict(os.environ, LBTK_TEXTFILE_DIR=str(tmp / "textfile"), LBTK_KEEPALIVED_VIEW=str(FX / dump),
               LBTK_IPVS_PROC=str(FX / "ipvsadm/L_n.txt") if ipvs else str(tmp / "none"),
               **({"LBTK_IPVS_LIST": str(FX / "ipvsadm/L_n.txt"), "LBTK_IPVS_DAEMONS": str(FX / daemons)}
                  if ipvs else {}),
               LBTK_SYSTEMCTL="true" if up else "false", LBTK_RUNTIME=str(runtime))
    r = subprocess.run([str(path)], env=env, capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert [p.name for p in (tmp / "textfile").iterdir()] == ["lbtk.prom"]     # its temporary file renamed
    return (tmp / "textfile/lbtk.prom").read_text()


def samples(text: str, names) -> set:
    return {(s.name, tuple(sorted(s.labels.items())), s.value)
            for fam in text_families(text) for s in fam.samples if s.name in names}


@pytest.mark.parametrize("node,dump", [("node1", "keepalived_json/healthy_node1.json"),
                                       ("node2", "keepalived_json/healthy_node2.json"),
                                       ("node3", "keepalived_json/not_running_node3.txt")])
def test_the_published_file_is_what_inv_metrics_prints(monkeypatch, tmp_path, node, dump):
    env = lab_env(monkeypatch, data=lab_data() | {"monitoring": {"publish": True}})
    script = phase_files(env, node)[MR.SCRIPT].content
    text = run_publisher(script, tmp_path, dump, up=node != "node3")
    check = subprocess.run([promtool(), "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    names = {m.name for m in MR.PUBLISHED_METRICS}
    got = samples(text, names)
    want = samples(X.text(X.node_samples(env.inv, node, lab_states()[node]), X.PROMETHEUS), names)
    # the fixtures' units: node3's keepalived stopped, nginx up; the publisher's systemctl stand-in
    # says one word for both
    want = {s for s in want if not (s[0] == "lbtk_service_up" and node == "node3")}
    got = {s for s in got if not (s[0] == "lbtk_service_up" and node == "node3")}
    assert got == want and len(got) >= (2 if node == "node3" else 12)
    assert {s[0] for s in got} <= {m.name for m in X.M.LBTK}


def test_an_isolated_node_says_so_and_its_stopped_keepalived_is_no_surprise(monkeypatch, tmp_path):
    from dataclasses import replace
    from fabfile.core import runtime
    env = lab_env(monkeypatch, data=lab_data() | {"monitoring": {"publish": True}})
    rec = runtime.isolated(replace(runtime.NONE, drained=("10.189.0.12",), serial=2), "node3", True, "root@lab-host")
    (tmp_path / "runtime.json").write_text(runtime.content(rec))
    isolated = {}
    for node in ("node3", "node2"):
        (tmp_path / node).mkdir()
        text = run_publisher(phase_files(env, node)[MR.SCRIPT].content, tmp_path / node,
                             "keepalived_json/not_running_node3.txt", up=False, runtime=tmp_path / "runtime.json")
        isolated[node] = {s[2] for s in samples(text, {"lbtk_node_isolated"})}
    assert isolated == {"node3": {1.0}, "node2": {0.0}}
    states = lab_states()
    states["node3"] = replace(states["node3"], runtime=rec)
    assert {s.value for s in X.node_samples(env.inv, "node3", states["node3"]) if s.metric.name == "lbtk_node_isolated"} == {1}


def test_the_publisher_reads_a_split_brain_dump_as_lbtks_parser_does(monkeypatch, tmp_path):
    env = published_env(monkeypatch)
    dump = "keepalived_json/split_auth_node2.json"
    text = run_publisher(phase_files(env, "node2")[MR.SCRIPT].content, tmp_path, dump, ipvs=True)
    fams = {f.name: f for f in text_families(text)}
    assert fams["lbtk_node_info"].samples[0].labels["ipvs"] == "1"
    views = parse_keepalived_json((FX / dump).read_text())
    assert views and any(v.auth_errors for v in views)
    for metric, field in (("lbtk_vrrp_auth_failures", "auth_errors"), ("lbtk_vrrp_priority", "priority"),
                          ("lbtk_vrrp_adverts_received", "advert_rcvd")):
        assert {s.labels["vrrp_instance"]: s.value for s in fams[metric].samples} == \
            {v.instance: getattr(v, field) for v in views}, metric


def test_the_live_ipvs_weights_are_what_inv_metrics_prints(monkeypatch, tmp_path):
    """lbtk_real_server_weight, which the real-server alerts compare with the drains, for every real
    server of a captured ipvsadm -L -n (TCP, UDP, IPv6, FWM, FWM IPv6, a weight 0), as inv metrics
    reads the same capture."""
    from .test_exposition import ACTIVE_ALL, observed, read
    env = published_env(monkeypatch)
    dump = "keepalived_json/healthy_node1.json"
    text = run_publisher(phase_files(env, "node1")[MR.SCRIPT].content, tmp_path, dump, ipvs=True)
    state = observed("node1", ACTIVE_ALL, read(dump), ipvs=read("ipvsadm/L_n.txt"))
    names = {X.M.REAL_SERVER_WEIGHT.name}
    got = samples(text, names)
    assert got == samples(X.text(X.node_samples(env.inv, "node1", state), X.PROMETHEUS), names)
    shown = {(dict(lab)["virtual_server"], dict(lab)["real_server"]): v for _, lab, v in got}
    assert len(shown) == 23 and shown[("FWM 2 IPv6", "[fd00:190::13]:0")] == 1
    assert shown[("TCP 10.190.0.100:8080", "10.190.0.131:8080")] == 0
    assert shown[("TCP [fd00:190::100]:80", "[fd00:190::12]:80")] == 1


@pytest.mark.parametrize("node", ["node1", "node2"])
def test_the_sync_daemon_is_up_where_the_nodes_vrrp_role_wants_it_as_verify_judges(monkeypatch, tmp_path, node):
    """Both nodes run the master sync daemon (a capture): right for node1, the MASTER, wrong for
    node2, a BACKUP; the publisher says so as inv metrics does (lbtk_service_up{service="sync_daemon"})."""
    from .test_exposition import sync_states
    data = lab_data()
    data["monitoring"] = {"publish": True}
    data["sync_daemon"] = {**data["sync_daemon"], "syncid": 5}          # the capture's syncid
    env = lab_env(monkeypatch, data=data)
    dump = f"keepalived_json/healthy_{node}.json"
    text = run_publisher(phase_files(env, node)[MR.SCRIPT].content, tmp_path, dump, ipvs=True,
                         daemons="ipvsadm/L_daemon_master.txt")
    got = {s for s in samples(text, {"lbtk_service_up"}) if ("service", "sync_daemon") in s[1]}
    want = {s for s in samples(X.text(X.node_samples(env.inv, node, sync_states()[node]), X.PROMETHEUS),
                               {"lbtk_service_up"}) if ("service", "sync_daemon") in s[1]}
    assert got == want and [s[2] for s in got] == [1.0 if node == "node1" else 0.0]


# ------------------------------------------------------------------ the transition hook
def test_each_vrrp_transition_starts_the_publisher_through_keepalived_s_fifo(monkeypatch, tmp_path):
    env = published_env(monkeypatch)
    files = {f.path: f for f in render_node(env.inv, "node1", env.secrets, RenderFacts(ipvs=True))}
    conf = files["/etc/keepalived/keepalived.conf"].content
    assert f"vrrp_notify_fifo {MR.FIFO}\n" in conf and f'vrrp_notify_fifo_script "{MR.FIFO_SCRIPT}"' in conf
    hook = files[MR.FIFO_SCRIPT]
    assert hook.phase is Phase.KEEPALIVED and hook.mode == 0o755
    # run here with a stand-in systemctl: one start per line keepalived writes
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin/systemctl").write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/calls\n')
    (tmp_path / "bin/systemctl").chmod(0o755)
    (tmp_path / "hook").write_text(hook.content)
    (tmp_path / "events").write_text('INSTANCE "VI_1" MASTER 100\nINSTANCE "VI_1" BACKUP 100\n')
    subprocess.run(["sh", str(tmp_path / "hook"), str(tmp_path / "events")], check=True, timeout=10,
                   env=dict(os.environ, PATH=f"{tmp_path}/bin:{os.environ['PATH']}"))
    assert (tmp_path / "calls").read_text() == f"start --no-block {MR.SERVICE_UNIT}\n" * 2


def test_a_fifo_of_the_inventory_s_own_is_left_alone_and_the_timer_refreshes(monkeypatch):
    data = lab_data()
    data["monitoring"] = {"publish": True}
    data.setdefault("global_defs", {})["vrrp_notify_fifo"] = "/run/keepalived/mine.fifo"
    env = lab_env(monkeypatch, data=data)
    files = {f.path: f for f in render_node(env.inv, "node1", env.secrets, RenderFacts(ipvs=True))}
    assert files[MR.FIFO_SCRIPT].content is None and MR.FIFO not in files["/etc/keepalived/keepalived.conf"].content
    assert files[MR.TIMER].content is not None


def test_without_publish_keepalived_conf_names_no_fifo(monkeypatch):
    env = lab_env(monkeypatch)
    files = {f.path: f for f in render_node(env.inv, "node1", env.secrets, RenderFacts(ipvs=True))}
    assert files[MR.FIFO_SCRIPT].content is None and "notify_fifo" not in files["/etc/keepalived/keepalived.conf"].content


def test_rolling_back_the_deploy_that_began_publishing_takes_its_files_and_timer_away(monkeypatch):
    from fabfile.core.restore import backup_copy, restore_plan
    from fabfile.ops.rollback import rendered_files
    off, on = lab_env(monkeypatch), published_env(monkeypatch)
    s = deploy_state(on, "node1", dpkg=WITH_EXPORTER, **TIMER_UP)         # running what `on` deployed
    before = live_files(off, "node1") | {MR.DEFAULTS: LiveFile(0o644, b'ARGS=""\n')}    # Debian's
    replaced = [p for p in s.files if s.files[p] != before.get(p)]
    for p in replaced:
        s.files[backup_copy("1.1", p)] = before.get(p)
    plan = restore_plan("node1", [("1.1", replaced)], s, rendered_files(off, "node1"))
    kinds = {ch.file.path: ch.kind for ch in plan.changes if ch.file.phase is Phase.MONITORING}
    assert kinds == {MR.DEFAULTS: "update", MR.SCRIPT: "delete", MR.SERVICE: "delete", MR.TIMER: "delete"}
    assert ("stop", MR.TIMER_UNIT) in verbs(plan.actions) and ("disable", MR.TIMER_UNIT) in verbs(plan.actions)
