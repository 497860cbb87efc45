"""`inv verify`'s traffic part, for inventories with a lab client (`lab.client`, the kernel tier):
real requests through each VIP from the client namespace, the live IPVS table with --stats on the
director holding the VIP, the answering order against the scheduler, and counts per real server.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .. import output, traffic
from ..balance import Traffic, traffic_checks
from ..checks import Check


@dataclass
class Section:
    runs: list[tuple[Traffic, object, object]] = field(default_factory=list)   # (traffic, stats, table)
    checks: list[Check] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"checks": [c.as_dict() for c in self.checks],
                "runs": [{"vip": t.vip, "port": t.port, "service": t.service, "lb_algo": t.algo,
                          "master": t.master, "answers": t.answers, "per_real_server": t.rows(),
                          "new_conns_per_director": t.deltas} for t, _, _ in self.runs]}

    def show(self, fmt=None) -> None:
        for t, stats, table in self.runs:
            show_ipvs(t, stats, table, fmt)
            show_counts(t, fmt)


def traffic_section(inv, conns, report, requests: int = 30) -> Section | None:
    """None unless the inventory names a lab client. Adds its checks to report.checks."""
    if inv.lab is None or inv.lab.client is None or not inv.virtual_servers:
        return None
    sec = Section()
    if not traffic.client_available():
        sec.checks.append(Check("client traffic", "cluster", False,
                                f"no client namespace {traffic.CLIENT_NETNS}: run `inv lab.up` (as root)"))
    else:
        for i, vs in enumerate(inv.virtual_servers):
            if vs.vip is None:
                continue
            t, after = traffic.run(inv, conns, report.vip_holders, requests=requests, index=i)
            master_obs = report.observed.get(t.master) if t.master else None
            sec.runs.append((t, after.get(t.master) if t.master else None,
                             getattr(master_obs, "ipvs", None)))
            sec.checks += traffic_checks(t)
    report.checks += sec.checks
    return sec


def show_ipvs(t: Traffic, stats, table, fmt=None) -> None:
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


def show_counts(t: Traffic, fmt=None) -> None:
    n = len(t.answers)
    tb = output.Table(f"client {traffic.CLIENT_NETNS} -> {t.vip}:{t.port}: {n} requests, {t.algo}",
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
