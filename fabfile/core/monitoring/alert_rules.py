"""Prometheus alert rules for one cluster, from its inventory. Pure: inventory in, rules out.

The exporters give raw per-node numbers; what only the inventory knows is written into the rules
literally: which node should hold each VIP (and that a nopreempt VIP may stay wherever it is),
which real servers each service wants and at what weight, whether the sync daemon should run.
Everything a director publishes at run time (its VRRP state, a drain recorded on it) comes from
the metrics (fabfile/core/monitoring/metrics.py). Every rule is filtered on the cluster, so the
files of several clusters can live in one Prometheus.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from fabfile.core import desired
from fabfile.core.diagnose import FLAPPING_MOVES
from fabfile.core.monitoring import metrics as M
from fabfile.core.vrrp import PlannedInstance, plan
from fabfile.infra.facts import RECENT_S
from fabfile.model.schema import Inventory

MASTER, BACKUP = int(M.VrrpState.MASTER), int(M.VrrpState.BACKUP)


@dataclass(frozen=True)
class Alert:
    """What every rule of one alert shares (several rules may raise it: one per VIP or service)."""
    name: str
    severity: str            # critical: clients are or will be hurt now; warning: redundancy or drift
    runbook: str             # runbooks/FILE.md#anchor: the step on-call starts from
    for_key: str             # the monitoring: key holding its `for` (None: fires at once)


SPLIT_BRAIN = Alert("LbtkSplitBrain", "critical", "split-brain.md#steps", "split_brain_for")
NO_MASTER = Alert("LbtkNoMaster", "critical", "vip-not-answering.md#steps", "no_master_for")
NOT_PREFERRED = Alert("LbtkVipNotOnPreferredNode", "warning", "failover-drill.md#if-it-is-not-healthy",
                      "preferred_node_for")
AUTH_FAILURES = Alert("LbtkVrrpAuthFailures", "warning", "split-brain.md#steps", "auth_failures_for")
ADVERTS_NOT_SENT = Alert("LbtkVrrpAdvertsNotSent", "warning", "split-brain.md#steps", "adverts_stopped_for")
ADVERTS_NOT_RECEIVED = Alert("LbtkVrrpAdvertsNotReceived", "warning", "split-brain.md#steps", "adverts_stopped_for")
REAL_SERVER_MISSING = Alert("LbtkRealServerMissing", "warning", "real-server-out-of-pool.md#steps", "real_server_for")
REAL_SERVER_ZERO = Alert("LbtkRealServerWeightZero", "warning", "real-server-out-of-pool.md#steps", "real_server_for")
SYNC_DAEMON_DOWN = Alert("LbtkSyncDaemonDown", "warning", "sync-daemon-down.md#steps", "sync_daemon_for")
FLAPPING = Alert("LbtkVrrpFlapping", "warning", "split-brain.md#steps", None)
KEEPALIVED_DOWN = Alert("LbtkKeepalivedDown", "warning", "vip-not-answering.md#steps", "service_down_for")
NGINX_DOWN = Alert("LbtkNginxDown", "warning", "real-server-out-of-pool.md#steps", "service_down_for")
IPVS_DIFFERS = Alert("LbtkIpvsTableDiffers", "warning", "real-server-out-of-pool.md#steps", "ipvs_table_for")
SILENT = Alert("LbtkDirectorSilent", "warning", "README.md#before-anything-else", "silent_for")

ALERTS = (SPLIT_BRAIN, NO_MASTER, NOT_PREFERRED, AUTH_FAILURES, ADVERTS_NOT_SENT, ADVERTS_NOT_RECEIVED,
          REAL_SERVER_MISSING, REAL_SERVER_ZERO, SYNC_DAEMON_DOWN, FLAPPING, KEEPALIVED_DOWN, NGINX_DOWN,
          IPVS_DIFFERS, SILENT)


# -- PromQL and Go-template text ---------------------------------------------------------------

def string(value: str) -> str:
    """A PromQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def one_of(values) -> str:
    """An RE2 alternation matching exactly these values (Prometheus anchors label regexes)."""
    return "|".join(re.escape(v) for v in values)


def select(metric: M.Metric, **labels) -> str:
    """metric{label="value", ...}; a value (op, text) uses another matcher: ("!~", "a|b")."""
    parts = [f"{k}{v[0]}{string(v[1])}" if isinstance(v, tuple) else f"{k}={string(v)}" for k, v in labels.items()]
    return f"{metric.name}{{{','.join(parts)}}}"


def label(name: str) -> str:
    return "{{ $labels.%s }}" % name


def text(value: str) -> str:
    """Inventory text inside an annotation: a literal `{{` would open a template action."""
    return value.replace("{{", '{{ "{{" }}')


def duration(seconds: float) -> str:
    """Seconds as a Prometheus duration: 300 -> 5m, 90 -> 90s."""
    s = int(math.ceil(seconds))
    for unit, size in (("h", 3600), ("m", 60)):
        if s and s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s"


def window(inv: Inventory) -> int:
    """Seconds a counter's rise is judged over: 4 scrapes, and 4 adverts of the slowest instance."""
    adverts = max((vi.advert_int for vi in inv.vrrp_instances), default=1)
    return max(4 * inv.monitoring.scrape_interval, math.ceil(4 * adverts))


# -- the rules ---------------------------------------------------------------------------------

class Rules:
    """Builds one cluster's rules: `Rules(inv, env).all()`."""

    def __init__(self, inv: Inventory, env: str):
        self.inv, self.env, self.mon = inv, env, inv.monitoring
        self.c = inv.cluster
        self.w = duration(window(inv))

    def rule(self, alert: Alert, expr: str, summary: str, description: str, **labels) -> dict:
        wait = getattr(self.mon, alert.for_key) if alert.for_key else 0
        return {"alert": alert.name, "expr": expr, "for": duration(wait),
                "labels": {"severity": alert.severity, **labels},
                "annotations": {"summary": summary,
                                "description": f"{description} First step: `inv verify --env {text(self.env)}`.",
                                "runbook_url": self.mon.runbook_url + alert.runbook}}

    def all(self) -> list[dict]:
        out = [self.split_brain()]
        planned = plan(self.inv)
        out += [self.no_master(p) for p in planned]
        out += [self.not_preferred(p) for p in planned if not p.source.nopreempt]
        out += [self.auth_failures(), *self.adverts()]
        out += self.real_servers()
        if self.inv.sync_daemon is not None:
            out.append(self.sync_daemon())
        out += [self.flapping(), *self.services()]
        if self.inv.virtual_servers:
            out.append(self.ipvs_table())
        out.append(self.silent())
        return out

    def state(self, **labels) -> str:
        return select(M.VRRP_STATE, cluster=self.c, **labels)

    def split_brain(self) -> dict:
        by = "cluster, vrrp_instance, vip"
        expr = (f"{self.state()} == {MASTER}\n"
                f"and on({by})\n"
                f"count by ({by}) ({self.state()} == {MASTER}) > 1")
        return self.rule(SPLIT_BRAIN, expr,
                         f"split brain: {label('node')} is MASTER of VIP {label('vip')} ({label('vrrp_instance')}) "
                         "and so is another director",
                         "More than one director holds the VIP: clients get resets. Usually the directors refuse "
                         "each other's adverts (a secret, virtual_router_id or advert_int differs) or the network "
                         "drops VRRP.")

    def no_master(self, p: PlannedInstance) -> dict:
        vip = M.vip_label(p)
        sel = self.state(vrrp_instance=p.name, vip=vip)
        expr = (f"sum by (cluster, vrrp_instance, vip) ({sel} == bool {MASTER}) == 0\n"
                f"or absent({sel})")
        return self.rule(NO_MASTER, expr, f"no MASTER for VIP {', '.join(p.addresses)} ({p.name}): no director holds it",
                         "No director reports MASTER of the instance (or none reports it at all): the VIP is down.",
                         **self.of(p))

    def isolated(self, **labels) -> str:
        """The nodes `inv isolate` took out of VRRP on purpose: a stopped keepalived there is no alert."""
        return f"{select(M.NODE_ISOLATED, cluster=self.c, **labels)} == 1"

    def not_preferred(self, p: PlannedInstance) -> dict:
        keepers = sorted(p.keepers)
        node = ("!=", keepers[0]) if len(keepers) == 1 else ("!~", one_of(keepers))
        wait = duration(self.mon.preferred_node_for)
        keeper = keepers[0] if len(keepers) == 1 else ("=~", one_of(keepers))
        # a preferred node isolated on purpose (split brain's stopgap) leaves the VIP elsewhere
        expr = (f"{self.state(vrrp_instance=p.name, node=node)} == {MASTER}\n"
                f"unless on(cluster) {self.isolated(node=keeper)}")
        return self.rule(NOT_PREFERRED, expr,
                         f"VIP {', '.join(p.addresses)} ({p.name}) is on {label('node')}, not on "
                         f"{' or '.join(keepers)} (the inventory's preferred node), for {wait}",
                         "The preferred director has not taken the VIP back: it is down, FAULT (a tracked script "
                         "or interface), or runs a lower priority than the inventory gives it.", **self.of(p))

    @staticmethod
    def of(p: PlannedInstance) -> dict[str, str]:
        """The labels an instance's rule states itself, as its series carry them: rules raising one
        alert differ in their labels (promtool's duplicate-rules lint), and absent() knows no more."""
        return {"vrrp_instance": p.name, "vip": M.vip_label(p)}

    def auth_failures(self) -> dict:
        expr = f"increase({select(M.VRRP_AUTH_FAILURES, cluster=self.c)}[{self.w}]) > 0"
        return self.rule(AUTH_FAILURES, expr,
                         f"{label('node')} refuses VRRP adverts of VIP {label('vip')} ({label('vrrp_instance')}): "
                         "authentication failures rising",
                         "keepalived counts adverts whose authentication fails: a director runs another secret "
                         "(a hand edit, a half-done rotation), a split brain's usual cause.")

    def adverts(self) -> list[dict]:
        on = "on(cluster, node, vrrp_instance, vip)"
        sent = (f"increase({select(M.VRRP_ADVERTS_SENT, cluster=self.c)}[{self.w}]) == 0\n"
                f"and {on} {self.state()} == {MASTER}")
        received = (f"increase({select(M.VRRP_ADVERTS_RECEIVED, cluster=self.c)}[{self.w}]) == 0\n"
                    f"and {on} {self.state()} == {BACKUP}")
        return [self.rule(ADVERTS_NOT_SENT, sent,
                          f"{label('node')} is MASTER of VIP {label('vip')} ({label('vrrp_instance')}) but sends no "
                          f"VRRP adverts (none in {self.w})",
                          "The backups hear nothing and will take the VIP: a split brain follows."),
                self.rule(ADVERTS_NOT_RECEIVED, received,
                          f"{label('node')} is BACKUP of VIP {label('vip')} ({label('vrrp_instance')}) but receives "
                          f"no VRRP adverts (none in {self.w})",
                          "The MASTER's adverts do not reach this director (firewall, unicast peers, interface): it "
                          "would take the VIP if the MASTER failed only in its own view.")]

    def real_servers(self) -> list[dict]:
        out = []
        keepalived_up = f"{select(M.SERVICE_UP, cluster=self.c, service='keepalived')} == 1"
        for s in desired.ipvs_services(self.inv):
            vs = M.virtual_server_label(s)
            where = vs + (f" (VIP {s.vip})" if s.fwmark and s.vip else "")
            for rs in s.real_servers:
                r = M.real_server_label(s, rs)
                expr = (f"{select(M.NODE_INFO, cluster=self.c, ipvs='1')}\n"
                        f"and on(cluster, node) {keepalived_up}\n"
                        f"unless on(cluster, node) {select(M.REAL_SERVER_WEIGHT, cluster=self.c, virtual_server=vs, real_server=r)}\n"
                        f"unless on(cluster, node) {select(M.REAL_SERVER_DRAINED, cluster=self.c, virtual_server=vs, real_server=r)} == 1")
                out.append(self.rule(REAL_SERVER_MISSING, expr,
                                     f"real server {r} is missing from {where} on {label('node')}",
                                     "keepalived took it out of the IPVS pool (its health check fails) and no drain "
                                     "is recorded; the other real servers carry its share.",
                                     virtual_server=vs, real_server=r))
            weighted = [M.real_server_label(s, rs) for rs in s.real_servers
                        if rs.weight > 0 and not rs.source.dynamic_weight]
            if weighted:
                zero = select(M.REAL_SERVER_WEIGHT, cluster=self.c, virtual_server=vs, real_server=("=~", one_of(weighted)))
                expr = (f"{zero} == 0\n"
                        f"unless on(cluster, node, virtual_server, real_server) "
                        f"{select(M.REAL_SERVER_DRAINED, cluster=self.c)} == 1")
                out.append(self.rule(REAL_SERVER_ZERO, expr,
                                     f"real server {label('real_server')} is at weight 0 in {where} on "
                                     f"{label('node')} with no drain recorded",
                                     "The inventory gives it a weight and nobody drained it (`inv drain` records "
                                     "one): a hand-made change, or an inhibit_on_failure health check failing.",
                                     virtual_server=vs))
        return out

    def sync_daemon(self) -> dict:
        expr = (f"{select(M.SERVICE_UP, cluster=self.c, service='sync_daemon')} == 0\n"
                f"and on(cluster, node) {select(M.NODE_INFO, cluster=self.c, ipvs='1')}")
        expr += f"\nunless on(cluster, node) {self.isolated()}"
        return self.rule(SYNC_DAEMON_DOWN, expr,
                         f"the IPVS sync daemon is down on {label('node')}",
                         "The inventory wants connection sync (sync_daemon): this director does not run the "
                         "daemon its VRRP role wants, so a failover resets connections.")

    def flapping(self) -> dict:
        expr = (f"increase({select(M.VRRP_TRANSITIONS, cluster=self.c)}[{duration(RECENT_S)}]) "
                f">= {FLAPPING_MOVES}")
        return self.rule(FLAPPING, expr,
                         f"VIP {label('vip')} ({label('vrrp_instance')}) is flapping: {label('node')} became or left "
                         f"MASTER {FLAPPING_MOVES} times or more in {duration(RECENT_S)}",
                         "The VIP keeps moving (unless a drill or a deploy moved it): adverts lost now and then, "
                         "or a tracked script or interface going up and down.")

    def services(self) -> list[dict]:
        keepalived_down = (f"{select(M.SERVICE_UP, cluster=self.c, service='keepalived')} == 0\n"
                           f"unless on(cluster, node) {self.isolated()}")
        return [self.rule(KEEPALIVED_DOWN, keepalived_down,
                          f"keepalived is down on {label('node')}",
                          "The director takes no part in VRRP and holds no IPVS table: one failure less to go."),
                self.rule(NGINX_DOWN, f"{select(M.SERVICE_UP, cluster=self.c, service='nginx')} == 0",
                          f"nginx is down on {label('node')}",
                          "Its real server fails its health check and leaves the pool.")]

    def ipvs_table(self) -> dict:
        keys = ", ".join((*M.TARGET, *M.IPVS_BACKEND))
        wanted = []
        for s in desired.ipvs_services(self.inv):
            pool = [(rs, None if rs.source.dynamic_weight else rs.weight) for rs in s.real_servers]
            if s.sorry is not None:
                pool.append((s.sorry, None))      # held instead of the pool when the quorum is lost
            for rs, weight in pool:
                sel = select(M.IPVS_BACKEND_WEIGHT, **M.ipvs_backend_labels(s, rs))
                # 0 is a drain or an inhibited real server: the real-server alerts judge it
                wanted += [sel] if weight is None else [f"{sel} == {weight}", f"{sel} == 0"]
        expr = (f"{M.IPVS_BACKEND_WEIGHT.name}\n"
                f"  * on({', '.join(M.TARGET)}) group_left(cluster, node) {select(M.NODE_INFO, cluster=self.c)}\n"
                f"unless on({keys}) (\n  " + "\n  or ".join(wanted) + "\n)")
        shown = (f"{label('proto')} {label('local_address')}{label('local_mark')}:{label('local_port')} -> "
                 f"{label('remote_address')}:{label('remote_port')}")
        return self.rule(IPVS_DIFFERS, expr,
                         f"{label('node')}'s IPVS table holds {shown} at a weight the inventory does not want",
                         "The kernel's table (node_exporter's ipvs collector) has a real server or service the "
                         "inventory does not name, or another weight than its own: a hand-made ipvsadm change, "
                         "or a keepalived.conf that is not the inventory's (`inv diff`).")

    def silent(self) -> dict:
        expr = "\nor ".join(f"absent({select(M.NODE_INFO, cluster=self.c, node=n.name)})" for n in self.inv.nodes)
        return self.rule(SILENT, expr, f"{label('node')} publishes no lbtk metrics",
                         "The director is down or unreachable, or its node_exporter or lbtk's metrics publisher "
                         "stopped: every other alert is blind for it.")


def group_name(inv: Inventory) -> str:
    return f"lbtk-{inv.cluster}"


def document(inv: Inventory, env: str) -> dict:
    """The rules file as data (Prometheus's rule-file format)."""
    return {"groups": [{"name": group_name(inv), "interval": duration(inv.monitoring.scrape_interval),
                        "rules": Rules(inv, env).all()}]}
