"""A simulated cluster for the failover drill's unit tests: fakes of the drill's seams
(fabfile.ops.drill.Rig): the node actions, the address poller, the probe and the clock.

Time is virtual (SimClock): the drill's sleeps and waits move it, running what the cluster
scheduled on the way, so a drill of 20 s runs in milliseconds and its timings are exact. The
cluster acts as VRRP does:
- graceful stop of the holder: it drops the VIP (its priority-0 advert), the best running backup
  takes it after its skew time;
- crash (SIGKILL): the VIP stays on the dead node's interface; the best backup takes it
  master_down_interval after the last advert it received;
- link-down: as a crash for the others, and the node's poller goes silent until its link comes
  back (restore_after later), then it preempts;
- a started keepalived drops a stale VIP and preempts a lower-priority holder after its own
  master_down_interval.
Each node's poller is fed that node's `ip -j addr` (a captured fixture edited by
core_fixtures.addrs_json) whenever what it holds changes; the sniffer, every second, an advert
from the master to every other reachable node. The probe's page is the inventory's page for the
node that answers, read by the drill's own node_in_page.
"""
from __future__ import annotations

import heapq
import itertools

from fabfile.core.drill_result import ProbeSample
from fabfile.core.vrrp import master_down_interval, skew_time
from fabfile.infra.remote import RemoteError
from fabfile.ops.drill import LINK_DOWN_DELAY, Rig
from fabfile.parsers.lbtk import node_in_page

from .core_fixtures import addrs_json

LEAVE_S = 0.02       # a stopped keepalived removes its VIP this long after the stop
ANSWER_S, REFUSED_S = 0.0012, 0.0004   # a probe's latency: answered, refused


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, raised by the clock at a chosen moment."""


class SimClock:
    def __init__(self, start: float = 1000.0):
        self.t = start
        self._queue: list = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self.t

    def at(self, t: float, fn) -> None:
        heapq.heappush(self._queue, (t, next(self._seq), fn))

    def after(self, dt: float, fn) -> None:
        self.at(self.t + dt, fn)

    def every(self, dt: float, fn, alive) -> None:
        """fn() every dt seconds while alive() holds."""
        def tick():
            if alive():
                fn()
                self.after(dt, tick)
        self.after(dt, tick)

    def _next_due(self, end: float) -> bool:
        if not self._queue or self._queue[0][0] > end:
            return False
        t, _, fn = heapq.heappop(self._queue)
        self.t = max(self.t, t)
        fn()
        return True

    def sleep(self, seconds: float) -> None:
        end = self.t + max(0.0, seconds)
        while self._next_due(end):
            pass
        self.t = max(self.t, end)

    def wait(self, changed, seconds: float) -> None:
        """Returns after the next scheduled event (the watch then looks again), or `seconds`."""
        end = self.t + seconds
        if not self._next_due(end):
            self.t = end

    def interrupt_at(self, t: float) -> None:
        def ctrl_c():
            raise Interrupted()
        self.at(t, ctrl_c)


class SimCluster:
    """The node actions and the address poller of a cluster of `inv`'s nodes."""

    def __init__(self, inv, clock: SimClock, vip: str | None = None, stuck: str | None = None,
                 restore_fails: bool = False, fail_errs: bool = False, ctrl_c_after_fail: float | None = None):
        self.inv, self.clock = inv, clock
        self.vip = vip or inv.vrrp_instances[0].vips[0]
        vi = inv.vrrp_instances[0]
        self.advert_int, self.version = vi.advert_int, vi.vrrp_version
        self.prio = {n.name: n.priority for n in inv.nodes}
        self.host = {n.name: n.host for n in inv.nodes}
        self.ip = {n.name: n.ip for n in inv.nodes}
        self.running = {n.name for n in inv.nodes}     # keepalived runs (a crashed one does not)
        self.link_up = {n.name for n in inv.nodes}
        self.holding = {max(self.running, key=self.prio.get)}   # nodes with the VIP on their interface
        self.stuck = stuck              # once this node is stopped, no backup takes the VIP
        self.restore_fails = restore_fails
        self.fail_errs = fail_errs      # the fail command errs (after taking effect)
        self.ctrl_c_after_fail = ctrl_c_after_fail   # the operator presses Ctrl-C this long after the fail
        self.actions: list[tuple[str, str, str]] = []
        self.watch = None
        self.polling = False
        self.sniff = False
        self.last_advert: dict[str, float] = {}

    # ------------------------------------------------------------ VRRP, as the cluster does it
    def master(self) -> str | None:
        live = [n for n in self.holding if n in self.running and n in self.link_up]
        return max(live, key=self.prio.get) if live else None

    def md(self, node: str) -> float:
        return master_down_interval(self.advert_int, self.prio[node], self.version)

    def best_backup(self) -> str | None:
        if self.stuck and self.stuck not in self.running:
            return None
        up = [n for n in self.running & self.link_up if n not in self.holding]
        return max(up, key=self.prio.get) if up else None

    def take(self, node: str | None) -> None:
        if node is None or node not in self.running or node not in self.link_up:
            return
        self.holding = {node} | {n for n in self.holding if n not in self.running or n not in self.link_up}
        self.feed_all()

    def take_over_after_silence(self, silent: str) -> None:
        """`silent` stopped advertising: the best backup takes the VIP master_down_interval after
        the last advert it received."""
        new = self.best_backup()
        if new is not None:
            self.clock.at(self.last_advert.get(silent, self.clock.t) + self.md(new), lambda: self.take(new))

    def advertise(self) -> None:
        m = self.master()
        if m is None:
            return
        self.last_advert[m] = self.clock.t
        if self.sniff and self.watch is not None:
            for n in self.link_up - {m}:
                self.watch.feed(n, f"@@vrrp {self.ip[m]}")

    # ------------------------------------------------------------ the poller (fabfile.ops.drill.Poller)
    def start(self, names, watch, sniff) -> None:
        self.watch, self.polling, self.sniff = watch, True, sniff
        self.feed_all()
        self.clock.every(self.advert_int, self.advertise, lambda: self.polling)

    def stop(self) -> None:
        self.polling = False

    def feed_all(self) -> None:
        if self.watch is None or not self.polling:
            return
        for n in sorted(self.link_up):     # a node whose link is down cannot be heard
            self.watch.feed(n, addrs_json(self.host[n], on_iface=(self.vip,) if n in self.holding else ()))

    # ------------------------------------------------------------ the node actions (fabfile.ops.drill.NodeActions)
    def fail(self, node: str, mode: str, iface: str, restore_after: float) -> None:
        self.actions.append(("fail", node, mode))
        if self.ctrl_c_after_fail is not None:
            self.clock.interrupt_at(self.clock.t + self.ctrl_c_after_fail)
        if mode == "graceful":
            self.running.discard(node)
            if node in self.holding:
                def leave():
                    self.holding.discard(node)
                    self.feed_all()
                    new = self.best_backup()
                    if new is not None:
                        self.clock.after(skew_time(self.advert_int, self.prio[new], self.version),
                                         lambda: self.take(new))
                self.clock.after(LEAVE_S, leave)
        elif mode == "crash":
            self.running.discard(node)
            self.take_over_after_silence(node)
        elif mode == "link-down":
            def down():
                self.link_up.discard(node)
                self.take_over_after_silence(node)
            self.clock.after(LINK_DOWN_DELAY, down)
            self.clock.after(int(restore_after), lambda: self.link_back(node))
        if self.fail_errs:
            raise RemoteError(f"{node}: the fail command failed")

    def link_back(self, node: str) -> None:
        if node in self.link_up:
            return
        self.link_up.add(node)
        self.holding.discard(node)          # keepalived went FAULT while the link was down
        self.feed_all()
        self.clock.after(self.md(node), lambda: self.preempt(node))

    def restore(self, node: str, mode: str, iface: str, check: bool = True) -> None:
        self.actions.append(("restore", node, mode))
        if self.restore_fails:
            raise RemoteError(f"{node}: unreachable")
        if mode == "link-down":
            self.link_back(node)
            return
        self.running.add(node)
        self.holding.discard(node)          # a starting keepalived clears a stale VIP
        self.feed_all()
        self.clock.after(self.md(node), lambda: self.preempt(node))

    def preempt(self, node: str) -> None:
        m = self.master()
        if node in self.running and node in self.link_up and (m is None or self.prio[node] > self.prio[m]):
            self.holding = {node}
            self.feed_all()

    def vip_holders(self) -> dict[str, list[str]]:
        return {self.vip: sorted(self.holding)}


class SimProbe:
    """HTTP through the VIP every `interval`: answered by the reachable node holding it, whose
    page names it; refused while no node does."""

    def __init__(self, cluster: SimCluster, vip: str, names: list[str], interval: float):
        self.results: list[ProbeSample] = []
        self.finished = False
        inv = cluster.inv
        pages = {n.name: inv.nginx.page.format(node=n.name, host=n.ip, cluster=inv.cluster) for n in inv.nodes}

        def probe():
            up = [n for n in cluster.holding if n in cluster.link_up]
            who = cluster.master() or (max(up, key=cluster.prio.get) if up else None)   # the last gratuitous ARP
            if who:
                self.results.append(ProbeSample(cluster.clock.t, True, node_in_page(pages[who], names) or "?",
                                                ANSWER_S))
            else:
                self.results.append(ProbeSample(cluster.clock.t, False, "ConnectionRefusedError", REFUSED_S))
        cluster.clock.every(interval, probe, lambda: not self.finished)

    def finish(self) -> None:
        self.finished = True


def sim_rig(inv, interval: float = 0.02, **kw) -> tuple[Rig, SimCluster, list[str]]:
    """(the rig, its cluster, what the drill said)."""
    clock = SimClock()
    cluster = SimCluster(inv, clock, **kw)
    said: list[str] = []
    probes: list[SimProbe] = []

    def start_probe(vip, names):
        probes.append(SimProbe(cluster, vip, names, interval))
        return probes[-1]
    rig = Rig(nodes=cluster, poller=cluster, start_probe=start_probe, interval=interval, clock=clock,
              say=said.append)
    cluster.probes = probes
    return rig, cluster, said
