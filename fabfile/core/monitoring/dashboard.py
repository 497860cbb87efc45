"""A Grafana dashboard of one cluster over lbtk's metrics and node_exporter's IPVS ones. Pure:
inventory in, Grafana's dashboard JSON model (as a dict) out.

Every query names its metrics through fabfile/core/monitoring/metrics.py, the names the alert rules
use, so the dashboard and the alerts cannot drift apart. `$datasource` picks the Prometheus; the
cluster is fixed (a constant variable), one dashboard per inventory as one rules file per inventory.
"""
from __future__ import annotations

from dataclasses import dataclass

from fabfile.core.monitoring import metrics as M
from fabfile.model.schema import Inventory

WIDTH = 24              # Grafana's grid is 24 columns wide
RATE = "$__rate_interval"
CLUSTER = 'cluster="$cluster"'
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def q(metric: M.Metric, extra: str = "") -> str:
    """metric{cluster="$cluster"[, extra]}"""
    return f"{metric.name}{{{CLUSTER}{', ' + extra if extra else ''}}}"


def by_node(metric: M.Metric) -> str:
    """A node_exporter metric with the cluster's node names joined on (its target labels)."""
    return (f"{metric.name} * on({', '.join(M.TARGET)}) group_left(cluster, node) {q(M.NODE_INFO)}")


@dataclass(frozen=True)
class Panel:
    title: str
    type: str                                   # stat | timeseries | state-timeline
    targets: tuple[tuple[str, str], ...]        # (expr, legend)
    width: int
    height: int = 8
    mappings: tuple = ()
    description: str = ""


STATE_MAPPING = ({"type": "value", "options": {str(int(s)): {"text": s.name, "index": i}
                                                for i, s in enumerate(M.VrrpState)}},)
UP_MAPPING = ({"type": "value", "options": {"0": {"text": "down", "color": "red", "index": 0},
                                            "1": {"text": "up", "color": "green", "index": 1}}},)
VRRP_LEGEND = "{{node}} {{vrrp_instance}} {{vip}}"
RS_LEGEND = "{{node}} {{virtual_server}} -> {{real_server}}"
IPVS_LEGEND = "{{node}} {{proto}} {{local_address}}{{local_mark}}:{{local_port}} -> {{remote_address}}:{{remote_port}}"
MASTER = int(M.VrrpState.MASTER)
FIRING = 'alertstate="firing"'

ROWS: tuple[tuple[Panel, ...], ...] = (
    (Panel("MASTERs per VIP (1: healthy)", "stat",
           ((f"count by (vip) ({q(M.VRRP_STATE)} == {MASTER})", "{{vip}}"),), 8, 4,
           description="More than 1: split brain. No value: no MASTER."),
     Panel("directors publishing", "stat", ((f"count({q(M.NODE_INFO)})", "directors"),), 4, 4),
     Panel("alerts firing", "stat", ((f"count({q(M.ALERTS, FIRING)}) or vector(0)", "alerts"),), 4, 4),
     Panel("services down", "stat", ((f"count({q(M.SERVICE_UP)} == 0) or vector(0)", "down"),), 8, 4)),
    (Panel("VRRP state per director", "state-timeline", ((q(M.VRRP_STATE), VRRP_LEGEND),), 12,
           mappings=STATE_MAPPING),
     Panel("VRRP priority, and the inventory's", "timeseries",
           ((q(M.VRRP_PRIORITY), "{{node}} {{vrrp_instance}} now"),
            (q(M.VRRP_WANTED_PRIORITY), "{{node}} {{vrrp_instance}} wanted")), 12)),
    (Panel("VRRP adverts per second", "timeseries",
           ((f"rate({q(M.VRRP_ADVERTS_SENT)}[{RATE}])", VRRP_LEGEND + " sent"),
            (f"rate({q(M.VRRP_ADVERTS_RECEIVED)}[{RATE}])", VRRP_LEGEND + " received")), 12),
     Panel("authentication failures and MASTER transitions", "timeseries",
           ((f"increase({q(M.VRRP_AUTH_FAILURES)}[{RATE}])", VRRP_LEGEND + " auth failures"),
            (f"increase({q(M.VRRP_TRANSITIONS)}[{RATE}])", VRRP_LEGEND + " transitions")), 12)),
    (Panel("real server weight, and the inventory's", "timeseries",
           ((q(M.REAL_SERVER_WEIGHT), RS_LEGEND + " now"),
            (q(M.REAL_SERVER_WANTED_WEIGHT), RS_LEGEND + " wanted")), 12),
     Panel("drains recorded", "state-timeline", ((q(M.REAL_SERVER_DRAINED), RS_LEGEND),), 12,
           mappings=({"type": "value", "options": {"0": {"text": "in service", "index": 0},
                                                   "1": {"text": "drained", "index": 1}}},))),
    (Panel("priority-0 adverts (a MASTER giving the VIP up)", "timeseries",
           ((f"increase({q(M.VRRP_PRIORITY_ZERO_SENT)}[{RATE}])", VRRP_LEGEND + " sent"),
            (f"increase({q(M.VRRP_PRIORITY_ZERO_RECEIVED)}[{RATE}])", VRRP_LEGEND + " received")), 12),
     Panel("time in the current VRRP state", "timeseries",
           ((f"time() - {q(M.VRRP_LAST_TRANSITION)}", VRRP_LEGEND),), 12,
           description="Seconds since keepalived's last transition of the instance.")),
    (Panel("IPVS active connections per real server", "timeseries",
           ((by_node(M.IPVS_BACKEND_ACTIVE), IPVS_LEGEND),), 12),
     Panel("IPVS weight in the kernel", "timeseries", ((by_node(M.IPVS_BACKEND_WEIGHT), IPVS_LEGEND),), 12)),
    (Panel("services", "state-timeline", ((q(M.SERVICE_UP), "{{node}} {{service}}"),), WIDTH,
           mappings=UP_MAPPING),),
)


def panel_json(p: Panel, ident: int, x: int, y: int) -> dict:
    out = {"id": ident, "type": p.type, "title": p.title, "datasource": DATASOURCE,
           "gridPos": {"h": p.height, "w": p.width, "x": x, "y": y},
           "targets": [{"refId": chr(ord("A") + k), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
                       for k, (expr, legend) in enumerate(p.targets)],
           "fieldConfig": {"defaults": {"mappings": list(p.mappings)}, "overrides": []},
           "options": {}}
    if p.description:
        out["description"] = p.description
    return out


def panels() -> list[dict]:
    out, y = [], 0
    for row in ROWS:
        x = 0
        for p in row:
            out.append(panel_json(p, len(out) + 1, x, y))
            x += p.width
        y += max(p.height for p in row)
    return out


def dashboard(inv: Inventory) -> dict:
    from fabfile.core.monitoring import file_stem
    return {
        "uid": file_stem(inv)[:40],
        "title": f"lbtk: {inv.cluster}",
        "tags": ["lbtk", "keepalived", "ipvs"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": f"{inv.monitoring.scrape_interval}s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"},
            {"name": "cluster", "type": "constant", "query": inv.cluster, "hide": 2},
        ]},
        "annotations": {"list": []},
        "panels": panels(),
    }
