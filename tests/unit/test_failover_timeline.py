"""The failover drill's picture (fabfile/views/failover_timeline.py), drawn from drills of the simulated
cluster the drill's own tests use (tests/unit/drill_sim.py): the HTML parses and stands alone, its SVG
parses as XML, it holds one mark per probe, its VIP holder bands are where the drill's timeline says
the VIP went, and VRRP theory is marked where the move was timed from. `inv failover-test --out DIR`
writes it beside the drill's JSON and says where.
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest

from fabfile.model.loading import load
from fabfile.ops import drill as drill_ops
from fabfile.ops.drill import drill, drill_all_but_one
from fabfile.views.failover_timeline import html

from .drill_sim import sim_rig

SVG = "{http://www.w3.org/2000/svg}"


def lab():
    return load("lab")[0]


@pytest.fixture(scope="module")
def graceful():
    inv = lab()
    rig, _, _ = sim_rig(inv)
    return drill(inv, "graceful", rig)


@pytest.fixture(scope="module")
def all_but_one():
    inv = lab()
    rig, _, _ = sim_rig(inv, interval=0.01)
    return drill_all_but_one(inv, rig)


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


_drawn: dict[int, tuple] = {}       # id of a module fixture's result -> its picture, drawn once


def picture(r) -> tuple[list[tuple[str, dict]], ET.Element]:
    if id(r) in _drawn:
        return _drawn[id(r)]
    page = html(r, "lab: failover drill")
    p = Tags()
    p.feed(page)
    p.close()
    svg = re.search(r"<svg\b.*</svg>", page, re.S)
    assert svg, "no inline SVG"
    _drawn[id(r)] = p.tags, ET.fromstring(svg.group(0))
    return _drawn[id(r)]


def at(r, what: str) -> float:
    return next(t for t, w in r.events() if w == what)


def bands(svg: ET.Element) -> list[tuple[str, float, float]]:
    return [(b.get("data-node"), float(b.get("data-from")), float(b.get("data-to")))
            for b in svg.iter(f"{SVG}rect") if b.get("class") == "holder"]


def probe_marks(svg: ET.Element) -> list[ET.Element]:
    return [e for e in svg.iter() if (e.get("class") or "").split()[:1] == ["probe"]]


@pytest.mark.parametrize("which", ["graceful", "all_but_one"])
def test_the_page_stands_alone_and_holds_one_mark_per_probe(which, request):
    r = request.getfixturevalue(which)
    tags, svg = picture(r)
    names = {t for t, _ in tags}
    assert "svg" in names and not names & {"script", "link", "img", "iframe", "object", "embed"}
    assert not [a for _, attrs in tags for k, a in attrs.items() if k in ("src", "href")]
    marks = probe_marks(svg)
    assert len(marks) == r.probes == len(r.probe_log) > 100
    failed = [m for m in marks if "fail" in m.get("class")]
    assert len(failed) == sum(1 for p in r.probe_log if not p.ok) > 0     # refused while no node held the VIP
    assert all(m.find(f"{SVG}title") is not None for m in marks)          # each says its time, outcome, latency


def test_graceful_bands_are_where_the_timeline_says_the_vip_went(graceful):
    r = graceful
    _, svg = picture(r)
    got = bands(svg)
    assert [n for n, _, _ in got] == ["node1", "node2", "node1"]
    (_, _, left), (_, on, off), (_, back, _) = got
    assert left == at(r, "VIP left node1")
    assert on == at(r, "VIP on node2")
    assert off == back == at(r, "VIP back on node1 (preempt)")


def test_vrrp_theory_is_marked_from_what_the_move_is_timed_from(graceful):
    r = graceful
    _, svg = picture(r)
    (window,) = [e for e in svg.iter(f"{SVG}rect") if e.get("class") == "theory"]
    assert float(window.get("data-from")) == at(r, "VIP left node1")     # the priority-0 advert
    assert float(window.get("data-theory")) == r.move.theory_s == 0.648  # node2's skew
    (arrived,) = [e for e in svg.iter(f"{SVG}line") if e.get("class") == "arrived"]
    assert float(arrived.get("data-at")) == at(r, "VIP on node2")


def test_all_but_one_has_a_band_per_holder_and_a_window_per_step(all_but_one):
    r = all_but_one
    _, svg = picture(r)
    assert [n for n, _, _ in bands(svg)] == ["node1", "node2", "node3", "node1"]
    windows = [e for e in svg.iter(f"{SVG}rect") if e.get("class") == "theory"]
    assert [float(w.get("data-theory")) for w in windows] == [s.move.theory_s for s in r.steps]


def test_out_writes_the_json_and_the_picture_beside_it(graceful, tmp_path, monkeypatch, capsys):
    from invoke import Context

    from fabfile.tasks import failover as task
    monkeypatch.setattr(task, "node_env", lambda env, quiet: (SimpleNamespace(inv=lab(), name=env, path=env), []))
    monkeypatch.setattr(drill_ops, "failover_test", lambda e, mode, **kw: graceful)
    out = tmp_path / "drills"
    task.failover_test(Context(), env="lab", json=True, out=str(out))
    captured = capsys.readouterr()
    assert json.loads(captured.out) == graceful.as_json()
    written = sorted(out.iterdir())
    assert [p.suffix for p in written] == [".html", ".json"] and written[0].stem == written[1].stem
    assert written[1].stem.startswith("failover-graceful-")
    assert json.loads(written[1].read_text()) == graceful.as_json()
    assert "<svg" in written[0].read_text()
    assert captured.err.splitlines() == [f"wrote {p}" for p in (written[1], written[0])]   # stdout: the JSON alone
