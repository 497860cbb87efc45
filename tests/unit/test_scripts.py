"""scripts: the files an inventory's commands run, shipped from the repository or present on the nodes:
rendering (root 0755, the record of what was shipped, removal of a dropped one), the plan (a new
script reloads keepalived, a changed one alone does not), deploy's on-node check of declared-present
scripts, and `inv check` laying them out for the real keepalived -t."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from fabfile.core.phase import Phase
from fabfile.core.plan import file_changes, service_actions
from fabfile.core.render import ASSUMED, RenderFacts, render_node
from fabfile.core.render.scripts import MANIFEST, MODE, STUB, stand_ins
from fabfile.infra import facts as F
from fabfile.model.loading import parse
from fabfile.ops.deploy import deploy_facts, plan_node
from fabfile.errors import LbtkError
from fabfile.parsers import ParseError
from fabfile.parsers.lbtk import LiveFile
from fabfile.parsers.lbtk_scripts import parse_manifest, parse_script_states, render_manifest
from tests.unit.core_fixtures import deploy_state, env_of, live_files

ROOT = Path(__file__).resolve().parents[2]
CASE = ROOT / "tests/inventories/good/scripts_shipped.yaml"
CHECK = "/etc/keepalived/scripts/check_nginx.sh"
ON_MASTER = "/etc/keepalived/scripts/on_master.sh"
PRESENT = "/usr/local/sbin/site-health"


def data() -> dict:
    return yaml.safe_load(CASE.read_text())


def by_path(files):
    return {f.path: f for f in files}


def test_shipped_scripts_render_root_0755_in_the_keepalived_phase():
    inv = parse(data(), "scripts.yaml")
    files = by_path(render_node(inv, "a", {}, ASSUMED))
    for path in (CHECK, ON_MASTER):
        assert files[path].mode == MODE == 0o755 and files[path].phase is Phase.KEEPALIVED
    assert files[CHECK].content == (ROOT / "tests/inventories/scripts/check_nginx.sh").read_text()
    assert files[ON_MASTER].content.startswith("#!/bin/sh\n")
    assert PRESENT not in files                                   # the node's own: nothing shipped
    assert parse_manifest(files[MANIFEST].content.encode()) == (CHECK, ON_MASTER)
    order = list(files)
    assert order.index(CHECK) < order.index("/etc/keepalived/keepalived.conf")


def test_no_scripts_renders_no_record():
    d = data()
    d.pop("scripts")
    d["vrrp_scripts"] = {}
    d["vrrp_instances"][0].pop("track_script")
    d["vrrp_instances"][0].pop("notify_master")
    files = by_path(render_node(parse(d, "s.yaml"), "a", {}, ASSUMED))
    assert files[MANIFEST].content is None


def test_a_dropped_script_lbtk_shipped_is_removed_unread_and_reloads(monkeypatch):
    d = data()
    del d["scripts"][ON_MASTER]
    d["vrrp_instances"][0].pop("notify_master")
    env = env_of(monkeypatch, d)
    facts = RenderFacts(ipvs=True, shipped_before=(CHECK, ON_MASTER, PRESENT))
    want = render_node(env.inv, "a", {}, facts)
    gone = by_path(want)[ON_MASTER]
    assert gone.content is None and gone.recorded
    assert PRESENT not in by_path(want)       # declared present now: the node's, never removed
    state = deploy_state(env, "a")
    changes = {c.file.path: c for c in file_changes(want, state, "a")}
    assert changes[ON_MASTER].kind == "delete" and "no longer names it" in changes[ON_MASTER].diff
    acts = service_actions(Phase.KEEPALIVED, {ON_MASTER}, state, want)
    assert [a.verb for a in acts] == ["reload"] and ON_MASTER in acts[0].why


def test_a_new_script_reloads_keepalived_a_changed_one_does_not(monkeypatch):
    env = env_of(monkeypatch, data())
    want = render_node(env.inv, "a", {}, ASSUMED)
    files = live_files(env, "a")
    without = {**files, CHECK: None}
    state = deploy_state(env, "a", files=without)
    assert [c.kind for c in file_changes(want, state, "a")] == ["create"]
    assert [a.verb for a in service_actions(Phase.KEEPALIVED, {CHECK}, state, want)] == ["reload"]
    old = {**files, CHECK: LiveFile(MODE, b"#!/bin/sh\nexit 1\n")}
    state = deploy_state(env, "a", files=old)
    assert [c.kind for c in file_changes(want, state, "a")] == ["update"]
    assert service_actions(Phase.KEEPALIVED, {CHECK}, state, want) == []
    noexec = {**files, CHECK: LiveFile(0o644, files[CHECK].content)}
    state = deploy_state(env, "a", files=noexec)
    assert [c.kind for c in file_changes(want, state, "a")] == ["mode"]
    assert [a.verb for a in service_actions(Phase.KEEPALIVED, {CHECK}, state, want)] == ["reload"]


def test_record_from_the_node_feeds_render_facts(monkeypatch):
    env = env_of(monkeypatch, data())
    state = deploy_state(env, "a")
    assert RenderFacts.of(state).shipped_before == (CHECK, ON_MASTER)


def test_deploy_reads_declared_present_scripts_and_refuses_a_missing_one(monkeypatch):
    env = env_of(monkeypatch, data())
    extra = deploy_facts(env, ["a"])["a"]
    fact = next(f for f in extra if f.name == "script_files")
    assert PRESENT in fact.command and CHECK not in fact.command
    state = deploy_state(env, "a")
    state.script_files = {PRESENT: "ok"}
    plan_node(env, "a", state, [Phase.KEEPALIVED])
    for what, words in (("missing", "missing"), ("noexec", "not executable")):
        state.script_files = {PRESENT: what}
        with pytest.raises(LbtkError) as e:
            plan_node(env, "a", state, [Phase.KEEPALIVED])
        assert str(e.value).startswith(f"a: {PRESENT} is {words}") and "\n" not in str(e.value)


def test_no_present_scripts_no_extra_fact(monkeypatch):
    d = data()
    d["scripts"] = {k: v for k, v in d["scripts"].items() if not v.get("present")}
    d["vrrp_scripts"].pop("chk_site")
    d["vrrp_instances"][0]["track_script"] = ["chk_nginx"]
    env = env_of(monkeypatch, d)
    assert [f.name for f in deploy_facts(env, ["a"])["a"]] == ["files"]


def test_stand_ins_ship_content_and_stub_present_ones():
    inv = parse(data(), "scripts.yaml")
    s = stand_ins(inv)
    assert s[PRESENT] == STUB and s[CHECK].startswith("#!") and set(s) == {CHECK, ON_MASTER, PRESENT}


def test_parsers():
    assert parse_manifest(render_manifest([CHECK, ON_MASTER]).encode()) == (CHECK, ON_MASTER)
    assert parse_manifest(b"relative/x\n/a b\n" + CHECK.encode()) == (CHECK,)
    assert parse_manifest(None) == ()
    assert parse_script_states(f"ok {CHECK}\nmissing {PRESENT}\n", [CHECK, PRESENT]) == {CHECK: "ok",
                                                                                       PRESENT: "missing"}
    for bad in (f"gone {CHECK}\n", f"ok /elsewhere\nok {CHECK}\n", ""):
        with pytest.raises(ParseError):
            parse_script_states(bad, [CHECK])


def test_model_accepts_each_kind_and_refuses_a_shipped_lbtk_name():
    inv = parse(data(), "scripts.yaml")
    assert inv.scripts[PRESENT].present and inv.scripts[CHECK].shipped
    d = data()
    d["scripts"]["/usr/local/sbin/lbtk-mine"] = {"content": "#!/bin/sh\n"}
    with pytest.raises(Exception, match="lbtk keeps for its own"):
        parse(d, "scripts.yaml")


needs_root_keepalived = pytest.mark.skipif(
    not (shutil.which("keepalived") or Path("/usr/sbin/keepalived").exists()) or not hasattr(__import__("os"), "geteuid")
    or __import__("os").geteuid() != 0, reason="keepalived -t with namespaces needs root and keepalived")


@needs_root_keepalived
def test_inv_check_passes_a_valid_inventory_whose_scripts_exist_only_on_the_nodes(monkeypatch):
    from tests.unit.test_inventory_errors import check_in_process
    code, lines = check_in_process(CASE, monkeypatch)
    assert (code, lines) == (0, [])


@needs_root_keepalived
def test_check_without_the_layout_would_report_them(monkeypatch):
    from fabfile.infra.confcheck import keepalived_check
    from fabfile.core.render.keepalived import CONF
    inv = parse(data(), "scripts.yaml")
    conf = by_path(render_node(inv, "a", {}, ASSUMED))[CONF].content
    bare = keepalived_check(inv, inv.nodes[0], conf)
    assert bare.verdict == "warnings" and any("chk_site since not found" in m for m in bare.messages)
    one_short = {k: v for k, v in stand_ins(inv).items() if k != PRESENT}
    r = keepalived_check(inv, inv.nodes[0], conf, one_short)
    assert r.messages == ["Disabling track script chk_site since not found/accessible"]
    assert keepalived_check(inv, inv.nodes[0], conf, stand_ins(inv)).ok
