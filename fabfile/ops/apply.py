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

import time
from dataclasses import dataclass, field

from fabfile.infra import facts, remote
from fabfile.core import history
from fabfile.core.actions import Action
from fabfile.core.actions import script as actions_script
from fabfile.infra.facts import BACKUP_DIR, PENDING, records_private
from fabfile.infra.observe import observe_node
from fabfile.parsers import ParseError
from fabfile.parsers.journal import worst_line
from fabfile.parsers.lbtk import FINISHED, HEALTH, finished, health_section, parse_action_run
from fabfile.parsers.systemctl import parse_is_active
from fabfile.parsers.keepalived_t import HELD, held_back, parse_keepalived_check
from fabfile.parsers.nginx_t import DefaultListen, DuplicateDefault, endpoint, parse_duplicate_default
from fabfile.core.plan import FileChange, NodePlan
from fabfile.core.render import keepalived, nginx, scripts
from fabfile.infra.runinfo import RunInfo

NEW = ".lbtk-new"
KEEP_BACKUPS = 10   # deploys whose previous files are kept (inv rollback uses the newest)


class ApplyError(Exception):
    """The node rejected the change; it was left on its previous files."""


@dataclass
class Applied:
    """What one node took: the file changes swapped in and the actions that ran."""
    files: list[FileChange] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.files or self.actions)

    def touches(self, unit: str) -> bool:
        return any(a.touches(unit) for a in self.actions)


def apply_node(c, plan: NodePlan, stamp: str, say=lambda s: None, info: RunInfo | None = None) -> Applied:
    """`info`: the run to record in the node's history (fabfile/core/history.py) once the change is in."""
    done = Applied()
    writes = [ch for ch in plan.changes if ch.kind in ("create", "update", "mode")]
    deletes = [ch for ch in plan.changes if ch.kind == "delete"]
    ships_scripts = any(scripts.is_shipped(ch.file) for ch in plan.changes)
    q = shlex.quote
    if writes:
        # a file that is there already has its directory: only new files may need one (a drain or a
        # weight change updates files in place and saves this round trip)
        dirs = sorted({posixpath.dirname(ch.file.path) for ch in writes if ch.kind == "create"})
        if dirs:
            remote.run(c, "mkdir -p " + " ".join(q(d) for d in dirs))
        try:
            remote.put_many(c, [(ch.file.content.encode(), ch.file.path + NEW, ch.file.mode) for ch in writes])
        except BaseException:
            # disk full, link lost, Ctrl-C: live files are untouched; drop the partial uploads
            # (an `x.lbtk-new` left in sites-enabled/ would be read by nginx's include)
            _drop_uploads(c, writes)
            raise
        say(f"uploaded {len(writes)} file(s)")
    paths = [ch.file.path for ch in plan.changes]
    if paths:
        # the swap also records the actions still owed: a deploy cut off after the swap is
        # finished by the next one (facts read PENDING), so files and daemons never disagree
        check_staged = any(ch.file.path == keepalived.CONF for ch in writes) and not ships_scripts
        _check_and_swap(c, writes, deletes, stamp, plan.actions, check_staged)
        if check_staged:
            say("keepalived -t: ok")
        done.files += plan.changes
    if ships_scripts:
        # keepalived -t checks each script at its path (there, executable, a secure path): the staged
        # keepalived.conf would name scripts not swapped in yet, so with shipped scripts in the change
        # it checks the swapped tree instead — before any reload (keepalived reads neither until then;
        # a running one runs a changed script's new text at its next interval, as it would after the
        # reload). Refused: the previous files go back.
        r = remote.run(c, f"keepalived -t -f {keepalived.CONF}", check=False)
        refusal = keepalived_check_refusal(r.stdout, r.stderr, r.exited)
        if refusal is not None:
            restore(c, paths, stamp)
            raise ApplyError(f"{c.name}: {refusal} — previous files restored, nothing reloaded")
        say("keepalived -t: ok")
    # validations first, one by one (nginx -t on the swapped tree: a failure restores the files)
    for act in [a for a in plan.actions if a.validates]:
        r = remote.run(c, act.shell(), check=False, timeout=120)
        if r.exited != 0:
            conflict = _nginx_conflict(c, plan.node, r.stderr) if act.verb == "nginx-test" else None
            restore(c, paths, stamp)
            raise ApplyError(conflict or f"{plan.node}: `{act.shell()}` failed: {worst_line(r.stderr or r.stdout)} — "
                             "previous files restored, nothing reloaded")
        done.actions.append(act)
        say(act.short())
    # then every service action in one round trip, stopping at the first that fails; the health
    # check's look at the daemons rides in the same round trip, after health_wait
    rest = [a for a in plan.actions if not a.validates]
    units = _health_units(plan)
    active = None
    record = history.append_command(info.entry(paths, [a.short() for a in done.actions + rest])) if info else None
    finish = _finish_command(record)
    recorded = False
    if rest:
        # when every action ran and every daemon it touched is up, the node also finishes the
        # change itself (the owed actions cleared, the history line written): no round trip more
        r = remote.run(c, actions_script(rest) + _health_script(units, finish, health_wait(plan)), check=False,
                       timeout=120 + 30 * len(rest))
        try:
            ran, failed = parse_action_run(r.stdout, len(rest))
        except ParseError as e:
            raise ApplyError(f"{plan.node}: the service actions did not all report ({e}); "
                             f"exit {r.exited}: {worst_line(r.stderr)}") from None
        for i in ran:
            done.actions.append(rest[i])
            say(rest[i].short())
        if failed is not None:
            i, rc, detail = failed
            raise ApplyError(f"{plan.node}: `{rest[i].shell()}` exited {rc}: {worst_line(detail)}")
        if units:
            active = _services_seen(c, units, r.stdout)
        recorded = finished(r.stdout)
    _healthy_or_restore(c, plan, paths, stamp, active)
    if not recorded:
        remote.run(c, finish, check=False)
    return done


def _finish_command(record: str | None) -> str:
    """Shell that ends a node's change: nothing owed any more, and its history line (if any)."""
    return f"rm -f {PENDING}" + (f"; {record}" if record else "")


def _nginx_conflict(c, node: str, stderr: str) -> str | None:
    """nginx -t refused a second default server: the one line that names the other file and the
    inventory key, read while the refused tree is still in place (None: refused for another reason)."""
    dup = parse_duplicate_default(stderr)
    if dup is None:
        return None
    try:
        listens = observe_node(c, [facts.NGINX_DEFAULTS]).nginx_defaults
    except Exception:  # noqa: BLE001 - the hint is a courtesy: the refusal itself is still reported
        listens = []
    return default_server_conflict(node, dup, listens)


def default_server_conflict(node: str, dup: DuplicateDefault, listens: list[DefaultListen]) -> str:
    """Pure: which file besides lbtk.conf claims the default server nginx -t refused, and what to do.
    nginx names the SECOND claim in include order: lbtk.conf when the other file sorts before it
    (Debian's `default`), else the other file itself."""
    want = endpoint(dup.listen)
    if dup.file != nginx.SITE:
        other, line = dup.file, dup.line
    else:
        hit = next((x for x in listens if x.file != nginx.SITE and x.endpoint == want), None)
        other, line = (hit.file, hit.line) if hit else (None, None)
    head = f"{node}: nginx -t refused {nginx.SITE}: "
    tail = " — previous files restored, nothing reloaded"
    if other is None:
        return (head + f"another file nginx reads also claims default_server on {dup.listen}{tail}; find it with "
                f"`grep -rn default_server /etc/nginx/` and name it in nginx.remove_sites (files in {nginx.SITES}/) "
                "or drop default_server from it")
    what = f"{other} (line {line}) also claims default_server on {dup.listen}{tail}; "
    if posixpath.dirname(other) == nginx.SITES:
        return (head + what + f"to have the toolkit remove it, set nginx.remove_sites: [{posixpath.basename(other)}] "
                "in the inventory, or drop default_server from it")
    return head + what + f"drop default_server from it (nginx.remove_sites removes only files in {nginx.SITES}/)"


HEALTH_WAIT = 0.3   # seconds after a start or restart before the daemons are looked at: one that dies
                    # on its new files has exited by then
# ... and after reloads alone: a reload keeps the daemon's process, and finishes in milliseconds
# (keepalived logs "Reload complete" 1 ms after systemd's "Reloading", systemd "Reloaded" 2 ms
# later, on the lab; nginx's master re-reads its files and stays, whatever they hold), so what could
# end it has shown by then. A drain waits this three times in a row (canary, backups, holder).
RELOAD_WAIT = 0.1


def health_wait(plan: NodePlan) -> float:
    """How long after its service actions a node's daemons are looked at (HEALTH_WAIT, RELOAD_WAIT)."""
    units = _health_units(plan)
    verbs = {a.verb for a in plan.actions if any(a.touches(u) for u in units)}
    return RELOAD_WAIT if verbs <= {"reload"} else HEALTH_WAIT


def _health_units(plan: NodePlan) -> list[str]:
    """The daemons the plan (re)starts or reloads: apply's health check looks at these."""
    return [u for u in ("keepalived", "nginx", "rsyslog") if any(a.touches(u) for a in plan.actions)]


def _health_script(units: list[str], finish: str, wait: float = HEALTH_WAIT) -> str:
    """Appended to the service actions' script (which ends before this when an action fails), so
    neither the health check nor the end of the change costs a round trip of its own. With daemons
    to look at: wait `wait` seconds (health_wait), then ONE `systemctl is-active` of them, printed after HEALTH for
    the health check to judge; the node finishes the change (and says FINISHED) only when every
    word it printed is `active`, one per unit: its exit status says only that ANY unit is active
    (tests/fixtures/systemctl/is_active.rc). The node's decision and the check's are one answer."""
    if not units:
        return f"{{ {finish}; }} >/dev/null 2>&1 && echo {FINISHED}\n"
    q = " ".join(shlex.quote(u) for u in units)
    return (f"sleep {wait:g}\n"
            f"__a=$(systemctl is-active {q} 2>/dev/null); echo {HEALTH}; printf '%s\\n' \"$__a\"\n"
            "__n=0; __up=1; for __w in $__a; do __n=$((__n + 1)); [ \"$__w\" = active ] || __up=; done\n"
            f"if [ -n \"$__up\" ] && [ $__n -eq {len(units)} ]; then {{ {finish}; }} >/dev/null 2>&1 && echo {FINISHED}; fi\n")


def _services_seen(c, units: list[str], stdout: str) -> dict[str, str]:
    """{unit: is-active word} from the actions' round trip (_health_script); unreadable is the node's error."""
    try:
        return parse_is_active(units, health_section(stdout))
    except ParseError as e:
        raise remote.RemoteError(f"{c.name}: {e}") from None


def _healthy_or_restore(c, plan: NodePlan, paths: list[str], stamp: str, active: dict[str, str] | None = None) -> None:
    """After reloads: every daemon the plan touched must be running. If one is not, put the
    previous files back, start it again on them, and report keepalived's or nginx's words.
    `active`: the units' states as the actions' round trip saw them (None: look now)."""
    units = _health_units(plan)
    if not units:
        return
    if active is None:
        time.sleep(health_wait(plan))
        active = observe_node(c, [facts.SERVICES]).active
    down = [u for u in units if active.get(u) != "active"]
    if not down:
        return
    u = down[0]
    why = worst_line(remote.run(c, f"journalctl -u {u} -n 30 --no-pager -o cat", check=False).stdout)
    if paths:
        restore(c, paths, stamp)
        remote.run(c, f"systemctl daemon-reload; systemctl restart {u}", check=False)
    raise ApplyError(f"{plan.node}: {u} is not running after the change: {why}"
                     + (f" — previous files restored and {u} restarted on them" if paths else ""))


def _backup_and_swap(writes, deletes, stamp: str, owed: list[Action]) -> str:
    q = shlex.quote
    # PENDING afresh (rm first): a new file under umask 077 is 0600, where `>` keeps an old one's mode
    cmds = [f"rm -f {PENDING}"] + ([f"printf '%s\\n' {' '.join(q(a.record()) for a in owed)} > {PENDING}"]
                                   if owed else [])
    # every backup directory made by ONE mkdir, their names worked out here (was a dirname and a
    # mkdir per file on the node); then a cp of each file that is there now
    bdirs = sorted({posixpath.dirname(f"{BACKUP_DIR}/{stamp}{ch.file.path}") for ch in writes + deletes})
    if bdirs:
        cmds.append("mkdir -p " + " ".join(q(d) for d in bdirs))
    for ch in writes + deletes:
        p, b = q(ch.file.path), q(f"{BACKUP_DIR}/{stamp}{ch.file.path}")
        cmds.append(f"{{ {{ [ ! -e {p} ] && [ ! -L {p} ]; }} || cp -pP {p} {b}; }}")
    cmds.append(f"echo {' '.join(q(ch.file.path) for ch in writes + deletes)} > {BACKUP_DIR}/{stamp}/.paths")
    cmds += [f"mv -f {q(ch.file.path + NEW)} {q(ch.file.path)}" for ch in writes]
    cmds += [f"rm -f {q(ch.file.path)}" for ch in deletes]
    # setsid -w: the swap finishes even if this SSH session is cut (Ctrl-C, lost link)
    script = f"umask 077; mkdir -p {BACKUP_DIR}/{stamp} && {records_private(BACKUP_DIR)} && " + " && ".join(cmds)
    return f"setsid -w sh -c {q(script)} </dev/null"


def _drop_uploads(c, writes) -> None:
    try:
        remote.run(c, "rm -f " + " ".join(shlex.quote(ch.file.path + NEW) for ch in writes), check=False)
    except Exception:  # noqa: BLE001 - the node is gone; the next deploy overwrites them
        pass


def _check_and_swap(c, writes, deletes, stamp: str, owed: list[Action], check_staged: bool) -> None:
    """ONE round trip: with check_staged, the node's own keepalived (2.2.7 on Debian 12, 2.3.3 on 13)
    checks the staged keepalived.conf first, and the node goes on to back up and swap only when the
    check is clean (exit 0, not a word); else it prints what keepalived said and swaps nothing. Any
    message refuses the file, warnings too: keepalived says 0 with a message for a missing include,
    and a config it would run with only in part is not the inventory's. The pruning of old backup
    sets rides in the same round trip (its own failure is ignored)."""
    swap = _backup_and_swap(writes, deletes, stamp, owed) + f" && {{ {_prune()}; true; }}"
    if not check_staged:
        remote.run(c, swap)
        return
    r = remote.run(c, check_then(keepalived.CONF + NEW, swap))
    try:
        held = held_back(r.stdout)
    except ParseError as e:
        raise ApplyError(f"{c.name}: {e} — state of the swap unknown; run inv diff") from None
    if held is None:
        return
    res = keepalived_check_refusal("", held[1], held[0])
    if res is None:               # only blank lines: clean by the parser's rules, so swap after all
        remote.run(c, swap)
        return
    _drop_uploads(c, writes)
    raise ApplyError(f"{c.name}: {res} — nothing was swapped")


def check_then(staged: str, then: str) -> str:
    """Shell: `keepalived -t` of the staged file, then `then` only when it said nothing and exited 0;
    else HELD, its exit code and what it printed (stdout and stderr as one), and nothing more."""
    return (f"__k=$(keepalived -t -f {shlex.quote(staged)} 2>&1); __kr=$?\n"
            f"if [ $__kr -ne 0 ] || [ -n \"$__k\" ]; then echo {HELD} $__kr; printf '%s\\n' \"$__k\"; exit 0; fi\n"
            + then)


def keepalived_check_refusal(stdout: str, stderr: str, exited: int) -> str | None:
    """Why keepalived -t's answer refuses a staged keepalived.conf (errors and warnings alike),
    or None when it is clean (exit 0, no message)."""
    res = parse_keepalived_check(stdout, stderr, exited)
    if res.ok:
        return None
    return (f"keepalived -t rejected the new keepalived.conf ({res.verdict}): "
            f"{'; '.join(res.messages) or 'exit ' + str(exited)}")


def restore(c, paths: list[str], stamp: str) -> None:
    """Put back the files saved at `stamp`; files that did not exist then are removed."""
    cmds = []
    for p in paths:
        b, t = shlex.quote(f"{BACKUP_DIR}/{stamp}{p}"), shlex.quote(p)
        cmds.append(f"if [ -e {b} ] || [ -L {b} ]; then cp -pP {b} {t}.lbtk-new && mv -f {t}.lbtk-new {t}; "
                    f"else rm -f {t}; fi")
    remote.run(c, "; ".join(cmds), check=False)


def _prune() -> str:
    """Keep the newest KEEP_BACKUPS deploys' backups. The shell's own glob lists them, oldest first
    (stamps sort by time in the C locale), so a deploy forks only the rm of what goes, if anything
    (was ls, sort, tail and xargs every time: 30 lab nodes share 2 cores)."""
    return (f"LC_ALL=C; set -- {BACKUP_DIR}/*/; [ -d \"$1\" ] && [ $# -gt {KEEP_BACKUPS} ] && "
            f"__n=$(($# - {KEEP_BACKUPS})) && __o= && while [ $__n -gt 0 ]; do __o=\"$__o $1\"; shift; "
            "__n=$((__n - 1)); done && rm -rf $__o")
