"""The `monitoring` phase (inventory `monitoring.publish`): Debian's prometheus-node-exporter with its
ipvs and textfile collectors, and lbtk's publisher: a script, run by a systemd timer, that writes
keepalived's own view of its VRRP instances as lbtk's metrics (the names of
fabfile/core/monitoring/metrics.py, the ones `inv metrics` prints) into node_exporter's textfile
directory, atomically (a temporary file renamed over lbtk.prom).

The publisher asks keepalived with the very command `inv vrrp` runs (fabfile.infra.facts.KEEPALIVED_VIEW)
and reads the dump with awk; the real servers' wanted weights and drains come from the inventory and
the node's runtime record, the live IPVS weights from `ipvsadm -L -n` (the real-server alerts
compare them with the drains), services up from systemctl, and the sync daemon up as verify judges
it: the daemon the node's VRRP role wants (`ipvsadm -L --daemon`). Without `publish`, the script and units are removed and so is the
published file (node_exporter's defaults file, the package's own, is left as it is)."""
from __future__ import annotations

from fabfile.core import desired
from fabfile.core.monitoring import metrics as M
from fabfile.core.phase import Phase
from fabfile.core.render import NodeFile, Templates, templates
from fabfile.core.vrrp import plan
from fabfile.model.schema import Inventory, Node

PACKAGE = "prometheus-node-exporter"           # Debian's node_exporter (bookworm: 1.5.0)
EXPORTER = "prometheus-node-exporter"          # its unit, which reads ARGS from DEFAULTS at start
DEFAULTS = "/etc/default/prometheus-node-exporter"
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"   # the package's directory (owned by root, 0755)
PUBLISHED = f"{TEXTFILE_DIR}/lbtk.prom"
SCRIPT = "/usr/local/lib/lbtk/publish-metrics"
SERVICE = "/etc/systemd/system/lbtk-publish-metrics.service"
TIMER = "/etc/systemd/system/lbtk-publish-metrics.timer"
TIMER_UNIT = "lbtk-publish-metrics.timer"
SERVICE_UNIT = "lbtk-publish-metrics.service"
# the transition hook: keepalived writes each VRRP state change to this FIFO and runs FIFO_SCRIPT,
# which reads it and starts the publisher (keepalived.conf's global_defs, render/keepalived.py)
FIFO = "/run/lbtk-vrrp-notify.fifo"
FIFO_SCRIPT = "/usr/local/lib/lbtk/publish-on-transition"
# what the published file holds, per family (keepalived's dump -> the awk arrays of the template)
VRRP_FROM_DUMP = ((M.VRRP_STATE, "st"), (M.VRRP_PRIORITY, "prio"), (M.VRRP_ADVERTS_RECEIVED, "rcvd"),
                  (M.VRRP_ADVERTS_SENT, "sent"), (M.VRRP_AUTH_FAILURES, "auth"), (M.VRRP_TRANSITIONS, "trans"),
                  (M.VRRP_PRIORITY_ZERO_RECEIVED, "pzr"), (M.VRRP_PRIORITY_ZERO_SENT, "pzs"),
                  (M.VRRP_LAST_TRANSITION, "last"))
PUBLISHED_METRICS = (M.NODE_INFO, M.NODE_ISOLATED, *(m for m, _ in VRRP_FROM_DUMP), M.VRRP_WANTED_PRIORITY, M.REAL_SERVER_WEIGHT,
                     M.REAL_SERVER_WANTED_WEIGHT, M.REAL_SERVER_DRAINED, M.SERVICE_UP)
SERVICES = ("keepalived", "nginx")       # lbtk_service_up's services the publisher judges (systemctl is-active)


def wanted(inv: Inventory) -> bool:
    return inv.monitoring.publish


def on_transition(inv: Inventory) -> bool:
    """Does keepalived's vrrp_notify_fifo refresh the metrics at each VRRP transition? Where the
    inventory publishes, leaves both FIFOs carrying VRRP events to lbtk (its own notify_fifo or
    vrrp_notify_fifo: those stay, and the timer alone refreshes) and keepalived's scripts run as root
    (the publisher signals keepalived and writes into node_exporter's directory)."""
    g = inv.global_defs
    return wanted(inv) and g.notify_fifo is None and g.vrrp_notify_fifo is None \
        and (g.script_user or "root").split()[0] == "root"


def fifo_script(inv: Inventory, t: Templates | None = None) -> NodeFile:
    """The script keepalived's vrrp_notify_fifo_script runs: phase keepalived, beside the keepalived.conf
    that names it (keepalived -t and the reload find it there)."""
    if not on_transition(inv):
        return NodeFile(FIFO_SCRIPT, None, Phase.KEEPALIVED)
    t = t or templates(inv)
    return NodeFile(FIFO_SCRIPT, t("publish-on-transition.sh.j2", unit=SERVICE_UNIT), Phase.KEEPALIVED, mode=0o755)


def files(inv: Inventory, node: Node, t: Templates | None = None) -> list[NodeFile]:
    if not wanted(inv):
        return [NodeFile(p, None, Phase.MONITORING) for p in (SCRIPT, SERVICE, TIMER, PUBLISHED)]
    t = t or templates(inv)
    mon = inv.monitoring
    return [
        NodeFile(DEFAULTS, t("prometheus-node-exporter.default.j2", listen=mon.listen_address,
                             textfile_dir=TEXTFILE_DIR), Phase.MONITORING),
        NodeFile(SCRIPT, publisher(inv, node, t), Phase.MONITORING, mode=0o755),
        NodeFile(SERVICE, t("lbtk-publish-metrics.service.j2", script=SCRIPT), Phase.MONITORING),
        NodeFile(TIMER, t("lbtk-publish-metrics.timer.j2", interval=mon.publish_interval), Phase.MONITORING),
    ]


def _awk_string(text: str) -> str:
    """A text as the inside of an awk string literal in a single-quoted shell word."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("'", "\\047").replace("\n", "\\n")


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _sync(inv: Inventory) -> dict | None:
    """What the publisher judges the sync daemon by (as checks.sync_check): its instance and syncid."""
    from fabfile.core.sync_rules import sync_instance
    if inv.sync_daemon is None:
        return None
    return dict(instance=sync_instance(inv).name, syncid=inv.sync_daemon.syncid)


def publisher(inv: Inventory, node: Node, t: Templates) -> str:
    from fabfile.core.monitoring.exposition import escape
    from fabfile.infra.facts import KEEPALIVED_VIEW, RUNTIME_PATH

    def head(m: M.Metric) -> dict:
        return dict(name=m.name, type=m.type, help=escape(m.help, quote=False))

    planned = plan(inv)
    base = f'cluster="{_label(inv.cluster)}",node="{_label(node.name)}"'
    servers = [dict(labels=f'{base},virtual_server="{_label(M.virtual_server_label(svc))}",'
                           f'real_server="{_label(M.real_server_label(svc, rs))}"',
                    address=inv.real_server_address(rs.source), weight=rs.weight)
               for svc in desired.ipvs_services(inv) for rs in svc.real_servers]
    return t("publish-metrics.sh.j2", base=base, textfile_dir=TEXTFILE_DIR, view=KEEPALIVED_VIEW.command,
             runtime=RUNTIME_PATH, servers=servers, weight=head(M.REAL_SERVER_WANTED_WEIGHT),
             drained=head(M.REAL_SERVER_DRAINED), sync=_sync(inv),
             live=dict(head(M.REAL_SERVER_WEIGHT), awk_help=_awk_string(escape(M.REAL_SERVER_WEIGHT.help, quote=False))),
             info=head(M.NODE_INFO), isolated=head(M.NODE_ISOLATED), node=node.name, service=head(M.SERVICE_UP), services=SERVICES,
             wanted=head(M.VRRP_WANTED_PRIORITY),
             vrrp=[dict(head(m), awk_help=_awk_string(escape(m.help, quote=False)), var=v) for m, v in VRRP_FROM_DUMP],
             vips=" ".join(f"{p.name} {M.vip_label(p)}" for p in planned),
             priorities=[dict(labels=f'{base},vrrp_instance="{_label(p.name)}",vip="{_label(M.vip_label(p))}"',
                              value=p.priorities[node.name]) for p in planned if node.name in p.priorities])
