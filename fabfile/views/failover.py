"""The failover drill's tables: the timeline and the summary against VRRP theory."""
from __future__ import annotations

from fabfile import output


def show(r: dict, fmt=None) -> None:
    if r["mode"] == "all-but-one":
        return show_all_but_one(r, fmt)
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
        _preempt_row(s, r, "preempt back", "preempt back", f"to {r['from']}")
    for f in r.get("families", []):   # a sync group: each family's VIP, the drilled one first
        moved = f"{r['from']} -> {f['to']} in {f['moved_s']:.3f} s" if f["to"] else "did not move"
        back = f"back in {f['back_s']:.3f} s" if f.get("back_s") is not None else "not back"
        s.add(f"IPv{f['family']} VIP {f['vip']}", moved, back, ok=bool(f["to"]))
    s.add("final holders", ", ".join(r.get("final_holders", [])) or "-", "", ok=r["ok"])
    if "others_moved" in r and r.get("others"):
        moved = r["others_moved"]
        s.add("other VIPs", "moved: " + ", ".join(moved) if moved else "stayed on their holders",
              ", ".join(r["others"]), ok=not moved)
    output.show(s, fmt)


def _timeline(r: dict, fmt) -> None:
    t = output.Table(f"failover timeline ({r['mode']})", ["t (s)", "event"])
    for ev in r.get("timeline", []):
        t.add(f"{ev['t']:+.3f}", ev["event"])
    output.show(t, fmt)


def _outage(step: dict) -> str:
    if not step.get("failed_probes"):
        return "none"
    return f"{step['outage_s']:.3f} s" if step.get("outage_s") is not None else "did not recover"


def show_all_but_one(r: dict, fmt=None) -> None:
    """One row per step (each a graceful failover), then what is left and the way back."""
    _timeline(r, fmt)
    t = output.Table("all-but-one: one director stopped per step", ["step", "stopped", "VIP moved", "failover",
                                                                    "VRRP theory", "client outage", "probes failed"])
    for st in r.get("steps", []):
        f, th = st.get("failover_s"), st.get("theory_s")
        t.add(st["step"], st["stopped"], f"{st['from']} -> {st.get('to') or 'nowhere'}",
              f"{f:.3f} s" if f is not None else "-",
              f"{th:.3f} s (skew)" if th is not None else "-", _outage(st),
              f"{st.get('failed_probes', '-')} of {st.get('probes', '-')}",
              ok=f is not None and abs(f - th) <= 0.5)
    output.show(t, fmt)
    s = output.Table("all-but-one summary", ["measure", "value", "note"])
    if r.get("last_node"):
        s.add("last director", r["last_node"], "the others' keepalived stopped, one after the other")
        s.add("HTTP through the VIP", "answers" if r.get("http_ok") else "FAILS",
              f"last probes answered by {', '.join(r.get('http_answered_by') or []) or 'nobody'}",
              ok=bool(r.get("http_ok")))
    if "preempt_back_s" in r:
        _preempt_row(s, r, "restore", "restore: preempt back", f"to {r['from']}, started first; then the others")
    s.add("client probes", f"{r.get('probes', 0)}", ", ".join(r.get("errors") or []) or "no error")
    s.add("final holders", ", ".join(r.get("final_holders", [])) or "-", "", ok=r["ok"])
    output.show(s, fmt)


def _preempt_row(s, r: dict, held_label: str, back_label: str, note: str) -> None:
    """How the VIP came back after a drill: held where it was (nopreempt), or the preempt's time."""
    if r.get("nopreempt_held") is not None:
        s.add(held_label, "held (nopreempt)" if r["nopreempt_held"] else "moved back",
              "nopreempt keeps the VIP where it is", ok=r["nopreempt_held"])
    else:
        pb = r["preempt_back_s"]
        s.add(back_label, f"{pb:.3f} s" if pb is not None else "never", note, ok=pb is not None)
