"""The failover drill: fail the MASTER for real and measure what VRRP and a client see.

Three things run at once: an HTTP probe through the VIP from this machine (one new
connection every `interval` seconds), an address poller streaming every node's `ip -j -4 addr`
every 50 ms over one SSH channel each, and the drill itself (fail, wait, restore, wait).
Times are this machine's monotonic clock at receipt, so node clocks do not matter.
Whatever happens (Ctrl-C included) the failed node is restored before the drill returns.

The drill acts through a `Rig`: the node actions, the address poller, the probe and the clock.
`run` builds the live one over SSH; a unit test passes fakes (tests/unit/drill_sim.py).
The steps (`Drilling`) are shared by the one-VIP drill (`drill`) and `drill_all_but_one`, and so
is their one clean-up.
"""
from __future__ import annotations

import http.client
import shlex
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

from fabfile.core.checks import vip_holders
from fabfile.core.drill_result import (Comeback, DrillResult, Event, FamilyMove, HolderChange, LastDirector, Move,
                                       Outage, ProbeSample, Step)
from fabfile.core.vrrp import PlannedInstance, companions, master_down_interval, plan, skew_time
from fabfile.errors import LbtkError
from fabfile.infra import facts as F
from fabfile.infra import remote
from fabfile.infra.observe import observe
from fabfile.model.context import Env
from fabfile.model.fields import family_of
from fabfile.model.schema import Inventory
from fabfile.parsers import ParseError
from fabfile.parsers.lbtk import Raw, node_in_page, node_in_page_script, parse_advert, parse_probe_line

MODES = ("graceful", "crash", "link-down", "all-but-one")
FAIL_LABEL = {"graceful": "systemctl stop keepalived", "crash": "systemctl kill --signal=SIGKILL keepalived",
              "link-down": "ip link set IFACE down", "all-but-one": "systemctl stop keepalived"}
POLL_S = 0.05
LINK_DOWN_DELAY = 0.5   # link-down fires this long after the command returns
BASELINE_S = 0.5        # good probes before the first fail
SEE_NEW_HOLDER_S = 1.0  # after a move: let the probe see the new holder answer
FINAL_PROBES = 10       # all-but-one: the last probes of the one director left, all must have answered
POLLER = "while " + F.ADDRS.command + "; do sleep {poll}; done"   # ends once the channel closes (ip dies of SIGPIPE)
# Prints the source of every VRRP packet (IP protocol 112) the node receives. A crash is timed
# from the master's LAST advertisement, as VRRP's master_down_interval is. Needs python3 on the
# node; without it the drill times from the kill and says so.
SNIFFER = ("command -v python3 >/dev/null && exec python3 -u -c 'import socket;"
           "s=socket.socket(2,3,112);[print(\"@@vrrp\",s.recvfrom(64)[1][0],flush=True) for _ in iter(int,1)]'")


class DrillError(LbtkError):
    pass


# ---------------------------------------------------------------- the clock
class Clock:
    """This machine's monotonic clock. A test passes one whose time it moves itself; everything
    the drill times or waits for goes through it."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    def wait(self, changed: threading.Condition, seconds: float) -> None:
        """Block (holding `changed`) until it is notified or `seconds` pass."""
        changed.wait(seconds)


# ---------------------------------------------------------------- the probe
ProbeResult = ProbeSample      # (sent at, answered, node that answered or the error's class, latency)


@dataclass
class Probe:
    """HTTP GETs through the VIP; records (t, ok, who answered or the error, how long it took)."""
    vip: str
    port: int
    interval: float
    nodes: list[str]
    results: list[ProbeResult] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def run(self) -> None:
        nxt = time.monotonic()
        while not self.stop.is_set():
            t = time.monotonic()
            try:
                c = http.client.HTTPConnection(self.vip, self.port, timeout=max(0.2, self.interval * 10))
                c.request("GET", "/", headers={"Connection": "close"})
                body = c.getresponse().read(2048).decode(errors="replace")
                c.close()
                self.results.append(ProbeSample(t, True, node_in_page(body, self.nodes) or "?",
                                                round(time.monotonic() - t, 6)))
            except Exception as e:  # noqa: BLE001 - a failed probe is data
                self.results.append(ProbeSample(t, False, e.__class__.__name__, round(time.monotonic() - t, 6)))
            nxt += self.interval
            time.sleep(max(0.0, nxt - time.monotonic()))
            nxt = max(nxt, time.monotonic())

    def start(self) -> Probe:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def finish(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=2)


# The same probe, run on the SSH gateway (inventory `probe: {via: gateway}`) when this machine cannot
# reach the VIP; its lines come back over one SSH channel and are timed at receipt here. The page
# is read by node_in_page's own source, sent ahead of the loop.
REMOTE_PROBE_LOOP = (
    "import http.client,sys,time\n"
    "vip,port,iv=sys.argv[1],int(sys.argv[2]),float(sys.argv[3]);names=sys.argv[4:];nxt=time.monotonic()\n"
    "while True:\n"
    " try:\n"
    "  c=http.client.HTTPConnection(vip,port,timeout=max(0.2,iv*10));c.request(\"GET\",\"/\",headers={\"Connection\":\"close\"})\n"
    "  b=c.getresponse().read(2048).decode(errors=\"replace\");c.close();w=node_in_page(b,names) or \"?\"\n"
    "  r=\"ok \"+w\n"
    " except Exception as e:\n"
    "  r=\"err \"+e.__class__.__name__\n"
    " print(r,flush=True)\n"
    " nxt+=iv;time.sleep(max(0,nxt-time.monotonic()));nxt=max(nxt,time.monotonic())\n")


def remote_probe_command(vip: str, port: int, interval: float, nodes: list[str]) -> str:
    script = node_in_page_script() + REMOTE_PROBE_LOOP
    return "python3 -u -c " + " ".join(shlex.quote(x) for x in (script, vip, str(port), str(interval), *nodes))


@dataclass
class RemoteProbe(Probe):
    """Probe run on the gateway: same results, timed when each line arrives."""
    conn: object = None

    def run(self) -> None:
        def line(ln: str) -> None:
            got = parse_probe_line(ln)
            if got is not None:
                self.results.append(ProbeSample(time.monotonic(), got[0], got[1]))
        remote.stream(self.conn, remote_probe_command(self.vip, self.port, self.interval, self.nodes), line,
                      self.stop)

    def finish(self) -> None:
        super().finish()
        self.conn.close()


def outage_over(results: list[ProbeResult], after: float, before: float | None = None) -> Outage:
    """The client outage among probes sent from `after` (up to `before`: one step of a drill of
    several failovers): first failed -> first good after the last failure."""
    res = [r for r in list(results) if r[0] >= after and (before is None or r[0] < before)]
    failed = [r for r in res if not r[1]]
    if not failed:
        return Outage(0.0, 0, len(res))
    good_after = next((r[0] for r in res if r[1] and r[0] > failed[-1][0]), None)
    return Outage(round(good_after - failed[0][0], 3) if good_after else None, len(failed), len(res))


def error_kinds(results: list[ProbeResult], after: float = float("-inf")) -> list[str]:
    return sorted({r[2] for r in list(results) if r[0] >= after and not r[1]})


# ---------------------------------------------------------------- who holds the VIP
@dataclass
class Watch:
    """VIP holders over time, from each node's streamed `ip -j addr` snapshots: the drilled VIP,
    and the `companions` that move with it (its sync group's other VIPs, e.g. the IPv6 one)."""
    vip: str
    companions: tuple[str, ...] = ()
    clock: Clock = field(default_factory=Clock)
    held: dict[str, bool] = field(default_factory=dict)
    companion_held: dict[tuple[str, str], bool] = field(default_factory=dict)     # (vip, node) -> holds
    companion_events: list[tuple[float, str, str, bool]] = field(default_factory=list)   # (t, vip, node, holds)
    events: list[HolderChange] = field(default_factory=list)
    adverts: list[tuple[float, str, str]] = field(default_factory=list)   # (t, receiver, source)
    # re-entrant: a test's clock feeds lines from inside wait(), on the waiting thread
    lock: threading.RLock = field(default_factory=threading.RLock)
    changed: threading.Condition = None

    def __post_init__(self):
        self.changed = threading.Condition(self.lock)

    def feed(self, node: str, line: str) -> None:
        line = line.strip()
        source = parse_advert(line)
        if source is not None:
            with self.lock:
                self.adverts.append((self.clock.now(), node, source))
            return
        if not line.startswith("["):
            return
        try:   # the poller prints the ADDRS fact's output, one JSON line a snapshot
            state = F.NodeState(node)
            F.ADDRS.store(state, F.ADDRS.parse(Raw(line)))
        except ParseError:   # a torn line; the next snapshot is 50 ms away
            return
        holds = state.holds(self.vip)
        now = self.clock.now()
        with self.changed:
            for v in self.companions:
                h = state.holds(v)
                if self.companion_held.get((v, node)) != h:
                    self.companion_held[(v, node)] = h
                    self.companion_events.append((now, v, node, h))
            if self.held.get(node) != holds:
                self.held[node] = holds
                self.events.append(HolderChange(now, node, holds))
                self.changed.notify_all()

    def holders(self) -> list[str]:
        with self.lock:
            return sorted(n for n, h in self.held.items() if h)

    def wait(self, predicate, timeout: float) -> float | None:
        """Time at which predicate(holders) first became true (None on timeout)."""
        end = self.clock.now() + timeout
        with self.changed:
            while True:
                if predicate(self.holders()):
                    return self.events[-1][0] if self.events else self.clock.now()
                left = end - self.clock.now()
                if left <= 0:
                    return None
                self.clock.wait(self.changed, min(left, 0.1))

    def _poll(self, done, timeout: float) -> bool:
        end = self.clock.now() + timeout
        while self.clock.now() < end:
            if done():
                return True
            self.clock.sleep(0.05)
        return done()

    def wait_adverts(self, receivers: list[str], source: str, timeout: float) -> bool:
        def seen_by_all() -> bool:
            with self.lock:
                return set(receivers) <= {n for _, n, src in self.adverts if src == source}
        return self._poll(seen_by_all, timeout)

    def last_advert(self, receiver: str, source: str, before: float) -> float | None:
        with self.lock:
            ts = [t for t, n, src in self.adverts if n == receiver and src == source and t < before]
        return ts[-1] if ts else None

    def first(self, node: str, holds: bool, after: float) -> float | None:
        with self.lock:
            return next((t for t, n, h in self.events if n == node and h == holds and t >= after), None)

    def companion_holders(self, vip: str) -> list[str]:
        with self.lock:
            return sorted(n for (v, n), h in self.companion_held.items() if v == vip and h)

    def companion_arrived(self, vip: str, node: str, after: float) -> float | None:
        """When `node` first held companion `vip` at or after `after`."""
        with self.lock:
            return next((t for t, v, n, h in self.companion_events if v == vip and n == node and h and t >= after),
                        None)

    def wait_companions(self, node: str, timeout: float) -> bool:
        """Every companion VIP on `node` alone (within timeout)."""
        return self._poll(lambda: all(self.companion_holders(v) == [node] for v in self.companions), timeout)


# ---------------------------------------------------------------- VRRP theory and the commands
def instance_of(inv: Inventory, vip: str | None) -> PlannedInstance:
    """The VRRP instance a drill fails over: the one holding `vip` (--vip), else the first."""
    instances = plan(inv)
    if vip is None:
        return instances[0]
    for p in instances:
        if vip in p.addresses:
            return p
    raise DrillError(f"--vip {vip}: not a VIP of this inventory — choose from "
                     + ", ".join(a for p in instances for a in p.addresses))


def theory(inv: Inventory, new: str, mode: str, vip: str | None = None) -> float:
    p = instance_of(inv, vip)
    vi = p.source
    if mode == "graceful":  # the master's priority-0 advert: the backup waits only its skew
        return skew_time(vi.advert_int, p.priorities[new], vi.vrrp_version)
    return master_down_interval(vi.advert_int, p.priorities[new], vi.vrrp_version)


def slowest_master_down(p: PlannedInstance) -> float:
    """master_down_interval of the instance's lowest priority: the longest any backup waits."""
    return master_down_interval(p.source.advert_int, min(p.priorities.values()), p.source.vrrp_version)


def fail_command(mode: str, iface: str, restore_after: float) -> str:
    if mode == "graceful":
        return "systemctl stop keepalived"
    if mode == "crash":
        # freeze first: keepalived's children get SIGTERM (PR_SET_PDEATHSIG) when the parent
        # dies, and a child that runs its handler sends a priority-0 advert: a graceful stop
        return "systemctl kill --signal=SIGSTOP keepalived; systemctl kill --signal=SIGKILL keepalived"
    # Both ends are scheduled on the node itself (transient timers): once the link is down we
    # cannot reach the node, and the command must return before the link drops.
    timer = "systemd-run --quiet --timer-property=AccuracySec=10ms"
    i = shlex.quote(iface)
    return (f"{timer} --on-active={int(restore_after)} --unit=lbtk-link-up ip link set {i} up && "
            f"{timer} --on-active={LINK_DOWN_DELAY}s --unit=lbtk-link-down ip link set {i} down")


def restore_command(mode: str, iface: str) -> str:
    if mode == "link-down":
        return f"ip link set {shlex.quote(iface)} up; systemctl stop lbtk-link-up.timer 2>/dev/null; true"
    return "systemctl reset-failed keepalived 2>/dev/null; systemctl start keepalived"


# ---------------------------------------------------------------- the rig: what the drill acts through
class NodeActions(Protocol):
    def fail(self, node: str, mode: str, iface: str, restore_after: float) -> None: ...
    def restore(self, node: str, mode: str, iface: str, check: bool = True) -> None: ...
    def vip_holders(self) -> dict[str, list[str]]: ...


class Poller(Protocol):
    def start(self, names: list[str], watch: Watch, sniff: bool) -> None: ...
    def stop(self) -> None: ...


class RunningProbe(Protocol):
    results: list[ProbeResult]
    def finish(self) -> None: ...


@dataclass
class Rig:
    """What a drill acts through; a unit test passes a fake of each."""
    nodes: NodeActions
    poller: Poller
    start_probe: Callable[[str, list[str]], RunningProbe]     # (vip, node names) -> a running probe
    interval: float                                          # the probe's, in s
    clock: Clock = field(default_factory=Clock)
    say: Callable[[str], None] = print


@dataclass
class LiveNodes:
    """The node actions over SSH, through the run's node group."""
    inv: Inventory
    group: remote.NodeGroup

    def fail(self, node: str, mode: str, iface: str, restore_after: float) -> None:
        remote.run(self.group[node], fail_command(mode, iface, restore_after), check=True, timeout=30)

    def restore(self, node: str, mode: str, iface: str, check: bool = True) -> None:
        remote.run(self.group[node], restore_command(mode, iface), check=check, timeout=30)

    def vip_holders(self) -> dict[str, list[str]]:
        return vip_holders(self.inv, observe(self.group, (F.ADDRS,)))


@dataclass
class LivePoller:
    """Every node's address poller (and VRRP sniffer), one SSH channel each, feeding the watch."""
    group: remote.NodeGroup
    done: threading.Event = field(default_factory=threading.Event)

    def start(self, names: list[str], watch: Watch, sniff: bool) -> None:
        self.group.only(names).open()
        commands = [POLLER.format(poll=POLL_S)] + ([SNIFFER] if sniff else [])
        for cmd in commands:
            for n in names:
                threading.Thread(target=remote.stream, daemon=True,
                                 args=(self.group[n], cmd, lambda ln, n=n: watch.feed(n, ln), self.done)).start()

    def stop(self) -> None:
        self.done.set()


def live_rig(inv: Inventory, group: remote.NodeGroup, interval: float, say) -> Rig:
    def start_probe(vip: str, names: list[str]) -> RunningProbe:
        gateway = group.bastion() if inv.probe.via == "gateway" else None
        if gateway is not None:
            return RemoteProbe(vip, inv.nginx.port, interval, names, conn=gateway).start()
        return Probe(vip, inv.nginx.port, interval, names).start()
    return Rig(LiveNodes(inv, group), LivePoller(group), start_probe, interval, Clock(), say)


# ---------------------------------------------------------------- the steps, and the one clean-up
@dataclass
class Drilling:
    """One drill under way: the watch, the probe, the timeline, and the nodes it failed and has
    not restored yet. Used as `with`: leaving it, however (a failed step, an error, Ctrl-C),
    restores exactly those nodes and stops the probe and the pollers."""
    rig: Rig
    watch: Watch
    md: float                               # the slowest master_down_interval: every wait is bounded by it
    timeline: list[Event] = field(default_factory=list)
    probe: RunningProbe | None = None
    down: dict[str, tuple[str, str]] = field(default_factory=dict)   # node -> (mode, iface) to restore

    def __enter__(self) -> Drilling:
        return self

    def __exit__(self, *exc) -> None:
        if self.probe is not None:
            self.probe.finish()
        try:
            restored = False
            for node, (mode, iface) in list(self.down.items()):
                try:
                    self.rig.nodes.restore(node, mode, iface, check=False)
                    restored = True
                except remote.RemoteError:
                    pass
            if restored:
                self.watch.wait(lambda h: len(h) == 1, 3 * self.md + 10)
        finally:
            self.rig.poller.stop()

    def now(self) -> float:
        return self.rig.clock.now()

    def note(self, t: float, what: str) -> None:
        self.timeline.append(Event(t, what))

    def start(self, names: list[str], sniff: bool) -> str:
        """Watch every node; the one VIP holder, or refuse a cluster that is not healthy to begin with."""
        self.rig.poller.start(names, self.watch, sniff)
        if self.watch.wait(lambda h: len(self.watch.held) == len(names), 10) is None:
            raise DrillError("could not poll every node's addresses over SSH within 10 s")
        holders = self.watch.holders()
        if len(holders) != 1:
            raise DrillError(f"the cluster is not healthy before the drill: {self.watch.vip} held by "
                             f"{', '.join(holders) or 'no node'} — run `inv verify` and fix that first")
        return holders[0]

    def start_probe(self, names: list[str]) -> None:
        self.probe = self.rig.start_probe(self.watch.vip, names)
        self.rig.clock.sleep(BASELINE_S)

    def fail(self, node: str, mode: str, iface: str = "", restore_after: float = 0.0) -> float:
        """Fail `node`; when the failure began (link-down: when the scheduled drop fires)."""
        self.down[node] = (mode, iface)      # before the command: half done is still to undo
        t0 = self.now()
        self.rig.nodes.fail(node, mode, iface, restore_after)
        return self.now() + LINK_DOWN_DELAY - 0.02 if mode == "link-down" else t0

    def wait_move(self, node: str, off: set[str], t0: float) -> tuple[str | None, float | None, float | None]:
        """After failing `node`: (the new holder, when it took the VIP, when the VIP left `node`)
        once the VIP is on a node not in `off`; the new holder None if not within move_timeout."""
        t_new = self.watch.wait(lambda h: any(n not in off for n in h), self.move_timeout)
        new = next((n for n in self.watch.holders() if n not in off), None)
        t_left = self.watch.first(node, False, t0)
        if t_left:
            self.note(t_left, f"VIP left {node}")
        if t_new is None or new is None:
            return None, None, t_left
        self.note(t_new, f"VIP on {new}")
        return new, t_new, t_left

    @property
    def move_timeout(self) -> float:
        return 3 * self.md + 5

    def restore(self, node: str) -> float:
        """Start what fail() stopped; when."""
        mode, iface = self.down[node]
        t_r = self.now()
        self.rig.nodes.restore(node, mode, iface)
        del self.down[node]
        self.note(t_r, f"{node} restored")
        return t_r

    def await_link(self, node: str, t0: float, restore_after: float) -> float:
        """link-down: the node brings its own link back (a timer set by fail()); wait for it."""
        self.rig.say(f"waiting for {node}'s link to come back (scheduled at +{restore_after:.0f}s)")
        t_r = t0 + restore_after
        self.watch.wait(lambda h: node in h, restore_after + 5)
        del self.down[node]
        self.note(t_r, f"{node} restored")
        return t_r

    def come_back(self, owner: str, t_r: float, nopreempt: bool) -> tuple[Comeback, float | None]:
        """After the restore: the VIP back on `owner` by preemption (and when), or, with nopreempt,
        held where it is."""
        if nopreempt:
            back = self.watch.wait(lambda h: h == [owner], 3 * self.md)
            if back is not None:
                self.note(back, f"VIP back on {owner} despite nopreempt")
            return Comeback(None, nopreempt_held=back is None), back
        back = self.watch.wait(lambda h: h == [owner], 3 * self.md + 10)
        if back is not None:
            self.note(back, f"VIP back on {owner} (preempt)")
        return Comeback(round(back - t_r, 3) if back is not None else None), back

    def final_holders(self) -> list[str]:
        self.rig.clock.sleep(0.5)
        return self.watch.holders()

    def probe_results(self) -> list[ProbeResult]:
        return list(self.probe.results) if self.probe is not None else []

    def record(self, r: DrillResult) -> None:
        """What the drill saw, into its result: every probe, every change of who holds the VIP."""
        r.probe_log = self.probe_results()
        r.probes = len(r.probe_log)
        with self.watch.lock:
            r.holder_log = list(self.watch.events)

    def next_probes(self, after: float, n: int, timeout: float) -> list[ProbeResult]:
        """The first `n` probes sent from `after` on (fewer if they do not come within `timeout`)."""
        def got() -> list[ProbeResult]:
            return [r for r in self.probe_results() if r[0] >= after][:n]
        end = self.now() + timeout
        while self.now() < end and len(got()) < n:
            self.rig.clock.sleep(0.02)
        return got()


# ---------------------------------------------------------------- the drills
def failover_test(e: Env, mode: str, info, interval: float = 0.02, say=print, vip: str | None = None,
                  break_lock: bool = False) -> DrillResult:
    """`inv failover-test`: the drill under the deploy lock, held on every node for the whole drill
    (it fails a node for real: no deploy, drain or other drill may run meanwhile). `info`: this run
    (fabfile/infra/runinfo.RunInfo), or a callable that makes it once the mode is known good."""
    if mode not in MODES:
        raise DrillError(f"--mode must be one of {', '.join(MODES)}")
    if not e.inv.vrrp_instances:
        raise DrillError("this inventory has no vrrp_instance (a router brings its VIPs: vip_managed_by: "
                         "external): there is no VRRP failover to drill — nothing was changed")
    from fabfile.ops import lock as runlock
    with remote.nodes(e) as group, runlock.held_on_all(group, info() if callable(info) else info,
                                                       break_lock, say):
        return run(e.inv, group, mode, interval, say, vip)


def run(inv: Inventory, group: remote.NodeGroup, mode: str, interval: float = 0.02, say=print,
        vip: str | None = None) -> DrillResult:
    """The drill of `mode` over this node group (every node of `inv`)."""
    if mode not in MODES:
        raise DrillError(f"--mode must be one of {', '.join(MODES)}")
    rig = live_rig(inv, group, interval, say)
    if mode == "all-but-one":
        if vip is not None:
            raise DrillError("--vip: all-but-one takes down directors, whatever they hold — drop --vip")
        return drill_all_but_one(inv, rig)
    return drill(inv, mode, rig, vip)


def drill(inv: Inventory, mode: str, rig: Rig, vip: str | None = None) -> DrillResult:
    """Fail the holder of `vip` (default: the first instance's) the `mode` way under the probe,
    time the VIP move against VRRP theory and the client outage, restore it, time the way back."""
    planned = instance_of(inv, vip)
    vip = planned.addresses[0] if vip is None else vip
    moving = tuple(a for a in planned.addresses if a != vip) + companions(inv, planned)
    d = Drilling(rig, Watch(vip, moving, rig.clock), slowest_master_down(planned))
    with d:
        old = d.start([n.name for n in inv.nodes], sniff=mode != "graceful")
        r = DrillResult(mode, vip, old, timeline=d.timeline)
        _fail_over_and_back(inv, planned, mode, moving, d, r)
    d.record(r)
    return r


def _fail_over_and_back(inv: Inventory, planned: PlannedInstance, mode: str, moving: tuple[str, ...],
                        d: Drilling, r: DrillResult) -> None:
    names = [n.name for n in inv.nodes]
    old = r.from_node
    old_node = inv.node(old)
    iface = inv.interface_of(old_node, planned.source)
    nopreempt = planned.source.nopreempt
    if mode != "graceful":  # a crash is timed from the last advert: see one from the master first
        d.watch.wait_adverts([n for n in names if n != old], old_node.ip, 3 * d.md)
    d.start_probe(names)
    before = other_holders(inv, d.rig.nodes, r.vip, moving)
    r.others = sorted(before)
    restore_after = 3 * d.md + 3
    d.rig.say(f"failing {old} ({mode})")
    t0 = d.fail(old, mode, iface, restore_after)
    d.note(t0, f"{mode}: failing {old} (`{FAIL_LABEL[mode].replace('IFACE', iface)}`)")
    new, t_new, t_left = d.wait_move(old, {old}, t0)
    if new is None:
        r.error = f"VIP did not move off {old} within {d.move_timeout:.1f}s"
        return
    r.to = new
    start, since = _move_start(d, mode, old, old_node.ip, new, t0, t_left, t_new)
    r.move = Move(round(t_new - start, 3), round(theory(inv, new, mode, r.vip), 3), since, start)
    moved = _moved(before, other_holders(inv, d.rig.nodes, r.vip, moving))
    d.rig.clock.sleep(SEE_NEW_HOLDER_S)
    r.outage, r.errors = outage_over(d.probe_results(), t0), error_kinds(d.probe_results(), t0)
    if mode == "link-down":
        t_r = d.await_link(old, t0, restore_after)
    else:
        d.rig.say(f"restoring {old}")
        t_r = d.restore(old)
    r.comeback, back = d.come_back(old, t_r, nopreempt)
    if moving:   # the sync group's other VIPs: to the new master, and back with the drilled one
        d.watch.wait_companions(new if nopreempt else old, 3 * d.md)
        r.families = family_moves(d.watch, old, new, start, t_new, t_r, None if nopreempt else back)
    r.final_holders = d.final_holders()
    moved |= _moved(before, other_holders(inv, d.rig.nodes, r.vip, moving))
    r.others_moved = sorted(moved)
    r.error = _one_vip_verdict(r, before, nopreempt)
    r.ok = r.error is None


def _one_vip_verdict(r: DrillResult, before: dict[str, list[str]], nopreempt: bool) -> str | None:
    """What went wrong once the drill ran to its end (None: nothing): the VIP alone on one node,
    no other instance's VIP moved, its sync group followed it there and back, and it came back."""
    lagged = [f.vip for f in r.families[1:] if f.to is None or (not nopreempt and f.back_s is None)]
    if len(r.final_holders) != 1:
        return _ended_on(r.final_holders)
    if r.others_moved:
        return (f"failing {r.from_node} for {r.vip} also moved {', '.join(r.others_moved)} "
                f"(held before by {'; '.join(f'{v}: {before[v]}' for v in r.others_moved)})")
    if lagged:
        return f"{', '.join(lagged)} did not follow {r.vip} (same vrrp_sync_group) to {r.to} and back"
    if not r.comeback.ok:
        return f"VIP did not come back to {r.from_node}"
    return None


def _move_start(d: Drilling, mode: str, old: str, old_ip: str, new: str, t0: float, t_left: float | None,
                t_new: float) -> tuple[float, str]:
    """What a one-VIP move is timed from, as VRRP times it: the priority-0 advert (graceful), the
    master's last advert the new holder saw (crash, link-down), else the fail command."""
    if mode == "graceful" and t_left:
        return t_left, "VIP left the master (its priority-0 advert)"
    last = d.watch.last_advert(new, old_ip, t_new) if mode != "graceful" else None
    if last:
        d.note(last, f"last advert from {old} received by {new}")
        return last, f"{old}'s last advert seen by {new}"
    return t0, f"{mode} issued (adverts not observable)"


def _ended_on(final: list[str]) -> str:
    return f"VIP ended on {', '.join(final) or 'no node'}"


def drill_all_but_one(inv: Inventory, rig: Rig) -> DrillResult:
    """The seed's last test ("stop two of three machines and it still serves"): under the probe,
    stop keepalived gracefully on the VIP holder, again and again, until one director is left;
    each step's VIP move is timed against VRRP theory (the priority-0 advert: the next backup
    waits its skew), each step's client outage counted. Then HTTP must still answer through the
    VIP, and the cluster is restored: the inventory's MASTER started first (one VIP move back, by
    preemption), then the others."""
    planned = plan(inv)[0]
    names = [n.name for n in inv.nodes]
    if len(names) < 2:
        raise DrillError("all-but-one needs at least two directors (this inventory has one)")
    d = Drilling(rig, Watch(planned.addresses[0], clock=rig.clock), slowest_master_down(planned))
    with d:
        first = d.start(names, sniff=False)
        r = DrillResult("all-but-one", planned.addresses[0], first, timeline=d.timeline)
        _stop_all_but_one(inv, planned, d, r)
    d.record(r)
    r.errors = error_kinds(d.probe_results())
    return r


def _stop_all_but_one(inv: Inventory, planned: PlannedInstance, d: Drilling, r: DrillResult) -> None:
    names = [n.name for n in inv.nodes]
    d.start_probe(names)
    holder, stopped = r.from_node, []
    while len(stopped) < len(names) - 1:
        step = Step(len(r.steps) + 1, holder, started=d.now())
        r.steps.append(step)
        d.note(step.started, f"step {step.step}: stopping {holder} (`{FAIL_LABEL['all-but-one']}`)")
        d.rig.say(f"step {step.step}: stopping keepalived on {holder}, the VIP holder")
        d.fail(holder, "graceful")
        stopped.append(holder)
        step.to, t_new, t_left = d.wait_move(holder, set(stopped), step.started)
        if step.to is None:
            r.error = f"step {step.step}: VIP did not move off {holder} within {d.move_timeout:.1f}s"
            return
        start, since = (t_left, "VIP left the holder (its priority-0 advert)") if t_left else (step.started,
                                                                                                "stop issued")
        step.move = Move(round(t_new - start, 3), round(theory(inv, step.to, "graceful"), 3), since, start)
        d.rig.clock.sleep(SEE_NEW_HOLDER_S)
        holder = step.to
    t_end = d.now()
    for step, until in zip(r.steps, [s.started for s in r.steps[1:]] + [t_end]):
        step.outage = outage_over(d.probe_results(), step.started, until)
    r.to = holder
    last = d.next_probes(t_end, FINAL_PROBES, timeout=max(5.0, 20 * d.rig.interval * FINAL_PROBES))
    http_ok = len(last) == FINAL_PROBES and all(p.ok for p in last)
    r.last = LastDirector(holder, http_ok, sorted({p.who for p in last if p.ok}))
    d.note(t_end, f"HTTP through {r.vip} with {holder} alone: " + ("answers" if http_ok else "FAILS"))
    r.comeback = _restore_all(d, planned, stopped)
    r.final_holders = d.final_holders()
    if not http_ok:
        r.error = f"HTTP through {r.vip} did not answer with {holder} alone"
    elif len(r.final_holders) != 1:
        r.error = _ended_on(r.final_holders)
    elif not r.comeback.ok:
        r.error = f"VIP did not come back to {planned.owner}"
    r.ok = r.error is None


def _restore_all(d: Drilling, planned: PlannedInstance, stopped: list[str]) -> Comeback:
    """Start every stopped director: the inventory's MASTER first and alone until it holds the VIP
    again (started together, the backups race it and the VIP may stop on one of them on its way),
    then the rest. With nopreempt the VIP stays where it is."""
    owner = planned.owner
    order = sorted(stopped, key=lambda n: n != owner)
    d.rig.say(f"restoring {', '.join(order)}")
    t_r = d.restore(order[0])
    if planned.source.nopreempt or owner in stopped:
        comeback, _ = d.come_back(owner, t_r, planned.source.nopreempt)
    else:   # the inventory's MASTER was never stopped (it did not hold the VIP at the start)
        comeback = Comeback(0.0)
    for n in order[1:]:
        d.restore(n)
    return comeback


def other_holders(inv: Inventory, nodes: NodeActions, vip: str, moving: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Who holds every VIP but the drilled one and those that move with it (one observation): a
    drill of one instance must not move another's VIP (multi-master: each node holds its own)."""
    skip = {vip, *moving}
    if all(a in skip for p in plan(inv) for a in p.addresses):
        return {}
    return {v: h for v, h in nodes.vip_holders().items() if v not in skip}


def _moved(before: dict[str, list[str]], now: dict[str, list[str]]) -> set[str]:
    return {v for v, h in now.items() if h != before[v]}


def family_moves(watch: Watch, old: str, new: str, start: float, t_new: float, back_from: float | None,
                 back: float | None) -> list[FamilyMove]:
    """Each family's move, the drilled VIP first: where it went, how long after `start`, and when
    it came back to `old` (a dual-stack service: the IPv4 and the IPv6 VIP of one sync group)."""
    rows = [FamilyMove(watch.vip, family_of(watch.vip), new, round(t_new - start, 3),
                       round(back - back_from, 3) if back and back_from else None)]
    for v in watch.companions:
        t = watch.companion_arrived(v, new, start)
        b = watch.companion_arrived(v, old, back_from) if back_from else None
        rows.append(FamilyMove(v, family_of(v), new if t else None, round(t - start, 3) if t else None,
                               round(b - back_from, 3) if b else None))
    return rows
