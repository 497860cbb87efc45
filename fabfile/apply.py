"""Carry out one node's plan, transactionally.

Per node: upload every changed file beside its target (`PATH.lbtk-new`, same filesystem so
the final `mv` is an atomic rename), validate there (`keepalived -t -f`), keep the previous
files under /var/lib/lbtk/backup/STAMP/ (never beside them: nginx includes sites-enabled/*),
swap all files in one command, validate what needs the live tree (`nginx -t`), and only then
run the service actions. A failed validation removes the uploads, or restores the backups,
so a node ends on the old files or the new ones, never a mix.
"""
from __future__ import annotations

import posixpath
import shlex

from . import remote
from .facts import PENDING
from .plan import NodePlan
from .render import keepalived

NEW = ".lbtk-new"
BACKUP_DIR = "/var/lib/lbtk/backup"
KEEP_BACKUPS = 10   # deploys whose previous files are kept (inv rollback uses the newest)


class ApplyError(Exception):
    """The node rejected the change; it was left on its previous files."""


def apply_node(c, plan: NodePlan, stamp: str, say=lambda s: None) -> list[str]:
    done: list[str] = []
    writes = [ch for ch in plan.changes if ch.kind in ("create", "update", "mode")]
    deletes = [ch for ch in plan.changes if ch.kind == "delete"]
    q = shlex.quote
    if writes:
        dirs = sorted({posixpath.dirname(ch.file.path) for ch in writes})
        remote.run(c, "mkdir -p " + " ".join(q(d) for d in dirs))
        try:
            for ch in writes:
                remote.put(c, ch.file.content.encode(), ch.file.path + NEW, ch.file.mode)
        except BaseException:
            # disk full, link lost, Ctrl-C: live files are untouched; drop the partial uploads
            # (an `x.lbtk-new` left in sites-enabled/ would be read by nginx's include)
            _drop_uploads(c, writes)
            raise
        say(f"uploaded {len(writes)} file(s)")
        if any(ch.file.path == keepalived.CONF for ch in writes):
            _validate_keepalived(c, keepalived.CONF + NEW, writes)
            say("keepalived -t: ok")
    paths = [ch.file.path for ch in plan.changes]
    if paths:
        # the swap also records the actions still owed: a deploy cut off after the swap is
        # finished by the next one (facts read PENDING), so files and daemons never disagree
        remote.run(c, _backup_and_swap(writes, deletes, stamp, [a.command for a in plan.actions]))
        done += [f"{ch.kind} {ch.file.path}" for ch in plan.changes]
        remote.run(c, _prune(), check=False)
    # validations first (nginx -t on the swapped tree), then the service actions
    for act in sorted(plan.actions, key=lambda a: not a.validate):
        r = remote.run(c, act.command, check=False, timeout=120)
        if r.exited != 0:
            why = _worst_line(r.stderr or r.stdout)
            if act.validate:
                restore(c, paths, stamp)
                raise ApplyError(f"{plan.node}: `{act.command}` failed: {why} — previous files restored, nothing reloaded")
            raise ApplyError(f"{plan.node}: `{act.command}` exited {r.exited}: {why}")
        done.append(act.command)
        say(act.command)
    _healthy_or_restore(c, plan, paths, stamp)
    remote.run(c, f"rm -f {PENDING}", check=False)
    return done


def _healthy_or_restore(c, plan: NodePlan, paths: list[str], stamp: str) -> None:
    """After reloads: every daemon the plan touched must be running. If one is not, put the
    previous files back, start it again on them, and report keepalived's or nginx's words."""
    units = [u for u in ("keepalived", "nginx") if any(u in a.command for a in plan.actions)]
    if not units:
        return
    r = remote.run(c, "sleep 0.3; " + "; ".join(f"echo {u} $(systemctl is-active {u})" for u in units), check=False)
    down = [ln.split()[0] for ln in r.stdout.splitlines() if ln.split()[1:] != ["active"]]
    if not down:
        return
    u = down[0]
    why = _worst_line(remote.run(c, f"journalctl -u {u} -n 30 --no-pager -o cat", check=False).stdout)
    if paths:
        restore(c, paths, stamp)
        remote.run(c, f"systemctl daemon-reload; systemctl restart {u}", check=False)
    raise ApplyError(f"{plan.node}: {u} is not running after the change: {why}"
                     + (f" — previous files restored and {u} restarted on them" if paths else ""))


def _backup_and_swap(writes, deletes, stamp: str, owed: list[str]) -> str:
    q = shlex.quote
    cmds = [f"printf '%s\\n' {' '.join(q(a) for a in owed)} > {PENDING}" if owed else f"rm -f {PENDING}"]
    for ch in writes + deletes:
        p, b = q(ch.file.path), q(f"{BACKUP_DIR}/{stamp}{ch.file.path}")
        cmds.append(f"if [ -e {p} ] || [ -L {p} ]; then mkdir -p $(dirname {b}) && cp -pP {p} {b}; fi")
    cmds.append(f"echo {' '.join(q(ch.file.path) for ch in writes + deletes)} > {BACKUP_DIR}/{stamp}/.paths")
    cmds += [f"mv -f {q(ch.file.path + NEW)} {q(ch.file.path)}" for ch in writes]
    cmds += [f"rm -f {q(ch.file.path)}" for ch in deletes]
    # setsid -w: the swap finishes even if this SSH session is cut (Ctrl-C, lost link)
    script = f"umask 077; mkdir -p {BACKUP_DIR}/{stamp} && " + " && ".join(cmds)
    return f"setsid -w sh -c {q(script)} </dev/null"


def _worst_line(text: str) -> str:
    """The line that explains a failure (nginx's [emerg], keepalived's error), else the last."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    for word in ("[emerg]", "[error]", "error", "Error", "failed"):
        for ln in lines:
            if word in ln:
                return ln
    return lines[-1] if lines else "no output"


def _drop_uploads(c, writes) -> None:
    try:
        remote.run(c, "rm -f " + " ".join(shlex.quote(ch.file.path + NEW) for ch in writes), check=False)
    except Exception:  # noqa: BLE001 - the node is gone; the next deploy overwrites them
        pass


def _validate_keepalived(c, path: str, writes) -> None:
    r = remote.run(c, f"keepalived -t -f {shlex.quote(path)}", check=False)
    if r.exited != 0:
        _drop_uploads(c, writes)
        from .parsers.keepalived_t import parse_keepalived_check
        res = parse_keepalived_check(r.stdout, r.stderr, r.exited)
        raise ApplyError(f"{c.lbtk_node}: keepalived -t rejected the new keepalived.conf "
                         f"({res.verdict}): {'; '.join(res.messages) or 'exit ' + str(r.exited)}"
                         " — nothing was swapped")


def restore(c, paths: list[str], stamp: str) -> None:
    """Put back the files saved at `stamp`; files that did not exist then are removed."""
    cmds = []
    for p in paths:
        b, t = shlex.quote(f"{BACKUP_DIR}/{stamp}{p}"), shlex.quote(p)
        cmds.append(f"if [ -e {b} ] || [ -L {b} ]; then cp -pP {b} {t}.lbtk-new && mv -f {t}.lbtk-new {t}; "
                    f"else rm -f {t}; fi")
    remote.run(c, "; ".join(cmds), check=False)


def _prune() -> str:
    """Keep the newest KEEP_BACKUPS deploys' backups."""
    return (f"ls -1d {BACKUP_DIR}/*/ 2>/dev/null | sort -r | tail -n +{KEEP_BACKUPS + 1} "
            "| xargs -r rm -rf")
