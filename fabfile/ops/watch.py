"""`inv watch`'s core: one observation of every node per refresh (fabfile.infra.facts.WATCH, one round
trip each), the transitions seen between refreshes, and each real server's rate over the last
minutes from the IPVS counters read at each (fabfile.core.ipvs_rates). Pure apart from
`Watcher.refresh`, which observes; fabfile/views/watch.py draws the frames.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

from fabfile.infra import facts as F
from fabfile.infra import remote
from fabfile.core.checks import vip_holders
from fabfile.core.ipvs_rates import Key, Point, RateHistory, reading
from fabfile.infra.facts import NodeState
from fabfile.model.context import Env
from fabfile.model.schema import Inventory
from fabfile.infra.observe import observe

# facts.WATCH with the addresses read last in the round trip: keepalived's view can take up to a
# second when keepalived does not answer (stopping, starting: exactly during a failover), and the
# VIP holders drawn should be as fresh as the frame, not as old as that wait
FACTS = tuple(f for f in F.WATCH if f is not F.ADDRS) + ((F.ADDRS,) if F.ADDRS in F.WATCH else ())
KEEP_TRANSITIONS = 12   # a drill (stop, failover, start, preempt back) is about ten lines


@dataclass
class Frame:
    at: float                                   # wall clock of this refresh
    states: dict[str, NodeState]
    holders: dict[str, list[str]]               # VIP -> nodes holding it
    transitions: list[tuple[float, str]]        # (wall clock, what changed), newest last
    took_s: float                               # how long the round trips took
    # each real server's new connections per second over the last minutes, from the counters
    rates: dict[Key, list[Point]] = field(default_factory=dict)
    rate_top: float = 0.0                       # the highest of them: the sparklines' common scale


@dataclass
class Watcher:
    inv: Inventory
    conns: list
    transitions: list[tuple[float, str]] = field(default_factory=list)
    last: Frame | None = None
    # (node, instance) -> the state keepalived last reported; a refresh whose view is unavailable
    # (keepalived stopped, its dump read mid-write) neither forgets it nor counts as a change
    known: dict[tuple[str, str], str] = field(default_factory=dict)
    rates: RateHistory = field(default_factory=RateHistory)

    def refresh(self) -> Frame:
        t0 = time.monotonic()
        states = observe(self.conns, FACTS, timeout=10)
        return self.fold(states, time.time(), time.monotonic() - t0)

    def fold(self, states: dict[str, NodeState], now: float, took: float = 0.0) -> Frame:
        """Pure: a new observation -> a Frame, with what changed since the last one."""
        holders = vip_holders(self.inv, states)
        if self.last is None:
            for n, s in states.items():   # what keepalived says happened before the watch began
                for v in s.vrrp or []:
                    if v.last_transition:
                        self.transitions.append((v.last_transition, f"{n}: {v.instance} entered {v.state}"))
            self.transitions.sort()
        else:
            for vip, now_on in holders.items():
                before = self.last.holders.get(vip, [])
                if now_on != before:
                    self.transitions.append((now, f"VIP {vip}: {'+'.join(before) or 'nowhere'} -> "
                                                  f"{'+'.join(now_on) or 'nowhere'}"))
            for n, s in states.items():
                old = self.last.states.get(n)
                if old is not None and old.reachable != s.reachable:
                    self.transitions.append((now, f"{n}: {'reachable again' if s.reachable else 'UNREACHABLE'}"))
                # keepalived stopped or started (its VRRP view disappears or comes back with it)
                was, is_ = (old.active.get("keepalived") if old is not None and old.reachable else None,
                            s.active.get("keepalived") if s.reachable else None)
                if was and is_ and was != is_:
                    self.transitions.append((now, f"{n}: keepalived {was} -> {is_}"))
                for v in s.vrrp or []:
                    before = self.known.get((n, v.instance))
                    if before is not None and before != v.state:
                        self.transitions.append((now, f"{n}: {v.instance} {before} -> {v.state}"))
        for n, s in states.items():
            for v in s.vrrp or []:
                self.known[(n, v.instance)] = v.state
        self.transitions = self.transitions[-KEEP_TRANSITIONS:]
        self.rates.add(now, reading(states))
        self.last = Frame(now, states, holders, list(self.transitions), took,
                          {k: self.rates.series(k) for k in self.rates.points}, self.rates.peak())
        return self.last


@contextmanager
def watching(env: Env) -> Iterator[Watcher]:
    """A Watcher over every node, connected now (in parallel); every connection closes when the
    block ends, whatever ends it (Ctrl-C is how a watch ends)."""
    with remote.nodes(env) as group:
        group.open()
        yield Watcher(env.inv, group)


def refresh_all(watchers: list[Watcher]) -> list[Frame]:
    """Every cluster's refresh at once (`inv watch` over a fleet): a frame per watcher, in order;
    the slowest cluster sets the pace, not their sum."""
    if len(watchers) == 1:
        return [watchers[0].refresh()]
    return remote.parallel(watchers, lambda w: w.refresh())
