"""keepalived.conf and /etc/default/keepalived for one node."""
from __future__ import annotations

from fabfile.model.global_defs import FIFOS
from fabfile.model.schema import Inventory, Node
from fabfile.parsers import join_host_port
from fabfile.core.desired import services
from fabfile.core.sync_rules import sync_instance
from fabfile.core.vrrp import plan
from fabfile.core.phase import Phase
from fabfile.core.render import Facts, NodeFile, Templates, ipvs_sync, monitoring, rsyslog, templates, tracking, vservers
from fabfile.core.render import instance_options
from fabfile.core.render.checkers import checker_blocks

CONF = "/etc/keepalived/keepalived.conf"
DEFAULTS = "/etc/default/keepalived"


def files(inv: Inventory, node: Node, secrets: dict[str, str], facts: Facts,
          t: Templates | None = None) -> list[NodeFile]:
    t = t or templates(inv)
    return [
        monitoring.fifo_script(inv, t),       # before keepalived.conf, which runs it
        NodeFile(CONF, conf(inv, node, secrets, facts, t), Phase.KEEPALIVED, mode=0o600,
                 secret=any(vi.authentication for vi in inv.vrrp_instances)),
        NodeFile(DEFAULTS, t("default_keepalived.j2", ipvs=facts.ipvs, args=daemon_args(inv, facts),
                             logging=inv.logging, rule=rsyslog.RULE), Phase.LVS),
    ]


def daemon_args(inv: Inventory, facts: Facts) -> list[str]:
    """keepalived's start options (DAEMON_ARGS)."""
    args = [] if facts.ipvs else ["--vrrp"]
    if not inv.vrrp_instances:   # routers bring the VIPs (vip_managed_by: external): the health checker only
        args = ["--check"]
    if inv.logging:
        # keepalived 2.2.7 takes the facility by name (-S local0) as well as by number
        args.append(f"--log-facility={inv.logging.facility}")
        if inv.logging.detail:
            args.append("--log-detail")
    return args


def conf(inv: Inventory, node: Node, secrets: dict[str, str], facts: Facts, t: Templates | None = None) -> str:
    t = t or templates(inv)
    planned = plan(inv)
    instances = []
    for p in planned:
        vi = p.source
        auth = vi.authentication
        instances.append(dict(
            name=p.name, state=p.states[node.name], interface=inv.interface_of(node, vi),
            virtual_router_id=p.virtual_router_id, priority=p.priorities[node.name],
            advert_int=_num(vi.advert_int), vrrp_version=vi.vrrp_version, nopreempt=vi.nopreempt,
            preempt_delay=vi.preempt_delay, garp_master_delay=vi.garp_master_delay,
            unicast=vi.unicast, src=inv.ip_on(node, inv.interface_of(node, vi), vi.family),
            peers=[inv.ip_on(n, inv.interface_of(n, vi), vi.family) for n in inv.nodes if n.name != node.name],
            auth_type=auth.auth_type if auth else None,
            auth_pass=secrets.get(vi.name) if auth else None,
            vips=p.vips, tracking=tracking.instance(vi),
            track_script=[t.rendered() for t in vi.track_script],   # what templates_dir copies read
            notify_master=vi.notify_master, notify_backup=vi.notify_backup,
            notify_fault=vi.notify_fault, notify=vi.notify, smtp_alert=vi.smtp_alert,
            extras=instance_options.instance_extras(inv, node, vi)))
    sd = inv.sync_daemon
    if ipvs_sync.wanted(inv, facts):
        name = sync_instance(inv).name
        for i in instances:
            if i["name"] == name:
                i["notify"] = ipvs_sync.SCRIPT   # keepalived appends: INSTANCE name STATE priority
    sync = None
    if sd and sd.mode == "keepalived" and facts.ipvs:
        sync = dict(interface=sd.interface, syncid=sd.syncid,
                    instance=sd.vrrp_instance or planned[0].name)
    global_defs = inv.global_defs
    if monitoring.on_transition(inv):       # lbtk's metrics refreshed at each VRRP transition
        global_defs = global_defs.model_copy(update={"vrrp_notify_fifo": monitoring.FIFO,
                                                     "vrrp_notify_fifo_script": monitoring.FIFO_SCRIPT})
    return t(
        "keepalived.conf.j2", cluster=inv.cluster, node=node,
        router_id=inv.global_defs.router_id.format(node=node.name, NODE=node.name.upper()),
        global_defs=global_defs,
        script_security=inv.global_defs.enable_script_security or bool(inv.vrrp_scripts) or _has_misc(inv),
        script_user=inv.global_defs.script_user if (inv.vrrp_scripts or _has_notify(inv) or vservers.has_commands(inv)
                                                    or monitoring.on_transition(inv) or _has_fifo(inv)
                                                    or _has_misc(inv) or (sd and sd.mode == "notify")) else None,
        sync=sync, track=tracking.sections(inv), scripts={k: v.model_dump() for k, v in inv.vrrp_scripts.items()},
        sync_groups=instance_options.sync_groups_with_options(inv), statics=instance_options.statics(node),
        instances=instances, virtual_servers=virtual_servers(inv), vs_groups=vservers.groups(inv))


def _has_fifo(inv: Inventory) -> bool:
    """A global_defs FIFO: keepalived resolves the scripts' user as it parses one (after
    enable_script_security, with no script_user, it looks for keepalived_script, which Debian
    lacks, and warns, exit 5), so script_user is written before the FIFO lines."""
    g = inv.global_defs
    return any(getattr(g, k) is not None for k in ("notify_fifo", "vrrp_notify_fifo", "lvs_notify_fifo"))


def virtual_servers(inv: Inventory) -> list[dict]:
    """The template's view of every virtual server: fabfile.core.desired.services (what IPVS gets)
    plus what only keepalived.conf says (health checks, timers). For the template only."""
    out = []
    for s in services(inv):
        vs = s.source
        rss = []
        for rs in s.real_servers:
            # fwmark services carry no port, so a checker must name the one to probe
            fwmark_port = rs.port if s.fwmark else None
            # tcp, http, check_port: the one checker templates_dir templates of lbtk < issue 26 write
            tcp, http = (rs.source.TCP_CHECK or [None])[0], (rs.source.HTTP_GET or [None])[0]
            check = tcp or http
            check_port = (check.connect_port if check and check.connect_port else (fwmark_port if check else None))
            rss.append(dict(address=rs.address, port=rs.port, weight=rs.weight, smtp_alert=rs.source.smtp_alert,
                            checkers=checker_blocks(rs.source, fwmark_port), tcp=tcp, http=http,
                            check_port=check_port, options=vservers.rs_options(rs.source)))
        out.append(dict(vip=s.vip, port=s.port, fwmark=s.fwmark, protocol=s.protocol, family=s.family,
                        group=s.group, options=vservers.vs_options(vs, fwmark=bool(s.fwmark)),
                        where=join_host_port(s.vip, s.port) if s.vip else f"fwmark {s.fwmark}",
                        director_fix=inv.director_fix_applies(vs), delay_loop=vs.delay_loop,
                        lb_algo=vs.lb_algo, lb_kind=vs.lb_kind,
                        persistence_timeout=vs.persistence_timeout,
                        persistence_granularity=vs.persistence_granularity, real_servers=rss))
    return out


def _num(x: float):
    return int(x) if float(x).is_integer() else x


def _has_notify(inv: Inventory) -> bool:
    g = inv.global_defs
    return any(vi.notify_master or vi.notify_backup or vi.notify_fault or vi.notify or vi.notify_stop
               for vi in inv.vrrp_instances) \
        or any(getattr(g, f + "_script") for f in FIFOS) \
        or any(getattr(sg, k) for sg in inv.vrrp_sync_groups for k in instance_options.GROUP_KEYS)


def _has_misc(inv: Inventory) -> bool:
    """A MISC_CHECK runs a command, under the same script security as vrrp_scripts."""
    return any(rs.MISC_CHECK for vs in inv.virtual_servers for rs in vs.real_servers)
