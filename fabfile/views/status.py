"""`inv status`'s table and JSON: one row per node (its VRRP role, daemons, IPVS, problems), then the
drains, the deploy locks and one verdict line."""
from __future__ import annotations

from fabfile import output
from fabfile.ops.status import Status


def rows(st: Status) -> list[dict]:
    """Pure: one row per node, with the JSON's names."""
    out = []
    for n, o in st.observed.items():
        masters = [v for v, h in st.holders.items() if n in h]
        role = ("MASTER of " + ", ".join(masters) if masters else "BACKUP") if o.reachable else "UNREACHABLE"
        ipvs = ("no IPVS" if o.ipvs is None else f"{len(o.ipvs.services)} service(s)") if o.reachable else "-"
        out.append(dict(node=n, role=role, keepalived=o.active.get("keepalived", "?"), nginx=o.active.get("nginx", "?"),
                        ipvs=ipvs, problems=sum(1 for ch in st.problems if ch.node == n)))
    return out


def as_json(st: Status) -> dict:
    rec = st.runtime
    return {"ok": st.ok, "vip_holders": st.holders, "nodes": rows(st),
            "problems": [ch.as_dict() for ch in st.problems],
            "runtime": {"serial": rec.serial, "drained": list(rec.drained), "by": rec.by, "at": rec.at},
            "locks": {n: {"operator": h.operator, "task": h.task, "pid": h.pid, "cwd": h.cwd, "since": h.since}
                      for n, h in st.locks.items()}}


def show(st: Status, fmt=None) -> None:
    t = output.Table(f"cluster {st.inv.cluster}", ["node", "role", "keepalived", "nginx", "IPVS", "problems"])
    for r in rows(st):
        t.add(*r.values(), ok=r["problems"] == 0)
    output.show(t, fmt)
    rec = st.runtime
    output.say(f"drained: {', '.join(rec.drained)} (by {rec.by} at {rec.at}; runtime serial {rec.serial})"
               if rec.drained else "drained: none")
    for n, h in st.locks.items():
        output.say(f"{n}: deploy lock held by {h.who if h else 'a run whose record is unreadable'} (a dead run's lock stays until --break-lock)")
    output.say("status: OK" if st.ok else "status: DEGRADED — " + "; ".join(
        f"{ch.node}: {ch.name}: {ch.detail}" for ch in st.problems))
