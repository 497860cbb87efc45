"""What a drain costs per node, counted without a lab: the deploy path (fabfile.ops.deploy.run_phases
with a runtime change, as `inv drain` runs it) against a fake remote that answers like the nodes do
(captured tool output, tests/unit/core_fixtures.py) and counts every remote round trip per node,
and every wait.

The budget, per node, for a drain on a settled cluster:
  lock take (+ the facts and files, read under the lock in the same round trip), upload,
  keepalived -t (+ the swap and pruning, when the check is clean), service actions (+ the health
  check's look at the daemons, + the history line and the owed-actions file once they are up),
  lock release = 5.
Before issue 25 it was 12 (a look before the lock, the look under it, mkdir, pruning and the health
check on their own) plus one VRRP settle poll on every node, and the 30 nodes of lab-30 went in 30
batches, not 3; then 7 (keepalived -t, the swap and the history on their own).
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict

import pytest

from fabfile.core import runtime
from fabfile.core.plan import RollKind
from fabfile.infra import remote
from fabfile.infra.runinfo import RunInfo
from fabfile.ops import apply as apply_mod, deploy, settle
from fabfile.parsers import systemctl_show
from fabfile.parsers.lbtk import FINISHED, FRAMES, HEALTH

from fabfile.infra import facts as F
from fabfile.parsers.lbtk import LiveFile

from .core_fixtures import deploy_outputs, file_listing, frame, lab_data, lab_env, lab_env_of_size, live_files

DRAIN_BUDGET = 5                                 # remote round trips per node
TOKEN = "0123456789abcdef0123456789abcdef"       # observe's frames token (a UUID on a node)
VIP = "10.189.0.100"
FACT_NAME = re.compile(r"fact %s\\n' \"\$__t\" (\S+);")
ACT = re.compile(r"echo '@@act (\d+) ok'")
IS_ACTIVE = re.compile(r"systemctl is-active ([^2]+?) 2>")


class FakeLink:
    def __init__(self, name: str):
        self.name, self.become = name, None

    def close(self) -> None:
        pass


class FakeHeld:
    """The lock command, held open: `release` on its stdin is one more round trip. The facts it
    reads once the lock is held (its look: observe's script) come back in the take's round trip."""
    def __init__(self, cluster, node, command: str):
        self.cluster, self.node, self.open, self.stderr = cluster, node, True, ""
        self.command = command

    def send(self, text: str) -> None:
        assert text == "release\n"

    def read_until(self, line: str, timeout: float) -> str:
        if line.startswith("LOCK LOOKED "):
            names = FACT_NAME.findall(self.command)
            self.cluster.trips[self.node][-1] += " + observe " + "+".join(names)
            return f"{FRAMES} {TOKEN}\n" + frame({n: self.cluster.outputs[self.node][n] for n in names}, TOKEN) \
                + line + "\n"
        self.cluster.trip(self.node, "lock release")
        return line + "\n"

    def close(self) -> None:
        self.open = False


class FakeCluster:
    """Nodes as the deploy facts describe them; every remote call is one round trip of one node."""

    def __init__(self, env, holder: str = "node1", drained: tuple[str, ...] = ()):
        """`drained`: addresses an earlier drain left drained (the nodes keep its runtime record)."""
        self.env = env
        rec = runtime.NONE
        for addr in drained:
            rec = runtime.drained(rec, addr, True, "earlier")
        live, record = runtime.effective(env, rec), runtime.content(rec)
        self.outputs = {}
        for n in env.inv.nodes:
            files = live_files(live, n.name)
            out = deploy_outputs(live, n.name, files=files, on_iface=(VIP,) if n.name == holder else (),
                                 on_lo=(VIP,), runtime=record or "")
            if record:
                out["files"] = (file_listing({**files, F.RUNTIME_PATH: LiveFile(F.RECORD_MODE, record.encode())}), "", 0)
            self.outputs[n.name] = out
        for out in self.outputs.values():
            out["lock"] = ("", "", 0)
        self.trips: dict[str, list[str]] = defaultdict(list)
        self.slept: list[float] = []

    def trip(self, node: str, what: str) -> None:
        self.trips[node].append(what)

    def run(self, c, command: str, check: bool = True, timeout=60) -> remote.Result:
        acts = ACT.findall(command)
        framed = FRAMES in command
        asked = IS_ACTIVE.search(command)
        if acts:
            what = "actions" + (" + health" if asked else "") + (" + history" if "history" in command else "")
        elif framed:
            names = FACT_NAME.findall(command)
            what = "vrrp settle poll" if names == ["addrs"] else "observe " + "+".join(names)
        else:
            what = ("mkdir" if command.startswith("mkdir -p") else
                    "restore" if command.startswith("if [ -e /var/lib/lbtk/backup/") else
                    next((w for k, w in (("keepalived -t", "keepalived -t + swap"), ("setsid -w", "swap"),
                                         ("history", "history")) if k in command), command.split()[0]))
        self.trip(c.name, what)
        out = "".join(f"@@act {i} ok\n" for i in acts)
        if asked:
            # the daemons as the node's units fact has them; the node finishes the change when all are up
            units = asked.group(1).split()
            active = systemctl_show.split(systemctl_show.parse_show(list(F.UNITS), self.outputs[c.name]["units"][0]))[0]
            out += HEALTH + "\n" + "".join(active[u] + "\n" for u in units)
            if all(active[u] == "active" for u in units):
                out += FINISHED + "\n"
        if framed:
            out += f"{FRAMES} {TOKEN}\n" + frame({n: self.outputs[c.name][n] for n in names}, TOKEN)
        return remote.Result(out, "", 0)

    def install(self, monkeypatch) -> None:
        links = [FakeLink(n.name) for n in self.env.inv.nodes]
        monkeypatch.setattr(remote, "nodes", lambda env, chosen=None: remote.NodeGroup(
            [c for c in links if chosen is None or c.name in {getattr(n, "name", n) for n in chosen}], inv=env.inv))
        monkeypatch.setattr(remote, "run", self.run)
        monkeypatch.setattr(remote, "put_many", lambda c, files: self.trip(c.name, "upload"))

        def hold(c, command, until, timeout=30):
            self.trip(c.name, "lock take")
            return FakeHeld(self, c.name, command), until + "\n"
        monkeypatch.setattr(remote, "hold", hold)
        for mod in (apply_mod.time, settle.time):
            monkeypatch.setattr(mod, "sleep", self.slept.append)


def _info() -> RunInfo:
    return RunInfo("20250101T000000Z-1", "tester", 1, "/", "inv drain --server node2", "lab",
                   "2025-01-01T00:00:00+00:00", "", False)


def _drain(env, cluster, monkeypatch, server="10.189.0.12"):
    cluster.install(monkeypatch)
    said: list[str] = []
    out = deploy.run_phases(env, ["keepalived"], say=said.append, info=_info(),
                            change=lambda rec, _s: runtime.drained(rec, server, True, "tester"))
    return out, said


@pytest.mark.parametrize("size", [3, 30])
def test_a_drain_costs_at_most_the_budget_per_node_and_no_vrrp_wait(monkeypatch, size):
    """The everyday drain: the nodes keep a runtime record already (an earlier drain or undrain)."""
    env = lab_env_of_size(monkeypatch, size)
    cluster = FakeCluster(env, drained=("10.189.0.13",))
    out, said = _drain(env, cluster, monkeypatch)
    assert out.error is None and all(r.status is deploy.RunStatus.CHANGED for r in out.runs)
    assert out.roll.kind is RollKind.CANARY and len(out.roll.batches) == 3
    assert said[0] == out.roll.line() and "canary" in said[0]
    for node, trips in cluster.trips.items():
        assert len(trips) <= DRAIN_BUDGET, (node, trips)
        assert "vrrp settle poll" not in trips and "mkdir" not in trips
    assert cluster.trips["node2"] == ["lock take + observe kernel+packages+binaries+has_ipvs+addrs+pending+units"
                                      "+runtime+files", "upload", "keepalived -t + swap",
                                      "actions + health + history", "lock release"]
    # the only wait: the health check's, on the node (sleep in the actions' round trip), none here
    assert cluster.slept == []


def test_the_first_drain_ever_creates_the_runtime_record_one_mkdir_more(monkeypatch):
    env = lab_env(monkeypatch)
    cluster = FakeCluster(env)
    out, _ = _drain(env, cluster, monkeypatch)
    assert out.error is None and out.roll.kind is RollKind.CANARY
    assert {len(t) for t in cluster.trips.values()} == {DRAIN_BUDGET + 1}
    assert all(t[1] == "mkdir" for t in cluster.trips.values())


def test_a_rolling_change_still_settles_after_the_holder(monkeypatch):
    """A priority change (a VIP can move) rolls one by one and polls VRRP after the holder's batch."""
    old = lab_env(monkeypatch)
    data = lab_data()
    data["nodes"][0]["priority"] = 105           # the holder's own priority: no move, the VRRP part changes
    new = lab_env(monkeypatch, data=data)
    cluster = FakeCluster(old)
    cluster.install(monkeypatch)
    out = deploy.run_phases(new, ["keepalived"], info=_info())
    assert out.roll.kind is RollKind.ROLLING and out.roll.settle_after == [False, False, True]
    polls = Counter(t for ts in cluster.trips.values() for t in ts)["vrrp settle poll"]
    assert polls == len(new.inv.nodes)           # one poll of every node: the VIP was where it belongs


def test_the_health_check_reads_the_daemons_from_the_actions_round_trip(monkeypatch):
    """A daemon down after its reload (as the units fact says in the same round trip): the node's
    files are restored and the run fails on that node, before any other batch."""
    env = lab_env(monkeypatch)
    cluster = FakeCluster(env)
    from .core_fixtures import ALL_ENABLED, ALL_UNITS_UP, units_output
    down = units_output({**ALL_UNITS_UP, "keepalived": "failed"}, ALL_ENABLED)
    cluster.outputs["node3"]["units_after"] = (down, "", 0)
    real_run = cluster.run

    def run(c, command, check=True, timeout=60):
        if c.name == "node3" and ACT.search(command):
            cluster.outputs["node3"]["units"] = cluster.outputs["node3"]["units_after"]
        return real_run(c, command, check, timeout)
    cluster.run = run
    out, _ = _drain(env, cluster, monkeypatch)
    status = {r.node: r.status for r in out.runs}
    assert status == {"node1": deploy.RunStatus.SKIPPED, "node2": deploy.RunStatus.SKIPPED,
                      "node3": deploy.RunStatus.FAILED}
    assert "node3: keepalived is not running after the change" in out.error.args[0]
    assert cluster.trips["node3"][3:] == ["keepalived -t + swap", "actions + health + history", "journalctl",
                                          "restore", "systemctl", "lock release"]
    assert "node1" not in cluster.trips or "upload" not in cluster.trips["node1"]   # nobody else was touched
