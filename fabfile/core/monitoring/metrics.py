"""Every metric lbtk's alert rules and dashboard read: its name, type, help text and labels. The
one place these names live: the rules (alert_rules.py), the dashboard (dashboard.py) and what
publishes lbtk's own metrics (exposition.py, for `inv metrics` and node_exporter's textfile
collector on the directors) take them here.

lbtk's metrics carry `cluster` and `node` themselves (the inventory's names), so a scrape config
needs no relabelling for them. The VRRP instance's label is `vrrp_instance`, not `instance`: the
target label `instance` (the node_exporter's host:port) is what joins lbtk's metrics to
node_exporter's own (node_ipvs_*), which do not know the inventory's node names.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from fabfile.core.desired import WantedRealServer, WantedService
from fabfile.core.vrrp import PlannedInstance


@dataclass(frozen=True)
class Metric:
    name: str
    type: str                      # gauge | counter (the textfile collector's # TYPE)
    help: str
    labels: tuple[str, ...]


class VrrpState(enum.IntEnum):
    """lbtk_vrrp_state's values: keepalived's own state numbers (its JSON dump's `state`)."""
    INIT = 0
    BACKUP = 1
    MASTER = 2
    FAULT = 3


NODE = ("cluster", "node")
VRRP = (*NODE, "vrrp_instance", "vip")
REAL_SERVER = (*NODE, "virtual_server", "real_server")
IPVS_BACKEND = ("local_address", "local_port", "local_mark", "proto", "remote_address", "remote_port")

NODE_INFO = Metric("lbtk_node_info", "gauge", "1 on every director that publishes lbtk's metrics; ipvs=1 when "
                   "its kernel has IPVS (else keepalived runs VRRP-only and loads no real server)",
                   (*NODE, "ipvs"))
VRRP_STATE = Metric("lbtk_vrrp_state", "gauge", "keepalived's state of the instance: 0 INIT, 1 BACKUP, 2 MASTER, "
                    "3 FAULT", VRRP)
VRRP_PRIORITY = Metric("lbtk_vrrp_priority", "gauge", "The priority keepalived advertises now (tracking included)",
                       VRRP)
VRRP_WANTED_PRIORITY = Metric("lbtk_vrrp_wanted_priority", "gauge", "The priority the inventory gives the node",
                              VRRP)
VRRP_ADVERTS_RECEIVED = Metric("lbtk_vrrp_adverts_received_total", "counter", "VRRP adverts received "
                               "(keepalived's stats: Advertisements: Received)", VRRP)
VRRP_ADVERTS_SENT = Metric("lbtk_vrrp_adverts_sent_total", "counter", "VRRP adverts sent (keepalived's stats: "
                           "Advertisements: Sent)", VRRP)
VRRP_AUTH_FAILURES = Metric("lbtk_vrrp_auth_failures_total", "counter", "Adverts refused for their "
                            "authentication (keepalived's stats: Authentication failures)", VRRP)
VRRP_TRANSITIONS = Metric("lbtk_vrrp_transitions_total", "counter", "Times the node became MASTER or released "
                          "MASTER (keepalived's stats: Became master + Released master)", VRRP)
VRRP_PRIORITY_ZERO_RECEIVED = Metric("lbtk_vrrp_priority_zero_received_total", "counter", "Priority-0 adverts "
                                     "received: a MASTER gave the VIP up (keepalived's stats: Priority zero: "
                                     "Received)", VRRP)
VRRP_PRIORITY_ZERO_SENT = Metric("lbtk_vrrp_priority_zero_sent_total", "counter", "Priority-0 adverts sent: this "
                                 "node gave the VIP up (keepalived's stats: Priority zero: Sent)", VRRP)
# a time, not an age (Prometheus's way: time() minus it is the time in state), so a published value
# never goes stale between two refreshes
VRRP_LAST_TRANSITION = Metric("lbtk_vrrp_last_transition_timestamp_seconds", "gauge", "When the instance entered "
                              "its state, in seconds since the epoch (keepalived's last_transition): time() minus "
                              "it is the time in state", VRRP)
REAL_SERVER_WEIGHT = Metric("lbtk_real_server_weight", "gauge", "The real server's weight in the director's IPVS "
                            "table (no series: not in the pool)", REAL_SERVER)
REAL_SERVER_WANTED_WEIGHT = Metric("lbtk_real_server_wanted_weight", "gauge", "The weight the inventory gives it, "
                                   "0 while drained", REAL_SERVER)
REAL_SERVER_DRAINED = Metric("lbtk_real_server_drained", "gauge", "1 while a drain of the real server is recorded "
                             "on the directors (inv drain)", REAL_SERVER)
SERVICE_UP = Metric("lbtk_service_up", "gauge", "1 while the service runs: keepalived, nginx, or sync_daemon (the "
                    "IPVS sync daemon the node's VRRP role wants)", (*NODE, "service"))
NODE_ISOLATED = Metric("lbtk_node_isolated", "gauge", "1 while the node is recorded as isolated (inv isolate): "
                       "its keepalived is stopped on purpose and it is out of VRRP", NODE)

LBTK = (NODE_INFO, NODE_ISOLATED, VRRP_STATE, VRRP_PRIORITY, VRRP_WANTED_PRIORITY, VRRP_ADVERTS_RECEIVED, VRRP_ADVERTS_SENT,
        VRRP_AUTH_FAILURES, VRRP_TRANSITIONS, VRRP_PRIORITY_ZERO_RECEIVED, VRRP_PRIORITY_ZERO_SENT,
        VRRP_LAST_TRANSITION, REAL_SERVER_WEIGHT, REAL_SERVER_WANTED_WEIGHT, REAL_SERVER_DRAINED, SERVICE_UP)

# node_exporter's ipvs collector (prometheus-node-exporter), labelled by target only: joined to a
# node through lbtk_node_info on the target labels job and instance
IPVS_BACKEND_WEIGHT = Metric("node_ipvs_backend_weight", "gauge", "node_exporter: a real server's weight in IPVS",
                             IPVS_BACKEND)
IPVS_BACKEND_ACTIVE = Metric("node_ipvs_backend_connections_active", "gauge", "node_exporter: a real server's "
                             "active connections", IPVS_BACKEND)
NODE_EXPORTER = (IPVS_BACKEND_WEIGHT, IPVS_BACKEND_ACTIVE)

# Prometheus's own series of firing and pending alerts (the dashboard lists them)
ALERTS = Metric("ALERTS", "gauge", "Prometheus: the alerts pending or firing", ("alertname", "alertstate"))

KNOWN = {m.name: m for m in (*LBTK, *NODE_EXPORTER, ALERTS)}
TARGET = ("job", "instance")      # the labels Prometheus gives every series of one scrape target

SERVICES = ("keepalived", "nginx", "sync_daemon")     # lbtk_service_up's service label


def vip_label(p: PlannedInstance) -> str:
    """The `vip` label of an instance's series: its first VIP, the one its adverts carry."""
    return p.addresses[0]


def virtual_server_label(s: WantedService) -> str:
    """The `virtual_server` label: the service as ipvsadm -L -n names it (TCP 10.0.0.1:80, FWM 1)."""
    return s.key


def real_server_label(s: WantedService, rs: WantedRealServer) -> str:
    """The `real_server` label: the real server as ipvsadm -L -n shows it under its service."""
    return s.endpoint(rs)


def ipvs_backend_labels(s: WantedService, rs: WantedRealServer) -> dict[str, str]:
    """node_exporter's ipvs labels for a wanted real server, as it reads /proc/net/ip_vs: a fwmark
    service has no address nor port, only its mark, written as the kernel does (%08X). (It skips
    SCTP services' lines: their real servers would show under the service before them.)"""
    return {"proto": "FWM" if s.fwmark else s.protocol, "local_address": "" if s.fwmark else s.vip,
            "local_port": "0" if s.fwmark else str(s.port), "local_mark": f"{s.fwmark:08X}" if s.fwmark else "",
            "remote_address": rs.address, "remote_port": str(s.endpoint_port(rs))}
