"""Offline tasks: render the files each node needs, check them with the real keepalived -t."""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass


from fabfile.infra import facts as F
from fabfile import output
from fabfile.model.loading import InventoryError
from fabfile.parsers.keepalived_t import split_location
from fabfile.infra.observe import observe_nodes, observe_reachable
from fabfile.core.render import ASSUMED, RenderFacts, render_all, render_node
from fabfile.core.render.keepalived import CONF
from fabfile.model.secrets import Placeholder, mask
from fabfile.tasks.common import DEFAULT_ENV, UsageError, check_format, load_env, one_line_errors, rel, \
    select_nodes, task


@task(help={"env": "inventory name (inventories/NAME.yaml)", "node": "only this node",
            "out": "write files under DIR/NODE/<path> instead of printing them",
            "live": "read the facts rendering depends on (IPVS in the kernel) from the nodes, one round "
                    "trip each: the output is then byte for byte what deploy ships",
            "monitoring": "the cluster's Prometheus alert rules and Grafana dashboard instead (written under "
                          "DIR/monitoring/ with --out)"})
@one_line_errors
def render(c, env=DEFAULT_ENV, node=None, out=None, live=False, monitoring=False):
    """Print (or write) every file each node gets, rendered from the inventory.

    The node facts rendering depends on are assumed unless --live (the first lines say which)."""
    if monitoring:
        return render_monitoring(env, node, out, live)
    e = load_env(env, lint=not (out or live))   # files written (--out) or checked against nodes need the secret
    if e.lint_note:
        output.note(e.lint_note)
    nodes = select_nodes(e.inv, node)
    if live:
        facts, e = live_facts(e, nodes)
    else:
        facts = {n.name: ASSUMED for n in nodes}
    where = "read from the node" if live else "assumed; --live reads them from the nodes"
    if e.runtime is not None and e.runtime.drained:
        output.say(f"# drained on the nodes (weight 0): {', '.join(e.runtime.drained)}")
    for n in nodes:
        output.say(f"# {n.name}: node facts {facts[n.name].describe()} ({where})")
    if out:
        root = out_dir(out)
        try:
            for n in nodes:
                for f in render_node(e.inv, n.name, e.secrets, facts[n.name]):
                    if f.content is not None:
                        output.say(f"wrote {write_out(root, out, n.name, f)} ({oct(f.mode)[2:]})")
        finally:
            os.close(root)
        return
    for n in nodes:
        for f in render_node(e.inv, n.name, e.secrets, facts[n.name]):
            if f.content is None:
                print(f"# ==== {n.name}:{f.path} (must not exist)\n")
            else:
                print(f"# ==== {n.name}:{f.path} (mode {oct(f.mode)[2:]}, phase {f.phase})")
                print(mask(f.content))


def render_monitoring(env: str, node, out, live) -> None:
    """The cluster's alert rules and dashboard: from the inventory alone (no secret, no node)."""
    from fabfile.core.monitoring import files
    from fabfile.model.loading import load
    if node or live:
        raise UsageError(f"--monitoring renders the cluster's files, from the inventory alone: drop "
                         f"{'--node' if node else '--live'}")
    inv, _ = load(env)
    if not out:
        for f in files(inv, env):
            print(f"# ==== monitoring/{f.path}")
            print(f.content)
        return
    root = out_dir(out)
    try:
        for f in files(inv, env):
            output.say(f"wrote {write_out(root, out, 'monitoring', f)} ({oct(f.mode)[2:]})")
    finally:
        os.close(root)


# --out: the files hold the plaintext VRRP secret and run as root once installed. Every directory
# under DIR is opened relative to its parent without following links and must be ours, not group-
# or world-writable; every file is created anew (O_EXCL, no link followed) at 0600 and only then
# given its mode; an existing file is replaced only when it is a regular file we own.
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class OutFile:
    """A file a task writes under --out DIR that no node gets (a drill's record)."""
    path: str
    content: str
    mode: int = 0o644
    secret: bool = False


def _out_error(where, msg: str) -> UsageError:
    return UsageError(f"--out {where}: {msg}")


def _owned_dir(fd: int, where) -> int:
    st = os.fstat(fd)
    if st.st_uid != os.geteuid():
        os.close(fd)
        raise _out_error(where, f"owned by uid {st.st_uid}, not you — choose a directory of your own")
    if st.st_mode & 0o022:
        os.close(fd)
        raise _out_error(where, f"writable by group or others (mode {oct(st.st_mode & 0o777)[2:]}) — "
                         f"chmod go-w {where}, or choose another directory")
    return fd


def out_dir(out: str) -> int:
    """DIR, created 0700 if missing, as an open descriptor (a directory we own, not group- or
    world-writable: the secret lands in it)."""
    try:
        os.makedirs(out, mode=0o700, exist_ok=True)
        return _owned_dir(os.open(out, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), out)
    except NotADirectoryError:
        raise _out_error(out, "not a directory — name a directory") from None
    except OSError as e:
        raise _out_error(out, f"cannot create or open it ({e.strerror}) — choose a directory you can write") from None


def write_out(root: int, out: str, node: str, f) -> str:
    """Write one rendered file under DIR/NODE/<path> (DIR/<path> when `node` is ""; see above);
    returns the path written. `f`: what has a path, content, mode and secret (a NodeFile, an OutFile)."""
    parts = [*([node] if node else []), *f.path.strip("/").split("/")]
    where = out
    fd = os.dup(root)
    try:
        for part in parts[:-1]:
            where = os.path.join(where, part)
            try:
                os.mkdir(part, 0o700, dir_fd=fd)
            except FileExistsError:
                pass
            try:
                sub = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                raise _out_error(where, f"not a directory of yours ({e.strerror}; links are not followed) — "
                                 "remove it or choose another --out") from None
            os.close(fd)
            fd = _owned_dir(sub, where)
        name, where = parts[-1], os.path.join(where, parts[-1])
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None:
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
                raise _out_error(where, "exists and is not a regular file of yours (a link, or another user's) — "
                                 "remove it or choose another --out")
            os.unlink(name, dir_fd=fd)
        out_fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=fd)
        with os.fdopen(out_fd, "w", encoding="utf-8") as w:
            w.write(f.content)
            os.fchmod(w.fileno(), 0o600 if f.secret else f.mode)
        return where
    except OSError as e:
        raise _out_error(where, f"cannot write it ({e.strerror})") from None
    finally:
        os.close(fd)


def live_facts(e, nodes):
    """The render facts of each node, observed (one round trip per node; all must answer), and the
    env with the runtime record (drains) the nodes hold."""
    from fabfile.core import runtime
    states = observe_nodes(e, nodes, (*F.RENDER, F.RUNTIME), how=observe_reachable, doing="nothing was rendered")
    return {n: RenderFacts.of(s) for n, s in states.items()}, runtime.of(e, states)


@task(help={"env": "inventory name (inventories/NAME.yaml); several: NAME,NAME or a glob ('lab*'), "
                   "checked together as --all checks them", "format": "auto|rich|plain|markdown",
            "json": "print one JSON object",
            "all": "every inventory in inventories/, and across them: a virtual_router_id on one segment, a VIP "
                   "or a node address in two clusters (unless both name the same estate)"})
@one_line_errors
def check(c, env=DEFAULT_ENV, format=None, json=False, all=False):  # noqa: A002 (the flag is --all)
    """Validate the inventory and run the real `keepalived -t` on each node's keepalived.conf.

    Whatever keepalived -t still reports is one error line naming the inventory field behind it."""
    check_format(format)
    if all:
        if env != DEFAULT_ENV:
            raise UsageError(f"--all checks every inventory: drop --env {env}")
        return check_all(format, json)
    from fabfile.model.loading import env_names
    names = env_names(env)
    if names is not None:
        return check_all(format, json, names)
    e = load_env(env, lint=True)      # a lint job without the secret checks with a placeholder, and says so
    if e.lint_note:
        output.note(e.lint_note)
    v = keepalived_t(e)
    if json:
        output.show_json(v.as_json(e))
    else:
        v.show(e, format)
    if v.errors:
        raise InventoryError(v.errors)


def check_all(format, json, names: list[str] | None = None) -> None:
    """`check --all` (or --env naming several: `names`): each inventory as `check` checks it, in
    one table, then the clashes between those clusters (fabfile/core/fleet.py). Every problem is
    one error line; all of them are listed."""
    from fabfile.core import fleet
    from fabfile.model.loading import inventory_dir
    errors, loaded, reports = [], [], []
    table = output.Table("keepalived -t", ["inventory", "node", "file", "verdict", "keepalived says"])
    warnings = []
    for name in names if names is not None else [p.stem for p in sorted(inventory_dir().glob("*.yaml"))]:
        try:
            e = load_env(name, lint=True)
        except InventoryError as x:
            errors += x.lines
            continue
        if e.lint_note:
            output.note(e.lint_note)
        v = keepalived_t(e)
        errors += v.errors
        loaded.append((rel(e.path), e.inv))
        reports.append(v.as_json(e))
        for r in v.results:
            table.add(e.path.name, r["node"], r["file"], r["verdict"],
                      "; ".join(r["messages"]) or "configuration is valid", ok=r["verdict"] == "ok")
        warnings += [f"warning: {e.inv.source}: {w}" for w in v.warnings]
    if not json:
        output.show(table, format)
        for w in warnings:
            output.say(w)
    found = fleet.clashes(loaded)
    errors += [x.line() for x in found]
    if json:
        output.show_json({"ok": not errors, "inventories": reports,
                          "clashes": [{"kind": x.kind, "files": [x.first, x.second], "clusters": list(x.clusters),
                                       "items": list(x.items)} for x in found]})
    else:
        output.say(f"{len(loaded)} inventories checked together: {len(found) or 'no'} clash(es) between clusters")
    if errors:
        raise InventoryError(errors)


@dataclass
class Verdict:
    """`keepalived -t` on every node's keepalived.conf of one inventory."""
    table: output.Table
    results: list[dict]
    errors: list[str]           # one line per problem, naming the inventory field
    warnings: list[str]

    def as_json(self, e) -> dict:
        return {"ok": not self.errors, "inventory": str(e.path.name), "results": self.results,
                "warnings": self.warnings,
                "placeholder_secrets": [n for n, v in e.secrets.items() if isinstance(v, Placeholder)]}

    def show(self, e, format) -> None:
        output.show(self.table, format)
        for w in self.warnings:
            output.say(f"warning: {e.inv.source}: {w}")


def keepalived_t(e) -> Verdict:
    from fabfile.core.keepalived_fields import field_of
    from fabfile.core.vrrp import election_warnings
    from fabfile.infra.confcheck import keepalived_check  # (netns + keepalived -t: only this task)
    from fabfile.core.render.scripts import stand_ins
    table = output.Table(f"keepalived -t ({e.path.name})", ["node", "file", "verdict", "keepalived says"])
    results, problems = [], {}   # (field, keepalived's words) -> nodes
    for name, files in render_all(e.inv, e.secrets, ASSUMED).items():
        node = e.inv.node(name)
        conf = next(f for f in files if f.path == CONF)
        r = keepalived_check(e.inv, node, conf.content, stand_ins(e.inv))
        msg = "; ".join(r.messages) or "configuration is valid"
        table.add(name, CONF, r.verdict, msg, ok=r.verdict == "ok")
        fields = [field_of(e.inv, node, conf.content, m) for m in r.messages]
        results.append({"node": name, "file": CONF, "verdict": r.verdict, "exit_code": r.exit_code,
                        "messages": r.messages, "fields": fields})
        for f, m in zip(fields, r.messages):
            problems.setdefault((f, split_location(m)[2]), []).append(name)
    ok = not problems and all(r["verdict"] == "ok" for r in results)
    errors = [] if ok else ([f"{e.inv.source}: {f}: keepalived -t ({', '.join(nodes)}): {words}"
                             for (f, words), nodes in problems.items()]
                            or [f"{e.inv.source}: keepalived -t did not accept the config (exit "
                                f"{', '.join(str(r['exit_code']) for r in results)})"])
    return Verdict(table, results, errors, election_warnings(e.inv))   # warnings: valid, settled by address
