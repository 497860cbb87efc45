"""`inv os-upgrade`: one node's Debian release, one node at a time (issue 16: 12 -> 13).

The pure part decides (`decide`: refusals, nothing to do) and plans (`plan`: the steps, with the
commands each runs on the node: what `--check` prints and what runs). The shell part takes the
node out of VRRP (`take_out`), runs the apt path (`apt_swap`: Debian's release-notes sequence,
then a reboot) and reads the release back (`release_of`). `prepare` (observe, decide, plan) and
`execute` (drain, take out, swap, check) are what the task calls, `--check` between them. A lab
inventory swaps the OS by re-imaging the node (an `OsSwap` from fabfile.model.extensions: this
module never imports the lab); the drain is the caller's (a deploy, shown by the task layer).

Out of service means: its real server drained first (weight 0 on every director, so no
connection is cut), then keepalived stopped AND masked, so neither a package's postinst nor the
reboot starts it: the node cannot take a VIP until `inv deploy --node NODE` has checked its
config with the new keepalived and started it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from fabfile.infra import facts as F
from fabfile.infra import remote
from fabfile.core.checks import vip_holders
from fabfile.errors import LbtkError, UsageError
from fabfile.infra.facts import NodeState
from fabfile.model import extensions
from fabfile.model.context import Env
from fabfile.model.extensions import OsSwap
from fabfile.model.schema import Inventory
from fabfile.infra.observe import observe

VERSIONS = {"bookworm": "12", "trixie": "13"}                   # the releases the toolkit knows, oldest first
RELEASES: tuple[str, ...] = tuple(VERSIONS)
NEXT = {a: b for a, b in zip(RELEASES, RELEASES[1:])}           # Debian upgrades from the release before only
APT_ENV = "DEBIAN_FRONTEND=noninteractive"
# keep every config file the operator (or the toolkit) changed; take the package's for the others
APT_OPTS = "-y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"
SOURCES = "/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources"
# the toolkit's packages, as the target release names them (trixie has no nginx-light / nginx-core)
NGINX_FLAVOURS = ("nginx", "nginx-light", "nginx-core")
REBOOT_TIMEOUT = 900.0        # a real director: firmware, kernel, fsck


@dataclass(frozen=True)
class Step:
    what: str
    commands: tuple[str, ...] = ()    # run on the node, in order; () = done by the toolkit itself


@dataclass(frozen=True)
class Decision:
    node: str
    current: str | None               # the node's release now (/etc/os-release)
    target: str
    holds: tuple[str, ...] = ()       # VIPs the node holds now
    takes_over: str | None = None     # the node VRRP hands the VIP(s) to when this one stops
    nothing_to_do: bool = False
    drained: bool = False             # its real server is already drained (or it is none)
    notes: tuple[str, ...] = field(default_factory=tuple)


# ---------------------------------------------------------------- pure

def apt_commands(current: str, target: str, packages: dict[str, str]) -> list[str]:
    """Debian's documented upgrade (release notes, "Upgrades from Debian 12"): the APT sources to the
    new release, `apt-get update`, the minimal upgrade without new packages, the full upgrade, all
    without questions and keeping changed config files; then the toolkit's packages installed by the
    names the new release has (`packages`: what the node has installed now)."""
    if NEXT.get(current) != target:
        raise UsageError(f"no Debian upgrade path from {current} to {target}")
    wanted = sorted({p for p in ("keepalived", "ipvsadm", "iptables", "rsyslog") if p in packages}
                    | ({"nginx"} if any(p in packages for p in NGINX_FLAVOURS) else set()))
    apt = f"{APT_ENV} apt-get {APT_OPTS}"
    return [f"for f in {SOURCES}; do [ -f \"$f\" ] && sed -i -E 's/\\b{current}\\b/{target}/g' \"$f\"; done; "
            f"! grep -rqsE '\\b{current}\\b' /etc/apt/sources.list /etc/apt/sources.list.d/",
            "apt-get update",
            f"{apt} upgrade --without-new-pkgs",
            f"{apt} full-upgrade",
            *([f"{apt} install {' '.join(wanted)}"] if wanted else [])]


def decide(inv: Inventory, node: str, target: str, obs: dict[str, NodeState], force: bool = False,
           drained: set[str] | frozenset[str] = frozenset()) -> Decision:
    """Whether `node` may be upgraded to `target` now; raises UsageError (one line) when not.
    One node at a time: every other node answers and runs keepalived. The VIP holder is refused
    unless forced (it goes last: its keepalived stops gracefully and VRRP hands its VIPs over)."""
    if node not in {n.name for n in inv.nodes}:
        raise UsageError(f"--node {node}: not a node of the inventory (nodes: {', '.join(n.name for n in inv.nodes)})")
    if target not in RELEASES:
        raise UsageError(f"--release {target}: the toolkit knows {', '.join(RELEASES)}")
    me = obs[node]
    if not me.reachable:
        raise UsageError(f"{node} does not answer: {me.error} — nothing was changed")
    current = me.release
    if current == target:
        return Decision(node, current, target, nothing_to_do=True)
    if NEXT.get(current or "") != target:
        raise UsageError(f"{node} runs Debian {current}: Debian upgrades a node from the release before "
                         f"{target} only ({' -> '.join(RELEASES)}), one release at a time — nothing was changed")
    for n, o in obs.items():
        if n == node:
            continue
        if not o.reachable:
            raise UsageError(f"one node at a time: {n} does not answer ({o.error}) — bring it back before "
                             f"taking {node} out; nothing was changed")
        if o.active.get("keepalived") != "active":
            raise UsageError(f"one node at a time: keepalived on {n} is {o.active.get('keepalived', 'unknown')} "
                             f"(a node mid-upgrade? finish it: `inv deploy --node {n}`) — nothing was changed on {node}")
    holders = vip_holders(inv, obs)
    mine = tuple(v for v, h in holders.items() if node in h)
    takes = None
    if mine:
        prio = {n.name: n.priority for n in inv.nodes}
        others = sorted((n for n in obs if n != node), key=lambda n: -prio[n])
        takes = others[0] if others else None
        if not force:
            later = [n for n in obs if n != node and obs[n].release != target]
            raise UsageError(
                f"{node} holds {', '.join(mine)}: the VIP holder goes last — "
                + (f"upgrade {', '.join(later)} first, then " if later else "")
                + f"--force hands the VIP over first (keepalived stops gracefully, priority 0: {takes} takes it)")
        if takes is None:
            raise UsageError(f"{node} holds {', '.join(mine)} and no other node could take it over")
    addr = inv.node(node).ip
    serves = any(inv.real_server_address(rs) == addr for vs in inv.virtual_servers for rs in vs.real_servers)
    notes = []
    if mine and obs[takes].release != target:
        notes.append(f"{takes} (taking the VIP) still runs {obs[takes].release}: the VIP holder usually goes last")
    return Decision(node, current, target, mine, takes, drained=(not serves) or addr in drained, notes=tuple(notes))


def plan(d: Decision, packages: dict[str, str], swap: OsSwap | None = None) -> list[Step]:
    """The steps of one node's upgrade, in order, as `--check` prints them and the task runs them.
    `swap`: the OS is swapped another way than apt (the lab re-images: its nodes have no route to
    the archive); the step names the apt commands production runs instead."""
    if d.nothing_to_do:
        return []
    steps = []
    if not d.drained:
        steps.append(Step(f"drain {d.node}'s real server: weight 0 on every director (keepalived reload), "
                          "existing connections finish"))
    steps.append(Step("keepalived stopped and masked: no VIP can come to this node until `inv deploy --node "
                      f"{d.node}` starts it" + (f" (it holds {', '.join(d.holds)}: stopping sends priority 0, "
                                               f"{d.takes_over} takes over)" if d.holds else ""),
                      ("systemctl mask --now keepalived",)))
    if d.holds:
        steps.append(Step(f"wait until {', '.join(d.holds)} answer on another node"))
    if swap is not None:
        steps.append(Step(swap.step(d.node, d.target) + "; production runs instead: "
                          + " ; ".join(apt_commands(d.current, d.target, packages)) + " ; reboot"))
    else:
        steps.append(Step(f"Debian {VERSIONS.get(d.current, d.current)} ({d.current}) -> "
                          f"{VERSIONS.get(d.target, d.target)} ({d.target}), keeping changed config files",
                          tuple(apt_commands(d.current, d.target, packages))))
        steps.append(Step("reboot into the new release; wait for SSH and a new boot id", ("systemctl reboot",)))
        steps.append(Step("unmask keepalived (not started)", ("systemctl unmask keepalived",)))
    steps.append(Step(f"check: {d.node} runs {d.target} (/etc/os-release)"))
    return steps


# ---------------------------------------------------------------- shell

FACTS = (F.OS_RELEASE, F.INSTALLED, F.ADDRS, F.SERVICES, F.RUNTIME)   # what decide() reads


def observe_all(e: Env, group: remote.NodeGroup | None = None) -> dict[str, NodeState]:
    """Every node's release, packages, addresses, units and runtime record, over `group` (default:
    a group of its own)."""
    if group is None:
        with remote.nodes(e) as group:
            return observe_all(e, group)
    return observe(group, FACTS)


def take_out(env: Env, group: remote.NodeGroup, d: Decision, say) -> None:
    """keepalived stopped and masked on the node; with VIPs, wait until another node holds each.
    No other node takes over in time: keepalived started again, an error."""
    from fabfile.ops.settle import settle_timeout
    inv = env.inv
    remote.run(group[d.node], "systemctl mask --now keepalived")
    say(f"{d.node}: keepalived stopped and masked (it cannot take a VIP until `inv deploy --node {d.node}`)")
    if not d.holds:
        return
    t0 = time.monotonic()
    others = group.only(n for n in group.names if n != d.node)
    while True:
        h = vip_holders(inv, observe(others, [F.ADDRS]))
        if all(len(h.get(v, [])) == 1 for v in d.holds):
            say(f"{d.node}: handed over in {time.monotonic() - t0:.1f}s: "
                + ", ".join(f"{v} on {h[v][0]}" for v in d.holds))
            return
        if time.monotonic() - t0 > settle_timeout(env):
            break
        time.sleep(0.1)
    remote.run(group[d.node], "systemctl unmask keepalived && systemctl start keepalived")
    raise LbtkError(f"{d.node}: no other node took {', '.join(d.holds)} — keepalived started again on {d.node}, "
                    "nothing else was changed; `inv verify` and `inv logs` say why")


def apt_swap(env: Env, group: remote.NodeGroup, d: Decision, packages: dict[str, str], say,
             timeout: float = REBOOT_TIMEOUT) -> float:
    """The apt path on a real node: Debian's upgrade commands one by one (each one line of output
    here), then a reboot; returns once the node answers SSH with a new boot id (each try over a
    connection of its own: the group's died with the reboot)."""
    c = group[d.node]
    before = remote.run(c, "cat /proc/sys/kernel/random/boot_id").stdout.strip()
    for cmd in apt_commands(d.current, d.target, packages):
        t0 = time.monotonic()
        remote.run(c, cmd, timeout=3600)
        say(f"{d.node}: {cmd.split(';')[0][:70]} ... ok ({time.monotonic() - t0:.0f}s)")
    remote.run(c, "systemctl unmask keepalived && systemctl mask keepalived")   # still masked at boot
    remote.run(c, "nohup sh -c 'sleep 1; systemctl reboot' >/dev/null 2>&1 &")
    say(f"{d.node}: rebooting")
    t0 = time.monotonic()
    time.sleep(5)
    while time.monotonic() - t0 < timeout:
        try:
            with remote.nodes(env, [d.node]) as one:
                now = remote.run(one[d.node], "cat /proc/sys/kernel/random/boot_id", timeout=10).stdout.strip()
                if now and now != before:
                    remote.run(one[d.node], "systemctl unmask keepalived")
                    say(f"{d.node}: back after {time.monotonic() - t0:.0f}s (new boot); keepalived unmasked, not started")
                    return time.monotonic() - t0
        except LbtkError:
            pass
        time.sleep(5)
    raise LbtkError(f"{d.node}: not back {timeout:.0f}s after its reboot — check its console; keepalived stays "
                    "masked there, the other nodes carry the VIP")


def release_of(env: Env, node: str) -> str | None:
    """The node's release now, over a connection of its own (the node was just swapped)."""
    with remote.nodes(env, [node]) as one:
        return observe(one, [F.OS_RELEASE])[node].release


@dataclass(frozen=True)
class Prepared:
    """One node's upgrade, decided and planned, nothing changed yet (what `--check` shows)."""
    decision: Decision
    steps: tuple[Step, ...]
    packages: dict[str, str]          # what the node has installed now (the apt path's package names)
    swap: OsSwap | None               # None: the apt path


def prepare(e: Env, node: str, release: str, force: bool = False,
            group: remote.NodeGroup | None = None) -> Prepared:
    """Observe every node (over `group`: the one the caller holds the lock on), decide and plan;
    nothing is changed. Raises UsageError when refused."""
    from fabfile.core import runtime
    swap = extensions.os_swap(e.inv, e.name)     # first: a refusal here costs no connection
    obs = observe_all(e, group)
    d = decide(e.inv, node, release, obs, force=force, drained=set(runtime.newest(obs).drained))
    packages = obs[node].packages
    return Prepared(d, tuple(plan(d, packages, swap)), packages, swap)


def execute(e: Env, p: Prepared, say, drain, group: remote.NodeGroup, lock=None) -> float:
    """Run a prepared upgrade over `group` (every node), under `lock` (fabfile/ops/lock.Lock, held on
    them): `drain(lock)` first unless drained (the caller's deploy, under the same lock), keepalived
    out, the OS swapped (apt + reboot, or `p.swap`), the lock taken again on the node (its hold died
    with the old system), the release read back. Returns the seconds it took."""
    d = p.decision
    t0 = time.monotonic()
    if not d.drained:
        drain(lock)
    take_out(e, group, d, say)
    if p.swap is not None:
        p.swap.run(d.node, d.target, say)
    else:
        apt_swap(e, group, d, p.packages, say)
    group.reconnect([d.node])            # its connection ended with the old system
    if lock is not None:
        lock.take_again(group.only([d.node]))
    now = release_of(e, d.node)
    if now != d.target:
        raise UsageError(f"{d.node} runs {now} after the upgrade, not {d.target} — keepalived stays off there; "
                         "check the node's console and apt's log (/var/log/apt/term.log)")
    return time.monotonic() - t0


def os_upgrade(e: Env, node: str, release: str, info, say, drain, show_plan, force: bool = False,
               check: bool = False, break_lock: bool = False) -> tuple[Prepared, float | None]:
    """`inv os-upgrade`: (what was prepared, the seconds the upgrade took; None: nothing ran).
    `--check` observes and plans under no lock. Otherwise the deploy lock is held on every node
    from before the facts are read to the end (so "one node at a time" is decided under it: two
    operators cannot take two nodes out), and the drain runs under it. `info`: this run
    (fabfile/infra/runinfo.RunInfo), or a callable that makes it; `show_plan(p)` is told the plan
    before anything changes; `drain(lock)` drains the node's real server under that lock."""
    if check:
        p = prepare(e, node, release, force)
        show_plan(p)
        return p, None
    from fabfile.ops import lock as runlock
    with remote.nodes(e) as group, runlock.held_on_all(group, info() if callable(info) else info,
                                                       break_lock, say) as lock:
        p = prepare(e, node, release, force, group)
        show_plan(p)
        if p.decision.nothing_to_do:
            return p, None
        return p, execute(e, p, say, drain, group, lock)


__all__ = ["Step", "Decision", "Prepared", "apt_commands", "decide", "plan", "prepare", "execute", "observe_all",
           "take_out", "apt_swap", "release_of", "os_upgrade", "RELEASES", "NEXT"]
