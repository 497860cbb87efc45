"""`inv alerts`' core: what fires in the Prometheus the inventory names (`monitoring.prometheus_url`,
its HTTP API read once from this machine), beside what verify finds on the nodes (one round trip
each). Prometheus is asked first: an address that does not answer is one line naming the
inventory field, before any node is touched. fabfile/views/alerts.py draws the tables.
"""
from __future__ import annotations

from dataclasses import dataclass

from fabfile.errors import LbtkError
from fabfile.infra import prometheus
from fabfile.model.context import Env
from fabfile.model.schema import Inventory
from fabfile.ops.verify import Report, verify_nodes
from fabfile.parsers import ParseError
from fabfile.parsers.prometheus import Alert, parse_alerts

ALERTS_PATH = "/api/v1/alerts"
SEVERITIES = ("critical", "warning", "info")      # the order alerts are listed in, firing before pending


@dataclass
class AlertsReport:
    url: str
    cluster: str
    alerts: list[Alert]              # this cluster's (label cluster), firing first
    others: int                      # alerts in that Prometheus of other clusters or rules: not listed
    verify: Report | None = None     # None: not asked (--no-verify)

    @property
    def firing(self) -> list[Alert]:
        return [a for a in self.alerts if a.state == "firing"]

    @property
    def ok(self) -> bool:
        return not self.firing and (self.verify is None or self.verify.ok)

    def as_json(self) -> dict:
        return {"ok": self.ok, "prometheus_url": self.url,
                "alerts": [{"alert": a.name, "state": a.state, "severity": a.label("severity"),
                            "labels": a.labels, "annotations": a.annotations, "active_at": a.active_at,
                            "value": a.value} for a in self.alerts],
                "other_alerts": self.others, "verify": self.verify.as_json() if self.verify else None}


def of_cluster(alerts: list[Alert], cluster: str) -> list[Alert]:
    """The cluster's alerts (lbtk's rules label each with it): firing first, the most severe first."""
    def rank(a: Alert):
        sev = a.label("severity")
        return (a.state != "firing", SEVERITIES.index(sev) if sev in SEVERITIES else len(SEVERITIES), a.name,
                sorted(a.labels.items()))
    return sorted((a for a in alerts if a.label("cluster") == cluster), key=rank)


def prometheus_url(inv: Inventory) -> str:
    url = inv.monitoring.prometheus_url
    if url is None:
        raise LbtkError(f"{inv.source}: monitoring.prometheus_url is not set — give the address of the Prometheus "
                        "that runs lbtk's rules (`inv render --monitoring`), e.g. http://prometheus.example:9090")
    return url


def read_alerts(inv: Inventory) -> tuple[str, list[Alert]]:
    """(the address, every alert pending or firing there)."""
    url = prometheus_url(inv)
    where = f"{inv.source}: monitoring.prometheus_url {url}"
    try:
        return url, parse_alerts(prometheus.get(url, ALERTS_PATH))
    except prometheus.Unreachable as e:
        raise LbtkError(f"{where}: no answer from Prometheus's API ({e}) — check the address, and that "
                        "Prometheus runs there and this machine reaches it") from None
    except ParseError as e:
        raise LbtkError(f"{where}: {e} — is this the address of a Prometheus?") from None


def alerts(env: Env, nodes, verify: bool = True, http: bool = True) -> AlertsReport:
    url, every = read_alerts(env.inv)
    mine = of_cluster(every, env.inv.cluster)
    report = verify_nodes(env, nodes, http=http)[0] if verify else None
    return AlertsReport(url, env.inv.cluster, mine, len(every) - len(mine), report)
