"""One Phase enum: every list of phases derives from it, and `inv diff` covers every phase that
writes files (issue 23: it had left out sync-daemon, so /usr/local/sbin/lbtk-ipvs-sync was never
diffed). Also the typed run status of a deploy's nodes."""
from __future__ import annotations

from pathlib import Path

import pytest

from fabfile.core.phase import DEPLOY_ORDER, FILE_PHASES, Phase
from fabfile.core.render import ASSUMED, RenderFacts, ipvs_sync, render_node
from fabfile.core.plan import NodePlan
from fabfile.errors import LbtkError
from fabfile.model.loading import load
from fabfile.ops.deploy import NodeRun, RunStatus, check_phases, drift
from fabfile.parsers.lbtk import LiveFile
from fabfile.views import deploy as view

from .core_fixtures import deploy_state, env_of, lab_env, live_files

GOOD = Path(__file__).resolve().parents[1] / "inventories" / "good"


def test_deploy_order_is_the_enum_in_order():
    assert [str(p) for p in DEPLOY_ORDER] == ["install", "arp", "nginx", "lvs", "keepalived", "sync-daemon",
                                                 "monitoring"]
    assert FILE_PHASES == DEPLOY_ORDER[1:]          # install writes no file


def test_phase_names_are_parsed_and_refused_in_one_line():
    assert check_phases(["keepalived", Phase.ARP]) == [Phase.KEEPALIVED, Phase.ARP]
    with pytest.raises(LbtkError, match=r"^unknown phase 'verify' — phases are install, arp, nginx, lvs, "
                                        r"keepalived, sync-daemon, monitoring$"):
        check_phases(["verify"])


def test_phase_tasks_and_deploy_help_come_from_the_enum():
    from fabfile.tasks import deploy as tasks
    assert {t.name for t in tasks.PHASE_TASKS.values()} == {p.value for p in Phase if p.has_task}
    assert tasks.keepalived.__doc__ == Phase.KEEPALIVED.summary
    assert "(install, arp, nginx, lvs, keepalived, sync-daemon, monitoring)" in tasks.deploy.__doc__


@pytest.mark.parametrize("name", sorted(p.name for p in GOOD.glob("*.yaml")))
def test_every_rendered_file_belongs_to_a_phase_inv_diff_compares(monkeypatch, name):
    inv, _ = load(str(GOOD / name))
    e = env_of(monkeypatch, inv.model_dump(exclude_none=True))
    for n in e.inv.nodes:
        for facts in (ASSUMED, RenderFacts(ipvs=False)):
            for f in render_node(e.inv, n.name, e.secrets, facts):
                assert isinstance(f.phase, Phase) and f.phase in FILE_PHASES, f.path


def test_every_file_phase_owns_a_file(monkeypatch):
    owners = set()
    for path in GOOD.glob("*.yaml"):
        inv, _ = load(str(path))
        e = env_of(monkeypatch, inv.model_dump(exclude_none=True))
        owners |= {f.phase for n in e.inv.nodes for f in render_node(e.inv, n.name, e.secrets, ASSUMED)}
    assert owners == set(FILE_PHASES)


def test_diff_reports_a_hand_edited_sync_script(monkeypatch):
    inv, _ = load(str(GOOD / "dr_sync_notify.yaml"))
    e = env_of(monkeypatch, inv.model_dump(exclude_none=True))
    files = live_files(e, "node2")
    assert files[ipvs_sync.SCRIPT] is not None                       # notify mode ships it
    files[ipvs_sync.SCRIPT] = LiveFile(0o755, files[ipvs_sync.SCRIPT].content + b"# edited by hand\n")
    states = {"node1": deploy_state(e, "node1"), "node2": deploy_state(e, "node2", files=files)}
    found = drift(e, states)
    assert found["node1"] == []
    assert [(ch.kind, ch.file.path) for ch in found["node2"]] == [("update", ipvs_sync.SCRIPT)]
    assert "+# edited by hand" not in found["node2"][0].diff and "-# edited by hand" in found["node2"][0].diff


def test_diff_reports_a_sync_script_the_inventory_does_not_want(monkeypatch):
    e = lab_env(monkeypatch)                 # sync_daemon mode keepalived: no script on the nodes
    files = live_files(e, "node1")
    assert files[ipvs_sync.SCRIPT] is None
    files[ipvs_sync.SCRIPT] = LiveFile(0o755, b"#!/bin/sh\n")
    found = drift(e, {"node1": deploy_state(e, "node1", files=files)})
    assert [(ch.kind, ch.file.path) for ch in found["node1"]] == [("delete", ipvs_sync.SCRIPT)]


def test_summary_says_a_skipped_node_was_skipped_not_failed(monkeypatch):
    e = lab_env(monkeypatch)
    s = deploy_state(e, "node1")
    failed = NodeRun("node1", s, NodePlan("node1"), status=RunStatus.FAILED, error="node1: `nginx -t` failed: x")
    skipped = NodeRun("node2", s, NodePlan("node2"), status=RunStatus.SKIPPED)
    same = NodeRun("node3", s, NodePlan("node3"), status=RunStatus.UNCHANGED)
    assert [view.result(r) for r in (failed, skipped, same)] == [
        "FAILED: node1: `nginx -t` failed: x", "skipped: an earlier node failed, this node was not touched",
        "no changes"]
    assert not RunStatus.SKIPPED.took_it and RunStatus.UNCHANGED.took_it and RunStatus.CHANGED.took_it
