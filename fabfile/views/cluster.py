"""The tables the job is about: `ipvsadm -L -n` per director, `ip a` per node, keepalived's own view.

Each table is built in two steps: `*_rows()` turns observed NodeStates (and the inventory) into
rows of plain values with stable field names (that is what `--json` prints, documented in the
README), and `show_*()` draws exactly those rows. So a table and its JSON always carry the same
numbers.
"""
from __future__ import annotations

import time

from fabfile import output
# the IPVS rows are judged in core (verify's IPVS check says the same judgment); named here too
# because every table's rows and drawing sit side by side for the tasks (tasks/tables.py)
from fabfile.core.checks import RATE_FIELDS, ipvs_rows  # noqa: F401
from fabfile.core.desired import dr_vips
from fabfile.infra.facts import NodeState
from fabfile.model.schema import Inventory
from fabfile.core.vrrp import expected_holders, plan


# ---------------------------------------------------------------- IPVS
def show_ipvs(rows: list[dict], fmt=None) -> None:
    # a reachable node without IPVS is one row, ok, without a service (core.checks.ipvs_rows)
    without = [r["node"] for r in rows if r["service"] is None and r["ok"]]
    if without:
        output.say(f"IPVS: no IPVS in the kernel of {', '.join(without)} — keepalived runs VRRP only there")
    for node in dict.fromkeys(r["node"] for r in rows if r["node"] not in without):
        mine = [r for r in rows if r["node"] == node]
        t = output.Table(f"IPVS on {node} (ipvsadm -L -n, --rate)",
                         ["service", "scheduler", "real server", "forward", "weight", "ActiveConn", "InActConn",
                          "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS", "problem"])
        for r in mine:
            weight = r["weight"] if r["weight"] is None or r["wanted_weight"] in (None, r["weight"]) \
                else f"{r['weight']} (want {r['wanted_weight']})"
            t.add(r["service"] or "-", " ".join([r["scheduler"] or ""] + r["flags"]).strip() or "-",
                  r["real_server"] or "-", r["forward"] or "-", _v(weight), _v(r["active_conn"]),
                  _v(r["inact_conn"]), *(_v(r[f]) for f in RATE_FIELDS), r["problem"] or "",
                  ok=r["ok"])
        output.show(t, fmt)


# ---------------------------------------------------------------- addresses
def addr_rows(inv: Inventory, states: dict[str, NodeState]) -> list[dict]:
    """One row per (node, interface) from `ip -j addr`: every address, which are VIPs, which on lo."""
    vips = set(expected_holders(inv))
    rows = []
    for node, s in states.items():
        if not s.reachable:
            rows.append({"node": node, "interface": None, "state": "UNREACHABLE", "addresses": [], "vips": [],
                         "vips_on_lo": [], "missing_on_lo": [], "ok": False, "problem": s.error})
            continue
        lo_want = set(dr_vips(inv, inv.node(node))) if node in {n.name for n in inv.nodes} else set()
        for i in s.interfaces or []:
            addrs = [a.cidr for a in i.addresses]
            held = [a.local for a in i.addresses if a.local in vips]
            on_lo = held if i.name == "lo" else []
            missing = sorted(lo_want - set(on_lo)) if i.name == "lo" else []
            rows.append({"node": node, "interface": i.name, "state": i.state, "addresses": addrs,
                         "vips": held if i.name != "lo" else [], "vips_on_lo": on_lo,
                         "missing_on_lo": missing, "ok": not missing,
                         "problem": f"DR real server without {', '.join(missing)} on lo" if missing else ""})
    return rows


def show_addrs(rows: list[dict], fmt=None) -> None:
    t = output.Table("addresses (ip -j addr)", ["node", "interface", "state", "addresses", "VIP held",
                                                "VIP on lo", "problem"])
    for r in rows:
        t.add(r["node"], r["interface"] or "-", r["state"], " ".join(r["addresses"]) or "-",
              " ".join(r["vips"]) or "", " ".join(r["vips_on_lo"]) or "", r["problem"],
              ok=False if not r["ok"] else (True if r["vips"] else None))
    output.show(t, fmt)


# ---------------------------------------------------------------- keepalived's view
def vrrp_rows(inv: Inventory, states: dict[str, NodeState], now: float | None = None) -> list[dict]:
    """One row per (node, vrrp_instance): the state keepalived reports and the counters that
    explain trouble (from keepalived's own JSON dump)."""
    now = time.time() if now is None else now
    planned = {p.name: p for p in plan(inv)}
    masters: dict[str, list[str]] = {}
    for node, s in states.items():
        for v in (s.vrrp or []) if s.reachable else []:
            if v.state == "MASTER":
                masters.setdefault(v.instance, []).append(node)
    rows = []
    for node, s in states.items():
        if not s.reachable or s.vrrp is None:
            why = s.error if not s.reachable else (
                "keepalived not running" if s.active.get("keepalived") not in (None, "active")
                else "keepalived's view unavailable (not running, or built without JSON)")
            rows.append({"node": node, "instance": None, "state": None, "priority": None, "wanted_priority": None,
                         "vrid": None, "advert_rcvd": None, "advert_sent": None, "auth_errors": None,
                         "pri_zero_rcvd": None, "pri_zero_sent": None, "become_master": None,
                         "release_master": None, "since_s": None, "ok": False, "problem": why})
            continue
        for v in s.vrrp:
            p = planned.get(v.instance)
            want = p.priorities.get(node) if p else None
            # keepalived's counters run from its start: past auth failures are history, shown, not
            # a problem by themselves; two MASTERs of one instance are
            problems = (["FAULT"] if v.state == "FAULT" else []) + \
                ([f"MASTER on {', '.join(masters[v.instance])}: split brain"]
                 if v.state == "MASTER" and len(masters.get(v.instance, [])) > 1 else []) + \
                (["not in the inventory"] if p is None else [])
            rows.append({"node": node, "instance": v.instance, "state": v.state, "priority": v.priority,
                         "wanted_priority": want, "vrid": v.vrid, "advert_rcvd": v.advert_rcvd,
                         "advert_sent": v.advert_sent, "auth_errors": v.auth_errors,
                         "pri_zero_rcvd": v.pri_zero_rcvd, "pri_zero_sent": v.pri_zero_sent,
                         "become_master": v.become_master, "release_master": v.release_master,
                         "since_s": round(now - v.last_transition, 1) if v.last_transition else None,
                         "ok": not problems, "problem": "; ".join(problems)})
    return rows


def show_vrrp(rows: list[dict], fmt=None) -> None:
    t = output.Table("keepalived's view (its JSON dump)",
                     ["node", "instance", "state", "priority", "adverts in", "adverts out", "auth errors",
                      "prio-0 in/out", "became master", "in state for", "problem"])
    for r in rows:
        prio = r["priority"] if r["priority"] is None or r["wanted_priority"] in (None, r["priority"]) \
            else f"{r['priority']} (inventory {r['wanted_priority']})"
        t.add(r["node"], r["instance"] or "-", r["state"] or "-", _v(prio), _v(r["advert_rcvd"]),
              _v(r["advert_sent"]), _v(r["auth_errors"]),
              "-" if r["pri_zero_rcvd"] is None else f"{r['pri_zero_rcvd']}/{r['pri_zero_sent']}",
              _v(r["become_master"]), "-" if r["since_s"] is None else age(r["since_s"]), r["problem"],
              ok=r["ok"] if not r["ok"] else (True if r["state"] == "MASTER" else None))
    output.show(t, fmt)


def _v(x) -> str:
    return "-" if x is None else str(x)


def age(s: float) -> str:
    """Seconds as the tables show an age: 45s, 12m, 3h."""
    s = max(0.0, s)
    return f"{s:.0f}s" if s < 120 else (f"{s / 60:.0f}m" if s < 7200 else f"{s / 3600:.0f}h")
