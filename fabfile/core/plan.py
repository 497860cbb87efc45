"""Desired files + node facts -> the changes and the service actions a phase needs. Pure.

Like Ansible handlers, actions follow from what changed: a keepalived.conf change means
`reload` when keepalived runs and `start` when it does not; restart happens only where the
daemon must re-read its start options (/etc/default/keepalived). Nothing changed and every
service up means an empty plan: a second deploy does nothing and says so.
"""
from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass, field
from enum import StrEnum

from fabfile.core.actions import Action
from fabfile.core.phase import Phase
from fabfile.infra.facts import NodeState
from fabfile.core.render import NodeFile
from fabfile.core.render import arp, fwmark, ipvs_sync, keepalived, monitoring, nginx, rsyslog, scripts
from fabfile.core.vrrp import expected_holders, keepers, nopreempt_vips
from fabfile.model.schema import Inventory
from fabfile.model.secrets import mask
from fabfile.parsers import ParseError
from fabfile.parsers.lbtk import daemon_args
from fabfile.parsers.keepalived_conf import parse_conf


@dataclass(frozen=True)
class VipIntent:
    """Where VRRP puts each VIP once a change is in: its owner (the top priority), and the VIPs
    of nopreempt instances (they stay where they are). A deploy reads it from the inventory, a
    rollback from the keepalived.conf each node ends on (the inventory that wrote them is gone)."""
    owners: dict[str, str]                    # VIP address -> node
    nopreempt: frozenset[str] = frozenset()
    # VIP address -> the nodes sharing its top priority (equal_priorities): whichever of them holds
    # it keeps it (an equal-priority BACKUP does not preempt); the owner is the one VRRP elects
    # when they contend (the highest advert source address)
    ties: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, inv: Inventory) -> "VipIntent":
        return cls(expected_holders(inv), frozenset(nopreempt_vips(inv)),
                   {v: k for v, k in keepers(inv).items() if len(k) > 1})

    def stays(self, vip: str, holders) -> bool:
        """Does `vip`, held by `holders`, stay where it is (nopreempt aside)?"""
        return self.owners.get(vip) in holders or bool(set(holders) & self.ties.get(vip, frozenset()))

    @classmethod
    def of_confs(cls, confs: dict[str, str]) -> "VipIntent":
        """{node: the keepalived.conf it will run} -> per VIP the node whose instance carrying it
        has the highest priority (a tie: the highest advert source, unicast_src_ip or mcast_src_ip,
        as VRRP elects; unknown sources rank lowest). A conf keepalived's parser refuses adds nothing."""
        best: dict[str, tuple[int, int, str]] = {}
        top: dict[str, dict[str, int]] = {}
        held: set[str] = set()
        for node, text in confs.items():
            try:
                conf = parse_conf(text)
            except ParseError:
                continue
            for vi in conf.find("vrrp_instance"):
                try:
                    prio = int(vi.value("priority", "100"))
                except ValueError:
                    continue
                words = [w for key in ("virtual_ipaddress", "virtual_ipaddress_excluded")
                         for block in vi.find(key) for w in block.words()]
                src = _source_rank(vi.value("unicast_src_ip", "") or vi.value("mcast_src_ip", ""))
                for addr in (w.split("/")[0] for w in words):
                    if vi.first("nopreempt") is not None:
                        held.add(addr)
                    top.setdefault(addr, {})[node] = prio
                    if addr not in best or (prio, src) > best[addr][:2]:
                        best[addr] = (prio, src, node)
        ties = {a: frozenset(n for n, p in ps.items() if p == best[a][0]) for a, ps in top.items()}
        return cls({a: n for a, (_, _, n) in best.items()}, frozenset(held),
                   {a: k for a, k in ties.items() if len(k) > 1})

def _source_rank(addr: str) -> int:
    """An advert source address as VRRP compares them (numerically); -1 when absent or unreadable."""
    try:
        return int(ipaddress.ip_address(addr))
    except ValueError:
        return -1


@dataclass(frozen=True)
class PlannedMove:
    """A VIP whose holder the new inventory changes: a planned failover, or (nopreempt) none yet."""
    vip: str
    holders: tuple[str, ...]   # the nodes that hold it now
    owner: str                 # the node the new inventory makes its MASTER
    nopreempt: bool            # True: it stays on its holders until the next failover

    @property
    def moves(self) -> bool:
        """Will the deploy move it (and wait for the move, fabfile.ops.settle.finish_moves)?"""
        return not self.nopreempt


@dataclass(frozen=True)
class FileChange:
    file: NodeFile
    kind: str            # create | update | delete | mode
    diff: str            # unified diff, secrets masked


@dataclass
class NodePlan:
    node: str
    changes: list[FileChange] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.changes and not self.actions

    def add_actions(self, actions: list[Action]) -> None:
        """Append, skipping an action already planned (one daemon-reload covers every unit); a `stop`
        goes before the first daemon-reload, which would make systemd forget the stopped unit's
        ExecStop (fabfile/core/actions.py)."""
        for a in actions:
            if a in self.actions:
                continue
            if a.verb == "stop":
                at = next((i for i, b in enumerate(self.actions) if b.verb == "daemon-reload"), len(self.actions))
                self.actions.insert(at, a)
            else:
                self.actions.append(a)


def file_changes(desired: list[NodeFile], facts: NodeState, node: str) -> list[FileChange]:
    out = []
    for f in desired:
        live = facts.files.get(f.path)
        if f.content is None:
            if live is not None:
                out.append(FileChange(f, "delete", _diff(node, f, live.content.decode(errors="replace"), "")))
            elif f.recorded and f.path not in facts.files:
                out.append(FileChange(f, "delete", f"{node}:{f.path}: remove (lbtk shipped it; the inventory "
                                      "no longer names it)\n"))
            continue
        if live is None:
            out.append(FileChange(f, "create", _diff(node, f, "", f.content)))
        elif live.content != f.content.encode():
            out.append(FileChange(f, "update", _diff(node, f, live.content.decode(errors="replace"), f.content)))
        elif live.mode != f.mode:
            out.append(FileChange(f, "mode", f"{node}:{f.path}: mode {oct(live.mode)[2:]} -> {oct(f.mode)[2:]}\n"))
    return out


def _lines(text: str) -> list[str]:
    """Lines as ended by newlines only: a carriage return or a form feed in a live file stays a
    character of its line (shown escaped), not a line break splitting the diff's lines apart."""
    return re.findall(r"[^\n]*\n|[^\n]+\Z", text)


def _diff(node: str, f: NodeFile, old: str, new: str) -> str:
    lines = difflib.unified_diff(_lines(old), _lines(new),
                                 fromfile=f"{node}:{f.path} (live)", tofile=f"{node}:{f.path} (inventory)")
    return mask("".join(lines))


def _daemon_args_differ(live, wanted) -> bool:
    """Whether keepalived would start with other options: a rewritten /etc/default/keepalived whose
    DAEMON_ARGS are the same words (comments, quoting, an adopted cluster's own file) needs no
    restart, which would be a failover on the MASTER."""
    if live is None or wanted is None or wanted.content is None:
        return True
    return daemon_args(live.content.decode(errors="replace")) != daemon_args(wanted.content)


def service_actions(phase: Phase, changed: set[str], facts: NodeState, desired: list[NodeFile]) -> list[Action]:
    """Actions one phase needs on one node, given the paths it changed."""
    phase = Phase(phase)      # a name is taken, a misspelt one refused (it would plan nothing)
    want = {f.path: f for f in desired}
    acts: list[Action] = []

    def unit(name: str, path: str, present: bool) -> None:
        going = not present and facts.active.get(name) == "active"
        if going:       # its ExecStop runs only while systemd has not reloaded the removal
            acts.append(Action("stop", name, why=f"{name} no longer wanted: stopped while its ExecStop is known"))
        if path in changed:
            acts.append(Action("daemon-reload", why=f"{path} changed"))
        if not present:
            if going:
                acts.append(Action("disable", name, why=f"{name} no longer wanted"))
            return
        if path in changed:
            acts.append(Action("enable-restart", name, why=f"{name} unit changed (oneshot: restart re-applies it)"))
        else:
            _ensure(acts, facts, name)

    if phase is Phase.ARP:
        if arp.SYSCTL in changed and want[arp.SYSCTL].content is not None:
            acts.append(Action("sysctl-load", arg=arp.SYSCTL, why="ARP sysctl file changed"))
        unit("lbtk-vip-lo", arp.VIP_UNIT, want[arp.VIP_UNIT].content is not None)
    elif phase is Phase.NGINX:
        # a site written or removed changes what nginx reads from sites-enabled/: test before reloading
        if any(p.startswith(nginx.SITES + "/") for p in changed):
            acts.append(Action("nginx-test", why="validate the new site before reloading"))
        if changed:
            acts.append(_reload_or_start(facts, "nginx", "site or page changed"))
            _ensure(acts, facts, "nginx", start=False)
        else:
            _ensure(acts, facts, "nginx")
    elif phase is Phase.LVS:
        unit("lbtk-fwmark", fwmark.UNIT, want.get(fwmark.UNIT) is not None
             and want[fwmark.UNIT].content is not None)
        rules = [p for p in (fwmark.RULES, fwmark.RULES6) if p in changed and want.get(p) and want[p].content]
        if rules and fwmark.UNIT not in changed:
            acts.append(Action("restart", "lbtk-fwmark", why="fwmark rules changed"))
        # rsyslog before keepalived: keepalived's first lines on the new facility find the rule
        acts += _rsyslog(changed, facts, want)
        if keepalived.DEFAULTS in changed and facts.active.get("keepalived") == "active" \
                and _daemon_args_differ(facts.files.get(keepalived.DEFAULTS), want.get(keepalived.DEFAULTS)):
            acts.append(Action("restart", "keepalived",
                               why="DAEMON_ARGS changed: keepalived reads it only at start (this is a failover if MASTER)"))
    elif phase is Phase.SYNC_DAEMON:
        script = want.get(ipvs_sync.SCRIPT)
        if ipvs_sync.SCRIPT in changed and script is not None and script.content is not None:
            acts.append(Action("run", arg=ipvs_sync.RECONCILE,
                               why="sync script changed: set the daemons for this node's VRRP state now"))
        elif ipvs_sync.SCRIPT in changed and script is not None and facts.has_ipvs:
            acts.append(Action("stop-sync-daemons", why="sync_daemon no longer wanted: the kernel's daemons "
                               "stop with the script that ran them"))
    elif phase is Phase.MONITORING:
        _monitoring(acts, changed, facts, want, unit)
    elif phase is Phase.KEEPALIVED:
        new_scripts = scripts.appeared_or_gone(changed, want, facts.files)
        if keepalived.CONF in changed or new_scripts:
            acts.append(_reload_or_start(facts, "keepalived", "keepalived.conf changed" if keepalived.CONF in changed
                                         else f"{new_scripts[0]} shipped or removed"))
            _ensure(acts, facts, "keepalived", start=False)
        else:
            _ensure(acts, facts, "keepalived")
    return _enable_now(acts)


def _rsyslog(changed: set[str], facts: NodeState, want: dict[str, NodeFile]) -> list[Action]:
    """keepalived's log file rule (inventory `logging:`): rsyslog reads its rules only at start
    (its reload, HUP, only reopens files), so a changed rule is checked, then rsyslog restarted.
    A removed rule restarts a running rsyslog too, which then stops writing the file."""
    rule = want.get(rsyslog.RULE)
    if rule is None:
        return []
    acts: list[Action] = []
    if rule.content is None:
        if rsyslog.RULE in changed and facts.active.get(rsyslog.UNIT) == "active":
            acts.append(Action("restart", rsyslog.UNIT, why=f"{rsyslog.RULE} removed: rsyslog stops writing it"))
        return acts
    if rsyslog.RULE in changed:
        acts.append(Action("rsyslog-test", why="validate the rule before rsyslog reads it"))
        if facts.active.get(rsyslog.UNIT) == "active":
            acts.append(Action("restart", rsyslog.UNIT, why="keepalived's log rule changed: rsyslog reads "
                               "rules only at start"))
    _ensure(acts, facts, rsyslog.UNIT)      # enabled at boot and running (started if it was not)
    return acts


def _monitoring(acts: list[Action], changed: set[str], facts: NodeState, want: dict[str, NodeFile], unit) -> None:
    """monitoring.publish: node_exporter restarted when its start options change (it reads ARGS only
    at start; its reload, HUP, re-reads no flag), enabled and running; the publisher run once when
    it changes (lbtk.prom current at once), its timer enabled and started. Without publish, `unit`
    stops the timer, then daemon-reload, then disables it."""
    on = want.get(monitoring.TIMER) is not None and want[monitoring.TIMER].content is not None
    if not on:
        unit(monitoring.TIMER_UNIT, monitoring.TIMER, False)
        if monitoring.SERVICE in changed:
            acts.append(Action("daemon-reload", why=f"{monitoring.SERVICE} removed"))
        return
    if monitoring.DEFAULTS in changed and facts.active.get(monitoring.EXPORTER) == "active":
        acts.append(Action("restart", monitoring.EXPORTER, why="its ARGS changed: node_exporter reads them only at start"))
    _ensure(acts, facts, monitoring.EXPORTER)
    if monitoring.SERVICE in changed:
        acts.append(Action("daemon-reload", why=f"{monitoring.SERVICE} changed"))
    if monitoring.SCRIPT in changed:
        acts.append(Action("run", arg=monitoring.SCRIPT, why="publisher changed: lbtk.prom written now"))
    unit(monitoring.TIMER_UNIT, monitoring.TIMER, True)


def _enable_now(acts: list[Action]) -> list[Action]:
    """`enable u` and `start u` in one plan become one `enable --now u` where the first stood: one
    systemctl call instead of two (a first deploy did two per daemon on every node)."""
    both = {a.unit for a in acts if a.verb == "start"} & {a.unit for a in acts if a.verb == "enable"}
    out: list[Action] = []
    for a in acts:
        if a.unit not in both or a.verb not in ("start", "enable"):
            out.append(a)
        elif not any(b.verb == "enable-now" and b.unit == a.unit for b in out):
            whys = [b.why for b in acts if b.unit == a.unit and b.verb in ("start", "enable")]
            out.append(Action("enable-now", a.unit, why="; ".join(whys)))
    return out


def _reload_or_start(facts: NodeState, unit: str, why: str) -> Action:
    if facts.active.get(unit) == "active":
        return Action("reload", unit, why=f"{why}: reload, not restart")
    return Action("start", unit, why=f"{why}; {unit} was {facts.active.get(unit, 'down')}")


def _ensure(acts: list[Action], facts: NodeState, unit: str, start: bool = True) -> None:
    if facts.enabled.get(unit) != "enabled":
        acts.append(Action("enable", unit, why=f"{unit} not enabled at boot"))
    if start and facts.active.get(unit) != "active":
        acts.append(Action("start", unit, why=f"{unit} is {facts.active.get(unit, 'down')}"))


WIRE = re.compile(r"^\s*(vrrp_instance|virtual_router_id|advert_int|version|auth_type|auth_pass|"
                  r"virtual_ipaddress\b|unicast_src_ip)\b.*$", re.M)


def wire_signature(conf: str) -> list[str]:
    """What a VRRP advert carries or is checked against (ids, interval, auth, first VIP).
    Nodes that disagree on any of it ignore each other's adverts: such a change must reach
    every node at once, never one by one."""
    lines = []
    it = iter(conf.splitlines())
    for ln in it:
        if WIRE.match(ln):
            lines.append(ln.strip())
            if ln.strip().startswith("virtual_ipaddress"):
                lines.append(next(it, "").strip())
    return lines


def changes_wire(changes: list[FileChange], live: dict) -> bool:
    from fabfile.core.render.keepalived import CONF
    for ch in changes:
        if ch.file.path == CONF and ch.file.content is not None:
            old = live.get(CONF)
            if old is None:   # a node new to the cluster: nothing of it is on the wire yet
                continue
            if wire_signature(old.content.decode(errors="replace")) != wire_signature(ch.file.content):
                return True
    return False


# ================================================================== how a change is rolled out
LVS_BLOCKS = ("virtual_server", "virtual_server_group")
# what a reload-only change may run: keepalived's and nginx's reload re-read their files in place
# (keepalived keeps every VRRP instance's state across a reload); `enable` only sets boot state
RELOAD_ONLY_VERBS = frozenset({"reload", "nginx-test", "enable"})


def vrrp_part(conf: str) -> list[str]:
    """Everything of a keepalived.conf but its LVS blocks (virtual_server, virtual_server_group) and
    comments: what decides VRRP — priorities, states, VIPs, scripts, global_defs. Two files with the
    same VRRP part differ only in weights, real servers and checkers, which a reload applies without
    touching VRRP."""
    out: list[str] = []
    depth = 0           # > 0: inside an LVS block
    for ln in conf.splitlines():
        s = ln.strip()
        if not s or s.startswith(("#", "!")):
            continue
        if depth == 0 and s.split(None, 1)[0] in LVS_BLOCKS:
            depth = s.count("{") - s.count("}")
            continue
        if depth > 0:
            depth += s.count("{") - s.count("}")
            continue
        out.append(s)
    return out


def reload_only_refusal(plan: NodePlan, live: dict, runtime_path: str) -> str | None:
    """Pure: why this node's plan is NOT a reload-only change that leaves VRRP alone, in a few words
    (None: it is). Reload-only: every action is a reload (or its test), every changed file is
    keepalived.conf with the same VRRP part (`vrrp_part`), an nginx file, or the runtime record."""
    from fabfile.core.render.keepalived import CONF
    for a in plan.actions:
        if a.verb not in RELOAD_ONLY_VERBS:
            return f"{plan.node}: {a.short()}"
    for ch in plan.changes:
        path = ch.file.path
        if path == CONF:
            old = live.get(CONF)
            if old is None or ch.file.content is None:
                return f"{plan.node}: keepalived.conf {ch.kind}"
            if vrrp_part(old.content.decode(errors="replace")) != vrrp_part(ch.file.content):
                return f"{plan.node}: VRRP settings change (priority, state, VIPs, scripts or global_defs)"
        elif path != runtime_path and ch.file.phase is not Phase.NGINX:
            return f"{plan.node}: {path} changes"
    return None


class RollKind(StrEnum):
    """How a change goes to the nodes (fabfile.ops.deploy.roll_plan decides)."""
    FIRST = "first deploy"       # no keepalived runs yet: the planned MASTERs first, then the rest at once
    AT_ONCE = "all at once"      # what adverts carry: every node together
    CANARY = "canary"            # reload-only, no VIP can move: one backup, the other backups, the holders
    ROLLING = "rolling"          # anything that can move a VIP: backups one by one (or --batch), holders alone


@dataclass(frozen=True)
class RollPlan:
    """The batches a change goes in, in order; `settle_after[i]`: wait for VRRP after batch i (only
    where a VIP holder may have moved a VIP); `reason`: why this way, in a few words."""
    kind: RollKind
    batches: list[list[str]]
    settle_after: list[bool]
    reason: str
    holders: frozenset[str] = frozenset()   # the nodes that held a VIP when the plan was made

    def line(self) -> str:
        """One line: the order and why (deploy --check and the run's progress say it)."""
        steps = []
        for i, b in enumerate(self.batches):
            label = ("canary " if self.kind is RollKind.CANARY and i == 0 and not set(b) & self.holders else
                     "planned MASTER " if self.kind is RollKind.FIRST and i == 0 and len(self.batches) > 1 else
                     "VIP holder " if b and set(b) <= self.holders else "")
            steps.append(label + _names(b) + (" (VRRP settle)" if self.settle_after[i] else ""))
        order = "every node at once: " + steps[0] if self.kind is RollKind.AT_ONCE else ", then ".join(steps)
        return f"roll: {order} — {self.reason}"


def _names(batch: list[str]) -> str:
    return "+".join(batch) if len(batch) <= 4 else "+".join(batch[:3]) + f"+... ({len(batch)} nodes)"
