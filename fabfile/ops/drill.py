"""The failover drill: fail the MASTER for real and measure what VRRP and a client see.

Three things run at once: an HTTP probe through the VIP from this machine (one new
connection every `interval` seconds), an address poller streaming every node's `ip -j -4 addr`
every 50 ms over one SSH channel each, and the drill itself (fail, wait, restore, wait).
Times are this machine's monotonic clock at receipt, so node clocks do not matter.
Whatever happens (Ctrl-C included) the failed node is restored before the drill returns.
"""
from __future__ import annotations

import http.client
import shlex
import threading
import time
from dataclasses import dataclass, field

from fabfile.infra import facts as F
from fabfile.infra import remote
from fabfile.core.checks import vip_holders
from fabfile.errors import LbtkError
from fabfile.model.schema import Inventory, family_of
from fabfile.infra.observe import observe
from fabfile.parsers import ParseError
from fabfile.parsers.lbtk import Raw, parse_advert, parse_probe_line
from fabfile.core.vrrp import PlannedInstance, companions, master_down_interval, plan, skew_time

MODES = ("graceful", "crash", "link-down", "all-but-one")
FAIL_LABEL = {"graceful": "systemctl stop keepalived", "crash": "systemctl kill --signal=SIGKILL keepalived",
              "link-down": "ip link set IFACE down", "all-but-one": "systemctl stop keepalived"}
POLL_S = 0.05
LINK_DOWN_DELAY = 0.5   # link-down fires this long after the command returns
POLLER = "while " + F.ADDRS.command + "; do sleep {poll}; done"   # ends once the channel closes (ip dies of SIGPIPE)
# Prints the source of every VRRP packet (IP protocol 112) the node receives. A crash is timed
# from the master's LAST advertisement, as VRRP's master_down_interval is. Needs python3 on the
# node; without it the drill times from the kill and says so.
SNIFFER = ("command -v python3 >/dev/null && exec python3 -u -c 'import socket;"
           "s=socket.socket(2,3,112);[print(\"@@vrrp\",s.recvfrom(64)[1][0],flush=True) for _ in iter(int,1)]'")


class DrillError(LbtkError):
    pass


@dataclass
class Probe:
    """HTTP GETs through the VIP; records (t, ok, who answered or the error)."""
    vip: str
    port: int
    interval: float
    nodes: list[str]
    results: list[tuple[float, bool, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        nxt = time.monotonic()
        while not self.stop.is_set():
            t = time.monotonic()
            try:
                c = http.client.HTTPConnection(self.vip, self.port, timeout=max(0.2, self.interval * 10))
                c.request("GET", "/", headers={"Connection": "close"})
                body = c.getresponse().read(2048).decode(errors="replace")
                c.close()
                who = next((n for n in self.nodes if n in body), "?")
                self.results.append((t, True, who))
            except Exception as e:  # noqa: BLE001 - a failed probe is data
                self.results.append((t, False, e.__class__.__name__))
            nxt += self.interval
            time.sleep(max(0.0, nxt - time.monotonic()))
            nxt = max(nxt, time.monotonic())

    def outage(self, after: float, before: float | None = None) -> tuple[float | None, int]:
        """(first failed -> first good after it, in s; failed count) for probes sent from `after`
        (up to `before`: one step of a drill of several failovers)."""
        res = [r for r in self.results if r[0] >= after and (before is None or r[0] < before)]
        failed = [r for r in res if not r[1]]
        if not failed:
            return 0.0, 0
        first_bad = failed[0][0]
        good_after = next((r[0] for r in res if r[1] and r[0] > failed[-1][0]), None)
        return (good_after - first_bad if good_after else None), len(failed)


# The same probe, run on the SSH gateway (inventory `probe: {via: gateway}`) when this machine cannot
# reach the VIP; its lines come back over one SSH channel and are timed at receipt here.
REMOTE_PROBE = ("python3 -u -c 'import http.client,sys,time\n"
                "vip,port,iv=sys.argv[1],int(sys.argv[2]),float(sys.argv[3]);names=sys.argv[4:];nxt=time.monotonic()\n"
                "while True:\n"
                " try:\n"
                "  c=http.client.HTTPConnection(vip,port,timeout=max(0.2,iv*10));c.request(\"GET\",\"/\",headers={\"Connection\":\"close\"})\n"
                "  b=c.getresponse().read(2048).decode(errors=\"replace\");c.close();w=next((n for n in names if n in b),\"?\")\n"
                "  r=\"ok \"+w\n"
                " except Exception as e:\n"
                "  r=\"err \"+e.__class__.__name__\n"
                " print(r,flush=True)\n"
                " nxt+=iv;time.sleep(max(0,nxt-time.monotonic()));nxt=max(nxt,time.monotonic())' ")


@dataclass
class RemoteProbe(Probe):
    """Probe run on the gateway: same results, timed when each line arrives."""
    conn: object = None

    def run(self) -> None:
        import shlex
        cmd = REMOTE_PROBE + " ".join(shlex.quote(x) for x in (self.vip, str(self.port), str(self.interval),
                                                                 *self.nodes))

        def line(ln: str) -> None:
            got = parse_probe_line(ln)
            if got is not None:
                self.results.append((time.monotonic(), got[0], got[1]))
        remote.stream(self.conn, cmd, line, self.stop)


@dataclass
class Watch:
    """VIP holders over time, from each node's streamed `ip -j addr` snapshots: the drilled VIP,
    and the `companions` that move with it (its sync group's other VIPs, e.g. the IPv6 one)."""
    vip: str
    companions: tuple[str, ...] = ()
    held: dict[str, bool] = field(default_factory=dict)
    companion_held: dict[tuple[str, str], bool] = field(default_factory=dict)     # (vip, node) -> holds
    companion_events: list[tuple[float, str, str, bool]] = field(default_factory=list)   # (t, vip, node, holds)
    events: list[tuple[float, str, bool]] = field(default_factory=list)   # (t, node, holds)
    adverts: list[tuple[float, str, str]] = field(default_factory=list)   # (t, receiver, source)
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = None

    def __post_init__(self):
        self.changed = threading.Condition(self.lock)

    def feed(self, node: str, line: str) -> None:
        line = line.strip()
        source = parse_advert(line)
        if source is not None:
            with self.lock:
                self.adverts.append((time.monotonic(), node, source))
            return
        if not line.startswith("["):
            return
        try:   # the poller prints the ADDRS fact's output, one JSON line a snapshot
            state = F.NodeState(node)
            F.ADDRS.store(state, F.ADDRS.parse(Raw(line)))
        except ParseError:   # a torn line; the next snapshot is 50 ms away
            return
        holds = state.holds(self.vip)
        now = time.monotonic()
        with self.changed:
            for v in self.companions:
                h = state.holds(v)
                if self.companion_held.get((v, node)) != h:
                    self.companion_held[(v, node)] = h
                    self.companion_events.append((now, v, node, h))
            if self.held.get(node) != holds:
                self.held[node] = holds
                self.events.append((now, node, holds))
                self.changed.notify_all()

    def holders(self) -> list[str]:
        with self.lock:
            return sorted(n for n, h in self.held.items() if h)

    def wait(self, predicate, timeout: float) -> float | None:
        """Time at which predicate(holders) first became true (None on timeout)."""
        end = time.monotonic() + timeout
        with self.changed:
            while True:
                h = sorted(n for n, x in self.held.items() if x)
                if predicate(h):
                    return self.events[-1][0] if self.events else time.monotonic()
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self.changed.wait(min(left, 0.1))

    def wait_adverts(self, receivers: list[str], source: str, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                seen = {n for _, n, src in self.adverts if src == source}
            if set(receivers) <= seen:
                return True
            time.sleep(0.05)
        return False

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
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if all(self.companion_holders(v) == [node] for v in self.companions):
                return True
            time.sleep(0.05)
        return all(self.companion_holders(v) == [node] for v in self.companions)


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


def _watch_healthy(conns: dict, names: list[str], watch: Watch, stop: threading.Event, sniff: bool) -> str:
    """Start every node's address poller (and VRRP sniffer) feeding `watch`; return the one VIP
    holder, or stop them and refuse a cluster that is not healthy to begin with."""
    remote.open_all([conns[n] for n in names])
    threads = [threading.Thread(target=remote.stream, daemon=True,
                                args=(conns[n], POLLER.format(poll=POLL_S), lambda ln, n=n: watch.feed(n, ln), stop))
               for n in names]
    if sniff:
        threads += [threading.Thread(target=remote.stream, daemon=True,
                                     args=(conns[n], SNIFFER, lambda ln, n=n: watch.feed(n, ln), stop))
                    for n in names]
    for t in threads:
        t.start()
    if watch.wait(lambda h: len(watch.held) == len(names), 10) is None:
        stop.set()
        raise DrillError("could not poll every node's addresses over SSH within 10 s")
    holders = watch.holders()
    if len(holders) != 1:
        stop.set()
        raise DrillError(f"the cluster is not healthy before the drill: {watch.vip} held by "
                         f"{', '.join(holders) or 'no node'} — run `inv verify` and fix that first")
    return holders[0]


def _start_probe(inv: Inventory, vip: str, interval: float, names: list[str]):
    """(gateway connection or None, probe, its thread), the probe already running."""
    gateway = remote.connect_gateway(inv) if inv.probe.via == "gateway" else None
    probe = (RemoteProbe(vip, inv.nginx.port, interval, names, conn=gateway) if gateway is not None
             else Probe(vip, inv.nginx.port, interval, names))
    pt = threading.Thread(target=probe.run, daemon=True)
    pt.start()
    return gateway, probe, pt


STOP = "systemctl stop keepalived"
FINAL_PROBES = 10      # the last probes of the one director left: all must have answered


def drill_all_but_one(inv: Inventory, conns: dict, interval: float = 0.02, say=print) -> dict:
    """The seed's last test ("stop two of three machines and it still serves"): under the probe,
    stop keepalived gracefully on the VIP holder, again and again, until one director is left;
    each step's VIP move is timed against VRRP theory (the priority-0 advert: the next backup
    waits its skew), each step's client outage counted. Then HTTP must still answer through the
    VIP, and the cluster is restored: the inventory's MASTER started first (one VIP move back, by
    preemption), then the others. Whatever happens, every stopped node is started again."""
    planned = plan(inv)[0]
    vi = planned.source
    vip = planned.addresses[0]
    names = [n.name for n in inv.nodes]
    if len(names) < 2:
        raise DrillError("all-but-one needs at least two directors (this inventory has one)")
    owner = planned.owner
    watch, stop = Watch(vip), threading.Event()
    first = _watch_healthy(conns, names, watch, stop, sniff=False)
    md = master_down_interval(vi.advert_int, min(planned.priorities.values()), vi.vrrp_version)
    gateway, probe, pt = _start_probe(inv, vip, interval, names)
    timeline: list[tuple[float, str]] = []
    stopped: list[str] = []
    steps: list[dict] = []
    result: dict = {"ok": False, "mode": "all-but-one", "vip": vip, "from": first, "to": None, "steps": steps}
    try:
        time.sleep(0.5)  # a baseline of good probes
        holder = first
        while len(stopped) < len(names) - 1:
            t0 = time.monotonic()
            n = len(stopped) + 1
            timeline.append((t0, f"step {n}: stopping {holder} (`{STOP}`)"))
            say(f"step {n}: stopping keepalived on {holder}, the VIP holder")
            remote.run(conns[holder], STOP, check=True, timeout=30)
            stopped.append(holder)
            t_new = watch.wait(lambda h: any(x not in stopped for x in h), 3 * md + 5)
            new = next((x for x in watch.holders() if x not in stopped), None)
            t_left = watch.first(holder, False, t0)
            if t_left:
                timeline.append((t_left, f"VIP left {holder}"))
            step = {"step": n, "stopped": holder, "from": holder, "to": new}
            steps.append(step)
            if t_new is None or new is None:
                result["error"] = f"step {n}: VIP did not move off {holder} within {3 * md + 5:.1f}s"
                return result
            timeline.append((t_new, f"VIP on {new}"))
            start, since = (t_left, "VIP left the holder (its priority-0 advert)") if t_left else (t0, "stop issued")
            step.update(failover_s=round(t_new - start, 3), theory_s=round(theory(inv, new, "graceful"), 3),
                        measured_from=since, t0=t0)
            time.sleep(1.0)  # let the probe see the new holder answer
            holder = new
        t_end = time.monotonic()
        starts = [st.pop("t0") for st in steps] + [t_end]
        for step, (t_from, until) in zip(steps, zip(starts, starts[1:])):
            outage, failed = probe.outage(t_from, until)
            step.update(outage_s=round(outage, 3) if outage is not None else None, failed_probes=failed,
                        probes=sum(1 for r in probe.results if t_from <= r[0] < until))
        result["to"] = holder
        result["last_node"] = holder
        last = _next_probes(probe, t_end, FINAL_PROBES, timeout=max(5.0, 20 * interval * FINAL_PROBES))
        result["http_ok"] = len(last) == FINAL_PROBES and all(r[1] for r in last)
        result["http_answered_by"] = sorted({r[2] for r in last if r[1]})
        timeline.append((t_end, f"HTTP through {vip} with {holder} alone: "
                         + ("answers" if result["http_ok"] else "FAILS")))
        _restore_all(inv, conns, stopped, owner, watch, md, timeline, result, say)
        stopped = []
        time.sleep(0.5)
        final = watch.holders()
        result["final_holders"] = final
        back = result.get("preempt_back_s") is not None or result.get("nopreempt_held", False)
        result["ok"] = bool(result["http_ok"] and len(final) == 1 and back)
        if not result["http_ok"]:
            result["error"] = f"HTTP through {vip} did not answer with {holder} alone"
        elif len(final) != 1:
            result["error"] = f"VIP ended on {', '.join(final) or 'no node'}"
        elif not back:
            result["error"] = f"VIP did not come back to {owner}"
        return result
    finally:
        probe.stop.set()
        for st in steps:           # a step that failed kept its start time
            st.pop("t0", None)
        for n in stopped:          # a step failed or Ctrl-C: start whatever this drill stopped
            try:
                remote.run(conns[n], restore_command("graceful", ""), check=False, timeout=30)
            except remote.RemoteError:
                pass
        if stopped:
            watch.wait(lambda h: len(h) == 1, 3 * md + 10)
        stop.set()
        pt.join(timeout=2)
        base = timeline[0][0] if timeline else time.monotonic()
        result["timeline"] = [{"t": round(t - base, 3), "event": e} for t, e in sorted(timeline)]
        result["probes"] = len(probe.results)
        result["errors"] = sorted({r[2] for r in probe.results if not r[1]})
        if gateway is not None:
            gateway.close()


def _next_probes(probe: Probe, after: float, n: int, timeout: float) -> list:
    """The first `n` probes sent from `after` on (fewer if they do not come within `timeout`)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = [r for r in list(probe.results) if r[0] >= after]
        if len(got) >= n:
            return got[:n]
        time.sleep(0.02)
    return [r for r in list(probe.results) if r[0] >= after][:n]


def _restore_all(inv: Inventory, conns: dict, stopped: list[str], owner: str, watch: Watch, md: float,
                 timeline: list, result: dict, say) -> None:
    """Start every stopped director: the inventory's MASTER first and alone until it holds the VIP
    again (started together, the backups race it and the VIP may stop on one of them on its way),
    then the rest. With nopreempt the VIP stays where it is."""
    nopreempt = plan(inv)[0].source.nopreempt
    order = sorted(stopped, key=lambda n: n != owner)
    t_r = time.monotonic()
    say(f"restoring {', '.join(order)}")
    remote.run(conns[order[0]], restore_command("graceful", ""), check=True, timeout=30)
    timeline.append((t_r, f"{order[0]} restored"))
    if nopreempt:
        result["preempt_back_s"] = None
        result["nopreempt_held"] = watch.wait(lambda h: owner in h and len(h) == 1, 3 * md) is None
    elif owner in stopped:
        back = watch.wait(lambda h: h == [owner], 3 * md + 10)
        result["preempt_back_s"] = round(back - t_r, 3) if back else None
        if back:
            timeline.append((back, f"VIP back on {owner} (preempt)"))
    else:   # the inventory's MASTER was never stopped (it did not hold the VIP at the start)
        result["preempt_back_s"] = 0.0
    for n in order[1:]:
        t = time.monotonic()
        remote.run(conns[n], restore_command("graceful", ""), check=True, timeout=30)
        timeline.append((t, f"{n} restored"))


def other_holders(inv: Inventory, conns: dict, vip: str, moving: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Who holds every VIP but the drilled one and those that move with it (one observation): a
    drill of one instance must not move another's VIP (multi-master: each node holds its own)."""
    skip = {vip, *moving}
    if all(a in skip for p in plan(inv) for a in p.addresses):
        return {}
    holders = vip_holders(inv, observe(list(conns.values()), (F.ADDRS,)))
    return {v: h for v, h in holders.items() if v not in skip}


def family_moves(watch: Watch, old: str, new: str, start: float, t_new: float, back_from: float | None,
                 back: float | None) -> list[dict]:
    """Each family's move, the drilled VIP first: where it went, how long after `start`, and when
    it came back to `old` (a dual-stack service: the IPv4 and the IPv6 VIP of one sync group)."""
    rows = [{"vip": watch.vip, "family": family_of(watch.vip), "to": new, "moved_s": round(t_new - start, 3),
             "back_s": round(back - back_from, 3) if back and back_from else None}]
    for v in watch.companions:
        t = watch.companion_arrived(v, new, start)
        b = watch.companion_arrived(v, old, back_from) if back_from else None
        rows.append({"vip": v, "family": family_of(v), "to": new if t else None,
                     "moved_s": round(t - start, 3) if t else None,
                     "back_s": round(b - back_from, 3) if b else None})
    return rows


def drill(inv: Inventory, conns: dict, mode: str, interval: float = 0.02, say=print, vip: str | None = None) -> dict:
    if mode not in MODES:
        raise DrillError(f"--mode must be one of {', '.join(MODES)}")
    if mode == "all-but-one":
        if vip is not None:
            raise DrillError("--vip: all-but-one takes down directors, whatever they hold — drop --vip")
        return drill_all_but_one(inv, conns, interval, say)
    planned = instance_of(inv, vip)
    vip = planned.addresses[0] if vip is None else vip
    moving = tuple(a for a in planned.addresses if a != vip) + companions(inv, planned)
    names = [n.name for n in inv.nodes]
    watch, stop = Watch(vip, moving), threading.Event()
    old = _watch_healthy(conns, names, watch, stop, sniff=mode != "graceful")
    old_node = inv.node(old)
    iface = inv.interface_of(old_node, planned.source)
    nopreempt = planned.source.nopreempt
    md = master_down_interval(planned.source.advert_int, min(planned.priorities.values()), planned.source.vrrp_version)
    if mode != "graceful":  # a crash is timed from the last advert: see one from the master first
        backups = [n for n in names if n != old]
        watch.wait_adverts(backups, old_node.ip, 3 * md)
    gateway, probe, pt = _start_probe(inv, vip, interval, names)
    timeline: list[tuple[float, str]] = []
    restored = False
    result: dict = {"ok": False, "mode": mode, "vip": vip, "from": old, "to": None}
    before = other_holders(inv, conns, vip, moving)
    result["others"] = sorted(before)
    moved: set[str] = set()
    try:
        time.sleep(0.5)  # a baseline of good probes
        t0 = time.monotonic()
        timeline.append((t0, f"{mode}: failing {old} (`{FAIL_LABEL[mode].replace('IFACE', iface)}`)"))
        say(f"failing {old} ({mode})")
        restore_after = 3 * md + 3
        remote.run(conns[old], fail_command(mode, iface, restore_after), check=True, timeout=15)
        if mode == "link-down":
            t0 = time.monotonic() + LINK_DOWN_DELAY - 0.02
            timeline[0] = (t0, timeline[0][1])
        t_new = watch.wait(lambda h: any(n != old for n in h), 3 * md + 5)
        new = next((n for n in watch.holders() if n != old), None)
        t_left = watch.first(old, False, t0)
        if t_left:
            timeline.append((t_left, f"VIP left {old}"))
        if t_new is None or new is None:
            result["error"] = f"VIP did not move off {old} within {3 * md + 5:.1f}s"
            return result
        timeline.append((t_new, f"VIP on {new}"))
        result["to"] = new
        if mode == "graceful" and t_left:
            start, since = t_left, "VIP left the master (its priority-0 advert)"
        elif mode != "graceful" and watch.last_advert(new, old_node.ip, t_new):
            start = watch.last_advert(new, old_node.ip, t_new)
            since = f"{old}'s last advert seen by {new}"
            timeline.append((start, f"last advert from {old} received by {new}"))
        else:
            start, since = t0, f"{mode} issued (adverts not observable)"
        result["failover_s"] = round(t_new - start, 3)
        result["theory_s"] = round(theory(inv, new, mode, vip), 3)
        moved |= {v for v, h in other_holders(inv, conns, vip, moving).items() if h != before[v]}
        result["measured_from"] = since
        time.sleep(1.0)  # let the probe see the new master answer
        outage, failed = probe.outage(t0)
        result["outage_s"] = round(outage, 3) if outage is not None else None
        result["failed_probes"] = failed
        result["errors"] = sorted({r[2] for r in probe.results if r[0] >= t0 and not r[1]})
        if mode == "link-down":  # the node restores its own link; wait for it
            say(f"waiting for {old}'s link to come back (scheduled at +{restore_after:.0f}s)")
            t_r = t0 + restore_after
            watch.wait(lambda h: old in h or False, restore_after + 5)
        else:
            t_r = time.monotonic()
            say(f"restoring {old}")
            remote.run(conns[old], restore_command(mode, iface), check=True, timeout=30)
        restored = True
        timeline.append((t_r, f"{old} restored"))
        if nopreempt:
            back = watch.wait(lambda h: old in h, 3 * md)
            result["preempt_back_s"] = None
            result["nopreempt_held"] = back is None
            if back is not None:
                timeline.append((back, f"VIP back on {old} despite nopreempt"))
        else:
            back = watch.wait(lambda h: h == [old], 3 * md + 10)
            result["preempt_back_s"] = round(back - t_r, 3) if back else None
            if back:
                timeline.append((back, f"VIP back on {old} (preempt)"))
        if moving:   # the sync group's other VIPs: to the new master, and back with the drilled one
            watch.wait_companions(new if nopreempt else old, 3 * md)
            result["families"] = family_moves(watch, old, new, start, t_new, t_r, None if nopreempt else back)
        time.sleep(0.5)
        final = watch.holders()
        result["final_holders"] = final
        moved |= {v for v, h in other_holders(inv, conns, vip, moving).items() if h != before[v]}
        result["others_moved"] = sorted(moved)
        lagged = [f["vip"] for f in result.get("families", [])[1:]
                  if f["to"] is None or (not nopreempt and f["back_s"] is None)]
        result["ok"] = len(final) == 1 and not moved and not lagged and (
            result["preempt_back_s"] is not None or result.get("nopreempt_held", False))
        if len(final) != 1:
            result["error"] = f"VIP ended on {', '.join(final) or 'no node'}"
        elif moved:
            result["error"] = (f"failing {old} for {vip} also moved {', '.join(sorted(moved))} "
                               f"(held before by {'; '.join(f'{v}: {before[v]}' for v in sorted(moved))})")
        elif lagged:
            result["error"] = (f"{', '.join(lagged)} did not follow {vip} (same vrrp_sync_group) "
                               f"to {new} and back")
        elif not result["ok"]:
            result["error"] = f"VIP did not come back to {old}"
        return result
    finally:
        probe.stop.set()
        if not restored:
            try:
                remote.run(conns[old], restore_command(mode, iface), check=False, timeout=30)
                watch.wait(lambda h: len(h) == 1, 3 * md + 10)
            except remote.RemoteError:
                pass
        stop.set()
        pt.join(timeout=2)
        base = timeline[0][0] if timeline else time.monotonic()
        result["timeline"] = [{"t": round(t - base, 3), "event": e} for t, e in sorted(timeline)]
        result["probes"] = len(probe.results)
        if gateway is not None:
            gateway.close()
