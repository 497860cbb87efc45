"""The failover drill as a picture: one self-contained HTML file with an inline SVG (no script, no
external font or style), written beside the drill's JSON (`inv failover-test --out DIR`).

Along one time axis (seconds from the drill's first event, as the timeline table counts them):
- every HTTP probe through the VIP, one mark each: its latency (log scale), coloured by the node
  that answered, a red cross where it failed;
- who held the VIP, one band per node, as the address poller saw it;
- VRRP theory: for each VIP move, the window the drill expects it in (from what the move is timed
  from: the priority-0 advert, or the master's last advert, to the theory's time: skew, or
  master_down_interval), and where the VIP actually arrived;
- the timeline's events as numbered lines, listed under the picture.

Pure: a DrillResult in, the HTML text out. The geometry is computed here, the template
(failover_timeline.html.j2 beside this file) only writes it out.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

from fabfile.core.drill_result import DrillResult, Move

TEMPLATE = "failover_timeline.html.j2"
WIDTH = 1100                     # the SVG's width, px
LEFT, RIGHT = 96, 24             # room for the row labels / after the axis
PROBE_TOP, PROBE_H = 36, 180     # the latency panel
BAND_H, BAND_GAP = 22, 6         # one holder band per node
AXIS_H = 40
NODE_COLOURS = ("#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f")
UNKNOWN_COLOUR = "#999999"       # an answer whose page names no node ("?")
NO_LATENCY = "not measured"      # a probe run on the SSH gateway: timed at receipt here, no latency


@dataclass(frozen=True)
class Mark:
    """One probe."""
    x: float
    y: float
    ok: bool
    colour: str
    title: str


@dataclass(frozen=True)
class Band:
    """One stretch of time a node held the VIP (seconds from the drill's zero)."""
    node: str
    start: float
    end: float
    x: float
    y: float
    w: float
    colour: str


@dataclass(frozen=True)
class Theory:
    """One VIP move against VRRP theory: the window [start, start + theory_s], the measured arrival."""
    label: str
    start: float
    theory_s: float
    failover_s: float
    x: float
    w: float
    arrived_x: float
    title: str


@dataclass(frozen=True)
class Line:
    """A numbered event of the timeline."""
    n: int
    t: float
    what: str
    x: float
    level: int                   # its number's row: 0, or 1 when the line before is too close to read both


@dataclass(frozen=True)
class Tick:
    at: float                    # x (time axis) or y (latency axis)
    label: str


class Scale:
    """Seconds from the drill's zero -> x, latency -> y (log10, from 0.1 ms to the worst probe)."""

    def __init__(self, t_min: float, t_max: float, worst_latency: float):
        span = max(t_max - t_min, 0.001)
        self.t_min, self.t_max = t_min - span * 0.01, t_max + span * 0.01
        self.lo = -4                                                     # 0.1 ms
        self.hi = max(self.lo + 2, math.ceil(math.log10(max(worst_latency, 1e-4) * 1.5)))

    def x(self, t: float) -> float:
        return round(LEFT + (t - self.t_min) / (self.t_max - self.t_min) * (WIDTH - LEFT - RIGHT), 1)

    def y(self, latency: float | None) -> float:
        if latency is None:                                              # drawn on the panel's middle line
            return PROBE_TOP + PROBE_H / 2
        v = min(max(math.log10(max(latency, 1e-9)), self.lo), self.hi)
        return round(PROBE_TOP + PROBE_H - (v - self.lo) / (self.hi - self.lo) * PROBE_H, 1)

    def time_ticks(self) -> list[Tick]:
        span = self.t_max - self.t_min
        step = next(s for s in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, math.inf) if span / s <= 12)
        first = math.ceil(self.t_min / step) * step
        n = int((self.t_max - first) // step) + 1
        return [Tick(self.x(first + i * step), f"{first + i * step:+g}") for i in range(n)]

    def latency_ticks(self) -> list[Tick]:
        return [Tick(self.y(10.0 ** p), _duration(10.0 ** p)) for p in range(self.lo, self.hi + 1)]


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:g} ms" if seconds < 1 else f"{seconds:g} s"


def _rel(r: DrillResult, t: float) -> float:
    return round(t - r.zero, 3)


def nodes_of(r: DrillResult) -> list[str]:
    """The nodes the picture has a band for: every node the poller watched, in the order it first
    reported them, then any that only answered probes."""
    seen = dict.fromkeys(h.node for h in r.holder_log)
    seen.update(dict.fromkeys(p.who for p in r.probe_log if p.ok and p.who != "?"))
    return list(seen)


def holder_spans(r: DrillResult) -> list[tuple[str, float, float]]:
    """(node, from, to) for every stretch a node held the VIP, in seconds from the drill's zero; a
    stretch still open when the drill ended runs to its last observation."""
    end = max([x.t for x in (*r.probe_log, *r.holder_log)] + [e.t for e in r.timeline], default=r.zero)
    since: dict[str, float] = {}
    spans = []
    for h in sorted(r.holder_log, key=lambda h: h.t):
        if h.holds and h.node not in since:
            since[h.node] = h.t
        elif not h.holds and h.node in since:
            spans.append((h.node, since.pop(h.node), h.t))
    spans += [(node, t, end) for node, t in since.items()]
    return [(node, _rel(r, a), _rel(r, b)) for node, a, b in sorted(spans, key=lambda s: (s[1], s[0]))]


def moves_of(r: DrillResult) -> list[tuple[str, Move]]:
    """Every VIP move the drill timed (one, or one per all-but-one step) with where it went."""
    if r.all_but_one:
        return [(f"step {s.step}: {s.stopped} -> {s.to}", s.move) for s in r.steps if s.move is not None]
    return [(f"{r.from_node} -> {r.to}", r.move)] if r.move is not None else []


LEGEND = ("dots: probes answered, in the colour of the node that answered (its VIP band's); red crosses: "
          "probes that failed; yellow: the window VRRP theory gives the move, from what it is timed from; red "
          "line: when the VIP arrived; dashed lines: the events listed below")


def summary(r: DrillResult) -> list[str]:
    """The lines above the picture: what was drilled and what it measured."""
    out = [f"{r.mode} drill of VIP {r.vip}: " + ("ok" if r.ok else f"FAILED — {r.error or 'failed'}")]
    for label, m in moves_of(r):
        out.append(f"VIP {label}: {m.failover_s:.3f} s (VRRP theory {m.theory_s:.3f} s, measured from "
                   f"{m.measured_from})")
    if r.outage:
        out.append(f"client outage: {r.outage.text()} ({r.outage.failed_probes} of {r.probes} probes failed)")
    failed = sum(1 for p in r.probe_log if not p.ok)
    out.append(f"{r.probes} probes, {failed} failed" + (f" ({', '.join(r.errors)})" if r.errors else ""))
    return out


def page(r: DrillResult, title: str) -> dict:
    """Everything the template writes: the geometry of every mark, band, window and line."""
    times = ([_rel(r, p.t) for p in r.probe_log] + [_rel(r, h.t) for h in r.holder_log]
             + [t for t, _ in r.events()])
    worst = max((p.latency_s for p in r.probe_log if p.latency_s is not None), default=0.01)
    sc = Scale(min(times, default=0.0), max(times, default=1.0), worst)
    nodes = nodes_of(r)
    colour = {n: NODE_COLOURS[i % len(NODE_COLOURS)] for i, n in enumerate(nodes)}
    marks = []
    for p in r.probe_log:
        t = _rel(r, p.t)
        lat = NO_LATENCY if p.latency_s is None else _duration(round(p.latency_s, 6))
        what = f"answered by {p.who}" if p.ok else f"FAILED ({p.who})"
        marks.append(Mark(sc.x(t), sc.y(p.latency_s), p.ok, colour.get(p.who, UNKNOWN_COLOUR) if p.ok else "",
                          f"{t:+.3f} s: {what}, latency {lat}"))
    bands_top = PROBE_TOP + PROBE_H + 40
    row_y = {n: bands_top + i * (BAND_H + BAND_GAP) for i, n in enumerate(nodes)}
    bands = [Band(n, a, b, sc.x(a), row_y[n], max(round(sc.x(b) - sc.x(a), 1), 1.0), colour[n])
             for n, a, b in holder_spans(r)]
    theories = []
    for label, m in moves_of(r):
        if m.at is None:
            continue
        start = _rel(r, m.at)
        theories.append(Theory(label, start, m.theory_s, m.failover_s, sc.x(start),
                               max(round(sc.x(start + m.theory_s) - sc.x(start), 1), 1.0),
                               sc.x(start + m.failover_s),
                               f"VIP {label}: VRRP theory {m.theory_s:.3f} s from {start:+.3f} s "
                               f"({m.measured_from}); arrived after {m.failover_s:.3f} s"))
    lines: list[Line] = []
    for i, (t, what) in enumerate(r.events()):
        x = sc.x(t)
        close = bool(lines) and x - lines[-1].x < 14 and lines[-1].level == 0
        lines.append(Line(i + 1, t, what, x, 1 if close else 0))
    bottom = bands_top + len(nodes) * (BAND_H + BAND_GAP)
    return {"title": title, "summary": summary(r), "legend": LEGEND, "width": WIDTH, "height": bottom + AXIS_H,
            "left": LEFT, "right": WIDTH - RIGHT, "probe_top": PROBE_TOP, "probe_bottom": PROBE_TOP + PROBE_H,
            "bands_top": bands_top, "bottom": bottom, "band_h": BAND_H,
            "rows": [{"node": n, "y": row_y[n], "colour": colour[n]} for n in nodes],
            "marks": marks, "bands": bands, "theories": theories, "lines": lines,
            "time_ticks": sc.time_ticks(), "latency_ticks": sc.latency_ticks(),
            "unmeasured": any(p.latency_s is None for p in r.probe_log), "no_latency": NO_LATENCY}


@functools.lru_cache(maxsize=1)
def _template():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined
    env = Environment(loader=FileSystemLoader(str(Path(__file__).parent)), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.get_template(TEMPLATE)


def html(r: DrillResult, title: str) -> str:
    """The drill's picture: a self-contained HTML page (every text escaped: a node's name, an error)."""
    return _template().render(**page(r, title))
