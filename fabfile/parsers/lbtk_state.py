"""The toolkit's own records on each node, under /var/lib/lbtk/ (formats documented here, beside
their parsers; fabfile/core/runtime.py, fabfile/ops/lock.py and fabfile/core/history.py write them):

- runtime.json: runtime overrides every deploy keeps until they are undone (drained real servers,
  isolated nodes), one JSON object `{"serial": N, "drained": [address, ...], "by": "user@host",
  "at": ISO time}`, with `"isolated": [node, ...]` while a node is out of VRRP (`inv isolate`).
  The highest serial seen on any node is the cluster's current record.
- lock: who holds the deploy lock, one JSON object `{"run", "operator", "pid", "cwd", "task",
  "since"}`; the lock command answers `LOCK HELD`, `LOCK BUSY` or `LOCK STALE` on its first line,
  followed by the holder's record for the last two.
- vrrp-secret.json: per VRRP instance, a fingerprint of the secret its keepalived.conf carries and
  the run that set it, `{"VI_1": {"fingerprint": HEX, "salt": HEX, "run", "operator", "at"}}`
  (fabfile/core/secret_record.py writes it; never the secret).
- history: one JSON object per line and change (`{"id", "at", "operator", "commit", "dirty",
  "task", "env", "files", "actions", "result"}`), oldest first.
"""
from __future__ import annotations

from dataclasses import dataclass

from fabfile.parsers import ParseError, excerpt, load_json


@dataclass(frozen=True)
class RuntimeRecord:
    serial: int = 0
    drained: tuple[str, ...] = ()
    by: str = ""
    at: str = ""
    isolated: tuple[str, ...] = ()     # nodes taken out of VRRP (`inv isolate`): keepalived kept stopped


@dataclass(frozen=True)
class LockHolder:
    run: str
    operator: str
    pid: int
    cwd: str
    task: str
    since: str

    @property
    def who(self) -> str:
        """The holder in words, as every message naming it says it."""
        return f"{self.operator} (`{self.task}`, pid {self.pid}" + (f" in {self.cwd}" if self.cwd else "") + \
            f") since {self.since}"


@dataclass(frozen=True)
class SecretPrint:
    """One instance's entry in vrrp-secret.json: the live secret's fingerprint and who set it."""
    fingerprint: str             # hex (fabfile.model.secrets.fingerprint)
    salt: str                    # hex
    run: str                     # the run's id (`inv history`); "" when recorded without one
    operator: str
    at: str


@dataclass(frozen=True)
class HistoryEntry:
    id: str                      # the deploy's stamp: its backup set is /var/lib/lbtk/backup/ID
    at: str
    operator: str
    commit: str
    dirty: bool
    task: str
    env: str
    files: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    result: str = "ok"


def _object(text: str, what: str) -> dict:
    data = load_json(text, what)
    if not isinstance(data, dict):
        raise ParseError(f"{what}: not a JSON object: {excerpt(text)}")
    return data


def _str(data: dict, key: str, what: str, default: str | None = None) -> str:
    v = data.get(key, default)
    if not isinstance(v, str):
        raise ParseError(f"{what}: {key!r} is not a string")
    return v


def _int(data: dict, key: str, what: str) -> int:
    v = data.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise ParseError(f"{what}: {key!r} is not a count")
    return v


def _strings(data: dict, key: str, what: str) -> tuple[str, ...]:
    v = data.get(key, [])
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ParseError(f"{what}: {key!r} is not a list of strings")
    return tuple(v)


def parse_runtime(text: str) -> RuntimeRecord | None:
    """runtime.json's content; None when the node has none (never drained anything)."""
    if not text.strip():
        return None
    d = _object(text.strip(), "runtime.json")
    return RuntimeRecord(_int(d, "serial", "runtime.json"), _strings(d, "drained", "runtime.json"),
                         _str(d, "by", "runtime.json", ""), _str(d, "at", "runtime.json", ""),
                         _strings(d, "isolated", "runtime.json"))


def parse_holder(text: str) -> LockHolder:
    d = _object(text.strip(), "lock")
    w = "lock"
    return LockHolder(_str(d, "run", w), _str(d, "operator", w), _int(d, "pid", w), _str(d, "cwd", w, ""),
                      _str(d, "task", w, ""), _str(d, "since", w))


LOCK_WORDS = ("HELD", "BUSY", "STALE", "BROKEN")


def parse_lock_answer(text: str) -> tuple[str, LockHolder | None]:
    """The lock command's answer: ("HELD", None), or ("BUSY"|"STALE", the holder's record), or
    ("BROKEN", the dead run's record whose stale lock was just broken; `LOCK HELD` follows it).
    The record is None when unreadable — a lock file cut short still counts as a lock."""
    first, _, rest = text.lstrip("\n").partition("\n")
    word = first.strip().removeprefix("LOCK ").strip()
    if not first.startswith("LOCK ") or word not in LOCK_WORDS:
        raise ParseError(f"lock: unexpected answer {excerpt(first)}")
    if word == "HELD":
        return word, None
    if word == "BROKEN":
        body, sep, _ = rest.rpartition("LOCK HELD")
        if not sep:
            raise ParseError("lock: broken but not held")
        rest = body
    try:
        return word, parse_holder(rest)
    except ParseError:
        return word, None


def parse_holder_file(text: str) -> LockHolder | None:
    """The lock file as a fact reads it: None when there is none (or it is unreadable)."""
    if not text.strip():
        return None
    try:
        return parse_holder(text)
    except ParseError:
        return None


def parse_history(text: str) -> list[HistoryEntry]:
    """history's lines, oldest first. A line cut short (a run killed mid-write) is skipped: the
    history is a record for people, never an input to a change."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            d = _object(line, "history")
            w = "history"
            out.append(HistoryEntry(_str(d, "id", w), _str(d, "at", w), _str(d, "operator", w),
                                    _str(d, "commit", w, ""), bool(d.get("dirty", False)), _str(d, "task", w, ""),
                                    _str(d, "env", w, ""), _strings(d, "files", w), _strings(d, "actions", w),
                                    _str(d, "result", w, "ok")))
        except ParseError:
            continue
    return out


def _hex(data: dict, key: str, what: str) -> str:
    v = _str(data, key, what)
    if not v or len(v) > 128 or any(c not in "0123456789abcdef" for c in v):
        raise ParseError(f"{what}: {key!r} is not lowercase hex")
    return v


def parse_secret_record(text: str) -> dict[str, SecretPrint]:
    """vrrp-secret.json's content: {instance: SecretPrint}; {} when the node has none."""
    if not text.strip():
        return {}
    w = "vrrp-secret.json"
    out = {}
    for name, entry in _object(text.strip(), w).items():
        if not isinstance(entry, dict):
            raise ParseError(f"{w}: {excerpt(name)} is not a JSON object")
        out[name] = SecretPrint(_hex(entry, "fingerprint", w), _hex(entry, "salt", w), _str(entry, "run", w, ""),
                                _str(entry, "operator", w, ""), _str(entry, "at", w, ""))
    return out
