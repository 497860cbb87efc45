"""The pure deploy planner: typed actions, file changes, per-phase service actions, node plans,
rolling batches and planned VIP moves.

Node states come through fabfile.infra.observe.parse_state from captured tool output (see
tests/unit/core_fixtures.py); desired files come from the real renderer.
"""
from __future__ import annotations

import copy
import shlex

import pytest

from fabfile.infra import facts as F
from fabfile.core.actions import VERBS, Action
from fabfile.errors import LbtkError
from fabfile.parsers.lbtk import LiveFile, parse_pending
from fabfile.ops.deploy import plan_node, plan_runs, planned_moves, rolling_batches
from fabfile.views.deploy import move_line
from fabfile.core.phase import DEPLOY_ORDER, Phase
from fabfile.core.plan import NodePlan, PlannedMove, changes_wire, file_changes, service_actions, wire_signature
from fabfile.core.render import (ASSUMED, RenderFacts, arp, fwmark, ipvs_sync, keepalived, managed_paths, nginx, render_node)
from fabfile.model.secrets import MASK
from fabfile.core.vrrp import expected_holders

from .core_fixtures import DPKG_CAPTURE, deploy_state, env_of, lab_data, lab_env, live_files

VIP = "10.189.0.100"
ALL = list(DEPLOY_ORDER)
DEFAULT = "/etc/nginx/sites-enabled/default"   # Debian's own site (lab.yaml: nginx.remove_sites: [default])
DEBIAN_DEFAULT_SITE = (  # the head of Debian 12's /etc/nginx/sites-enabled/default
    "server {\n\tlisten 80 default_server;\n\tlisten [::]:80 default_server;\n"
    "\troot /var/www/html;\n\tindex index.html index.htm index.nginx-debian.html;\n\tserver_name _;\n}\n")


@pytest.fixture
def env(monkeypatch):
    return lab_env(monkeypatch)


def desired(env, node="node1", ipvs=True, phase=None):
    files = render_node(env.inv, node, env.secrets, RenderFacts(ipvs=ipvs))
    return [f for f in files if phase is None or f.phase == phase]


def content(env, path, node="node1", ipvs=True) -> str:
    return next(f.content for f in desired(env, node, ipvs) if f.path == path)


def fresh(env, node, **kw):
    """A node that has the packages but none of our files, nothing of ours running."""
    files = {p: None for p in live_files(env, node)}
    return deploy_state(env, node, files=files,
                        active={u: "inactive" for u in F.UNITS},
                        enabled={"keepalived": "disabled", "nginx": "enabled",
                                 "lbtk-vip-lo": "not-found", "lbtk-fwmark": "not-found"}, **kw)


def after(env, node, state, plan, has_ipvs=True):
    """The node once `plan` ran on it: files swapped, units as the actions leave them."""
    files = dict(state.files)
    for ch in plan.changes:
        files[ch.file.path] = None if ch.kind == "delete" else LiveFile(ch.file.mode, ch.file.content.encode())
    active, enabled = dict(state.active), dict(state.enabled)
    for a in plan.actions:
        if a.verb == "reload":
            assert active[a.unit] == "active", f"{a.short()} planned for a unit that is not running"
        if a.verb in ("start", "restart", "enable-restart", "enable-now"):
            active[a.unit] = "active"
        if a.verb in ("enable", "enable-restart", "enable-now"):
            enabled[a.unit] = "enabled"
        if a.verb == "disable-now":
            active[a.unit], enabled[a.unit] = "inactive", "not-found"
        if a.verb == "stop":
            active[a.unit] = "inactive"
        if a.verb == "disable":
            enabled[a.unit] = "not-found"
    return deploy_state(env, node, files=files, active=active, enabled=enabled, has_ipvs=has_ipvs)


def verbs(actions) -> list[tuple[str, str]]:
    return [(a.verb, a.unit or a.arg) for a in actions]


# ================================================================== Action
SHELL_CASES = [
    (Action("daemon-reload"), "systemctl daemon-reload"),
    (Action("enable", "keepalived"), "SYSTEMCTL_SKIP_SYSV=1 systemctl enable --no-reload keepalived"),
    (Action("enable-now", "nginx"), "SYSTEMCTL_SKIP_SYSV=1 systemctl enable --no-reload --now nginx"),
    (Action("start", "nginx"), "systemctl start nginx"),
    (Action("reload", "keepalived"), "systemctl reload keepalived"),
    (Action("restart", "lbtk-fwmark"), "systemctl restart lbtk-fwmark"),
    (Action("enable-restart", "lbtk-vip-lo"), "SYSTEMCTL_SKIP_SYSV=1 systemctl enable --no-reload lbtk-vip-lo && systemctl restart lbtk-vip-lo"),
    (Action("disable-now", "lbtk-fwmark"), "SYSTEMCTL_SKIP_SYSV=1 systemctl disable --now lbtk-fwmark"),
    (Action("stop", "lbtk-vip-lo"), "systemctl stop lbtk-vip-lo"),
    (Action("disable", "lbtk-vip-lo"), "SYSTEMCTL_SKIP_SYSV=1 systemctl disable lbtk-vip-lo"),
    (Action("stop-sync-daemons"),
     "{ ipvsadm --stop-daemon master; ipvsadm --stop-daemon backup; } 2>/dev/null; true"),
    (Action("sysctl-load", arg=arp.SYSCTL), "sysctl -q -p /etc/sysctl.d/60-lbtk-lvs.conf"),
    (Action("nginx-test"), "nginx -t -q"),
    (Action("rsyslog-test"), "rsyslogd -N1"),
    (Action("apt-install", arg="keepalived nginx-light"),
     "DEBIAN_FRONTEND=noninteractive apt-get install -y -q keepalived nginx-light"),
    (Action("run", arg=ipvs_sync.RECONCILE), "/usr/local/sbin/lbtk-ipvs-sync"),
]


@pytest.mark.parametrize("action, shell", SHELL_CASES)
def test_action_shell(action, shell):
    assert action.shell() == shell == str(action)


def test_every_verb_has_a_shell_case():
    assert {a.verb for a, _ in SHELL_CASES} == set(VERBS)


def test_action_shell_quotes_units_and_arguments():
    a = Action("start", "weird unit;reboot")
    assert a.shell() == "systemctl start 'weird unit;reboot'"
    assert shlex.split(a.shell()) == ["systemctl", "start", "weird unit;reboot"]
    b = Action("apt-install", arg="keepalived $(reboot)")
    assert shlex.split(b.shell())[-2:] == ["keepalived", "$(reboot)"]       # an argument, never run
    assert "'$(reboot)'" in b.shell()


@pytest.mark.parametrize("action, short", [
    (Action("enable-restart", "lbtk-vip-lo"), "restart lbtk-vip-lo"),
    (Action("disable-now", "lbtk-fwmark"), "disable lbtk-fwmark"),
    (Action("nginx-test"), "nginx -t"),
    (Action("rsyslog-test"), "rsyslogd -N1"),
    (Action("sysctl-load", arg=arp.SYSCTL), "sysctl -p"),
    (Action("apt-install", arg="keepalived"), "apt-get install"),
    (Action("run", arg=ipvs_sync.RECONCILE), ipvs_sync.RECONCILE),
    (Action("daemon-reload"), "daemon-reload"),
    (Action("reload", "keepalived"), "reload keepalived"),
    (Action("start", "nginx"), "start nginx"),
    (Action("enable-now", "nginx"), "start nginx"),
])
def test_action_short(action, short):
    assert action.short() == short


def test_unknown_verb_is_refused():
    with pytest.raises(ValueError, match="unknown action verb 'frobnicate'"):
        Action("frobnicate", "nginx")
    with pytest.raises(ValueError):
        Action.from_record(("systemctl restart nginx", "", ""))     # an old free-text record


def test_action_record_round_trip_through_the_pending_file():
    """apply writes record() lines to /var/lib/lbtk/pending; facts.OWED reads them back with
    parse_pending; from_record rebuilds equal actions (why does not take part in equality)."""
    owed = [Action("daemon-reload", why="x"), Action("sysctl-load", arg=arp.SYSCTL),
            Action("enable-restart", "lbtk-vip-lo"), Action("nginx-test"), Action("rsyslog-test"),
            Action("reload", "nginx"),
            Action("restart", "keepalived"), Action("disable-now", "lbtk-fwmark"),
            Action("apt-install", arg="keepalived nginx-light"), Action("run", arg=ipvs_sync.RECONCILE),
            Action("enable", "keepalived"), Action("start", "keepalived"), Action("enable-now", "nginx"),
            Action("stop", "lbtk-vip-lo"), Action("disable", "lbtk-vip-lo"), Action("stop-sync-daemons")]
    assert {a.verb for a in owed} == set(VERBS)
    text = "".join(a.record() + "\n" for a in owed)       # what `printf '%s\n' RECORD...` writes
    back = [Action.from_record(r) for r in parse_pending(text)]
    assert back == owed
    assert [a.shell() for a in back] == [a.shell() for a in owed]
    assert {a.why for a in back} == {"owed by an interrupted deploy"}
    assert Action("daemon-reload", why="a") == Action("daemon-reload", why="b")


def test_action_validates_and_touches():
    assert Action("nginx-test").validates and not Action("reload", "nginx").validates
    assert Action("reload", "keepalived").touches("keepalived")
    assert Action("enable-restart", "keepalived").touches("keepalived")
    assert not Action("reload", "keepalived").touches("nginx")
    assert not Action("disable-now", "keepalived").touches("keepalived")
    assert not Action("daemon-reload").touches("keepalived")


# ================================================================== NodePlan
def test_add_actions_skips_actions_already_planned():
    p = NodePlan("node1")
    p.add_actions([Action("daemon-reload", why="unit a changed"), Action("enable-restart", "lbtk-vip-lo")])
    p.add_actions([Action("daemon-reload", why="unit b changed"), Action("enable-restart", "lbtk-fwmark"),
                   Action("enable-restart", "lbtk-vip-lo")])
    assert verbs(p.actions) == [("daemon-reload", ""), ("enable-restart", "lbtk-vip-lo"),
                                ("enable-restart", "lbtk-fwmark")]
    assert p.actions[0].why == "unit a changed"            # the first one planned is kept
    assert not p.empty and NodePlan("n").empty


# ================================================================== file_changes
def test_file_changes_create_update_delete_and_mode(env):
    want = desired(env, "node1")
    live = live_files(env, "node1")
    live[keepalived.CONF] = None                                              # missing: create
    live[nginx.SITE] = LiveFile(0o644, b"server { listen 8080; }\n")           # edited: update
    live[DEFAULT] = LiveFile(0o644, DEBIAN_DEFAULT_SITE.encode())    # named in remove_sites: delete
    page = live[nginx.PAGE]
    live[nginx.PAGE] = LiveFile(0o600, page.content)                           # same bytes, mode 600
    state = deploy_state(env, "node1", files=live)
    changes = {ch.file.path: ch for ch in file_changes(want, state, "node1")}
    assert {p: ch.kind for p, ch in changes.items()} == {
        keepalived.CONF: "create", nginx.SITE: "update", DEFAULT: "delete", nginx.PAGE: "mode"}
    site = changes[nginx.SITE].diff
    assert "--- node1:/etc/nginx/sites-enabled/lbtk.conf (live)" in site
    assert "+++ node1:/etc/nginx/sites-enabled/lbtk.conf (inventory)" in site
    assert "-server { listen 8080; }" in site and "+    listen 80 default_server;" in site
    assert "-\tlisten 80 default_server;" in changes[DEFAULT].diff
    assert changes[DEFAULT].file.content is None
    assert changes[nginx.PAGE].diff == "node1:/var/www/lbtk/index.html: mode 600 -> 644\n"
    assert changes[keepalived.CONF].diff.count("\n+") > 20 and "\n-" not in changes[keepalived.CONF].diff


def test_the_nginx_phase_owns_only_what_it_renders(monkeypatch):
    """Without nginx.remove_sites, an operator's site (Debian's default or any other) is not
    rendered, not read and never deleted; with it, exactly the named files are removed."""
    data = lab_data()
    data["nginx"].pop("remove_sites")
    mine = lab_env(monkeypatch, data=data)
    assert [f.path for f in desired(mine, phase="nginx")] == [nginx.SITE, nginx.PAGE]
    assert DEFAULT not in managed_paths(mine.inv, "node1", mine.secrets)
    live = live_files(mine, "node1")
    live[DEFAULT] = LiveFile(0o644, DEBIAN_DEFAULT_SITE.encode())
    assert file_changes(desired(mine), deploy_state(mine, "node1", files=live), "node1") == []
    data["nginx"]["remove_sites"] = ["default", "old-shop"]
    two = lab_env(monkeypatch, data=data)
    gone = [f for f in desired(two, phase="nginx") if f.content is None]
    assert [f.path for f in gone] == [DEFAULT, "/etc/nginx/sites-enabled/old-shop"]
    live = live_files(two, "node1")
    live[DEFAULT] = LiveFile(0o644, DEBIAN_DEFAULT_SITE.encode())
    changes = file_changes(desired(two), deploy_state(two, "node1", files=live), "node1")
    assert [(ch.file.path, ch.kind) for ch in changes] == [(DEFAULT, "delete")]   # old-shop is already gone
    acts = service_actions(Phase.NGINX, {DEFAULT}, deploy_state(two, "node1"), desired(two, phase="nginx"))
    assert verbs(acts) == [("nginx-test", ""), ("reload", "nginx")]


def test_files_equal_to_the_rendered_ones_are_no_change(env):
    state = deploy_state(env, "node2")
    assert file_changes(desired(env, "node2"), state, "node2") == []


def test_diffs_mask_the_vrrp_secret(monkeypatch):
    old = lab_env(monkeypatch, secret="0ldS3cr7")
    new = lab_env(monkeypatch, secret="n3wS3cr7")
    state = deploy_state(new, "node1", files=live_files(old, "node1"))
    changes = file_changes(desired(new, "node1"), state, "node1")
    assert [ch.file.path for ch in changes] == [keepalived.CONF]
    ch = changes[0]
    assert ch.kind == "update" and ch.file.secret and ch.file.mode == 0o600
    assert "n3wS3cr7" in ch.file.content                     # the node gets the secret ...
    assert "n3wS3cr7" not in ch.diff and "0ldS3cr7" not in ch.diff   # ... the screen never does
    assert f"-        auth_pass {MASK}" in ch.diff and f"+        auth_pass {MASK}" in ch.diff
    # a secret this process never resolved (only the node knows it) is masked all the same
    live = live_files(new, "node1")
    live[keepalived.CONF] = LiveFile(0o600, live[keepalived.CONF].content.replace(b"n3wS3cr7", b"Unkn0wn9"))
    (unknown,) = file_changes(desired(new, "node1"), deploy_state(new, "node1", files=live), "node1")
    assert "Unkn0wn9" not in unknown.diff and f"-        auth_pass {MASK}" in unknown.diff
    fresh_conf = file_changes(desired(new, "node1"), fresh(new, "node1"), "node1")
    assert all("n3wS3cr7" not in c.diff for c in fresh_conf)
    assert any(f"+        auth_pass {MASK}" in c.diff for c in fresh_conf)


# ================================================================== service_actions per phase
def test_keepalived_conf_change_reloads_a_running_keepalived(env):
    state = deploy_state(env, "node1")
    acts = service_actions(Phase.KEEPALIVED, {keepalived.CONF}, state, desired(env, phase="keepalived"))
    assert verbs(acts) == [("reload", "keepalived")]
    assert "reload, not restart" in acts[0].why
    assert not any(a.verb in ("restart", "enable-restart") for a in acts)


def test_keepalived_conf_change_starts_and_enables_a_stopped_keepalived(env):
    state = deploy_state(env, "node1", active={"keepalived": "failed"}, enabled={"keepalived": "disabled"})
    acts = service_actions(Phase.KEEPALIVED, {keepalived.CONF}, state, desired(env, phase="keepalived"))
    # enable + start: one `systemctl enable --now` (issue 14: one systemctl call, not two)
    assert verbs(acts) == [("enable-now", "keepalived")]
    assert acts[0].why == "keepalived.conf changed; keepalived was failed; keepalived not enabled at boot"


def test_nothing_changed_still_brings_the_daemon_up(env):
    state = deploy_state(env, "node1", active={"keepalived": "inactive"}, enabled={"keepalived": "disabled"})
    acts = service_actions(Phase.KEEPALIVED, set(), state, desired(env, phase="keepalived"))
    assert verbs(acts) == [("enable-now", "keepalived")]
    up = deploy_state(env, "node1")
    assert service_actions(Phase.KEEPALIVED, set(), up, desired(env, phase="keepalived")) == []


def test_nginx_site_change_validates_first_then_reloads(env):
    state = deploy_state(env, "node1")
    acts = service_actions(Phase.NGINX, {nginx.SITE}, state, desired(env, phase="nginx"))
    assert verbs(acts) == [("nginx-test", ""), ("reload", "nginx")]
    assert acts[0].validates and not acts[1].validates
    removed_default = service_actions(Phase.NGINX, {DEFAULT}, state, desired(env, phase="nginx"))
    assert verbs(removed_default)[0] == ("nginx-test", "")
    page_only = service_actions(Phase.NGINX, {nginx.PAGE}, state, desired(env, phase="nginx"))
    assert verbs(page_only) == [("reload", "nginx")]       # a page is no config: nothing to validate


def test_nginx_change_starts_a_stopped_nginx(env):
    state = deploy_state(env, "node1", active={"nginx": "inactive"})
    acts = service_actions(Phase.NGINX, {nginx.SITE}, state, desired(env, phase="nginx"))
    assert verbs(acts) == [("nginx-test", ""), ("start", "nginx")]


def test_arp_unit_file_change_daemon_reloads_and_restarts_the_oneshot(env):
    state = deploy_state(env, "node1")
    acts = service_actions(Phase.ARP, {arp.SYSCTL, arp.VIP_UNIT}, state, desired(env, phase="arp"))
    assert verbs(acts) == [("sysctl-load", arp.SYSCTL), ("daemon-reload", ""),
                           ("enable-restart", "lbtk-vip-lo")]
    sysctl_only = service_actions(Phase.ARP, {arp.SYSCTL}, state, desired(env, phase="arp"))
    assert verbs(sysctl_only) == [("sysctl-load", arp.SYSCTL)]


def test_fwmark_rules_change_restarts_the_fwmark_unit(env):
    state = deploy_state(env, "node1")
    acts = service_actions(Phase.LVS, {fwmark.RULES}, state, desired(env, phase="lvs"))
    assert verbs(acts) == [("restart", "lbtk-fwmark")]
    both = service_actions(Phase.LVS, {fwmark.RULES, fwmark.UNIT}, state, desired(env, phase="lvs"))
    assert verbs(both) == [("daemon-reload", ""), ("enable-restart", "lbtk-fwmark")]


def test_daemon_args_change_restarts_a_running_keepalived(env):
    other = {**live_files(env, "node1"), keepalived.DEFAULTS: LiveFile(0o644, b'DAEMON_ARGS="--vrrp --log-detail"\n')}
    state = deploy_state(env, "node1", files=other)
    acts = service_actions(Phase.LVS, {keepalived.DEFAULTS}, state, desired(env, phase="lvs"))
    assert verbs(acts) == [("restart", "keepalived")]
    assert "DAEMON_ARGS" in acts[0].why
    stopped = deploy_state(env, "node1", files=other, active={"keepalived": "inactive"})
    assert service_actions(Phase.LVS, {keepalived.DEFAULTS}, stopped, desired(env, phase="lvs")) == []


def test_a_rewritten_defaults_file_with_the_same_args_restarts_nothing(env):
    """An adopted cluster's own /etc/default/keepalived (comments, another quoting) with the very
    DAEMON_ARGS lbtk renders: replacing it needs no restart, which on the MASTER is a failover."""
    wanted = next(f for f in desired(env, phase="lvs") if f.path == keepalived.DEFAULTS).content
    args = next(ln for ln in wanted.splitlines() if ln.startswith("DAEMON_ARGS="))
    own = {**live_files(env, "node1"), keepalived.DEFAULTS: LiveFile(0o644, f"# by hand\n{args}\n".encode())}
    state = deploy_state(env, "node1", files=own)
    assert service_actions(Phase.LVS, {keepalived.DEFAULTS}, state, desired(env, phase="lvs")) == []


def test_units_no_longer_wanted_are_disabled_and_stopped(monkeypatch):
    old = lab_env(monkeypatch)
    data = lab_data()
    data["virtual_servers"] = []                 # no more LVS: no VIP on lo, no fwmark
    new = lab_env(monkeypatch, data=data)
    state = deploy_state(new, "node2", files=live_files(old, "node2"))
    p = plan_node(new, "node2", state, ALL)
    assert {(ch.file.path, ch.kind) for ch in p.changes} >= {
        (arp.VIP_UNIT, "delete"), (arp.SYSCTL, "delete"), (fwmark.UNIT, "delete"), (fwmark.RULES, "delete")}
    assert ("disable", "lbtk-vip-lo") in verbs(p.actions)
    assert ("disable", "lbtk-fwmark") in verbs(p.actions)
    assert verbs(p.actions).count(("daemon-reload", "")) == 1
    assert verbs(p.actions).index(("daemon-reload", "")) < verbs(p.actions).index(("disable", "lbtk-vip-lo"))
    # stopped BEFORE the daemon-reload: after it systemd knows the removed unit only as not-found and
    # runs no ExecStop, so the VIP stayed on lo of a director that stopped being a DR real server
    # (found on the kernel tier, switching kernel.yaml to kernel-nat2.yaml)
    for unit in ("lbtk-vip-lo", "lbtk-fwmark"):
        assert verbs(p.actions).index(("stop", unit)) < verbs(p.actions).index(("daemon-reload", ""))
    assert not any(a.verb == "sysctl-load" for a in p.actions)     # nothing to load from a deleted file
    # already stopped: only the files go
    down = deploy_state(new, "node2", files=live_files(old, "node2"),
                        active={"lbtk-vip-lo": "inactive", "lbtk-fwmark": "inactive"})
    assert not any(a.verb in ("disable", "stop") for a in plan_node(new, "node2", down, ALL).actions)


def test_sync_script_change_runs_it(monkeypatch):
    inv_env = env_of(monkeypatch, _kernel_data())
    state = fresh(inv_env, "node2")
    acts = service_actions(Phase.SYNC_DAEMON, {ipvs_sync.SCRIPT}, state, desired(inv_env, "node2", phase="sync-daemon"))
    assert verbs(acts) == [("run", ipvs_sync.RECONCILE)]
    no_ipvs = desired(inv_env, "node2", ipvs=False, phase="sync-daemon")
    without = fresh(inv_env, "node2", has_ipvs=False)
    assert service_actions(Phase.SYNC_DAEMON, {ipvs_sync.SCRIPT}, without, no_ipvs) == []   # script deleted


def test_a_dropped_sync_daemon_stops_the_kernels_daemons(monkeypatch):
    """The inventory no longer wants the sync daemon: its script goes, and the daemons it started
    stop with it (with backup_only, which the sysctl file now states as 0, a backup daemon left
    running would have kept the director off: found on the kernel tier)."""
    data = _kernel_data()
    data.pop("sync_daemon")
    inv_env = env_of(monkeypatch, data)
    state = fresh(inv_env, "node2")
    gone = desired(inv_env, "node2", phase="sync-daemon")
    assert [f.content for f in gone if f.path == ipvs_sync.SCRIPT] == [None]
    assert verbs(service_actions(Phase.SYNC_DAEMON, {ipvs_sync.SCRIPT}, state, gone)) == [("stop-sync-daemons", "")]


def _kernel_data() -> dict:
    from fabfile.model.loading import load
    inv, _ = load("kernel")
    data = inv.model_dump(exclude_none=True)
    data["vrrp_instances"][0]["authentication"] = {"auth_type": "PASS", "auth_pass_env": "TEST_VRRP_PASS"}
    return data


# ================================================================== plan_node
def test_a_second_plan_on_an_up_to_date_node_is_empty(env):
    for node in ("node1", "node2", "node3"):
        p = plan_node(env, node, deploy_state(env, node), ALL)
        assert p.empty and p.changes == [] and p.actions == [], (node, p)
        assert p.notes == ["sync daemon: keepalived runs it (lvs_sync_daemon eth0 ... id 1); "
                           "master/backup follows VRRP state"]


def test_first_deploy_plan_converges_in_one_pass(env):
    for node in ("node1", "node3"):
        s0 = fresh(env, node)
        p0 = plan_node(env, node, s0, ALL)
        assert {ch.kind for ch in p0.changes} == {"create"}
        assert len(p0.changes) == 9      # 8 managed files and the secret's fingerprint record
        # two unit files changed, one daemon-reload (NodePlan.add_actions)
        assert verbs(p0.actions).count(("daemon-reload", "")) == 1
        assert verbs(p0.actions) == [
            ("sysctl-load", arp.SYSCTL), ("daemon-reload", ""), ("enable-restart", "lbtk-vip-lo"),
            ("nginx-test", ""), ("start", "nginx"), ("enable-restart", "lbtk-fwmark"),
            ("enable-now", "keepalived")]
        p1 = plan_node(env, node, after(env, node, s0, p0), ALL)
        assert p1.empty, p1


def test_drift_is_repaired_and_then_the_plan_is_empty(env):
    live = live_files(env, "node2")
    conf = live[keepalived.CONF]
    live[keepalived.CONF] = LiveFile(0o644, conf.content.replace(b"priority 90", b"priority 250"))
    s = deploy_state(env, "node2", files=live, active={"nginx": "failed"}, enabled={"lbtk-vip-lo": "disabled"})
    p = plan_node(env, "node2", s, ALL)
    assert [(ch.file.path, ch.kind) for ch in p.changes] == [(keepalived.CONF, "update")]
    assert "-    priority 250" in p.changes[0].diff and "+    priority 90" in p.changes[0].diff
    assert verbs(p.actions) == [("enable", "lbtk-vip-lo"), ("start", "nginx"), ("reload", "keepalived")]
    assert plan_node(env, "node2", after(env, "node2", s, p), ALL).empty


def test_without_ipvs_keepalived_runs_vrrp_only(env):
    s = deploy_state(env, "node1", has_ipvs=False, files=live_files(env, "node1", ipvs=False))
    p = plan_node(env, "node1", s, ALL)
    assert p.empty
    assert "lab: kernel has no IPVS: keepalived runs VRRP-only (--vrrp); virtual_server blocks are inert" in p.notes
    assert "sync daemon: kernel has no IPVS, no connection sync" in p.notes
    assert 'DAEMON_ARGS="--vrrp"' in content(env, keepalived.DEFAULTS, ipvs=False)
    assert 'DAEMON_ARGS=""' in content(env, keepalived.DEFAULTS, ipvs=True)
    assert "net.ipv4.vs." not in content(env, arp.SYSCTL, ipvs=False)
    assert "lvs_sync_daemon" not in content(env, keepalived.CONF, ipvs=False)


MODPROBE_SAID = "modprobe: FATAL: Module ip_vs not found in directory /lib/modules/6.1.0-18-amd64"


def production_env(monkeypatch):
    """The lab inventory without its `lab:` section: what the lab hook does not claim."""
    data = lab_data()
    del data["lab"]
    for n in data["nodes"]:
        n.pop("lab", None)
    for vi in data["vrrp_instances"]:      # generate: is for lab inventories only
        (vi.get("authentication") or {}).pop("generate", None)
    return lab_env(monkeypatch, data=data)


@pytest.mark.parametrize("phases", [ALL, [Phase.LVS], [Phase.SYNC_DAEMON]])
def test_without_ipvs_a_production_deploy_is_one_line_naming_the_node_and_modprobe(monkeypatch, phases):
    env = production_env(monkeypatch)
    s = deploy_state(env, "node2", has_ipvs=False, files=live_files(env, "node2", ipvs=False),
                     modprobe=MODPROBE_SAID + "\n")
    assert (s.has_ipvs, s.no_ipvs_why) == (False, MODPROBE_SAID)
    with pytest.raises(LbtkError) as e:
        plan_runs(env, {"node1": deploy_state(env, "node1"), "node2": s}, phases)
    msg = str(e.value)
    assert "\n" not in msg and e.value.exit_code == 2
    assert msg.startswith("node2: the kernel has no IPVS") and MODPROBE_SAID in msg
    assert msg.endswith("nothing was changed on any node")


def test_without_ipvs_production_phases_that_need_no_ipvs_and_inventories_that_balance_nothing_go_ahead(monkeypatch):
    env = production_env(monkeypatch)
    s = deploy_state(env, "node1", has_ipvs=False, files=live_files(env, "node1", ipvs=False))
    assert plan_node(env, "node1", s, [Phase.NGINX]).empty
    data = lab_data()
    for key in ("lab", "virtual_servers", "sync_daemon"):
        del data[key]
    for vi in data["vrrp_instances"]:      # generate: is for lab inventories only
        (vi.get("authentication") or {}).pop("generate", None)
    vrrp_only = lab_env(monkeypatch, data=data)
    s = deploy_state(vrrp_only, "node1", has_ipvs=False, files=live_files(vrrp_only, "node1", ipvs=False))
    assert "kernel has no IPVS: keepalived runs VRRP-only (--vrrp); virtual_server blocks are inert" in \
        plan_node(vrrp_only, "node1", s, ALL).notes      # not the lab's words: it is no lab


def test_the_ipvs_fact_keeps_what_modprobe_said(tmp_path):
    """IPVS_AVAILABLE run by a shell whose modprobe fails: `no`, and modprobe's last stderr line."""
    import subprocess
    (tmp_path / "modprobe").write_text(f"#!/bin/sh\necho 'modprobe: WARNING: x' >&2\necho '{MODPROBE_SAID}' >&2\nexit 1\n")
    (tmp_path / "modprobe").chmod(0o755)
    cmd = F.IPVS_AVAILABLE.command.replace("/proc/net/ip_vs", str(tmp_path / "ip_vs"))
    r = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=10,
                       env={"PATH": f"{tmp_path}:/usr/bin:/bin"})
    from fabfile.parsers.lbtk import Raw
    assert F.IPVS_AVAILABLE.parse(Raw(r.stdout, r.stderr, r.returncode)) == (False, MODPROBE_SAID)
    (tmp_path / "ip_vs").write_text("")
    r = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=10)
    assert F.IPVS_AVAILABLE.parse(Raw(r.stdout, r.stderr, r.returncode)) == (True, "")


def test_a_node_that_lost_ipvs_gets_vrrp_only_daemon_args_and_a_restart(env):
    s = deploy_state(env, "node1", has_ipvs=False, files=live_files(env, "node1", ipvs=True))  # rendered with IPVS
    p = plan_node(env, "node1", s, ALL)
    changed = {ch.file.path: ch for ch in p.changes}
    assert set(changed) == {keepalived.DEFAULTS, arp.SYSCTL, keepalived.CONF}
    assert '+DAEMON_ARGS="--vrrp"' in changed[keepalived.DEFAULTS].diff
    assert "-net.ipv4.vs.expire_nodest_conn = 1" in changed[arp.SYSCTL].diff
    assert "-    lvs_sync_daemon eth0 VI_1 id 1" in changed[keepalived.CONF].diff
    assert ("restart", "keepalived") in verbs(p.actions)
    assert any("no IPVS" in n for n in p.notes)


@pytest.mark.parametrize("phase, binary", [("keepalived", "keepalived"), ("lvs", "keepalived"), ("nginx", "nginx")])
def test_a_missing_binary_is_one_line_error(env, phase, binary):
    s = deploy_state(env, "node3", binaries=tuple(b for b in F.BINARIES if b != binary))
    with pytest.raises(LbtkError) as e:
        plan_node(env, "node3", s, [phase])
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"node3: {binary} is not installed (no {binary} on PATH)")
    assert msg.endswith("nothing was changed on any node")
    assert plan_node(env, "node3", s, ["arp"]).empty         # a phase that drives no daemon


def _dpkg_without(*names: str) -> str:
    return "".join(ln + "\n" for ln in DPKG_CAPTURE.splitlines() if ln.split("\t")[0] not in names)


def test_install_detect_reports_missing_packages(env):
    s = deploy_state(env, "node1", dpkg=_dpkg_without("keepalived", "nginx", "nginx-light"))
    assert "keepalived" not in s.packages and not s.nginx_installed
    with pytest.raises(LbtkError, match=r"^node1: keepalived, nginx-light not installed and install\.method "
                                        r"is 'detect'"):
        plan_node(env, "node1", s, ["install"])
    assert plan_node(env, "node1", deploy_state(env, "node1"), ["install"]).empty


def test_install_apt_plans_one_apt_get(monkeypatch):
    data = lab_data()
    data["install"] = {"method": "apt"}
    e = lab_env(monkeypatch, data=data)
    s = deploy_state(e, "node1", dpkg=_dpkg_without("ipvsadm", "nginx", "nginx-light"),
                     binaries=("keepalived", "iptables"))
    p = plan_node(e, "node1", s, ["install"])
    assert p.actions == [Action("apt-install", arg="ipvsadm nginx-light")]
    assert p.actions[0].shell() == "DEBIAN_FRONTEND=noninteractive apt-get install -y -q ipvsadm nginx-light"
    # nginx-core alone also counts as nginx
    core = _dpkg_without("nginx", "nginx-light").replace("nginx-core\t\tun ", "nginx-core\t1.22.1-9\tii ")
    assert plan_node(e, "node1", deploy_state(e, "node1", dpkg=core), ["install"]).empty
    # the phases after install still need the binaries on this run
    with pytest.raises(LbtkError, match="nginx is not installed"):
        plan_node(e, "node1", s, ["install", "nginx"])


def test_owed_actions_come_back_typed_and_first(env):
    owed = [Action("daemon-reload"), Action("reload", "keepalived"), Action("run", arg=ipvs_sync.RECONCILE)]
    text = "".join(a.record() + "\n" for a in owed) + "frobnicate\tnginx\t\n"
    live = live_files(env, "node1")
    live[keepalived.CONF] = LiveFile(0o600, b"# an older keepalived.conf\n")
    s = deploy_state(env, "node1", pending=text, files=live)
    assert s.pending[0] == ("daemon-reload", "", "")
    p = plan_node(env, "node1", s, ALL)
    assert p.actions[:3] == owed and all(isinstance(a, Action) for a in p.actions)
    assert p.actions[1].why == "owed by an interrupted deploy"
    assert verbs(p.actions).count(("reload", "keepalived")) == 1     # the conf change needs it too
    assert "finishing an interrupted deploy: daemon-reload; reload keepalived; /usr/local/sbin/lbtk-ipvs-sync" in p.notes
    assert "ignored an owed action this lbtk does not know: frobnicate nginx " in p.notes
    assert not any(a.verb == "frobnicate" for a in p.actions)
    # an up-to-date node still runs what it owes
    owed_only = plan_node(env, "node2", deploy_state(env, "node2", pending=owed[1].record() + "\n"), ALL)
    assert owed_only.changes == [] and owed_only.actions == [owed[1]] and not owed_only.empty


def test_plan_runs_refuses_an_unknown_phase(env):
    with pytest.raises(LbtkError, match=r"^unknown phase 'keepalive' — phases are install, arp, nginx"):
        plan_runs(env, {"node1": deploy_state(env, "node1")}, ["keepalive"])
    runs = plan_runs(env, {n: deploy_state(env, n) for n in ("node1", "node2")}, ["keepalived"])
    assert [(r.node, r.plan.empty) for r in runs] == [("node1", True), ("node2", True)]


# ================================================================== wire signature
def test_wire_signature_is_what_the_adverts_carry(env):
    sig = wire_signature(content(env, keepalived.CONF))
    assert sig == ["vrrp_instance VI_1 {", "virtual_router_id 51", "advert_int 1", "unicast_src_ip 10.189.0.11",
                   "auth_type PASS", "auth_pass lab3cr3t", "virtual_ipaddress {", "10.189.0.100"]
    # priority, state, peers and the virtual servers are not on the wire
    other = content(env, keepalived.CONF).replace("priority 100", "priority 120").replace("delay_loop 2", "delay_loop 9")
    assert wire_signature(other) == sig


def test_multi_master_wire_signature_has_every_instance(monkeypatch):
    from fabfile.model.loading import load
    mm, _ = load("tests/inventories/good/multi_master.yaml")
    e = env_of(monkeypatch, mm.model_dump(exclude_none=True))
    sig = wire_signature(content(e, keepalived.CONF, node="node2"))
    assert [s for s in sig if s.startswith("virtual_router_id")] == [
        "virtual_router_id 61", "virtual_router_id 62", "virtual_router_id 63"]
    assert [s for s in sig if s.startswith("10.189.0.")] == ["10.189.0.101", "10.189.0.102", "10.189.0.103"]


# ================================================================== rolling batches
def running(env_old, env_new, holder="node1", phases=ALL, **kw):
    """Runs of env_new's plans on a cluster running env_old's files, `holder` holding the VIP."""
    states = {n.name: deploy_state(env_old, n.name, on_iface=(VIP,) if n.name == holder else (),
                                   on_lo=(VIP,), **kw) for n in env_old.inv.nodes}
    return plan_runs(env_new, states, phases)


def _changed(monkeypatch, edit):
    data = lab_data()
    edit(data)
    return lab_env(monkeypatch, data=data)


def test_first_deploy_takes_the_planned_master_first_then_the_rest_in_parallel(env):
    """No keepalived anywhere: the VRRP plan's MASTER alone, then every other node at once (its
    master-down wait overlaps their deploy)."""
    runs = plan_runs(env, {n: fresh(env, n) for n in ("node3", "node2", "node1")}, ALL)
    assert all(not r.plan.empty for r in runs)
    assert expected_holders(env.inv) == {VIP: "node1"}
    assert rolling_batches(env, runs) == ([["node1"], ["node3", "node2"]], None)


def test_first_deploy_takes_every_planned_owner_first(monkeypatch):
    """A second instance owned by node3: both owners (node1, node3) in the first batch."""
    def second(d):
        vi = copy.deepcopy(d["vrrp_instances"][0])
        vi.update(name="VI_2", virtual_router_id=52, owner="node3", virtual_ipaddress=["10.189.0.105"])
        d["vrrp_instances"].append(vi)
    env = _changed(monkeypatch, second)
    assert set(expected_holders(env.inv).values()) == {"node1", "node3"}
    runs = plan_runs(env, {n: fresh(env, n) for n in ("node1", "node2", "node3")}, ALL)
    assert rolling_batches(env, runs) == ([["node1", "node3"], ["node2"]], None)


def test_first_deploy_without_the_master_among_the_nodes_is_one_batch(env):
    """--node node2 --node node3 on fresh nodes: no planned owner among them, one parallel batch;
    a single node is one batch too."""
    runs = plan_runs(env, {n: fresh(env, n) for n in ("node2", "node3")}, ALL)
    assert rolling_batches(env, runs) == ([["node2", "node3"]], None)
    assert rolling_batches(env, plan_runs(env, {"node1": fresh(env, "node1")}, ALL)) == ([["node1"]], None)


def test_master_first_only_while_no_keepalived_runs(env):
    """One node already runs keepalived (not a first deploy): the rolling order of backups by
    ascending priority (nothing holds the VIP yet), as before."""
    states = {n: fresh(env, n) for n in ("node1", "node2", "node3")}
    states["node3"] = deploy_state(env, "node3", files={p: None for p in live_files(env, "node3")},
                                   active={u: "inactive" for u in F.UNITS} | {"keepalived": "active"})
    assert rolling_batches(env, plan_runs(env, states, ALL)) == ([["node3"], ["node2"], ["node1"]], None)


def test_backups_first_by_ascending_priority_vip_holder_last(monkeypatch):
    old = lab_env(monkeypatch)
    new = _changed(monkeypatch, lambda d: d["virtual_servers"][0].update(delay_loop=5))
    runs = running(old, new, holder="node1")
    assert all(any(ch.file.path == keepalived.CONF for ch in r.plan.changes) for r in runs)
    assert not any(changes_wire(r.plan.changes, r.facts.files) for r in runs)
    # --batch 1 rolls one by one (a delay_loop change alone is reload-only: tests/unit/test_roll_plan.py)
    assert rolling_batches(new, runs, batch=1) == ([["node3"], ["node2"], ["node1"]], None)
    # after a failover node2 holds the VIP: it goes last
    assert rolling_batches(new, running(old, new, holder="node2"), batch=1) == ([["node3"], ["node1"], ["node2"]], None)
    assert planned_moves(new, runs) == []


def test_batch_takes_the_backups_n_at_a_time_and_the_deploy_says_so(monkeypatch):
    from fabfile.views.deploy import rolled
    old = lab_env(monkeypatch)
    new = _changed(monkeypatch, lambda d: d["virtual_servers"][0].update(delay_loop=5))
    runs = running(old, new, holder="node1")
    batches, why = rolling_batches(new, runs, batch=2)
    assert (batches, why) == ([["node3", "node2"], ["node1"]], None)
    assert rolled(batches) == "batches: node3+node2, then node1"
    assert rolled(rolling_batches(new, runs)[0]) == "batches: node3, then node2, then node1"


@pytest.mark.parametrize("what, edit", [
    ("virtual_router_id", lambda d: d["vrrp_instances"][0].update(virtual_router_id=52)),
    ("advert_int", lambda d: d["vrrp_instances"][0].update(advert_int=2)),
    ("first VIP", lambda d: (d["vrrp_instances"][0].update(virtual_ipaddress=["10.189.0.101"]),
                             d["virtual_servers"][0].update(vip="10.189.0.101"))),
])
def test_an_advert_visible_change_is_one_batch_with_the_reason(monkeypatch, what, edit):
    old = lab_env(monkeypatch)
    new = _changed(monkeypatch, edit)
    runs = running(old, new)
    assert all(changes_wire(r.plan.changes, r.facts.files) for r in runs)
    batches, why = rolling_batches(new, runs)
    assert batches == [["node1", "node2", "node3"]]
    assert why.startswith("advert-visible change (virtual_router_id, advert_int, auth or first VIP): "
                          "applied to every node at once")


def test_a_new_vrrp_secret_is_one_batch(monkeypatch):
    old = lab_env(monkeypatch, secret="0ldS3cr7")
    new = lab_env(monkeypatch, secret="n3wS3cr7")
    runs = running(old, new)
    assert [ch.file.path for r in runs for ch in r.plan.changes] == [keepalived.CONF, F.SECRET_RECORD_PATH] * 3
    batches, why = rolling_batches(new, runs)
    assert batches == [["node1", "node2", "node3"]] and "advert-visible" in why


def test_an_extra_vip_is_not_advert_visible(monkeypatch):
    """VIPs after the first go to virtual_ipaddress_excluded: adding one rolls node by node."""
    old = lab_env(monkeypatch)
    new = _changed(monkeypatch, lambda d: d["vrrp_instances"][0].update(
        virtual_ipaddress=["10.189.0.100", "10.189.0.101"]))
    runs = running(old, new)
    assert "virtual_ipaddress_excluded {\n        10.189.0.101" in content(new, keepalived.CONF)
    assert rolling_batches(new, runs) == ([["node3"], ["node2"], ["node1"]], None)


def test_a_priority_change_that_moves_the_vip_is_a_planned_failover(monkeypatch):
    old = lab_env(monkeypatch)
    new = _changed(monkeypatch, lambda d: d["nodes"][1].update(priority=110))
    runs = running(old, new, holder="node1")
    assert planned_moves(new, runs) == [PlannedMove("10.189.0.100", ("node1",), "node2", nopreempt=False)]
    assert [move_line(m) for m in planned_moves(new, runs)] == [
        "VIP 10.189.0.100 will move node1 -> node2 (a planned failover)"]
    # priority is not on the wire: rolling, lowest priority first, the holder last
    assert rolling_batches(new, runs) == ([["node3"], ["node2"], ["node1"]], None)
    # already on the new owner: no move
    assert planned_moves(new, running(old, new, holder="node2")) == []


def test_nopreempt_vip_stays_where_it_is(monkeypatch):
    from fabfile.model.loading import load
    feat, _ = load("tests/inventories/good/http_get_scripts.yaml")
    e = env_of(monkeypatch, feat.model_dump(exclude_none=True))
    states = {"a": deploy_state(e, "a"), "b": deploy_state(e, "b", on_iface=(VIP,))}
    runs = plan_runs(e, states, ["keepalived"])
    assert planned_moves(e, runs) == [PlannedMove(VIP, ("b",), "a", nopreempt=True)]
    assert [move_line(m) for m in planned_moves(e, runs)] == [
        "VIP 10.189.0.100 stays on b: nopreempt (the new priorities apply at the next failover)"]
    # held by its owner (the top priority), or by nobody: nothing to say
    assert planned_moves(e, plan_runs(e, {"a": deploy_state(e, "a", on_iface=(VIP,)),
                                          "b": deploy_state(e, "b")}, ["keepalived"])) == []
    assert planned_moves(e, plan_runs(e, {"a": deploy_state(e, "a"), "b": deploy_state(e, "b")},
                                      ["keepalived"])) == []


def test_assumed_render_facts_are_a_director_with_ipvs():
    assert ASSUMED == RenderFacts(ipvs=True)
    from fabfile.infra.facts import NodeState
    assert RenderFacts.of(NodeState("n")) == RenderFacts(ipvs=False)          # IPVS not observed: no IPVS
    assert RenderFacts.of(NodeState("n", has_ipvs=True)) == ASSUMED


def test_adding_a_node_to_a_running_cluster_rolls(monkeypatch):
    old = lab_env(monkeypatch)
    data = lab_data()
    data["nodes"].append({"name": "node4", "host": "10.189.0.14", "priority": 70, "mac": "02:bd:00:00:01:14"})
    data["virtual_servers"][0]["real_servers"].append(dict(data["virtual_servers"][0]["real_servers"][0], node="node4"))
    new = lab_env(monkeypatch, data=data)
    states = {n: deploy_state(old, n, on_iface=(VIP,) if n == "node1" else (), on_lo=(VIP,))
              for n in ("node1", "node2", "node3")}
    states["node4"] = fresh(new, "node4")
    runs = plan_runs(new, states, ALL)
    sigs = {r.node: wire_signature(next(f.content for f in desired(new, r.node) if f.path == keepalived.CONF))
            for r in runs}
    old_sig = wire_signature(content(old, keepalived.CONF))
    assert sigs["node1"] == old_sig                    # nothing the adverts carry changed on the running nodes
    batches, why = rolling_batches(new, runs)
    assert why is None
    assert batches[-1] == ["node1"]                    # the VIP holder last, as on any rolling deploy


def test_batch_groups_backups_and_keeps_holders_one_by_one(monkeypatch):
    """--batch N (Ansible's serial): backups N at a time, lowest priority first; VIP holders alone."""
    old = lab_env(monkeypatch)
    new = _changed(monkeypatch, lambda d: d["virtual_servers"][0].update(delay_loop=5))
    runs = running(old, new, holder="node1")
    assert rolling_batches(new, runs, batch=2) == ([["node3", "node2"], ["node1"]], None)
    assert rolling_batches(new, runs, batch=5) == ([["node3", "node2"], ["node1"]], None)


def test_service_actions_run_in_one_round_trip_and_stop_at_the_first_failure():
    """fabfile.core.actions.script, run by a real sh, read back by parsers.lbtk.parse_action_run."""
    import subprocess
    from fabfile.core.actions import script
    from fabfile.parsers import ParseError
    from fabfile.parsers.lbtk import parse_action_run
    acts = [Action("run", arg="/bin/true"), Action("run", arg="/bin/sh -c 'echo boom >&2; exit 3'"),
            Action("run", arg="/bin/true")]
    acts[1] = Action("run", arg="/bin/false")
    out = subprocess.run(["sh", "-c", script(acts)], capture_output=True, text=True).stdout
    assert parse_action_run(out, 3) == ([0], (1, 1, ""))
    ok = [Action("run", arg="/bin/true")] * 4
    out = subprocess.run(["sh", "-c", script(ok)], capture_output=True, text=True).stdout
    assert parse_action_run(out, 4) == ([0, 1, 2, 3], None)
    with pytest.raises(ParseError, match="2 of 4 actions reported"):
        parse_action_run("@@act 0 ok\n@@act 1 ok\n", 4)


# ================================================================== nginx -t refuses a second default server
def _nginx_fixture(name: str) -> str:
    from .core_fixtures import FX
    return (FX / "nginx_t" / name).read_text()


@pytest.mark.parametrize("site", ["default", "zz-shop"])
def test_a_conflicting_site_is_one_line_naming_it_and_the_key(site):
    """nginx names the second default server in include order: lbtk.conf when the operator's site
    sorts before it (Debian's default), the operator's site when it sorts after: both are named."""
    from fabfile.ops.apply import default_server_conflict
    from fabfile.parsers.nginx_t import parse_default_listens, parse_duplicate_default
    dup = parse_duplicate_default(_nginx_fixture(f"test_duplicate_{site}.stderr"))
    msg = default_server_conflict("node3", dup, parse_default_listens(_nginx_fixture(f"defaults_duplicate_{site}.txt")))
    assert "\n" not in msg and msg.startswith("node3: nginx -t refused /etc/nginx/sites-enabled/lbtk.conf: ")
    assert f"/etc/nginx/sites-enabled/{site} (line 22) also claims default_server on 0.0.0.0:80" in msg
    assert f"nginx.remove_sites: [{site}]" in msg and "previous files restored, nothing reloaded" in msg


def test_a_conflict_outside_sites_enabled_or_not_found():
    from fabfile.ops.apply import default_server_conflict
    from fabfile.parsers.nginx_t import DefaultListen, DuplicateDefault
    dup = DuplicateDefault("0.0.0.0:80", nginx.SITE, 3)
    conf_d = default_server_conflict("n", dup, [DefaultListen("/etc/nginx/conf.d/shop.conf", 2, "80"),
                                                DefaultListen(nginx.SITE, 3, "80")])
    assert "/etc/nginx/conf.d/shop.conf (line 2)" in conf_d and "removes only files in /etc/nginx/sites-enabled/" in conf_d
    other_port = default_server_conflict("n", dup, [DefaultListen("/etc/nginx/sites-enabled/x", 1, "[::]:80")])
    assert "another file nginx reads also claims default_server on 0.0.0.0:80" in other_port
    assert "nginx.remove_sites" in other_port


def test_render_node_memo_hands_out_fresh_lists_and_tells_inventories_secrets_and_facts_apart(env, monkeypatch):
    first = render_node(env.inv, "node1", env.secrets, ASSUMED)
    first.append("scribbled by a caller")           # plan_node appends to the list it gets
    again = render_node(env.inv, "node1", env.secrets, ASSUMED)
    assert "scribbled by a caller" not in again and again == first[:-1]
    other_secret = lab_env(monkeypatch, secret="an0ther")
    conf = keepalived.CONF
    assert content(other_secret, conf) != content(env, conf) and "an0ther" in content(other_secret, conf)
    data = lab_data()
    data["vrrp_instances"][0]["advert_int"] = 3
    changed = lab_env(monkeypatch, data=data)
    assert "advert_int 3" in content(changed, conf) and "advert_int 3" not in content(env, conf)
    assert desired(env, ipvs=False) != desired(env, ipvs=True)     # the facts are part of the key


def test_every_inventory_names_the_same_paths_whatever_the_facts(monkeypatch):
    """managed_paths renders once (ASSUMED): every renderer names its paths whatever the facts, a
    file a fact rules out coming as content None. Held for every shipped and test inventory (the
    generator holds it for its shapes: tests/unit/test_generative_inventory.py)."""
    from pathlib import Path
    from fabfile.model.loading import inventory_dir, load
    paths = sorted(inventory_dir().glob("*.yaml")) + sorted((Path(__file__).parents[1] / "inventories/good").glob("*.yaml"))
    monkeypatch.setenv("LAB_VRRP_PASS", "s3cr3t")
    seen = 0
    for p in paths:
        inv, _ = load(str(p))
        secrets = {vi.name: "s3cr3t" for vi in inv.vrrp_instances}
        for n in inv.nodes:
            variants = [[f.path for f in render_node(inv, n.name, secrets, facts)] for facts in
                        (ASSUMED, RenderFacts(ipvs=False), RenderFacts(ipvs=True, shipped_before=("/usr/local/bin/x",)))]
            assert variants[0] == variants[1] and set(variants[0]) <= set(variants[2]), (p.name, n.name)
        seen += 1
    assert seen >= 20
