"""Per-real-server rates from successive readings of IPVS's counters (`ipvsadm -L -n --stats --exact`,
fabfile.infra.facts.IPVS_STATS), and the sparkline `inv watch` draws of the last minutes. Pure.

A rate is a counter's rise between two readings over the time between them. A counter that went
down was reset (the service or the real server removed and added again, ipvsadm -C, the director
rebooted): it counted from zero since, so its rise is its new value, as Prometheus's rate() takes
it. A real server missing from a reading (its director unreachable, the server out of the pool)
starts again from its next reading: its rate over the gap is unknown, not zero.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from fabfile.infra.facts import NodeState
from fabfile.parsers.ipvsadm import Counters, IpvsStats, service_key

BARS = "▁▂▃▄▅▆▇█"       # the lowest: nothing at all; any rise at all is at least the second
UNREAD = "·"             # a column no reading ended in (the watch began later, the director did not answer);
                         # not a space: a table drops leading spaces, and the columns would shift in time
WINDOW_S = 300.0         # what the sparkline covers: the last 5 minutes
WIDTH = 20               # its characters (15 s each over 5 minutes)

Key = tuple[str, str, str]      # (director, service as ipvs rows name it, real server endpoint)


def counters_of(node: str, stats: IpvsStats | None) -> dict[Key, Counters]:
    """One director's reading: each real server's counters."""
    if stats is None:
        return {}
    return {(node, service_key(svc), rs.endpoint): rs.stats for svc in stats.services for rs in svc.real_servers
            if isinstance(rs.stats, Counters)}


def reading(states: dict[str, NodeState]) -> dict[Key, Counters]:
    """Every director's reading of one refresh (an unreachable one, or one without IPVS: none)."""
    out: dict[Key, Counters] = {}
    for node, s in states.items():
        if s.reachable:
            out.update(counters_of(node, s.ipvs_stats))
    return out


def rise(before: int, now: int) -> int:
    """How much a counter rose between two readings; gone down: reset in between, counted from 0."""
    return now - before if now >= before else now


def rate(before: int, now: int, seconds: float) -> float | None:
    """Per second between two readings `seconds` apart (None: no time passed)."""
    return rise(before, now) / seconds if seconds > 0 else None


@dataclass(frozen=True)
class Point:
    """One rate: over (at - seconds, at]."""
    at: float
    per_s: float
    seconds: float


@dataclass
class RateHistory:
    """The rates of one counter (`what`: a Counters field) per real server over the last `window_s`."""
    what: str = "conns"
    window_s: float = WINDOW_S
    last: dict[Key, tuple[float, int]] = field(default_factory=dict)     # key -> (at, counter) last read
    points: dict[Key, deque[Point]] = field(default_factory=dict)

    def add(self, at: float, counters: dict[Key, Counters]) -> None:
        """A new reading taken at `at` (seconds, the watch's clock)."""
        for key in list(self.last):
            if key not in counters:          # not read this time: its next reading starts again
                del self.last[key]
        for key, c in counters.items():
            value = getattr(c, self.what)
            prev = self.last.get(key)
            self.last[key] = (at, value)
            if prev is None or at <= prev[0]:
                continue
            per_s = rate(prev[1], value, at - prev[0])
            self.points.setdefault(key, deque()).append(Point(at, per_s, at - prev[0]))
        for key in list(self.points):
            q = self.points[key]
            while q and q[0].at <= at - self.window_s:
                q.popleft()
            if not q:
                del self.points[key]

    def series(self, key: Key) -> list[Point]:
        return list(self.points.get(key, ()))

    def latest(self, key: Key) -> float | None:
        q = self.points.get(key)
        return q[-1].per_s if q else None

    def peak(self) -> float:
        """The highest rate any real server had over the window (the sparklines' common top)."""
        return max((p.per_s for q in self.points.values() for p in q), default=0.0)


def columns(points: list[Point], now: float, window_s: float = WINDOW_S, width: int = WIDTH) -> list[float | None]:
    """The window before `now` cut into `width` equal columns, oldest first: each the mean rate over
    the readings that ended in it (weighted by their time), None where none did."""
    step = window_s / width
    sums = [0.0] * width
    spans = [0.0] * width
    for p in points:
        i = width - 1 - int((now - p.at) // step) if p.at <= now else width - 1
        if 0 <= i < width:
            sums[i] += p.per_s * p.seconds
            spans[i] += p.seconds
    return [sums[i] / spans[i] if spans[i] else None for i in range(width)]


def bar(value: float | None, top: float) -> str:
    """One column: UNREAD for no reading, the lowest bar for nothing, up to the highest at `top`."""
    if value is None:
        return UNREAD
    if value <= 0 or top <= 0:
        return BARS[0]
    return BARS[1 + min(len(BARS) - 2, int(value / top * (len(BARS) - 1) - 1e-9))]


def sparkline(points: list[Point], now: float, top: float, window_s: float = WINDOW_S, width: int = WIDTH) -> str:
    """The last `window_s` of one real server's rate, `width` characters, scaled to `top`."""
    return "".join(bar(v, top) for v in columns(points, now, window_s, width))
