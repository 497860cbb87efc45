"""On-call tasks the runbooks name: status, drain / undrain, logs."""
from __future__ import annotations

import shlex

from invoke import Exit

from fabfile.infra import facts as F
from fabfile import output
from fabfile.model import clone_state as overrides
from fabfile.infra import remote
from fabfile.parsers import journal
from fabfile.tasks.common import (DEFAULT_ENV, UsageError, check_format, each_env, fleet_names, node_env, number,
                                  one_line_errors, say_failed, task)
from fabfile.tasks.deploy import deploy_and_show


@task(help={"env": "inventory name; several: NAME,NAME or a glob ('lab*'), one table across the clusters",
            "format": "auto|rich|plain|markdown", "json": "print JSON",
            "node": "only this node: lbtk reaches it as the inventory says (SSH user, bastion, host key, sudo), "
                    "and its daemons; exit 1 when it cannot"})
@one_line_errors
def status(c, env=DEFAULT_ENV, format=None, json=False, node=None):
    """Short cluster summary: who holds each VIP, daemons up, problems (no HTTP probe)."""
    from fabfile.ops.status import status as observe_status
    from fabfile.views import status as view
    check_format(format)
    names = fleet_names(env, node)
    if names is not None:
        def read(name):
            e, _ = node_env(name, quiet=json)
            return e.path.name, observe_status(e)
        done, failed = each_env(names, read)
        fleet = [r for _, r in done]
        if json:
            output.show_json(view.fleet_json(fleet, failed))
        else:
            view.show_fleet(fleet, format)
            say_failed(failed)
        if failed or not all(st.ok for _, st in fleet):
            raise Exit(code=1)
        return
    e, nodes = node_env(env, node, quiet=json)
    if node and not json:
        output.say(view.access(e.inv, nodes[0].name))
    st = observe_status(e, nodes if node else None)
    if json:
        output.show_json(view.as_json(st))
    else:
        view.show(st, format)
    if not st.ok:
        raise Exit(code=1)


def _drain(env: str, server: str, weight_zero: bool, format=None, skip_unreachable=False,
           break_lock=False, lock=None, json=False) -> None:
    """The drain is a new runtime record (fabfile/core/runtime.py) written to every director with its
    keepalived.conf, under the deploy lock: a deploy from any clone keeps it until undrain. `lock`:
    the caller holds it already (os-upgrade), and the drain runs under it. `json`: one object, the
    keepalived phase's run (views/deploy.as_json) with the server, whether it changed and the record."""
    from fabfile.infra import runinfo
    from fabfile.core import runtime
    e, _ = node_env(env, quiet=json)
    addr = overrides.resolve_server(e.inv, server)
    if addr is None and weight_zero:
        known = sorted({e.inv.real_server_address(rs) for vs in e.inv.virtual_servers for rs in vs.real_servers})
        raise UsageError(f"--server {server}: not a real server of {e.path.name} — use a node name or one of "
                        f"{', '.join(known) or 'none (no virtual_servers)'}")
    who = runinfo.operator()

    def change(rec, _states=None):
        # undrain of an address no longer in the inventory: clears its stale record, if there is one
        if addr is None and server not in rec.drained:
            raise UsageError(f"--server {server}: neither a real server of {e.path.name} nor drained "
                             f"(drained: {', '.join(rec.drained) or 'none'})")
        return runtime.drained(rec, addr or server, weight_zero, who)
    def annotate(out) -> dict:
        return {"server": server, "address": addr or server, "drained": weight_zero,
                "changed": out.runtime != out.runtime_before,
                "serial": out.runtime.serial if out.runtime else None, "record": F.RUNTIME_PATH}
    out = deploy_and_show(e, ["keepalived"], fmt=format, skip_unreachable=skip_unreachable, break_lock=break_lock,
                          change=change, lock=lock, json=json, annotate=annotate)
    if json:
        return
    if out.runtime == out.runtime_before:
        output.say(f"{server} ({addr or server}) was already {'drained' if weight_zero else 'in service'}: "
                   "nothing to change (the keepalived phase still checked every node)")
    else:
        output.say(f"{server} ({addr or server}): weight {'0 (drained)' if weight_zero else 'back to the inventory value'}; "
                   f"recorded on the directors ({F.RUNTIME_PATH}, serial {out.runtime.serial}): "
                   "every deploy, from any clone, keeps it until undrain")


BREAK_LOCK = "take over a deploy lock left by a run that died (a live run's lock is never broken)"
SKIP = "go ahead on the directors that answer; the others are owed the change (next deploy catches up)"
DRAIN_JSON = "one JSON object: each director's run (files, actions, status), the server, the record's serial"


@task(help={"env": "inventory name", "server": "real server: node name or address", "format": "table format",
            "skip_unreachable": SKIP, "break_lock": BREAK_LOCK, "json": DRAIN_JSON})
@one_line_errors
def drain(c, server, env=DEFAULT_ENV, format=None, skip_unreachable=False, break_lock=False, json=False):
    """Take a real server out of rotation: weight 0 (existing connections finish), keepalived reload."""
    _drain(env, server, True, format, skip_unreachable, break_lock, json=json)


@task(help={"env": "inventory name", "server": "real server: node name or address", "format": "table format",
            "skip_unreachable": SKIP, "break_lock": BREAK_LOCK, "json": DRAIN_JSON})
@one_line_errors
def undrain(c, server, env=DEFAULT_ENV, format=None, skip_unreachable=False, break_lock=False, json=False):
    """Put a drained real server back at its inventory weight (keepalived reload)."""
    _drain(env, server, False, format, skip_unreachable, break_lock, json=json)


ISOLATE_JSON = "one JSON object: each director's run (files, actions, status), the node, the record's serial"


@task(help={"env": "inventory name", "node": "the node to take out of VRRP (or, with --undo, to bring back)",
            "undo": "bring the node back: keepalived enabled and started, the record cleared, then wait until "
                    "it is in the VRRP state the inventory expects",
            "check": "show what would be done (the plan and the record) and touch nothing",
            "format": "table format", "skip_unreachable": SKIP, "break_lock": BREAK_LOCK, "json": ISOLATE_JSON})
@one_line_errors
def isolate(c, node, env=DEFAULT_ENV, undo=False, check=False, format=None, skip_unreachable=False,
            break_lock=False, json=False):
    """Take one node out of VRRP (split brain's stopgap): keepalived stopped, recorded on the directors.

    keepalived is stopped and disabled on the node (it releases its VIPs and sends no adverts), and
    the node is recorded as isolated in the runtime record every deploy, from any clone, keeps:
    a deploy still ships its files but never starts or reloads its keepalived, and says so; verify
    and status show it ISOLATED. Refused for the last node that could hold a VIP (exit 2).
    `--undo`: keepalived enabled and started again, the record cleared, then a wait until the node
    is BACKUP or MASTER as the inventory expects."""
    from fabfile.infra import runinfo
    from fabfile.core import runtime
    from fabfile.ops.isolate import wait_in_vrrp
    from fabfile.ops.settle import settle_timeout, wait_for_vips
    e, _ = node_env(env, quiet=json, named=node)
    who = runinfo.operator()

    def change(rec, states):
        me = (states or {}).get(node)
        if me is not None and not me.reachable:
            raise UsageError(f"--node {node} does not answer ({me.error}) — nothing was changed")
        if not undo:
            refusal = runtime.isolate_refusal(e.inv, node, rec, states or {})
            if refusal:
                raise UsageError(refusal)
        return runtime.isolated(rec, node, not undo, who)

    def annotate(out) -> dict:
        return {"node": node, "isolated": not undo, "changed": out.runtime != out.runtime_before,
                "serial": out.runtime.serial if out.runtime else None, "record": F.RUNTIME_PATH}
    out = deploy_and_show(e, ["keepalived"], check=check, fmt=format, skip_unreachable=skip_unreachable,
                          break_lock=break_lock, change=change, json=json, annotate=annotate)
    say = output.note if json else output.say
    if check:
        say(f"isolate --check: {node} would be {'back in VRRP' if undo else 'isolated'} (nothing was touched)")
        return
    if out.runtime == out.runtime_before:
        say(f"{node} was already {'in VRRP' if undo else 'isolated'}: nothing to change in the record "
            "(the keepalived phase still checked every node)")
    else:
        done = ("no longer isolated: keepalived enabled and started" if undo
                else "isolated: keepalived stopped and disabled, out of VRRP")
        say(f"{node}: {done}; "
            f"recorded on the directors ({F.RUNTIME_PATH}, serial {out.runtime.serial})"
            + ("" if undo else ": every deploy, from any clone, keeps it until `inv isolate --undo`"))
    if undo:
        ok, line = wait_in_vrrp(e, node, settle_timeout(e))
        say(line)
        if not ok:
            raise Exit(code=1)
    elif out.runtime != out.runtime_before:
        # the VIPs it held go to the next node: settled once each is on one node (not the isolated)
        _, line = wait_for_vips(e, exclude=set(out.skipped) | set(out.runtime.isolated))
        say(line)


@task(help={"env": "inventory name", "node": "only this node", "lines": "log lines per node (default 200)",
            "format": "auto|rich|plain|markdown"})
@one_line_errors
def logs(c, env=DEFAULT_ENV, node=None, lines=None, format=None):
    """keepalived's log on each node: state transitions and warnings first, then the tail.

    Read from keepalived's own file where the inventory sets `logging:`, else from the journal."""
    check_format(format)
    lines = number(lines, "lines", 200, int, 1)
    e, nodes = node_env(env, node)
    cmd = log_command(e.inv.logging.file if e.inv.logging else None, int(lines))
    said = remote.run_on(e, nodes, cmd)
    out = {n.name: journal.split_source(said[n.name].stdout) for n in nodes}
    sources = sorted({src for src, _ in out.values()})
    t = output.Table(f"keepalived: state transitions and warnings ({', '.join(sources)})", ["node", "time", "message"])
    for n, (_, text) in out.items():
        for entry in journal.transitions(text):
            t.add(n, entry.time, entry.message, ok=False if entry.bad else None)
    output.show(t, format)
    for n, (src, text) in out.items():
        where = "journal lines" if src == "journal" else f"lines of {src}"
        output.say(f"\n--- {n}: last {min(int(lines), 20)} {where}", lines=True)
        output.say("\n".join(journal.tail(text, 20)) or "(empty)", lines=True)


@task(help={"env": "inventory name", "server": "real server: node name or address",
            "path": "the page to hash (default: the real server's HTTP_GET path, else /)",
            "node": "the director to run genhash on (default: the first that answers)",
            "format": "auto|rich|plain|markdown", "json": "the rows as JSON"})
@one_line_errors
def digest(c, server, env=DEFAULT_ENV, path=None, node=None, format=None, json=False):
    """The digest keepalived's HTTP_GET computes for a real server's page, against the inventory's.

    keepalived's genhash, run on a director, against the inventory's HTTP_GET.digest: what to put
    in `digest:`."""
    from fabfile.ops import digest as core
    from fabfile.core.checks import digest_targets
    from fabfile.views import digest as view
    check_format(format)
    e, directors = node_env(env, node, quiet=json)
    addr = overrides.resolve_server(e.inv, server)
    if addr is None:
        known = sorted({e.inv.real_server_address(rs) for vs in e.inv.virtual_servers for rs in vs.real_servers})
        raise UsageError(f"--server {server}: not a real server of {e.path.name} — use a node name or one of "
                         f"{', '.join(known) or 'none (no virtual_servers)'}")
    if path is not None:
        _check_path(path)
    targets = digest_targets(e.inv, addr, path)
    via, got = core.measure(e, directors, targets)
    rows = core.rows(targets, via, got)
    failed = [r for r in rows if r["digest"] is None]
    if json:
        output.show_json(rows)
    else:
        view.show(rows, format)
    if failed:
        r = failed[0]
        raise remote.RemoteError(f"genhash on {via} got no page from http://{r['server']}:{r['port']}{r['path']}: "
                          f"{r['error']} — is the web server on {r['node'] or r['server']} up?")
    if not all(r["ok"] for r in rows):
        raise Exit(code=1)


def _check_path(path: str) -> None:
    """--path as HTTP_GET.path takes it (keepalived reads it as one word)."""
    import re
    from fabfile.model.schema import HTTP_PATH
    if not re.fullmatch(HTTP_PATH, path):
        raise UsageError(f"--path {path}: an HTTP_GET path starts with / and has no spaces, quotes, braces, "
                         "'#' or '!' (keepalived would cut it)")


def log_command(file: str | None, lines: int) -> str:
    """keepalived's own log file where `logging:` names one and rsyslog has written it; the journal
    otherwise (logging not deployed yet, or not configured). The first line says which."""
    journal_cmd = (f"echo '{journal.SOURCE_MARK}journal'; "
                   f"journalctl -u keepalived --no-pager -o short-iso -n {int(lines)}")
    if file is None:
        return journal_cmd
    f = shlex.quote(file)
    return (f"if [ -s {f} ]; then echo '{journal.SOURCE_MARK}'{f}; tail -n {int(lines)} {f}; "
            f"else {journal_cmd}; fi")
