"""The failover drill's tables: the timeline and the summary against VRRP theory."""
from __future__ import annotations

from fabfile import output
from fabfile.core.drill_result import Comeback, DrillResult


def show(r: DrillResult, fmt=None) -> None:
    _timeline(r, fmt)
    output.show(_all_but_one_steps(r) if r.all_but_one else _summary(r), fmt)
    if r.all_but_one:
        output.show(_all_but_one_summary(r), fmt)


def _timeline(r: DrillResult, fmt) -> None:
    t = output.Table(f"failover timeline ({r.mode})", ["t (s)", "event"])
    for at, what in r.events():
        t.add(f"{at:+.3f}", what)
    output.show(t, fmt)


def _summary(r: DrillResult) -> output.Table:
    s = output.Table("failover summary", ["measure", "value", "VRRP theory / note"])
    s.add("VIP moved", f"{r.from_node} -> {r.to or 'nowhere'}", "", ok=bool(r.to))
    if r.move:
        rule = "skew (priority-0 advert)" if r.mode == "graceful" else "3 x advert_int + skew"
        s.add("failover", f"{r.move.failover_s:.3f} s",
              f"{r.move.theory_s:.3f} s = {rule}, measured from {r.move.measured_from}", ok=r.move.within_theory())
    if r.outage:
        s.add("client outage", r.outage.text(), f"{r.outage.failed_probes} of {r.probes} probes failed" +
              (f" ({', '.join(r.errors)})" if r.errors else ""))
    if r.comeback:
        _comeback_row(s, r.comeback, "preempt back", "preempt back", f"to {r.from_node}")
    for f in r.families:   # a sync group: each family's VIP, the drilled one first
        moved = f"{r.from_node} -> {f.to} in {f.moved_s:.3f} s" if f.to else "did not move"
        back = f"back in {f.back_s:.3f} s" if f.back_s is not None else "not back"
        s.add(f"IPv{f.family} VIP {f.vip}", moved, back, ok=bool(f.to))
    s.add("final holders", ", ".join(r.final_holders or []) or "-", "", ok=r.ok)
    if r.others_moved is not None and r.others:
        s.add("other VIPs", "moved: " + ", ".join(r.others_moved) if r.others_moved else "stayed on their holders",
              ", ".join(r.others), ok=not r.others_moved)
    return s


def _all_but_one_steps(r: DrillResult) -> output.Table:
    """One row per step (each a graceful failover)."""
    t = output.Table("all-but-one: one director stopped per step", ["step", "stopped", "VIP moved", "failover",
                                                                    "VRRP theory", "client outage", "probes failed"])
    for st in r.steps:
        m, o = st.move, st.outage
        t.add(st.step, st.stopped, f"{st.stopped} -> {st.to or 'nowhere'}",
              f"{m.failover_s:.3f} s" if m else "-", f"{m.theory_s:.3f} s (skew)" if m else "-",
              o.text() if o else "none", f"{o.failed_probes} of {o.probes}" if o else "- of -",
              ok=m is not None and m.within_theory())
    return t


def _all_but_one_summary(r: DrillResult) -> output.Table:
    """What is left after the steps, and the way back."""
    s = output.Table("all-but-one summary", ["measure", "value", "note"])
    if r.last:
        s.add("last director", r.last.node, "the others' keepalived stopped, one after the other")
        s.add("HTTP through the VIP", "answers" if r.last.http_ok else "FAILS",
              f"last probes answered by {', '.join(r.last.answered_by) or 'nobody'}", ok=r.last.http_ok)
    if r.comeback:
        _comeback_row(s, r.comeback, "restore", "restore: preempt back",
                      f"to {r.from_node}, started first; then the others")
    s.add("client probes", f"{r.probes}", ", ".join(r.errors or []) or "no error")
    s.add("final holders", ", ".join(r.final_holders or []) or "-", "", ok=r.ok)
    return s


def _comeback_row(s: output.Table, c: Comeback, held_label: str, back_label: str, note: str) -> None:
    """How the VIP came back after a drill: held where it was (nopreempt), or the preempt's time."""
    if c.nopreempt_held is not None:
        s.add(held_label, "held (nopreempt)" if c.nopreempt_held else "moved back",
              "nopreempt keeps the VIP where it is", ok=c.nopreempt_held)
    else:
        pb = c.preempt_back_s
        s.add(back_label, f"{pb:.3f} s" if pb is not None else "never", note, ok=pb is not None)
