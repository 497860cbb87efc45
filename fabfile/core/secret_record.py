"""Which VRRP secret the nodes run, without anyone seeing it. Pure.

Secrets live in each clone (gitignored), so a teammate's routine deploy could push an older secret
to every node and undo a rotation, and `--check` could not show it (both sides masked alike). The
nodes therefore keep /var/lib/lbtk/vrrp-secret.json (fabfile/infra/facts.py SECRET_RECORD_PATH,
0600): per instance a salted scrypt fingerprint of the live secret (fabfile.model.secrets.
fingerprint) and the run that set it. A deploy whose secret differs from the record is refused in
one line naming both fingerprints and that run, unless the operator says it is a rotation
(`--rotation`; `inv rotate-vrrp-secret` says so itself). Nodes without a record take the first
deploy's and record it. Diffs show the two fingerprints where the secret changes.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace

from fabfile.core.plan import FileChange
from fabfile.core.render import keepalived
from fabfile.errors import LbtkError
from fabfile.infra.facts import SECRET_RECORD_PATH, NodeState
from fabfile.model.secrets import fingerprint, short
from fabfile.parsers import ParseError
from fabfile.parsers.keepalived_conf import parse_conf, secret_lines
from fabfile.parsers.lbtk_state import SecretPrint, parse_secret_record


@dataclass(frozen=True)
class Setter:
    """Who writes a new fingerprint: the run's id (`inv history`), operator and time ("" unknown)."""
    run: str = ""
    operator: str = ""
    at: str = ""


def salt_for(run: str, instance: str) -> bytes:
    """A new record's salt: unique per run and instance, the same on every node of the run (one
    scrypt per run, and records that agree read alike)."""
    return hashlib.sha256(f"lbtk vrrp-secret {run} {instance}".encode()).digest()[:16]


def matches(secret: str, p: SecretPrint) -> bool:
    return fingerprint(secret, bytes.fromhex(p.salt)) == p.fingerprint


def live_record(facts: NodeState) -> dict[str, SecretPrint]:
    """The node's record ({} when it has none), from the managed files a deploy reads."""
    f = facts.files.get(SECRET_RECORD_PATH)
    if f is None:
        return {}
    try:
        return parse_secret_record(f.content.decode(errors="replace"))
    except ParseError as e:
        raise LbtkError(f"{facts.name}: {SECRET_RECORD_PATH} is unreadable ({e}) — remove it on the node, and "
                        "the next deploy records the secret it installs; nothing was changed on any node") from None


def record_text(secrets: dict[str, str], live: dict[str, SecretPrint], setter: Setter) -> str | None:
    """The record a node should hold for these secrets ({instance: secret}): an entry that still
    matches is kept as it is (its run stays the one that set the secret), any other is new."""
    if not secrets:
        return None
    out = {}
    for name, secret in sorted(secrets.items()):
        old = live.get(name)
        if old is not None and matches(secret, old):
            out[name] = old
        else:
            salt = salt_for(setter.run, name)
            out[name] = SecretPrint(fingerprint(secret, salt), salt.hex(), setter.run, setter.operator, setter.at)
    return json.dumps({n: asdict(p) for n, p in out.items()}, sort_keys=True) + "\n"


@dataclass(frozen=True)
class SecretDrift:
    """A node whose recorded secret for `instance` is not this clone's."""
    node: str
    instance: str
    live: SecretPrint
    ours: str          # this clone's fingerprint under the record's salt

    def line(self) -> str:
        by = ", ".join(x for x in (self.live.operator, self.live.at) if x)
        setter = f"set by run {self.live.run}" + (f" ({by})" if by else "") if self.live.run else "set before runs were recorded"
        return (f"{self.node}: {self.instance}'s VRRP secret in this clone (fingerprint {short(self.ours)}) is not "
                f"the one the nodes run ({short(self.live.fingerprint)}, {setter})")


def drifts(secrets: dict[str, str], states: dict[str, NodeState]) -> list[SecretDrift]:
    """Pure: every node and instance whose record names another secret than this clone's."""
    out = []
    for node, facts in states.items():
        for name, p in live_record(facts).items():
            if name in secrets and not matches(secrets[name], p):
                out.append(SecretDrift(node, name, p, fingerprint(secrets[name], bytes.fromhex(p.salt))))
    return out


def refusal(found: list[SecretDrift]) -> str:
    """The one line that refuses a deploy which would replace the nodes' secret unasked."""
    more = f" (and {len(found) - 1} more node/instance(s))" if len(found) > 1 else ""
    return (found[0].line() + more + " — take the current secret file from whoever set it, or pass --rotation "
            "if this deploy is meant to replace it; nothing was changed on any node")


def conf_secrets(conf: str) -> dict[str, str]:
    """{vrrp_instance: auth_pass} as a keepalived.conf says it ({} where it cannot be read)."""
    try:
        tree = parse_conf(conf)
    except ParseError:
        return {}
    out = {}
    for vi in tree.find("vrrp_instance"):
        auth = vi.first("authentication")
        value = auth.value("auth_pass") if auth else None
        if vi.args and value:
            out[vi.args[0]] = value
    return out


def fingerprint_note(old_conf: str, new_conf: str, live: dict[str, SecretPrint]) -> str:
    """Lines for a keepalived.conf diff where a secret changes, in place of two identical masks:
    `VRRP secret of VI_1: fingerprint OLD -> NEW`, both under one salt (the record's, when the
    node has one). "" when no secret changes."""
    if secret_lines(old_conf) == secret_lines(new_conf):
        return ""
    old, new = conf_secrets(old_conf), conf_secrets(new_conf)
    lines = []
    for name in sorted(set(old) | set(new)):
        if old.get(name) == new.get(name):
            continue
        salt = bytes.fromhex(live[name].salt) if name in live else salt_for("", name)
        show = [short(fingerprint(x, salt)) if x else "none" for x in (old.get(name), new.get(name))]
        lines.append(f"# VRRP secret of {name}: fingerprint {show[0]} (live) -> {show[1]} (this clone)\n")
    return "".join(lines)


def with_fingerprints(changes: list[FileChange], facts: NodeState) -> list[FileChange]:
    """keepalived.conf's change with fingerprint_note's lines after its (masked) diff."""
    out = []
    for ch in changes:
        live = facts.files.get(keepalived.CONF)
        if ch.file.path == keepalived.CONF and ch.file.content is not None and live is not None:
            note = fingerprint_note(live.content.decode(errors="replace"), ch.file.content, live_record(facts))
            ch = replace(ch, diff=ch.diff + note) if note else ch
        out.append(ch)
    return out
