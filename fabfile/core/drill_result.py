"""What a failover drill measured (fabfile.ops.drill), as types; pure.

`as_json()` is the one place the `--json` keys are written: tests/cluster, runbooks and scripts
read them. A stage the drill did not reach (the VIP never moved, so no failover time) is None
here and its keys are absent from the JSON, as they were when the result was a dict.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class ProbeSample(NamedTuple):
    """One HTTP probe through the VIP."""
    t: float                      # when it was sent (a remote probe's: when its line arrived)
    ok: bool                      # answered
    who: str                      # the node that answered, or the error's class
    latency_s: float | None = None   # sent -> answer or error (None: not measured, the probe on the gateway)


class HolderChange(NamedTuple):
    """A node took (holds) or lost the VIP, as the address poller saw it."""
    t: float
    node: str
    holds: bool


@dataclass(frozen=True)
class Event:
    t: float          # this machine's monotonic clock
    what: str


@dataclass(frozen=True)
class Move:
    """One VIP move against VRRP theory."""
    failover_s: float
    theory_s: float
    measured_from: str            # what the move is timed from (the priority-0 advert, the last advert, ...)
    at: float | None = None       # that moment on the drill's clock (not reported: the timeline picture's)

    def within_theory(self, tolerance_s: float = 0.5) -> bool:
        return abs(self.failover_s - self.theory_s) <= tolerance_s


@dataclass(frozen=True)
class Outage:
    """What the HTTP probe through the VIP saw over one failover."""
    outage_s: float | None        # first failed probe -> first good one after the last failure (None: never good again)
    failed_probes: int
    probes: int                   # probes sent over that stretch

    def text(self) -> str:
        if not self.failed_probes:
            return "none"
        return f"{self.outage_s:.3f} s" if self.outage_s is not None else "did not recover"


@dataclass(frozen=True)
class Comeback:
    """How the VIP came back once the failed node(s) were restored."""
    preempt_back_s: float | None  # restore -> VIP back on its owner (None: never, or nopreempt)
    nopreempt_held: bool | None = None   # nopreempt only: the VIP stayed where it was

    @property
    def ok(self) -> bool:
        return self.preempt_back_s is not None or bool(self.nopreempt_held)

    def as_json(self) -> dict:
        out: dict = {"preempt_back_s": self.preempt_back_s}
        if self.nopreempt_held is not None:
            out["nopreempt_held"] = self.nopreempt_held
        return out


@dataclass(frozen=True)
class FamilyMove:
    """One VIP of a sync group (a dual-stack service: its IPv4 and its IPv6 VIP) in a drill."""
    vip: str
    family: int
    to: str | None
    moved_s: float | None
    back_s: float | None

    def as_json(self) -> dict:
        return {"vip": self.vip, "family": self.family, "to": self.to, "moved_s": self.moved_s,
                "back_s": self.back_s}


@dataclass
class Step:
    """One step of all-but-one: the VIP holder stopped, where the VIP went."""
    step: int
    stopped: str
    to: str | None = None
    move: Move | None = None
    outage: Outage | None = None
    started: float = 0.0          # when the stop was issued (not reported: the next step's start bounds its probes)

    def as_json(self) -> dict:
        out: dict = {"step": self.step, "stopped": self.stopped, "from": self.stopped, "to": self.to}
        if self.move:
            out.update(failover_s=self.move.failover_s, theory_s=self.move.theory_s,
                       measured_from=self.move.measured_from)
        if self.outage:
            out.update(outage_s=self.outage.outage_s, failed_probes=self.outage.failed_probes,
                       probes=self.outage.probes)
        return out


@dataclass(frozen=True)
class LastDirector:
    """all-but-one: the one director left, and whether HTTP through the VIP answered from it."""
    node: str
    http_ok: bool
    answered_by: list[str]


@dataclass
class DrillResult:
    """One drill: fail the VIP holder (graceful, crash, link-down), or stop holders until one
    director is left (all-but-one: `steps`, `last`); then restore and see the VIP come back."""
    mode: str
    vip: str
    from_node: str
    to: str | None = None
    ok: bool = False
    error: str | None = None
    others: list[str] | None = None          # the other instances' VIPs, which must not move (one-VIP drills)
    move: Move | None = None
    outage: Outage | None = None
    errors: list[str] | None = None          # the probe's error kinds (one-VIP: since the fail; all-but-one: all)
    comeback: Comeback | None = None
    families: list[FamilyMove] = field(default_factory=list)
    final_holders: list[str] | None = None
    others_moved: list[str] | None = None
    steps: list[Step] = field(default_factory=list)
    last: LastDirector | None = None
    timeline: list[Event] = field(default_factory=list)
    probes: int = 0
    # what the timeline picture draws (fabfile/views/drill_timeline.py), not in the JSON: every probe,
    # and every change of who holds the VIP
    probe_log: list[ProbeSample] = field(default_factory=list)
    holder_log: list[HolderChange] = field(default_factory=list)

    @property
    def all_but_one(self) -> bool:
        return self.mode == "all-but-one"

    @property
    def zero(self) -> float:
        """The drill's clock at the first event recorded: what every time reported counts from."""
        return self.timeline[0].t if self.timeline else min((x.t for x in [*self.probe_log, *self.holder_log]),
                                                            default=0.0)

    def events(self) -> list[tuple[float, str]]:
        """The timeline as (seconds from the first event recorded, what), in time order (an advert
        seen before the fail command is negative)."""
        base = self.zero
        return [(round(e.t - base, 3), e.what) for e in sorted(self.timeline, key=lambda e: e.t)]

    def as_json(self) -> dict:
        out: dict = {"ok": self.ok, "mode": self.mode, "vip": self.vip, "from": self.from_node, "to": self.to}
        if self.all_but_one:
            out["steps"] = [s.as_json() for s in self.steps]
        else:
            out["others"] = self.others or []
        if self.error is not None:
            out["error"] = self.error
        if self.move:
            out.update(failover_s=self.move.failover_s, theory_s=self.move.theory_s,
                       measured_from=self.move.measured_from)
        if self.outage:
            out.update(outage_s=self.outage.outage_s, failed_probes=self.outage.failed_probes)
        if self.last:
            out.update(last_node=self.last.node, http_ok=self.last.http_ok, http_answered_by=self.last.answered_by)
        if self.comeback:
            out.update(self.comeback.as_json())
        if self.families:
            out["families"] = [f.as_json() for f in self.families]
        if self.final_holders is not None:
            out["final_holders"] = self.final_holders
        if self.others_moved is not None:
            out["others_moved"] = self.others_moved
        out["timeline"] = [{"t": t, "event": what} for t, what in self.events()]
        out["probes"] = self.probes
        if self.errors is not None:
            out["errors"] = self.errors
        return out
