"""Load balancing as a client sees it, against the scheduler and the live IPVS counters. Pure.

Inputs are parsed objects (parsers.ipvsadm.IpvsStats) and the answers a client got (the node
named in each page, or None for a failed request); outputs are rows and `checks.Check`s.

- `schedule_period(algo, weights)`: one period of what rr / wrr hand out for destinations in a
  given list order (IPVS walks its destination list; ipvsadm prints it sorted, so the list order
  is not observable and every order is tried).
- `match_schedule`: the answers are that period repeated from some starting point, for some
  order of the destinations: rr alternates across all, wrr 3/2/1 gives a a b a b c.
- `conns_delta`: per service and real server, connections IPVS scheduled between two snapshots
  (`ipvsadm -L -n --stats --exact`); on a backup director that must stay 0, or the backups
  re-balance what the master sent them (the loop the fwmark + MAC-match fix prevents).
"""
from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from math import gcd

from fabfile.core.checks import Check
from fabfile.core.desired import services
from fabfile.core.ipvs_rates import rise
from fabfile.parsers import join_host_port
from fabfile.model.schema import Inventory, VirtualServer

ORDERED_ALGOS = ("rr", "wrr")


def schedule_period(algo: str, weights: list[tuple[str, int]]) -> list[str]:
    """One period of IPVS's rr / wrr choices for destinations in list order (weight 0: never)."""
    live = [(n, w) for n, w in weights if w > 0]
    if not live:
        return []
    if algo == "rr":
        return [n for n, _ in live]
    if algo != "wrr":
        raise ValueError(f"no fixed schedule for {algo}")
    g = 0
    for _, w in live:
        g = gcd(g, w)
    top = max(w for _, w in live)
    out, cw = [], top
    while cw > 0:                       # ip_vs_wrr: current weight steps down by the gcd
        out += [n for n, w in live if w >= cw]
        cw -= g
    return out


def expected_counts(algo: str, weights: list[tuple[str, int]], n: int) -> dict[str, float]:
    """What n requests should give each destination (exact when n is a multiple of the period)."""
    live = {name: w for name, w in weights if w > 0}
    total = sum(live.values()) if algo == "wrr" else len(live)
    return {name: n * (w if algo == "wrr" else 1) / total for name, w in live.items()}


def match_schedule(algo: str, weights: list[tuple[str, int]], answers: list[str | None]
                   ) -> tuple[bool, list[str] | None]:
    """(answers follow the scheduler, the period they follow). Failed requests never match."""
    if algo not in ORDERED_ALGOS or not answers or None in answers:
        return False, None
    for order in itertools.permutations(weights):
        period = schedule_period(algo, list(order))
        if not period:
            continue
        for start in range(len(period)):
            if all(a == period[(start + i) % len(period)] for i, a in enumerate(answers)):
                return True, period[start:] + period[:start]
    return False, None


def counts(answers: list[str | None]) -> Counter:
    return Counter(a if a is not None else "(no answer)" for a in answers)


def conns_delta(before, after, key: str) -> dict[str, int]:
    """{real server endpoint: new connections} for service `key` between two IpvsStats (a counter
    reset in between counts from zero)."""
    b = before.service(key) if before is not None else None
    a = after.service(key) if after is not None else None
    if a is None:
        return {}
    prev = {r.endpoint: r.stats.conns for r in (b.real_servers if b else [])}
    return {r.endpoint: rise(prev.get(r.endpoint, 0), r.stats.conns) for r in a.real_servers}


def service_key(inv: Inventory, index: int) -> str:
    """How ipvsadm -L -n names virtual_servers[index] once keepalived loaded it."""
    return services(inv)[index].key


def endpoint_names(inv: Inventory, vs: VirtualServer, fwmark: bool) -> dict[str, str]:
    """{'10.189.0.131:0': 'node1'}: a real server's endpoint as ipvsadm prints it -> its name."""
    out = {}
    for rs in vs.real_servers:
        addr = inv.real_server_address(rs, vs)
        port = 0 if fwmark else (rs.port or vs.port)
        out[join_host_port(addr, port)] = rs.node or addr
    return out


@dataclass
class Traffic:
    """What one verify run sent through a VIP and what it saw."""
    vip: str
    port: int
    service: str                     # ipvsadm's key, e.g. "FWM 1"
    algo: str
    master: str | None               # the director holding the VIP
    answers: list[str | None]        # per request: the node that answered, None if it failed
    errors: list[str]
    deltas: dict[str, dict[str, int]]   # per director: {endpoint: new connections}
    names: dict[str, str]            # endpoint -> real server name
    weights: list[tuple[str, int]]   # (name, weight) from the inventory

    def rows(self) -> list[dict]:
        """Per real server: weight, answers the client counted, connections IPVS scheduled."""
        c = counts(self.answers)
        master = self.deltas.get(self.master or "", {})
        want = expected_counts(self.algo, self.weights, len(self.answers)) \
            if self.algo in ORDERED_ALGOS else {}
        out = []
        for ep, name in self.names.items():
            w = dict(self.weights).get(name, 0)
            out.append({"real_server": name, "endpoint": ep, "weight": w, "answers": c.get(name, 0),
                        "expected": want.get(name), "ipvs_conns": master.get(ep)})
        return out


def traffic_checks(t: Traffic) -> list[Check]:
    n = len(t.answers)
    failed = sum(a is None for a in t.answers)
    out = [Check(f"client -> {t.vip}:{t.port}", "cluster", failed == 0,
                 f"{n - failed} of {n} requests answered once each"
                 + (f"; {failed} failed ({', '.join(sorted(set(t.errors)))[:120]})" if failed else ""))]
    if t.algo in ORDERED_ALGOS:
        ok, period = match_schedule(t.algo, t.weights, t.answers)
        c = counts(t.answers)
        split = ":".join(str(c.get(name, 0)) for name, _ in t.weights)
        out.append(Check(f"{t.algo} order", "cluster", ok,
                         (f"follows {' '.join(period)} (repeating); split {split}" if ok else
                          f"answers do not follow {t.algo} with weights "
                          f"{':'.join(str(w) for _, w in t.weights)}: "
                          f"{' '.join(a or '-' for a in t.answers[:12])}{' ...' if n > 12 else ''}")))
    if t.master is not None:
        got = sum(t.deltas.get(t.master, {}).values())
        out.append(Check("IPVS conns (master)", t.master, got == n - failed,
                         f"{got} new connection(s) scheduled for {n - failed} answered request(s)"))
    for d, delta in t.deltas.items():
        if d == t.master:
            continue
        extra = sum(delta.values())
        out.append(Check("no re-balancing", d, extra == 0,
                         "0 connections scheduled on this backup director" if extra == 0 else
                         f"{extra} connection(s) scheduled here: backup directors re-balance "
                         "(director loop; fwmark + MAC-match fix missing?)"))
    return out
