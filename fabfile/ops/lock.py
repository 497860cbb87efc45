"""The deploy lock, held ON THE NODES so two operators (two clones, two machines) never change one
cluster at once: every task that changes a node takes it (deploy, its phases, rollback, drain/undrain,
secret rotation, os-upgrade, failover-test, sync-start/stop) for its whole run, and decides under it.
A run that must deploy while it holds the lock (os-upgrade's drain) passes its Lock on (run_phases(lock=)).

On each node a small command holds `flock` on /var/lib/lbtk/lock.flock for as long as our SSH
channel stays open, and writes who holds it (fabfile/infra/runinfo.RunInfo) to /var/lib/lbtk/lock.
Release removes that record, then ends the command. A run that is killed (or loses its link) ends
the command without removing the record: the flock is free but the record remains, so the next
run sees a STALE lock and stops — it is broken only on request (`--break-lock`), never silently.
A lock whose holder is alive (flock taken) is never broken.
"""
from __future__ import annotations

import secrets
import shlex
from contextlib import contextmanager

from fabfile.infra import remote
from fabfile.errors import LbtkError
from fabfile.infra.facts import LOCK_PATH, RECORDS_DIR, records_private
from fabfile.parsers import ParseError
from fabfile.parsers.lbtk import last_line
from fabfile.parsers.lbtk_state import LockHolder, parse_lock_answer
from fabfile.infra.runinfo import RunInfo

FLOCK_PATH = LOCK_PATH + ".flock"
HELD, RELEASED = "LOCK HELD", "LOCK RELEASED"


class LockError(LbtkError):
    """Another run holds the lock, or a dead run left it."""


def script(info: RunInfo, break_stale: bool, look: str = "", looked: str = "") -> str:
    """Answers `LOCK BUSY` / `LOCK STALE` + the holder's record and ends, or `LOCK HELD` and waits
    for `release` on stdin (then removes the record); breaking a stale lock answers `LOCK BROKEN` +
    the dead run's record before `LOCK HELD`. EOF without `release` (our side died) leaves
    the record: that is what makes a killed run's lock visible. `look`: a script run once the lock
    is held (in a subshell, its stdin /dev/null: whatever it does, the hold goes on), followed by the
    line `looked`: the facts a run decides on, read under the lock in the lock's own round trip."""
    q, lock = shlex.quote, shlex.quote(LOCK_PATH)
    mine = q(info.holder())
    stale = f"echo 'LOCK BROKEN'; cat {lock}; " if break_stale else f"echo 'LOCK STALE'; cat {lock}; exit 0; "
    stale_check = f"if [ -s {lock} ] && ! grep -qF {q(info.run)} {lock}; then {stale}fi; "
    # umask 077: the record and the flock file are 0600 (records_private: as an older lbtk left them)
    return (f"umask 077; mkdir -p {q(RECORDS_DIR)} && exec 9>>{q(FLOCK_PATH)} && "
            f"{records_private(FLOCK_PATH)} || exit 1; "
            f"if ! flock -n 9; then echo 'LOCK BUSY'; cat {lock} 2>/dev/null; exit 0; fi; "
            + stale_check +
            f"printf '%s\\n' {mine} > {lock}.new && mv -f {lock}.new {lock} || exit 1; "
            f"echo '{HELD}'; "
            + (f"( {look}\n) </dev/null; echo {q(looked)}; " if look else "") +
            f"if read -r word && [ \"$word\" = release ]; then rm -f {lock}; echo '{RELEASED}'; fi")


def who(h: LockHolder | None) -> str:
    if h is None:
        return "a run whose record is unreadable"
    return h.who


def describe(node: str, word: str, h: LockHolder | None) -> str:
    if word == "BUSY":
        return (f"{node}: the deploy lock is held by {who(h)} — wait for that run to finish; "
                "nothing was changed on any node")
    return (f"{node}: a deploy lock was left by {who(h)}, and that run is gone (killed, or its connection was lost) "
            "— check the cluster (`inv diff`, `inv history`), then rerun with --break-lock; "
            "nothing was changed on any node")


class Lock:
    """Held on a set of nodes; use as a context manager. Unreachable nodes come back in `down`."""

    def __init__(self, nodes, info: RunInfo, break_stale: bool = False, look=None):
        """`look(node) -> script`: what to run on each node once its lock is held (observe's
        script): its output is in `looked` (node -> text, or a RemoteError's line when it did not
        finish), one round trip less for a run that reads its facts under the lock."""
        self.nodes, self.info, self.break_stale = remote.NodeGroup.of(nodes), info, break_stale
        self.look = look
        self.looked: dict[str, str | remote.RemoteError] = {}
        self._looked_line = f"LOCK LOOKED {secrets.token_hex(16)}"   # no file on a node can end the look early
        self.held: dict[str, remote.Held] = {}
        self.down: dict[str, str] = {}
        self.broken: list[tuple[str, LockHolder | None]] = []

    def __enter__(self) -> "Lock":
        return self._take_on(self.nodes)

    def take_again(self, nodes) -> None:
        """Hold the lock again on nodes whose hold ended while this run goes on (os-upgrade's reboot
        ended the command; the record it left names this run, so it is not stale to this run).
        A node that refuses releases the whole lock and raises, as taking it does."""
        group = remote.NodeGroup.of(nodes)
        for name in group.names:
            if name in self.held:
                _give(self.held.pop(name))       # a hold still alive is given back as a release would
        self._take_on(group)
        if any(n in self.down for n in group.names):
            why = next(self.down[n] for n in group.names if n in self.down)
            self.release()
            raise LockError(f"{why} — the deploy lock could not be taken again there")

    def _take_on(self, nodes: remote.NodeGroup) -> "Lock":
        # Every command started, as soon as it answers: a Ctrl-C while the lock is being taken
        # (before __enter__ returns, so __exit__ never runs) must still release what was taken —
        # or it would leave a record that the next run reports as a dead run's stale lock.
        started: dict[str, remote.Held] = {}

        def take(c):
            cmd = script(self.info, self.break_stale, self.look(c.name) if self.look else "", self._looked_line)
            try:
                h, text = remote.hold(c, cmd, HELD)
            except remote.RemoteError as e:
                return c.name, None, str(e), None
            started[c.name] = h
            # the look's output read here, each node in its own thread, as soon as its lock is held
            look = self._read_look(h) if self.look and text.endswith(HELD + "\n") else None
            return c.name, h, text, look
        try:
            return self._take(take, nodes)
        except BaseException:
            self.held.update({n: h for n, h in started.items() if h.open})   # a refusal closed its own
            self.release()
            raise

    def covers(self, names) -> bool:
        """Is the lock held on every one of these nodes (a run under it may change them)?"""
        return set(names) <= set(self.held)

    def _take(self, take, nodes: remote.NodeGroup) -> "Lock":
        refusals = []
        for node, h, text, look in nodes.parallel(take):
            if h is None:
                self.down[node] = text
                continue
            try:
                word, holder = parse_lock_answer(text)
            except ParseError:
                h.close()
                self.down[node] = (f"{node}: the deploy lock could not be taken: "
                                   f"{last_line(h.stderr) or last_line(text) or 'no answer'}")
                continue
            if word in ("HELD", "BROKEN"):
                self.held[node] = h
                if word == "BROKEN":
                    self.broken.append((node, holder))
                if look is not None:
                    self.looked[node] = look
            else:
                h.close()
                refusals.append(describe(node, word, holder))
        if refusals:
            self.release()
            raise LockError(refusals[0] + (f" ({len(refusals) - 1} more node(s) refused too)"
                                           if len(refusals) > 1 else ""))
        return self

    def _read_look(self, h: remote.Held) -> str | remote.RemoteError:
        try:
            text = h.read_until(self._looked_line, 60)
        except remote.RemoteError as e:
            return e
        if not text.endswith(self._looked_line + "\n"):
            return remote.RemoteError(f"{h.c.name}: the connection ended while its facts were read under the lock")
        return text[: -len(self._looked_line) - 1]

    def release(self) -> None:
        if self.held:
            remote.parallel(list(self.held.values()), _give, limit=self.nodes.limit)
        self.held = {}

    def __exit__(self, *exc) -> bool:
        self.release()
        return False


def _give(h: remote.Held) -> None:
    """Release one node's hold: the record removed, the command ended."""
    try:
        h.send("release\n")
        h.read_until(RELEASED, 10)
    except Exception:  # noqa: BLE001 - the node is gone: its record shows the lock as stale
        pass
    h.close()


@contextmanager
def held_on_all(group: remote.NodeGroup, info: RunInfo, break_stale: bool = False, say=lambda s: None):
    """The lock on every node of `group`, for a task that changes nodes and needs them all
    (os-upgrade, failover-test, sync-start/stop): a node it cannot reach ends the run here, one
    line; a stale lock broken on request is said. Decide under it: read the facts after entering."""
    with Lock(group, info, break_stale) as lock:
        if lock.down:
            raise remote.RemoteError(next(iter(lock.down.values())) + " — nothing was changed on any node")
        for node, holder in lock.broken:
            say(f"{node}: broke the stale deploy lock left by {who(holder)}")
        yield lock
