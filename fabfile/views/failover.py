"""The failover drill's tables: the timeline and the summary against VRRP theory."""
from __future__ import annotations

from .. import output


def show(r: dict, fmt=None) -> None:
    t = output.Table(f"failover timeline ({r['mode']})", ["t (s)", "event"])
    for ev in r.get("timeline", []):
        t.add(f"{ev['t']:+.3f}", ev["event"])
    output.show(t, fmt)
    s = output.Table("failover summary", ["measure", "value", "VRRP theory / note"])
    th = r.get("theory_s")
    f = r.get("failover_s")
    s.add("VIP moved", f"{r['from']} -> {r.get('to') or 'nowhere'}", "", ok=bool(r.get("to")))
    if f is not None:
        rule = "skew (priority-0 advert)" if r["mode"] == "graceful" else "3 x advert_int + skew"
        s.add("failover", f"{f:.3f} s", f"{th:.3f} s = {rule}, measured from {r['measured_from']}",
              ok=abs(f - th) <= 0.5)
    if "outage_s" in r:
        s.add("client outage", "none" if not r["failed_probes"] else
              (f"{r['outage_s']:.3f} s" if r["outage_s"] is not None else "did not recover"),
              f"{r['failed_probes']} of {r['probes']} probes failed" +
              (f" ({', '.join(r['errors'])})" if r.get("errors") else ""))
    if "preempt_back_s" in r:
        if r.get("nopreempt_held") is not None:
            s.add("preempt back", "held (nopreempt)" if r["nopreempt_held"] else "moved back",
                  "nopreempt keeps the VIP where it is", ok=r["nopreempt_held"])
        else:
            pb = r["preempt_back_s"]
            s.add("preempt back", f"{pb:.3f} s" if pb is not None else "never", f"to {r['from']}",
                  ok=pb is not None)
    s.add("final holders", ", ".join(r.get("final_holders", [])) or "-", "", ok=r["ok"])
    output.show(s, fmt)
