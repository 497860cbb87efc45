"""`inv status`'s table and JSON: one row per node (its VRRP role, daemons, IPVS, problems), then the
drains, the deploy locks and one verdict line. Several clusters (`--env 'lab*'`): one table, a row
per node of each, the inventory first."""
from __future__ import annotations

from fabfile import output
from fabfile.core.checks import ISOLATED
from fabfile.model.schema import Inventory
from fabfile.ops.status import Status


def rows(st: Status) -> list[dict]:
    """Pure: one row per node, with the JSON's names."""
    out = []
    for n, o in st.observed.items():
        masters = [v for v, h in st.holders.items() if n in h]
        role = ("MASTER of " + ", ".join(masters) if masters else
                ISOLATED if n in st.runtime.isolated else "BACKUP") if o.reachable else "UNREACHABLE"
        ipvs = ("no IPVS" if o.ipvs is None else f"{len(o.ipvs.services)} service(s)") if o.reachable else "-"
        out.append(dict(node=n, role=role, keepalived=o.active.get("keepalived", "?"), nginx=o.active.get("nginx", "?"),
                        ipvs=ipvs, problems=sum(1 for ch in st.problems if ch.node == n)))
    return out


def as_json(st: Status) -> dict:
    rec = st.runtime
    return {"ok": st.ok, "vip_holders": st.holders, "nodes": rows(st),
            "problems": [ch.as_dict() for ch in st.problems],
            "runtime": {"serial": rec.serial, "drained": list(rec.drained), "isolated": list(rec.isolated),
                        "by": rec.by, "at": rec.at},
            "locks": {n: {"operator": h.operator, "task": h.task, "pid": h.pid, "cwd": h.cwd, "since": h.since}
                      for n, h in st.locks.items()}}


COLUMNS = ["node", "role", "keepalived", "nginx", "IPVS", "problems"]


def show(st: Status, fmt=None) -> None:
    t = output.Table(f"cluster {st.inv.cluster}", COLUMNS)
    for r in rows(st):
        t.add(*r.values(), ok=r["problems"] == 0)
    output.show(t, fmt)
    say_after(st)


def say_after(st: Status, prefix: str = "") -> None:
    """The lines under the table: drains, deploy locks, the verdict (`prefix`: the inventory's, in a fleet)."""
    rec = st.runtime
    if st.whole:        # the drains are the directors' record: one node's (--node, a new one) is not the cluster's
        output.say(prefix + (f"drained: {', '.join(rec.drained)} (by {rec.by} at {rec.at}; runtime serial {rec.serial})"
                             if rec.drained else "drained: none"))
        if rec.isolated:
            output.say(f"{prefix}isolated: {', '.join(rec.isolated)} — out of VRRP, keepalived kept stopped (by {rec.by} "
                       f"at {rec.at}; `inv isolate --undo` brings it back)")
    for n, h in st.locks.items():
        output.say(f"{prefix}{n}: deploy lock held by {h.who if h else 'a run whose record is unreadable'} "
                   "(a dead run's lock stays until --break-lock)")
    output.say(prefix + ("status: OK" if st.ok else "status: DEGRADED — " + "; ".join(
        f"{ch.node}: {ch.name}: {ch.detail}" for ch in st.problems)))


def show_fleet(fleet: list[tuple[str, Status]], fmt=None) -> None:
    """Several clusters (inventory file name, its Status): one table, then each one's lines."""
    t = output.Table(f"{len(fleet)} clusters", ["inventory", "cluster", *COLUMNS])
    for name, st in fleet:
        for r in rows(st):
            t.add(name, st.inv.cluster, *r.values(), ok=r["problems"] == 0)
    output.show(t, fmt)
    for name, st in fleet:
        say_after(st, f"{name}: ")


def fleet_json(fleet: list[tuple[str, Status]], failed: dict[str, str]) -> dict:
    """`failed`: the inventories that could not be read (name -> the error's one line)."""
    return {"ok": not failed and all(st.ok for _, st in fleet),
            "clusters": [{"inventory": name, "cluster": st.inv.cluster, **as_json(st)} for name, st in fleet],
            "failed": failed}


def access(inv: Inventory, name: str) -> str:
    """How lbtk reaches a node, from the inventory's ssh fields (defaults.ssh merged with the node's
    own `ssh:`; what they leave unset, ssh_config says): what a new machine must accept
    (runbooks/replace-node.md), and what `inv status --node` then proves."""
    node = inv.node(name)
    s = inv.ssh_of(node)
    where = f"{node.host}:{s.port}" if s.port else node.host
    via = (f" via the bastion {s.gateway.user + '@' if s.gateway.user else ''}{s.gateway.host}" if s.gateway
           else " (direct, unless ssh_config has a ProxyJump)")
    key = s.key_filename or "ssh_config's IdentityFile or the agent"
    if s.become != "sudo":
        root = "no sudo: every command runs as that user, which must be root"
    elif s.become_password_env or s.become_password_file:
        root = ("sudo with the password from " + " or ".join(
            x for x in (s.become_password_env and f"${s.become_password_env}", s.become_password_file) if x))
    else:
        root = "sudo without a password (NOPASSWD)"
    user = s.user or "ssh_config's User"
    known = s.known_hosts or "ssh_config's UserKnownHostsFile (~/.ssh/known_hosts)"
    return f"{name}: SSH as {user} to {where}{via}, key {key}; {root}; host key checked against {known}"
