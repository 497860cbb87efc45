"""lbtk's own metrics (metrics.py) as a scrape reads them: what lbtk observes on each node turned
into Prometheus's text exposition format (what node_exporter's textfile collector reads) or
OpenMetrics. Pure: the inventory and the observed NodeStates in, text out; `inv metrics` prints it.

Per node, from the facts of fabfile.infra.facts.METRICS:
- lbtk_node_info, ipvs="1" when the node's kernel has IPVS (the IPVS table fact reads one);
- per VRRP instance keepalived reports (its JSON dump): state, priority, adverts in and out,
  authentication failures, priority-0 adverts in and out, transitions (became + released MASTER)
  and the time of the last one; per instance of the inventory the node takes part in, the priority
  the inventory gives it (keepalived running or not);
- per real server of the inventory: the wanted weight (0 while drained) and whether a drain is
  recorded, both from the node's OWN runtime record (what its keepalived.conf was written with);
  per real server in the node's live IPVS table: its weight there (none: not in the pool);
- lbtk_service_up for keepalived and nginx (systemd's ActiveState), and for sync_daemon where the
  inventory wants connection sync: the daemon the node's VRRP role wants (its own keepalived view
  says MASTER of the sync instance or not) runs, as verify judges it.
A node that did not answer publishes nothing: its absence is what LbtkDirectorSilent reads.
"""
from __future__ import annotations

from dataclasses import dataclass

from fabfile.core import checks, desired
from fabfile.core import sync_rules as sync
from fabfile.core.monitoring import metrics as M
from fabfile.core.runtime import NONE
from fabfile.core.vrrp import plan
from fabfile.errors import UsageError
from fabfile.infra.facts import NodeState
from fabfile.model.schema import Inventory
from fabfile.parsers.ipvsadm import service_key

OPENMETRICS, PROMETHEUS = "openmetrics", "prometheus"
FORMATS = (OPENMETRICS, PROMETHEUS)


@dataclass(frozen=True)
class Sample:
    metric: M.Metric
    labels: tuple[tuple[str, str], ...]     # in the metric's label order
    value: float


def sample(metric: M.Metric, value: float, **labels: str) -> Sample:
    assert set(labels) == set(metric.labels), (metric.name, sorted(labels))
    return Sample(metric, tuple((k, str(labels[k])) for k in metric.labels), value)


def check_format(fmt: str | None) -> str:
    """--format, checked before any node is read; openmetrics when not given."""
    if fmt is None or fmt == "":
        return OPENMETRICS
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt}: choose from {', '.join(FORMATS)}")
    return fmt


# -- from observed states to samples -----------------------------------------------------------

def node_samples(inv: Inventory, node: str, s: NodeState) -> list[Sample]:
    """Every sample one node publishes; none when it was not observed."""
    if not s.reachable:
        return []
    base = {"cluster": inv.cluster, "node": node}
    return [sample(M.NODE_INFO, 1, **base, ipvs="1" if s.ipvs is not None else "0"),
            sample(M.NODE_ISOLATED, int(node in (s.runtime or NONE).isolated), **base),
            *vrrp_samples(inv, base, s), *real_server_samples(inv, base, s), *service_samples(inv, base, s)]


def vrrp_samples(inv: Inventory, base: dict[str, str], s: NodeState) -> list[Sample]:
    planned = {p.name: p for p in plan(inv)}
    out = []
    for v in s.vrrp or []:          # None: keepalived not running, or its view unavailable
        p = planned.get(v.instance)
        labels = {**base, "vrrp_instance": v.instance, "vip": M.vip_label(p) if p else ""}
        if v.state in M.VrrpState.__members__:
            out.append(sample(M.VRRP_STATE, int(M.VrrpState[v.state]), **labels))
        out += [sample(M.VRRP_PRIORITY, v.priority, **labels),
                sample(M.VRRP_ADVERTS_RECEIVED, v.advert_rcvd, **labels),
                sample(M.VRRP_ADVERTS_SENT, v.advert_sent, **labels),
                sample(M.VRRP_AUTH_FAILURES, v.auth_errors, **labels),
                sample(M.VRRP_TRANSITIONS, v.become_master + v.release_master, **labels),
                sample(M.VRRP_PRIORITY_ZERO_RECEIVED, v.pri_zero_rcvd, **labels),
                sample(M.VRRP_PRIORITY_ZERO_SENT, v.pri_zero_sent, **labels)]
        if v.last_transition:       # 0: keepalived did not say
            out.append(sample(M.VRRP_LAST_TRANSITION, v.last_transition, **labels))
    for p in planned.values():
        if base["node"] in p.priorities:
            out.append(sample(M.VRRP_WANTED_PRIORITY, p.priorities[base["node"]], **base, vrrp_instance=p.name,
                              vip=M.vip_label(p)))
    return out


def real_server_samples(inv: Inventory, base: dict[str, str], s: NodeState) -> list[Sample]:
    drained = set((s.runtime or NONE).drained)
    out = []
    for svc in desired.ipvs_services(inv):
        for rs in svc.real_servers:
            labels = {**base, "virtual_server": M.virtual_server_label(svc), "real_server": M.real_server_label(svc, rs)}
            # the address a drain records, as runtime.apply matches it
            down = inv.real_server_address(rs.source) in drained
            out += [sample(M.REAL_SERVER_WANTED_WEIGHT, 0 if down else rs.weight, **labels),
                    sample(M.REAL_SERVER_DRAINED, int(down), **labels)]
    for live in s.ipvs.services if s.ipvs is not None else []:
        for r in live.real_servers:
            out.append(sample(M.REAL_SERVER_WEIGHT, r.weight, **base, virtual_server=service_key(live),
                              real_server=r.endpoint))
    return out


def service_samples(inv: Inventory, base: dict[str, str], s: NodeState) -> list[Sample]:
    up = {unit: s.active.get(unit) == "active" for unit in ("keepalived", "nginx")}
    if inv.sync_daemon is not None and s.ipvs is not None:
        inst = sync.sync_instance(inv)
        master = any(v.instance == inst.name and v.state == "MASTER" for v in s.vrrp or [])
        up["sync_daemon"] = checks.sync_check(inv, base["node"], s, master).ok
    return [sample(M.SERVICE_UP, int(ok), **base, service=name) for name, ok in up.items()]


def cluster_samples(inv: Inventory, states: dict[str, NodeState]) -> list[Sample]:
    return [x for node, s in states.items() for x in node_samples(inv, node, s)]


# -- the text ----------------------------------------------------------------------------------

def family(metric: M.Metric, fmt: str) -> tuple[str, str]:
    """(the family's name, its type) in `fmt`: OpenMetrics names a counter's family without its
    _total and has an info type (lbtk_node_info is lbtk_node's sample); the text format names a
    family as its samples and has no info type (a gauge of 1)."""
    if fmt == OPENMETRICS and metric.type == "counter":
        return metric.name.removesuffix("_total"), "counter"
    if fmt == OPENMETRICS and metric is M.NODE_INFO:
        return metric.name.removesuffix("_info"), "info"
    return metric.name, metric.type


def escape(value: str, quote: bool) -> str:
    """A label value (quote: its `"` too) or a help text, escaped as both formats want."""
    out = value.replace("\\", "\\\\").replace("\n", "\\n")
    return out.replace('"', '\\"') if quote else out


def number(value: float) -> str:
    if isinstance(value, bool) or isinstance(value, int):
        return str(int(value))
    return str(int(value)) if value.is_integer() and abs(value) < 2 ** 53 else repr(float(value))


def text(samples: list[Sample], fmt: str) -> str:
    """The exposition: per metric of metrics.LBTK that has samples, its HELP and TYPE then every
    sample (a family's samples together, as OpenMetrics requires; a label set once: the first
    wins), empty label values left out as Prometheus reads them; OpenMetrics ends with # EOF."""
    fmt = check_format(fmt)
    lines = []
    for metric in M.LBTK:
        seen: dict[tuple, Sample] = {}
        for x in samples:
            if x.metric is metric:
                seen.setdefault(x.labels, x)
        if not seen:
            continue
        name, kind = family(metric, fmt)
        lines += [f"# HELP {name} {escape(metric.help, quote=fmt == OPENMETRICS)}", f"# TYPE {name} {kind}"]
        for x in seen.values():
            shown = ",".join(f'{k}="{escape(v, quote=True)}"' for k, v in x.labels if v != "")
            lines.append(f"{metric.name}{{{shown}}} {number(x.value)}")
    if fmt == OPENMETRICS:
        lines.append("# EOF")
    return "".join(line + "\n" for line in lines)


def exposition(inv: Inventory, states: dict[str, NodeState], fmt: str) -> str:
    """Every observed node's metrics in one exposition (`inv metrics`)."""
    return text(cluster_samples(inv, states), fmt)


def silent(states: dict[str, NodeState]) -> list[str]:
    """One line per node that publishes nothing: it was not observed, and why."""
    return [f"{node}: no metrics: {'unreadable' if s.unreadable else 'unreachable'}: {s.error}"
            for node, s in states.items() if not s.reachable]
