"""`inv rotate-vrrp-secret`: a new random VRRP secret in the inventory's auth_pass_file, then the
keepalived phase. A changed auth_pass is advert-visible, so the deploy code applies it to every
node at once (fabfile.ops.deploy.rolling_batches): nodes never disagree long enough to flap.
The secret is never printed; the one it replaced is kept beside it (`FILE.prev`, 0600) and
`--previous` swaps the two back.
"""
from __future__ import annotations

import os
import secrets as _random
from pathlib import Path

from invoke import task

from fabfile import output
from fabfile.model import secrets
from fabfile.tasks.common import DEFAULT_ENV, Env, LbtkError, check_format, load_env, one_line_errors
from fabfile.tasks.common import rel as _rel
from fabfile.tasks.deploy import deploy_and_show

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


def swap_in(paths: list[Path], previous: bool) -> dict[Path, str]:
    """Write the new secrets (random, or FILE.prev with --previous); keep each old one in FILE.prev.
    Returns {path: old value} for undo()."""
    old = {}
    for p in paths:
        prev = p.with_name(p.name + PREV)
        if previous and not prev.exists():
            raise LbtkError(f"{_rel(prev)} does not exist: no earlier rotation to go back to; nothing was changed")
        if not p.exists():
            raise LbtkError(f"{_rel(p)} does not exist: nothing to rotate; nothing was changed")
    for p in paths:
        prev = p.with_name(p.name + PREV)
        old[p] = p.read_text().strip()
        new = prev.read_text().strip() if previous else _random.token_hex(4)  # 8 bytes: PASS's maximum
        secrets._known.update({old[p], new})  # masked in anything printed from here on
        _write(prev, old[p])
        _write(p, new)
    return old


def undo(old: dict[Path, str]) -> None:
    for p, value in old.items():
        prev = p.with_name(p.name + PREV)
        _write(prev, p.read_text().strip())
        _write(p, value)


@task(name="rotate-vrrp-secret",
      help={"env": "inventory name", "previous": "swap back to the secret the last rotation replaced",
            "format": "auto|rich|plain|markdown"})
@one_line_errors
def rotate_vrrp_secret(c, env=DEFAULT_ENV, previous=False, format=None):
    """New random VRRP secret in auth_pass_file, deployed to every node at once (never printed)."""
    from fabfile.ops.lock import LockError
    from fabfile.ops.settle import wait_for_vips
    check_format(format)
    paths = secret_files(load_env(env))
    old = swap_in(paths, previous)
    for p in paths:
        output.say(f"{_rel(p)}: {'previous' if previous else 'new random'} secret written (0600, not shown); "
                   f"the one it replaced is in {p.name}{PREV}")
    try:
        e = load_env(env)
        deploy_and_show(e, ["keepalived"], fmt=format)
        settled, line = wait_for_vips(e)
        output.say(line)
        if not settled:
            raise LbtkError("VRRP did not settle on the new secret")
    except LockError:   # another run holds the cluster: no node was touched, only the file goes back
        undo(old)
        raise
    except Exception as err:  # put the old secret back everywhere: file first, then nodes
        undo(old)
        output.say("rotation failed: putting the previous secret back on every node")
        try:
            deploy_and_show(load_env(env), ["keepalived"], fmt=format)
        except Exception as again:  # noqa: BLE001 - report both
            raise LbtkError(f"{err}; putting the previous secret back failed too: {again} — "
                            f"run `inv deploy --env {env}`") from None
        raise LbtkError(f"{err} — the previous secret is back in {', '.join(_rel(p) for p in paths)} "
                        "and on every node") from None
    output.say(f"VRRP secret {'rolled back' if previous else 'rotated'} on every node"
               + ("" if previous else f"; `inv rotate-vrrp-secret --env {env} --previous` undoes it"))
