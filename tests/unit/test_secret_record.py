"""Secrets across clones (issue 24): the nodes record a salted fingerprint of the live VRRP secret
and the run that set it; a deploy from a clone holding another secret is refused in one line naming
both fingerprints and that run unless it says --rotation; --check and diff show the fingerprints
instead of two identical masks; `generate: true` only in lab inventories."""
from __future__ import annotations

import json
import re

import pytest

from fabfile.core import secret_record
from fabfile.core.phase import DEPLOY_ORDER
from fabfile.core.render import keepalived
from fabfile.errors import LbtkError
from fabfile.infra import facts as F
from fabfile.model.loading import InventoryError, parse
from fabfile.model.secrets import MASK, fingerprint, short
from fabfile.ops.deploy import drift, plan_runs, refuse_secret_drift
from fabfile.parsers import ParseError
from fabfile.parsers.lbtk import LiveFile
from fabfile.parsers.lbtk_state import parse_secret_record

from .core_fixtures import deploy_state, lab_data, lab_env, live_files

ALL = list(DEPLOY_ORDER)
ROTATOR = secret_record.Setter("20261201T120000.123", "alice@ops1", "2026-12-01T12:00:00+00:00")


def cluster_on(env, setter=secret_record.Setter()):
    """Nodes running env's files, their record written by `setter`'s run."""
    states = {}
    for n in env.inv.nodes:
        files = live_files(env, n.name)
        files[F.SECRET_RECORD_PATH] = LiveFile(0o600, secret_record.record_text(env.secrets, {}, setter).encode())
        states[n.name] = deploy_state(env, n.name, files=files)
    return states


def test_fingerprint_is_salted_slow_and_not_the_secret():
    a = fingerprint("s3cr3t12", b"0" * 16)
    assert re.fullmatch(r"[0-9a-f]{64}", a) and "s3cr3t12" not in a
    assert a == fingerprint("s3cr3t12", b"0" * 16) != fingerprint("s3cr3t12", b"1" * 16)
    assert short(a) == a[:12]


def test_the_record_keeps_a_matching_entry_and_its_run():
    rec = secret_record.record_text({"VI_1": "n3wS3cr7"}, {}, ROTATOR)
    live = parse_secret_record(rec)
    assert live["VI_1"].run == ROTATOR.run and "n3wS3cr7" not in rec
    # a later routine deploy with the same secret rewrites nothing, the rotator stays named
    assert secret_record.record_text({"VI_1": "n3wS3cr7"}, live, secret_record.Setter("later", "bob", "x")) == rec
    # another secret: a new entry, salted by the new run
    other = parse_secret_record(secret_record.record_text({"VI_1": "0ldS3cr7"}, live, secret_record.Setter("r2")))
    assert other["VI_1"].run == "r2" and other["VI_1"].salt != live["VI_1"].salt
    assert secret_record.record_text({}, live, ROTATOR) is None


@pytest.mark.parametrize("text", ['[1]', '{"VI_1": 3}', '{"VI_1": {"fingerprint": "XYZ", "salt": "00"}}',
                                  '{"VI_1": {"fingerprint": "ab", "salt": 5}}'])
def test_a_malformed_record_is_a_parse_error(text):
    with pytest.raises(ParseError):
        parse_secret_record(text)


def test_a_deploy_of_an_older_secret_is_refused_naming_both_fingerprints_and_the_rotation(monkeypatch):
    rotated = lab_env(monkeypatch, secret="n3wS3cr7")
    states = cluster_on(rotated, ROTATOR)
    stale = lab_env(monkeypatch, secret="0ldS3cr7")        # a teammate's clone, before the rotation
    runs = plan_runs(stale, states, ALL)
    salt = bytes.fromhex(parse_secret_record(states["node1"].files[F.SECRET_RECORD_PATH].content.decode())
                         ["VI_1"].salt)
    with pytest.raises(LbtkError) as e:
        refuse_secret_drift(stale, runs, ALL, rotation=False, check=False)
    line = str(e.value)
    assert "\n" not in line and "0ldS3cr7" not in line and "n3wS3cr7" not in line
    assert short(fingerprint("0ldS3cr7", salt)) in line and short(fingerprint("n3wS3cr7", salt)) in line
    assert f"set by run {ROTATOR.run} (alice@ops1, 2026-12-01T12:00:00+00:00)" in line
    assert "--rotation" in line and "(and 2 more node/instance(s))" in line
    refuse_secret_drift(stale, runs, ALL, rotation=True, check=False)      # a rotation on purpose
    refuse_secret_drift(stale, runs, ["nginx"], rotation=False, check=False)   # keepalived untouched


def test_check_says_it_would_be_refused_and_shows_fingerprints_not_masks(monkeypatch):
    rotated = lab_env(monkeypatch, secret="n3wS3cr7")
    stale = lab_env(monkeypatch, secret="0ldS3cr7")
    runs = plan_runs(stale, cluster_on(rotated, ROTATOR), ALL)
    refuse_secret_drift(stale, runs, ALL, rotation=False, check=True)
    assert runs[0].plan.notes[-1].startswith("refused without --rotation: node1: VI_1's VRRP secret")
    diff = next(ch.diff for ch in runs[0].plan.changes if ch.file.path == keepalived.CONF)
    assert f"auth_pass {MASK}" in diff and "0ldS3cr7" not in diff and "n3wS3cr7" not in diff
    (note,) = [ln for ln in diff.splitlines() if ln.startswith("# VRRP secret")]
    assert re.fullmatch(r"# VRRP secret of VI_1: fingerprint [0-9a-f]{12} \(live\) -> [0-9a-f]{12} \(this clone\)",
                        note)
    # inv diff shows the same
    assert note in next(ch.diff for ch in drift(stale, cluster_on(rotated, ROTATOR))["node1"]
                        if ch.file.path == keepalived.CONF)


def test_nodes_without_a_record_take_the_first_deploy_and_record_it(monkeypatch):
    env = lab_env(monkeypatch, secret="n3wS3cr7")
    states = {n.name: deploy_state(env, n.name, files={**live_files(env, n.name), F.SECRET_RECORD_PATH: None})
              for n in env.inv.nodes}
    runs = plan_runs(env, states, ALL)
    refuse_secret_drift(env, runs, ALL, rotation=False, check=False)
    rec = next(ch for ch in runs[0].plan.changes if ch.file.path == F.SECRET_RECORD_PATH)
    assert rec.kind == "create" and rec.file.mode == F.RECORD_MODE
    assert json.loads(rec.file.content)["VI_1"]["fingerprint"] != "n3wS3cr7"


def test_the_same_secret_plans_nothing(monkeypatch):
    env = lab_env(monkeypatch, secret="n3wS3cr7")
    runs = plan_runs(env, cluster_on(env, ROTATOR), ALL)
    assert all(r.plan.empty for r in runs)
    refuse_secret_drift(env, runs, ALL, rotation=False, check=False)


def test_generate_is_refused_outside_lab_inventories():
    data = lab_data()
    data.pop("lab")
    data["vrrp_instances"][0]["authentication"]["generate"] = True
    with pytest.raises(InventoryError) as e:
        parse(data, "prod.yaml")
    assert "vrrp_instances[0].authentication.generate" in str(e.value) and "lab" in str(e.value)
    data["vrrp_instances"][0]["authentication"]["generate"] = False
    parse(data, "prod.yaml")


def test_the_fingerprint_note_reads_only_configs_whose_secret_lines_differ():
    """A weight change leaves every auth_pass line alone: no note, and no config parsed for it. A new
    secret or an instance renamed around the same secret is still noted."""
    conf = ("vrrp_instance VI_1 {\n  authentication {\n    auth_pass s3cr3t\n  }\n}\n"
            "virtual_server 10.0.0.1 80 {\n  real_server 10.0.0.2 80 {\n    weight 1\n  }\n}\n")
    assert secret_record.fingerprint_note(conf, conf.replace("weight 1", "weight 0"), {}) == ""
    assert "VI_1: fingerprint" in secret_record.fingerprint_note(conf, conf.replace("s3cr3t", "n3w"), {})
    renamed = secret_record.fingerprint_note(conf, conf.replace("VI_1", "VI_2"), {})
    assert "VI_1: fingerprint" in renamed and "VI_2: fingerprint" in renamed
