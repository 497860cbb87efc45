"""`inv alerts`' tables: what fires in Prometheus for the cluster, then what verify says, then one
verdict line naming both."""
from __future__ import annotations

import time

from fabfile import output
from fabfile.ops.alerts import AlertsReport
from fabfile.parsers.prometheus import Alert
from fabfile.views.cluster import age

WHERE_LABELS = ("node", "vip", "vrrp_instance", "virtual_server", "real_server", "service")


def where(a: Alert) -> str:
    """What the alert is about, from the labels lbtk's rules set (node, VIP, real server ...)."""
    return ", ".join(f"{k}={a.labels[k]}" for k in WHERE_LABELS if a.labels.get(k)) or "-"


def alerts_table(r: AlertsReport, now: float) -> output.Table:
    t = output.Table(f"Prometheus {r.url}: alerts of cluster {r.cluster}", ["alert", "state", "severity", "about", "since",
                                                                "summary"])
    for a in r.alerts:
        t.add(a.name, a.state, a.label("severity") or "-", where(a),
              "-" if a.active_at is None else age(now - a.active_at), a.annotations.get("summary", "-"),
              ok=False if a.state == "firing" else None)
    if not r.alerts:
        t.add("-", "none pending or firing", "-", "-", "-", "-", ok=True)
    return t


def verify_table(r: AlertsReport) -> output.Table:
    """verify's failing checks and findings (all passing: one row saying so)."""
    t = output.Table("verify: what the nodes show", ["check", "node", "detail"])
    v = r.verify
    for ch in v.checks:
        if not ch.ok:
            t.add(ch.name, ch.node, ch.detail, ok=False)
    for f in v.findings:
        t.add(f"finding ({f.severity})", f.subject, f.text, ok=False if f.severity == "error" else None)
    if not t.rows:
        t.add("all checks", "-", f"{len(v.checks)} passed", ok=True)
    return t


def verdict(r: AlertsReport) -> str:
    firing, pending = len(r.firing), len(r.alerts) - len(r.firing)
    said = f"alerts: {firing} firing, {pending} pending in Prometheus"
    if r.others:
        said += f" (and {r.others} of other clusters or rules, not listed)"
    if r.verify is not None:
        bad = sum(not c.ok for c in r.verify.checks)
        said += f"; verify: {f'{bad} of {len(r.verify.checks)} checks FAILED' if bad else 'all checks passed'}"
    return said


def show(r: AlertsReport, fmt=None, now: float | None = None) -> None:
    now = time.time() if now is None else now
    output.show(alerts_table(r, now), fmt)
    if r.verify is not None:
        output.show(verify_table(r), fmt)
    output.say(verdict(r))
