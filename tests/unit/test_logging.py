"""keepalived's own log file (inventory `logging:`, the seed's rsyslog section): validation, the
rendered rsyslog rule and start options, the deploy plan (rsyslog checked, restarted, enabled;
keepalived restarted for its new options) and the install phase's package rule.

Node states come through fabfile.infra.observe.parse_state from captured tool output (core_fixtures).
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess

import pytest

from fabfile.infra import facts as F
from fabfile.errors import LbtkError
from fabfile.model.loading import InventoryError, parse
from fabfile.parsers import journal
from fabfile.ops.deploy import plan_node, required
from fabfile.core.phase import Phase
from fabfile.core.plan import service_actions
from fabfile.core.render import RenderFacts, keepalived, render_node, rsyslog
from fabfile.core.checks import node_checks
from fabfile.tasks.oncall import log_command

from .core_fixtures import DPKG_CAPTURE, deploy_state, lab_data, lab_env, live_files, verify_state

# `dpkg-query -W ... rsyslog` on a lab node (Debian 12, rsyslog installed)
DPKG_WITH_RSYSLOG = DPKG_CAPTURE + "rsyslog\t8.2302.0-1+deb12u1\tii \n"
LOGGING = {"facility": "local0", "file": "/var/log/keepalived.log", "detail": True}


def logging_env(monkeypatch, **over):
    data = lab_data()
    data["logging"] = {**LOGGING, **over}
    return lab_env(monkeypatch, data=data)


def files_of(env, node="node1", ipvs=True):
    return {f.path: f for f in render_node(env.inv, node, env.secrets, RenderFacts(ipvs=ipvs))}


def verbs(actions):
    return [(a.verb, a.unit or a.arg) for a in actions]


# ------------------------------------------------------------------ the model
@pytest.mark.parametrize("field, value, words", [
    ("facility", "local8", "use one of local0 .. local7"),
    ("facility", "daemon", "use one of local0 .. local7"),
    ("file", "var/log/keepalived.log", "not an absolute path"),
    ("file", "/var/log/", "not an absolute path"),
    ("file", "/var/log/../keepalived.log", "not an absolute path"),
    ("file", "/var/log/keep alived.log", "contains ' '"),
    ("file", '/var/log/"k".log', "contains '\"'"),
    ("file", "/var/log/k#1.log", "contains '#'"),
])
def test_bad_logging_is_one_line_naming_the_field(field, value, words):
    data = lab_data()
    data["logging"] = {**LOGGING, field: value}
    with pytest.raises(InventoryError) as e:
        parse(data, "lab.yaml")
    lines = str(e.value).splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"lab.yaml: logging.{field}: ") and words in lines[0], lines


def test_logging_defaults_and_unknown_key():
    data = lab_data()
    data["logging"] = {}
    lg = parse(data, "lab.yaml").logging
    assert (lg.facility, lg.file, lg.detail) == ("local0", "/var/log/keepalived.log", False)
    data["logging"] = {"facilty": "local1"}
    with pytest.raises(InventoryError, match=r"logging\.facilty: unknown key 'facilty' — did you mean facility\?"):
        parse(data, "lab.yaml")


# ------------------------------------------------------------------ rendering
def test_rsyslog_rule_writes_the_facility_to_the_file_only(monkeypatch):
    f = files_of(logging_env(monkeypatch))
    rule = f[rsyslog.RULE]
    assert rule.phase == "lvs" and rule.mode == 0o644
    lines = [ln for ln in rule.content.splitlines() if ln and not ln.startswith("#")]
    assert lines == ['local0.* action(type="omfile" file="/var/log/keepalived.log" template="RSYSLOG_FileFormat")',
                     "& stop"]
    assert f[rsyslog.ROTATE].content.startswith("# Managed by lbtk")
    assert "/var/log/keepalived.log {" in f[rsyslog.ROTATE].content


def test_daemon_args_carry_the_facility_and_detail(monkeypatch):
    env = logging_env(monkeypatch)
    assert 'DAEMON_ARGS="--log-facility=local0 --log-detail"' in files_of(env)[keepalived.DEFAULTS].content
    assert 'DAEMON_ARGS="--vrrp --log-facility=local0 --log-detail"' in files_of(env, ipvs=False)[keepalived.DEFAULTS].content
    env = logging_env(monkeypatch, facility="local5", detail=False)
    assert 'DAEMON_ARGS="--log-facility=local5"' in files_of(env)[keepalived.DEFAULTS].content


def test_without_logging_nothing_changes_and_the_rule_must_not_exist(monkeypatch):
    env = lab_env(monkeypatch)
    f = files_of(env)
    assert f[rsyslog.RULE].content is None and f[rsyslog.ROTATE].content is None
    assert f[keepalived.DEFAULTS].content == ('# Managed by lbtk. Options for keepalived\'s systemd unit '
                                              '(Debian: EnvironmentFile).\nDAEMON_ARGS=""\n')


# ------------------------------------------------------------------ the plan
def test_turning_logging_on_checks_the_rule_restarts_rsyslog_then_keepalived(monkeypatch):
    plain = lab_env(monkeypatch)
    env = logging_env(monkeypatch)
    state = deploy_state(env, "node2", files=live_files(plain, "node2"), dpkg=DPKG_WITH_RSYSLOG)
    p = plan_node(env, "node2", state, ["lvs"])
    assert {ch.file.path: ch.kind for ch in p.changes} == {keepalived.DEFAULTS: "update", rsyslog.RULE: "create",
                                                            rsyslog.ROTATE: "create"}
    assert verbs(p.actions) == [("rsyslog-test", ""), ("restart", "rsyslog"), ("restart", "keepalived")]
    assert p.actions[0].validates


def test_rsyslog_not_running_is_enabled_and_started(monkeypatch):
    plain = lab_env(monkeypatch)
    env = logging_env(monkeypatch)
    state = deploy_state(env, "node2", files=live_files(plain, "node2"), dpkg=DPKG_WITH_RSYSLOG,
                         active={"rsyslog": "inactive"}, enabled={"rsyslog": "disabled"})
    p = plan_node(env, "node2", state, ["lvs"])
    assert verbs(p.actions) == [("rsyslog-test", ""), ("enable-now", "rsyslog"), ("restart", "keepalived")]
    # up to date but rsyslog stopped by hand: started again, nothing else
    state = deploy_state(env, "node2", dpkg=DPKG_WITH_RSYSLOG, active={"rsyslog": "inactive"})
    assert verbs(plan_node(env, "node2", state, ["lvs"]).actions) == [("start", "rsyslog")]


def test_up_to_date_logging_plans_nothing(monkeypatch):
    env = logging_env(monkeypatch)
    assert plan_node(env, "node1", deploy_state(env, "node1", dpkg=DPKG_WITH_RSYSLOG), ["install", "lvs"]).empty


def test_turning_logging_off_removes_the_rule_and_restarts_what_read_it(monkeypatch):
    plain = lab_env(monkeypatch)
    env = logging_env(monkeypatch)
    state = deploy_state(plain, "node3", files=live_files(env, "node3"), dpkg=DPKG_WITH_RSYSLOG)
    p = plan_node(plain, "node3", state, ["lvs"])
    assert {ch.file.path: ch.kind for ch in p.changes} == {keepalived.DEFAULTS: "update", rsyslog.RULE: "delete",
                                                            rsyslog.ROTATE: "delete"}
    assert verbs(p.actions) == [("restart", "rsyslog"), ("restart", "keepalived")]
    # rsyslog not running: nothing to tell it; it is never disabled (other software may want it)
    state = deploy_state(plain, "node3", files=live_files(env, "node3"), dpkg=DPKG_WITH_RSYSLOG,
                         active={"rsyslog": "inactive"})
    assert verbs(plan_node(plain, "node3", state, ["lvs"]).actions) == [("restart", "keepalived")]


def test_service_actions_ignore_rsyslog_without_logging(monkeypatch):
    env = lab_env(monkeypatch)
    state = deploy_state(env, "node1", active={"rsyslog": "inactive"}, enabled={"rsyslog": "not-found"})
    desired = [f for f in render_node(env.inv, "node1", env.secrets, RenderFacts(ipvs=True)) if f.phase == "lvs"]
    assert service_actions(Phase.LVS, set(), state, desired) == []


# ------------------------------------------------------------------ packages
def test_rsyslog_is_required_only_with_logging(monkeypatch):
    plain, env = lab_env(monkeypatch), logging_env(monkeypatch)
    assert "rsyslog" not in required(plain.inv) and required(env.inv)["rsyslog"] == "rsyslog"
    # the lab's DPKG capture has no rsyslog: fine without logging, install.method detect
    assert plan_node(plain, "node1", deploy_state(plain, "node1"), ["install", "lvs"]).empty


def test_rsyslog_missing_with_logging_is_one_line_naming_logging(monkeypatch):
    env = logging_env(monkeypatch)
    state = deploy_state(env, "node1")          # no rsyslog package
    with pytest.raises(LbtkError) as e:
        plan_node(env, "node1", state, ["install", "lvs"])
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("node1: rsyslog not installed and install.method is 'detect'")
    assert "logging:" in msg
    with pytest.raises(LbtkError) as e:
        plan_node(env, "node1", state, ["lvs"])
    assert "\n" not in str(e.value) and str(e.value).startswith("node1: logging: needs rsyslog")
    data = lab_data()
    data["logging"] = LOGGING
    data["install"] = {"method": "apt"}
    env = lab_env(monkeypatch, data=data)
    p = plan_node(env, "node1", deploy_state(env, "node1"), ["install", "lvs"])
    assert ("apt-install", "rsyslog") in verbs(p.actions)


def test_verify_checks_rsyslog_only_with_logging(monkeypatch):
    plain, env = lab_env(monkeypatch), logging_env(monkeypatch)
    o = verify_state("node1", "10.189.0.11", active={"rsyslog": "inactive"})
    assert "rsyslog running" not in {c.name for c in node_checks(plain.inv, "node1", o)}
    rs = next(c for c in node_checks(env.inv, "node1", o) if c.name == "rsyslog running")
    assert (rs.ok, rs.detail) == (False, "inactive")


# ------------------------------------------------------------------ inv logs
# two lines of /var/log/keepalived.log as rsyslog wrote them on a lab node (RSYSLOG_FileFormat)
FILE_LINES = ("2026-12-01T15:40:02.114790+00:00 node2 Keepalived_vrrp[412]: (VI_1) Entering MASTER STATE\n"
              "2026-12-01T15:40:02.114911+00:00 node2 Keepalived_vrrp[412]: (VI_1) setting VIPs.\n")


def test_logs_read_the_file_where_configured_and_say_so():
    cmd = log_command("/var/log/keepalived.log", 50)
    assert "tail -n 50 /var/log/keepalived.log" in cmd and "journalctl -u keepalived" in cmd   # journal: not yet written
    assert log_command(None, 50).startswith("echo '@@source journal'; journalctl")
    src, text = journal.split_source("@@source /var/log/keepalived.log\n" + FILE_LINES)
    assert src == "/var/log/keepalived.log"
    entries = journal.transitions(text)
    assert [(e.time, e.message) for e in entries] == [("2026-12-01T15:40:02+00:00", "(VI_1) Entering MASTER STATE")]
    assert journal.split_source("-- No entries --\n") == ("journal", "-- No entries --\n")


def test_facts_know_rsyslog():
    assert "rsyslog" in F.PACKAGES and "rsyslog" in F.UNITS


@pytest.mark.skipif(not shutil.which("keepalived") and not os.path.exists("/usr/sbin/keepalived"),
                    reason="keepalived not installed (scripts/setup.sh installs it)")
@pytest.mark.parametrize("facility", ["local0", "local7"])
def test_real_keepalived_takes_the_rendered_start_options(monkeypatch, facility):
    """keepalived parses its options before --version exits: a facility it does not know is an
    `Invalid log facility` line there (checked: local9 is refused, so the check can fail)."""
    env = logging_env(monkeypatch, facility=facility)
    text = files_of(env)[keepalived.DEFAULTS].content
    value = shlex.split(next(ln for ln in text.splitlines() if ln.startswith("DAEMON_ARGS="))[len("DAEMON_ARGS="):])
    args = value[0].split()      # systemd splits an unquoted $DAEMON_ARGS at whitespace
    for argv, ok in ((args, True), (["--log-facility=local9"], False)):
        r = subprocess.run([shutil.which("keepalived") or "/usr/sbin/keepalived", *argv, "--version"],
                           capture_output=True, text=True, timeout=10)
        assert ("Invalid" not in r.stdout + r.stderr) == ok, (argv, r.stdout, r.stderr)
