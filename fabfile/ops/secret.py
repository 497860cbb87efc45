"""`inv rotate-vrrp-secret`'s core: a new random VRRP secret in the inventory's auth_pass_file, then
the keepalived phase. A changed auth_pass is advert-visible, so the deploy code applies it to every
node at once (fabfile.ops.deploy.rolling_batches): nodes never disagree long enough to flap.
The secret is never printed (the run's Masker learns the old and the new one); the one it replaced
is kept beside it (`FILE.prev`, 0600) and `previous=True` swaps the two back. On a failure the
previous secret goes back in the files, then on every node.
"""
from __future__ import annotations

import os
import secrets as _random
from pathlib import Path
from typing import Callable

from fabfile.errors import LbtkError
from fabfile.model import secrets
from fabfile.model.context import Env, load_env, rel

PREV = ".prev"


def secret_files(e: Env) -> list[Path]:
    """Every auth_pass_file the inventory's VRRP instances read (refuses what a file cannot rotate)."""
    out: list[Path] = []
    for i, vi in enumerate(e.inv.vrrp_instances):
        auth = vi.authentication
        if auth is None:
            continue
        where = f"{e.path.name}: vrrp_instances[{i}].authentication"
        if auth.auth_pass_env and os.environ.get(auth.auth_pass_env):
            raise LbtkError(f"{where}: {auth.auth_pass_env} is set in this shell and wins over auth_pass_file — "
                            "unset it, or rotate the secret where it is set; nothing was changed")
        path = secrets.secret_path(auth)
        if path is None:
            raise LbtkError(f"{where}: no auth_pass_file (the secret comes from {auth.auth_pass_env}) — set a new "
                            f"value there, then `inv keepalived --env {e.name}`; nothing was changed")
        if path not in out:
            out.append(path)
    if not out:
        raise LbtkError(f"{e.path.name}: no vrrp_instance uses authentication — nothing to rotate")
    return out


def _write(path: Path, value: str) -> None:
    tmp = path.with_name(path.name + ".lbtk-new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def swap_in(paths: list[Path], previous: bool, masker: secrets.Masker | None = None) -> dict[Path, str]:
    """Write the new secrets (random, or FILE.prev with `previous`); keep each old one in FILE.prev.
    `masker` (default: the running task's) learns both. Returns {path: old value} for undo()."""
    masker = masker or secrets.current()
    old = {}
    for p in paths:
        prev = p.with_name(p.name + PREV)
        if previous and not prev.exists():
            raise LbtkError(f"{rel(prev)} does not exist: no earlier rotation to go back to; nothing was changed")
        if not p.exists():
            raise LbtkError(f"{rel(p)} does not exist: nothing to rotate; nothing was changed")
    for p in paths:
        prev = p.with_name(p.name + PREV)
        old[p] = p.read_text().strip()
        new = prev.read_text().strip() if previous else _random.token_hex(4)  # 8 bytes: PASS's maximum
        masker.add(old[p], new)  # masked in anything printed from here on
        _write(prev, old[p])
        _write(p, new)
    return old


def undo(old: dict[Path, str]) -> None:
    for p, value in old.items():
        prev = p.with_name(p.name + PREV)
        _write(prev, p.read_text().strip())
        _write(p, value)


def rotate(name: str, previous: bool, deploy: Callable[[Env], object], settle: Callable[[Env], tuple[bool, str]],
           say=lambda s: None) -> None:
    """Swap the secret files of inventory `name`, then `deploy(env)` (the keepalived phase) and
    `settle(env)` -> (settled, one line). Another run holding the deploy lock: only the files go
    back. Any other failure: the previous secret goes back in the files and on every node, and the
    LbtkError says so (or that putting it back failed too)."""
    from fabfile.ops.lock import LockError
    e = load_env(name)
    paths = secret_files(e)
    old = swap_in(paths, previous, e.masker)
    for p in paths:
        say(f"{rel(p)}: {'previous' if previous else 'new random'} secret written (0600, not shown); "
            f"the one it replaced is in {p.name}{PREV}")
    try:
        e = load_env(name, e.masker)
        deploy(e)
        settled, line = settle(e)
        say(line)
        if not settled:
            raise LbtkError("VRRP did not settle on the new secret")
    except LockError:   # another run holds the cluster: no node was touched, only the files go back
        undo(old)
        raise
    except Exception as err:  # put the old secret back everywhere: files first, then nodes
        undo(old)
        say("rotation failed: putting the previous secret back on every node")
        try:
            deploy(load_env(name, e.masker))
        except Exception as again:  # noqa: BLE001 - report both
            raise LbtkError(f"{err}; putting the previous secret back failed too: {again} — "
                            f"run `inv deploy --env {name}`") from None
        raise LbtkError(f"{err} — the previous secret is back in {', '.join(rel(p) for p in paths)} "
                        "and on every node") from None
    say(f"VRRP secret {'rolled back' if previous else 'rotated'} on every node"
        + ("" if previous else f"; `inv rotate-vrrp-secret --env {name} --previous` undoes it"))
