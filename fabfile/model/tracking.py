"""What a vrrp_instance tracks: interfaces, vrrp_scripts, processes and files, each optionally
with a weight that moves the instance's priority instead of putting it in FAULT.

An instance's entry is written as keepalived writes it (`eth1 weight -20`, `chk weight 5`) or as
a mapping (`{name: eth1, weight: -20}`); both become the same model. The sections they name
(vrrp_track_processes, track_files) are keepalived's `vrrp_track_process NAME` and
`track_file NAME` blocks. Weight ranges are keepalived 2.2.7's own (vrrp_track.c, track_file.c):
outside them it clamps or ignores the weight with a warning, never an error.
"""
from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from fabfile.model.fields import FieldProblem, Strict, check_ifname, keepalived_word

COMM_LEN = 15           # Linux: a process name (/proc/PID/comm, status's Name:) is at most 15 bytes
ENTRY = "NAME [weight N]"
# a process argument keepalived reads as one item, in double quotes when it holds a space:
# keepalived cuts comments ('#', '!') before it reads quotes, and takes '{' '}' as words
ARG_BREAKERS = set('"#!{}\\\'')


def also_written(*forms: dict):
    """A model's JSON Schema that also admits keepalived's own writing of it (editors then accept
    `eth1 weight -20` as the loader does)."""
    def extra(schema: dict) -> None:
        obj = dict(schema)
        schema.clear()
        schema["anyOf"] = [*forms, obj]
    return extra


def parse_entry(v, what: str):
    """`chk`, `chk weight 5` (keepalived's words) or {name: chk, weight: 5} -> the mapping."""
    if not isinstance(v, str):
        return v
    words = v.split()
    if len(words) == 1:
        return {"name": words[0]}
    if len(words) == 3 and words[1] == "weight" and re.fullmatch(r"[-+]?[0-9]+", words[2]):
        return {"name": words[0], "weight": int(words[2])}
    if len(words) >= 2 and words[1] == "weight":
        raise ValueError(f"{what}: weight needs a whole number (keepalived reads `{ENTRY}`)")
    raise ValueError(f"{what}: keepalived reads `{ENTRY}` here; a name holding a space would be split")


class _Tracked(Strict):
    """One entry of an instance's track_* list. `weight` unset: the tracked object's own (a
    vrrp_script's, a process's or a file's), for an interface 0 (FAULT while it is down)."""
    WHAT: ClassVar[str] = "track entry"
    model_config = ConfigDict(json_schema_extra=also_written({"type": "string", "description": ENTRY}))
    name: str = Field(description="What is tracked.")
    weight: int | None = Field(None, description="Priority change; unset: the tracked object's own weight.")

    @model_validator(mode="before")
    @classmethod
    def _keepalived_words(cls, v):
        return parse_entry(v, cls.WHAT)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return keepalived_word(v, cls.WHAT)

    def rendered(self) -> str:
        return self.name if self.weight is None else f"{self.name} weight {self.weight}"


class TrackInterface(_Tracked):
    """An interface the instance watches besides its own: down, the instance goes to FAULT (weight
    0 or unset) or its priority moves by the weight."""
    WHAT: ClassVar[str] = "track_interface"
    name: str = Field(description="The interface's name (`ip link`).")
    weight: int | None = Field(None, ge=-253, le=253, description="Added to the priority while the link is up "
                               "(> 0) or subtracted while it is down (< 0); unset or 0: FAULT while it is down.")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_ifname(v)


class TrackScript(_Tracked):
    """A vrrp_script the instance follows."""
    WHAT: ClassVar[str] = "track_script"
    name: str = Field(description="A vrrp_scripts name.")
    weight: int | None = Field(None, ge=-253, le=253, description="Replaces the script's own weight for this "
                               "instance; unset: vrrp_scripts[NAME].weight.")


class TrackProcess(_Tracked):
    """A vrrp_track_process the instance follows."""
    WHAT: ClassVar[str] = "track_process"
    name: str = Field(description="A vrrp_track_processes name.")
    weight: int | None = Field(None, ge=-254, le=254, description="Replaces the process's own weight for this "
                               "instance; unset: vrrp_track_processes[NAME].weight.")


class TrackFile(_Tracked):
    """A track_file the instance follows."""
    WHAT: ClassVar[str] = "track_file"
    name: str = Field(description="A track_files name.")
    weight: int | None = Field(None, ge=-254, le=254, description="Replaces the file's own weight for this "
                               "instance; unset: track_files[NAME].weight.")


def process_arg(v: str) -> str:
    bad = sorted({c for c in v if c in ARG_BREAKERS or not (c.isascii() and c.isprintable())})
    if not v:
        raise ValueError("an empty process argument")
    if bad:
        raise ValueError(f"process argument {v!r} contains {' '.join(repr(c) for c in bad)}: keepalived "
                         "would cut or split it")
    return v


class VrrpTrackProcess(Strict):
    """keepalived's vrrp_track_process: whether enough processes of a name run (kernel process
    events, no polling)."""
    process: list[str] = Field(min_length=1, description="The process: its name (/proc/PID/comm, at most 15 "
                               "characters), or with full_command or arguments its command line; a string is "
                               "split at spaces, a list keeps an argument holding spaces whole.")
    param_match: Literal["exact", "initial", "partial"] | None = Field(None, description="How the arguments "
                                                                       "match: exact, initial (the last may be "
                                                                       "longer) or partial (the first ones); "
                                                                       "unset: exact when arguments are given.")
    weight: int = Field(0, ge=-254, le=254, description="Added to a tracking instance's priority while the quorum "
                        "runs (> 0), or subtracted while it does not (< 0); 0: FAULT while it does not.")
    quorum: int | None = Field(None, ge=1, le=65535, description="Processes needed for success; unset: "
                               "keepalived's 1.")
    quorum_max: int | None = Field(None, ge=0, le=65535, description="Most processes allowed for success (0: "
                                   "success while none runs); unset: no limit.")
    fork_delay: float | None = Field(None, gt=0, le=3600, description="Seconds a new quorum must last before it "
                                     "counts (a fork/exec bounce).")
    terminate_delay: float | None = Field(None, gt=0, le=3600, description="Seconds a lost quorum must last before "
                                          "it counts (a restart).")
    delay: float | None = Field(None, gt=0, le=3600, description="Sets fork_delay and terminate_delay both.")
    full_command: bool = Field(False, description="Match the full command line (/proc/PID/cmdline, like pgrep -f) "
                               "instead of the process name; implied by arguments or param_match.")

    @field_validator("process", mode="before")
    @classmethod
    def _split(cls, v):
        return v.split() if isinstance(v, str) else v

    @field_validator("process")
    @classmethod
    def _args(cls, v: list[str]) -> list[str]:
        return [process_arg(a) for a in v]

    @model_validator(mode="after")
    def _rules(self):
        by_name = len(self.process) == 1 and not self.full_command and self.param_match is None
        if by_name and "/" in self.process[0]:
            raise FieldProblem(("process",), f"{self.process[0]!r} is a path, matched against the process name "
                               "(/proc/PID/comm has no '/'): it would never match",
                               f"write the name ({self.process[0].rsplit('/', 1)[-1]}), or set full_command: true")
        if by_name and len(self.process[0].encode()) > COMM_LEN:
            raise FieldProblem(("process",), f"{self.process[0]!r} is longer than a process name ({COMM_LEN} "
                               "characters, /proc/PID/comm): it would never match",
                               f"write its first {COMM_LEN} characters, or set full_command: true")
        if self.quorum is not None and self.quorum_max is not None and self.quorum > self.quorum_max:
            raise FieldProblem(("quorum",), f"quorum {self.quorum} is above quorum_max {self.quorum_max} "
                               "(keepalived ignores it)", "make quorum at most quorum_max")
        if self.delay is not None and (self.fork_delay is not None or self.terminate_delay is not None):
            raise FieldProblem(("delay",), "delay sets fork_delay and terminate_delay: one of them is set too",
                               "keep delay, or the two delays")
        return self

    def rendered_process(self) -> str:
        return " ".join(f'"{a}"' if any(c.isspace() for c in a) else a for a in self.process)


class InitFile(Strict):
    """keepalived's init_file: write VALUE into the file at start-up when it is missing (always, with
    overwrite)."""
    model_config = ConfigDict(json_schema_extra=also_written({"type": "boolean", "const": True}, {"type": "integer"},
                                                             {"type": "string", "description": "[VALUE] [overwrite]"}))
    value: int = Field(0, ge=-254, le=254, description="The number written (keepalived warns outside -254..254).")
    overwrite: bool = Field(False, description="Write it even when the file exists (not on a reload).")

    @model_validator(mode="before")
    @classmethod
    def _keepalived_words(cls, v):
        """`init_file: true`, `init_file: 5`, `init_file: "5 overwrite"` or the mapping."""
        if v is True:
            return {}
        if isinstance(v, int) and not isinstance(v, bool):
            return {"value": v}
        if isinstance(v, str):
            out: dict = {}
            for w in v.split():
                if w == "overwrite":
                    out["overwrite"] = True
                elif re.fullmatch(r"-?[0-9]+", w):
                    out["value"] = int(w)
                else:
                    raise ValueError(f"init_file {v!r}: keepalived reads `[VALUE] [overwrite]`")
            return out
        return v

    def rendered(self) -> str:
        return " ".join(["init_file", *([str(self.value)] if self.value else []),
                         *(["overwrite"] if self.overwrite else [])])


class TrackFileDef(Strict):
    """keepalived's track_file (vrrp_track_file is its old name): a file holding a number, read
    whenever it changes; the number times the weight moves a tracking instance's priority."""
    file: str = Field(description="The file's absolute path on the nodes; its directory must exist (keepalived "
                      "2.3.3 ignores the track_file otherwise).")
    weight: int = Field(1, ge=-254, le=254, description="The file's number is multiplied by it; 0: a non-zero "
                        "number means FAULT.")
    init_file: InitFile | None = Field(None, description="Create the file at start-up (`true`, `VALUE`, "
                                       "`VALUE overwrite` or {value, overwrite}); unset: the file is yours.")

    @field_validator("file")
    @classmethod
    def _path(cls, v: str) -> str:
        keepalived_word(v, "file")
        if not v.startswith("/") or v.endswith("/") or any(p in (".", "..") for p in v.split("/")[1:]):
            raise ValueError(f"{v!r} is not an absolute path to a file")
        return v


# an instance's track list -> (the inventory section its names live in, what keepalived calls one)
SECTIONS = {"track_script": ("vrrp_scripts", "vrrp_script"),
            "track_process": ("vrrp_track_processes", "vrrp_track_process"),
            "track_file": ("track_files", "track_file")}
TRACK_LISTS = ("track_interface", *SECTIONS)


def section_names(inv, field: str) -> dict:
    return getattr(inv, SECTIONS[field][0])


def own_weight(inv, field: str, entry) -> int:
    """An entry's weight as keepalived applies it: its own, else the tracked object's (an
    interface's default is 0)."""
    if entry.weight is not None or field == "track_interface":
        return entry.weight or 0
    return section_names(inv, field)[entry.name].weight


def tracking_problems(inv):
    """The names an instance tracks exist (keepalived 2.2.7 hangs in `keepalived -t` on an unknown
    track_process, 2.3.3 crashes), once each; weights keepalived would ignore (a sync group's member
    follows its group, not weights) are refused."""
    for field in ("vrrp_track_processes", "track_files"):
        for name in getattr(inv, field):
            try:
                keepalived_word(name, f"{field} name")
            except ValueError as e:
                yield FieldProblem((field, name), str(e), "use letters, digits, '_', '-' and '.' in the name")
    grouped = {m for g in inv.vrrp_sync_groups for m in g.group}
    for i, vi in enumerate(inv.vrrp_instances):
        for field in TRACK_LISTS:
            seen: dict[str, int] = {}
            for j, entry in enumerate(getattr(vi, field)):
                loc = ("vrrp_instances", i, field, j)
                if field in SECTIONS and entry.name not in section_names(inv, field):
                    section, keyword = SECTIONS[field]
                    yield FieldProblem(loc, f"unknown {keyword} {entry.name!r}",
                                       f"define it under {section} (known: "
                                       f"{sorted(section_names(inv, field)) or 'none'})")
                    continue
                if entry.name in seen:
                    yield FieldProblem(loc, f"{entry.name} is listed twice (also {field}[{seen[entry.name]}]; "
                                       "keepalived ignores the second)", "list it once")
                    continue
                seen[entry.name] = j
                if vi.name in grouped and own_weight(inv, field, entry):
                    yield FieldProblem(loc, f"{vi.name} is in a vrrp_sync_group: keepalived ignores the weight "
                                       f"{own_weight(inv, field, entry)} of {entry.name} (a group changes state "
                                       "as one)", "give it weight 0 (FAULT takes the whole group over), or take "
                                       "the instance out of the group")
