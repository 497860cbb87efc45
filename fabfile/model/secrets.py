"""The VRRP secret: where it comes from, and how it is kept out of every output.

It is read from an environment variable, else from a file named in the inventory (relative
paths are relative to inventories/). It is never stored in the inventory itself. Everything
the toolkit prints goes through `mask()` first: the run's Masker (Env.masker) knows every secret
the run has seen, and nothing outlives the run.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shlex
import secrets as _random
import stat
import threading
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator

from fabfile.model.loading import InventoryError, inventory_file
from fabfile.model.fields import WORD_BREAKERS
from fabfile.model.schema import Authentication, Inventory

MASK = "********"
PASS_MAX_BYTES = 8  # keepalived silently truncates a longer auth_pass with auth_type PASS
PLACEHOLDER = "lintonly"    # what a lint run (check, render) checks with when a secret is absent


class Placeholder(str):
    """The stand-in of a VRRP secret that is absent, in a run that only lints (`inv check`,
    `inv render` to stdout): keepalived -t reads it like a secret, no deploy ever gets it (those
    load their Env without `lint`). `sources`: where the real one would come from."""
    sources: str = ""


class SecretMissing(InventoryError):
    """Neither the environment variable nor the file holds the secret."""

    def __init__(self, where: str, sources: str):
        super().__init__(f"{where}: the VRRP secret is missing — set {sources}")
        self.sources = sources


class Masker:
    """The secrets one run has seen (resolved, generated, rotated, a sudo password) and how every
    output hides them. A run holds one (Env.masker); output reaches it through masking()."""

    def __init__(self, known=()):
        self._known = {s for s in known if s}
        self._lock = threading.Lock()       # a sudo password is added from a worker thread

    def add(self, *values: str) -> None:
        with self._lock:
            self._known.update(v for v in values if v)

    def mask(self, text: str) -> str:
        """Hide every known secret, and any auth_pass value even if this run never resolved it."""
        text = _AUTH_PASS.sub(lambda m: m.group(1) + MASK, text)
        text = _AUTH_PASS_WORD.sub(lambda m: m.group(1) + MASK, text)
        with self._lock:       # every spelling of each (forms(): JSON-escaped, shell-quoted)
            known = sorted({f for k in self._known for f in forms(k)}, key=len, reverse=True)
        for s in known:
            text = re.sub(rf"(?<![\w]){re.escape(s)}(?![\w])", MASK, text)
        return text


# the Masker of the run this code runs in: set by masking() for one task (a context variable, so
# each run, and each thread the node group starts for it, sees its own)
_run: ContextVar[Masker | None] = ContextVar("lbtk_run_masker", default=None)


def current() -> Masker:
    """The running task's Masker; outside any run a new, empty one (auth_pass values still masked)."""
    return _run.get() or Masker()


@contextmanager
def masking(masker: Masker | None = None) -> Iterator[Masker]:
    """The block is a run whose output masks with `masker` (default: the enclosing run's, else a
    new one); mask() and output use it until the block ends."""
    m = masker or _run.get() or Masker()
    token = _run.set(m)
    try:
        yield m
    finally:
        _run.reset(token)


def secret_path(auth: Authentication) -> Path | None:
    return inventory_file(auth.auth_pass_file) if auth.auth_pass_file else None


def resolve(auth: Authentication, where: str, lint: bool = False) -> str:
    """The secret for one authentication block; `where` names it in errors. `lint`: a `generate`d
    secret that does not exist yet is not made (the caller stands a Placeholder in)."""
    value = os.environ.get(auth.auth_pass_env) if auth.auth_pass_env else None
    path = secret_path(auth)
    if not value and path is not None:
        if not path.exists() and auth.generate and not lint:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(_random.token_hex(4) + "\n")  # 8 ASCII bytes: PASS's maximum
        if path.exists():
            value = read_secret_file(path, f"{where}: auth_pass_file")
    if not value:
        sources = " or ".join(x for x in (
            auth.auth_pass_env and f"environment variable {auth.auth_pass_env}",
            path and f"file {path}") if x)
        raise SecretMissing(where, sources)
    bad = sorted({c for c in value if c in WORD_BREAKERS or not (c.isascii() and c.isprintable())})
    if bad:
        # keepalived ends a word at whitespace, '#' and '!': `auth_pass ab#cd` is the secret `ab`
        raise InventoryError(f"{where}: the secret holds {len(bad)} character(s) keepalived would not read as "
                             "part of one word (whitespace, '#', '!', quotes, braces or non-ASCII; not shown) — "
                             "use letters, digits and punctuation such as - _ . : @ %")
    if auth.auth_type == "PASS" and len(value.encode()) > PASS_MAX_BYTES:
        raise InventoryError(f"{where}: the secret is {len(value.encode())} bytes; "
                             f"keepalived truncates PASS secrets to {PASS_MAX_BYTES} — use at most 8 bytes")
    return value


def read_secret_file(path: Path, what: str) -> str:
    """A secret file's text, stripped. Like ssh with a private key, a file group or others may read
    or write is refused (mode and content come from one open descriptor)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as e:
        raise InventoryError(f"{what} {path}: cannot read it ({e.strerror})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise InventoryError(f"{what} {path} is not a file — name the file holding the secret")
    if st.st_mode & 0o077:
        os.close(fd)
        raise InventoryError(f"{what} {path} is open to group or others (mode {oct(st.st_mode & 0o777)[2:]}) — "
                             f"chmod 600 {path}")
    with os.fdopen(fd, "rb") as f:
        try:
            return f.read().decode("utf-8").strip()
        except UnicodeDecodeError:
            raise InventoryError(f"{what} {path} is not UTF-8 text — write the secret as plain ASCII") from None
        except OSError as e:
            raise InventoryError(f"{what} {path}: cannot read it ({e.strerror})") from None


def resolve_all(inv: Inventory, source: str, masker: Masker | None = None, lint: bool = False) -> dict[str, str]:
    """{vrrp_instance name: secret} for every instance that authenticates; `masker` learns them.
    `lint`: an absent secret is a Placeholder instead of an error, and a `generate`d one is not
    made (a secret that is there but unusable is still refused)."""
    out = {}
    for i, vi in enumerate(inv.vrrp_instances):
        if vi.authentication is not None:
            try:
                out[vi.name] = resolve(vi.authentication, f"{source}: vrrp_instances[{i}].authentication", lint)
            except SecretMissing as e:
                if not lint:
                    raise
                out[vi.name] = Placeholder(PLACEHOLDER)
                out[vi.name].sources = e.sources
    if masker is not None:
        masker.add(*(v for v in out.values() if not isinstance(v, Placeholder)))
    return out


def placeholder_note(source: str, resolved: dict[str, str]) -> str | None:
    """The one line a lint run says when it stood in for absent secrets (None: it did not)."""
    stood = {name: v.sources for name, v in resolved.items() if isinstance(v, Placeholder)}
    if not stood:
        return None
    sources = "; ".join(dict.fromkeys(stood.values()))
    return (f"note: {source}: no VRRP secret for {', '.join(stood)} ({sources}): linted with a placeholder "
            "secret, which no deploy uses")


FINGERPRINT_SHORT = 12     # hex characters a message shows of a fingerprint


@functools.lru_cache(maxsize=32)
def fingerprint(secret: str, salt: bytes) -> str:
    """A non-reversible fingerprint of a secret: scrypt (N=2^14, r=8, p=1, about 50 ms and 16 MiB
    a guess) of it with `salt`, hex. Two clones can tell whether they hold the same secret without
    either showing it. Slow on purpose, but a PASS secret has 8 bytes at most: a low-entropy one is
    guessable from its fingerprint anyway (docs/SECURITY.md). Cached: the nodes of one run share a salt."""
    return hashlib.scrypt(secret.encode(), salt=salt, n=2 ** 14, r=8, p=1, dklen=32).hex()


def short(fp: str) -> str:
    """A fingerprint as messages show it."""
    return fp[:FINGERPRINT_SHORT]


def mask(text: str) -> str:
    """`text` masked by the running task's Masker (current())."""
    return current().mask(text)


def forms(secret: str) -> set[str]:
    """Every way a secret can be spelled in what the toolkit prints: as is, inside a JSON string
    (`"` and `\\` escaped; non-ASCII as \\uXXXX, or kept with ensure_ascii=False) and
    shell-quoted (a command line in an error)."""
    return {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1], shlex.quote(secret)}


# the whole rest of the line, whatever the value holds: masking never depends on the secret
# (a config line, or a diff line of one: leading spaces, '+' or '-')
_AUTH_PASS = re.compile(r"^([ \t+\-]*auth_pass[ \t]+)(?!\*{8}[ \t]*$)[^\n]*", re.M)
# anywhere else (an error message quoting a config line): the word after it
_AUTH_PASS_WORD = re.compile(r"(?<![\w./-])(auth_pass[ \t]+)(?!\*{8})\S+")
