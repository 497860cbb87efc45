"""verify's tables: VIP holders, checks, and with a lab client the live IPVS table and the counts."""
from __future__ import annotations

from fabfile import output
from fabfile.views import cluster
from fabfile.core.balance import Traffic
from fabfile.ops.traffic import Section
from fabfile.ops.verify import Report


def show(report: Report, fmt=None, extra: Section | None = None, tables: dict | None = None) -> None:
    if report.vip_holders:
        t = output.Table("VIP holders", ["VIP", "holders", "state"])
        for vip, holders in report.vip_holders.items():
            state = "ok" if len(holders) == 1 else ("SPLIT BRAIN" if holders else "DOWN")
            t.add(vip, ", ".join(holders) or "-", state, ok=len(holders) == 1)
        output.show(t, fmt)
    t = output.Table("checks", ["check", "node", "result", "detail"])
    for ch in report.checks:
        t.add(ch.name, ch.node, ch.ok, ch.detail, ok=ch.ok)
    output.show(t, fmt)
    if tables:
        cluster.show_ipvs(tables["ipvs"], fmt)
        cluster.show_addrs(tables["addresses"], fmt)
        cluster.show_vrrp(tables["vrrp"], fmt)
    if extra is not None:
        for tr, stats, table in extra.runs:
            live_ipvs(tr, stats, table, fmt)
            counts(tr, fmt, extra.client)
    for f in report.findings:
        output.say(f"{f.severity}: {f.subject}: {f.text}")
    bad = sum(not c.ok for c in report.checks)
    output.say(f"verify: {len(report.checks)} checks, all passed" if not bad
               else f"verify: {bad} of {len(report.checks)} checks FAILED")


def show_fleet(fleet: list[tuple[str, str, Report]], fmt=None) -> None:
    """Several clusters' verify: every check in one table led by its inventory and cluster, then
    each cluster's findings and its one-line verdict."""
    t = output.Table(f"checks of {len(fleet)} clusters", ["inventory", "cluster", "check", "node", "result", "detail"])
    for name, cluster_name, report in fleet:
        for ch in report.checks:
            t.add(name, cluster_name, ch.name, ch.node, ch.ok, ch.detail, ok=ch.ok)
    output.show(t, fmt)
    for name, _, report in fleet:
        for f in report.findings:
            output.say(f"{name}: {f.severity}: {f.subject}: {f.text}")
        bad = sum(not c.ok for c in report.checks)
        output.say(f"{name}: verify: {len(report.checks)} checks, all passed" if not bad
                   else f"{name}: verify: {bad} of {len(report.checks)} checks FAILED")


def live_ipvs(t: Traffic, stats, table, fmt=None) -> None:
    """The live IPVS table of the director holding the VIP: ipvsadm -L -n and --stats side by side."""
    title = f"IPVS on {t.master or '?'} (live: ipvsadm -L -n, --stats)"
    tb = output.Table(title, ["service", "real server", "node", "forward", "weight", "ActiveConn",
                              "InActConn", "Conns", "InPkts", "OutPkts"])
    svc = table.service(t.service) if table is not None else None
    st = stats.service(t.service) if stats is not None else None
    if svc is None:
        tb.add(t.service, "-", "-", "-", "-", "-", "-", "-", "-", "-", ok=False)
    else:
        counters = {r.endpoint: r.stats for r in (st.real_servers if st else [])}
        label = f"{t.service} {svc.scheduler}"
        for r in svc.real_servers:
            c = counters.get(r.endpoint)
            tb.add(label, r.endpoint, t.names.get(r.endpoint, "?"), r.forward, r.weight, r.active_conn,
                   r.inact_conn, c.conns if c else "-", c.inpkts if c else "-", c.outpkts if c else "-",
                   ok=r.endpoint in t.names)
    output.show(tb, fmt)


def counts(t: Traffic, fmt=None, client: str = "") -> None:
    n = len(t.answers)
    tb = output.Table(f"client {client} -> {t.vip}:{t.port}: {n} requests, {t.algo}",
                      ["real server", "weight", "answers", "expected", "IPVS new conns"])
    for r in t.rows():
        exp = r["expected"]
        tb.add(r["real_server"], r["weight"], r["answers"],
               "-" if exp is None else (f"{exp:g}" if exp == int(exp) else f"{exp:.1f}"),
               "-" if r["ipvs_conns"] is None else r["ipvs_conns"],
               ok=exp is None or abs(r["answers"] - exp) < 1)
    failed = sum(a is None for a in t.answers)
    if failed:
        tb.add("(no answer)", "-", failed, 0, "-", ok=False)
    output.show(tb, fmt)
    output.say("order: " + " ".join(a or "-" for a in t.answers[:24]) + (" ..." if n > 24 else ""))
