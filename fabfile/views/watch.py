"""`inv watch`'s screen: VIP holders and VRRP states, real servers with connections, rates and
health, the last transitions. The same tables drawn as rich renderables (live, full screen) or
as plain text (one snapshot, no tty)."""
from __future__ import annotations

import time

from fabfile import output
from fabfile.core import ipvs_rates
from fabfile.model.schema import Inventory
from fabfile.ops.watch import Frame
from fabfile.views import cluster


def header(inv: Inventory, frame: Frame) -> str:
    """The line above the tables: which cluster, when, how long the round trips took. (Not a table
    title: rich wraps a title to its table's width, and the VIP table is narrow.)"""
    stamp = time.strftime("%H:%M:%S", time.localtime(frame.at))
    return f"{inv.cluster} at {stamp} (round trips {frame.took_s * 1000:.0f} ms)"


SPARK_MINUTES = f"{ipvs_rates.WINDOW_S / 60:g} min"


def spark(frame: Frame, row: dict) -> str:
    """A real server's new connections per second over the last minutes (from the IPVS counters of
    each refresh), on the scale of the busiest real server; "-" until two refreshes have read it."""
    points = frame.rates.get((row["node"], row["service"], row["real_server"])) if row["real_server"] else None
    return ipvs_rates.sparkline(points, frame.at, frame.rate_top) if points else "-"


def tables(inv: Inventory, frame: Frame) -> list[output.Table]:
    """The frame as output Tables (one list, whichever way they are drawn)."""
    return state_tables(inv, frame) + [transitions_table([(at, None, what) for at, what in frame.transitions])]


def state_tables(inv: Inventory, frame: Frame) -> list[output.Table]:
    """The VIP holders, keepalived's view and the real servers of one frame."""
    out = []
    t = output.Table("VIP holders", ["VIP", "held by", "state"])
    for vip, on in frame.holders.items():
        t.add(vip, ", ".join(on) or "-", "ok" if len(on) == 1 else ("SPLIT BRAIN" if on else "DOWN"),
              ok=len(on) == 1)
    out.append(t)
    t = output.Table("VRRP (keepalived's view)", ["node", "instance", "state", "priority", "adverts in/out",
                                                  "auth errors", "keepalived"])
    for r in cluster.vrrp_rows(inv, frame.states, now=frame.at):
        s = frame.states[r["node"]]
        t.add(r["node"], r["instance"] or "-", r["state"] or (("UNREADABLE" if s.unreadable else "UNREACHABLE") if not s.reachable else "-"),
              "-" if r["priority"] is None else r["priority"],
              "-" if r["advert_rcvd"] is None else f"{r['advert_rcvd']}/{r['advert_sent']}",
              "-" if r["auth_errors"] is None else r["auth_errors"], s.active.get("keepalived", "?"),
              ok=False if not r["ok"] else (True if r["state"] == "MASTER" else None))
    out.append(t)
    t = output.Table("real servers (IPVS on the VIP holders)", ["director", "service", "real server", "health",
                                                                 "weight", "ActiveConn", "InActConn", "CPS",
                                                                 f"CPS, last {SPARK_MINUTES}", "InPPS", "OutPPS"])
    holders = {n for on in frame.holders.values() for n in on}
    rows = [r for r in cluster.ipvs_rows(inv, frame.states) if r["node"] in holders or not holders]
    for r in rows:
        health = ("in pool" if r["real_server"] and r["ok"] else
                  "OUT (check failing)" if "missing from the pool" in (r["problem"] or "") else r["problem"] or "-")
        t.add(r["node"], r["service"] or "-", r["real_server"] or "-", health,
              "-" if r["weight"] is None else r["weight"], "-" if r["active_conn"] is None else r["active_conn"],
              "-" if r["inact_conn"] is None else r["inact_conn"], "-" if r["cps"] is None else r["cps"],
              spark(frame, r), *("-" if r[f] is None else r[f] for f in ("inpps", "outpps")),
              # a missing service, an empty pool, an unreachable director: red; no IPVS: neutral
              ok=r["ok"] if r["real_server"] or not r["ok"] else None)
    out.append(t)
    return out


def transitions_table(items: list[tuple[float, str | None, str]]) -> output.Table:
    """The last transitions, newest first: (wall clock, cluster or None, what); a cluster column
    when they are several clusters'."""
    fleet = any(c is not None for _, c, _ in items)
    t = output.Table("last transitions", ["time", *(["cluster"] if fleet else []), "what"])
    for at, c, what in sorted(reversed(items), key=lambda x: x[0], reverse=True):  # ties: last added first
        t.add(time.strftime("%H:%M:%S", time.localtime(at)), *([c] if fleet else []), what)
    if not items:
        t.add("-", "none seen yet")
    return t


def fleet_header(clusters: list[tuple[Inventory, Frame]]) -> str:
    at = max(f.at for _, f in clusters)
    took = max(f.took_s for _, f in clusters)
    return (f"{len(clusters)} clusters ({', '.join(inv.cluster for inv, _ in clusters)}) at "
            f"{time.strftime('%H:%M:%S', time.localtime(at))} (round trips {took * 1000:.0f} ms, slowest cluster)")


def fleet_tables(clusters: list[tuple[Inventory, Frame]]) -> list[output.Table]:
    """Several clusters' frames as one set of tables: each cluster's rows under a cluster column
    (the same rows state_tables() draws for one), the transitions merged, newest first."""
    per = [(inv.cluster, state_tables(inv, frame)) for inv, frame in clusters]
    out = []
    for k, first in enumerate(per[0][1]):
        t = output.Table(first.title, ["cluster", *first.columns])
        for name, ts in per:
            for row, ok in zip(ts[k].rows, ts[k].ok):
                t.add(name, *row, ok=ok)
        out.append(t)
    out.append(transitions_table([(at, inv.cluster, what) for inv, f in clusters for at, what in f.transitions]))
    return out


def _group(head: str, tables_: list[output.Table], interval: float, notes: list[str] = ()):
    from rich.console import Group
    parts = [output.rich_text(head, style="bold")] + [output.rich_table(t) for t in tables_]
    parts += [output.rich_text(n, style="red") for n in notes]
    parts.append(output.rich_text(f"refreshing every {interval:g}s — Ctrl-C to quit", style="dim"))
    return Group(*parts)


def renderable(inv: Inventory, frame: Frame, interval: float):
    """A rich Group of the frame's tables, for rich.live.Live."""
    return _group(header(inv, frame), tables(inv, frame), interval)


def fleet_renderable(clusters: list[tuple[Inventory, Frame]], interval: float, notes: list[str] = ()):
    """Several clusters in one screen; `notes`: a line per inventory that could not be watched."""
    return _group(fleet_header(clusters), fleet_tables(clusters), interval, notes)


def show_once(inv: Inventory, frame: Frame, fmt=None) -> None:
    output.say(header(inv, frame))
    for t in tables(inv, frame):
        output.show(t, fmt)


def show_fleet_once(clusters: list[tuple[Inventory, Frame]], fmt=None) -> None:
    output.say(fleet_header(clusters))
    for t in fleet_tables(clusters):
        output.show(t, fmt)
