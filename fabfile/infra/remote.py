"""The only Fabric code: open verified SSH connections, run commands, move bytes.

Host keys are checked against the inventory's known_hosts (RejectPolicy: an unknown or
changed key is an error, never silently accepted), the bastion's too. ssh_config (~/.ssh/config
or ssh.config_file) supplies whatever the inventory does not state. With `become: sudo` every
command runs through sudo and every file is staged where the user may write, then installed by
the privileged side with its mode and root ownership. Everything else in the toolkit works on
the strings these functions return.
"""
from __future__ import annotations

import getpass
import io
import json
import os
import secrets as _random
import select
import shlex
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from dataclasses import dataclass
from typing import Iterable

import paramiko
from fabric import Config, Connection

from fabfile.errors import LbtkError, quiet_third_party_logging
from fabfile.infra import keeper, trace
from fabfile.model import extensions
from fabfile.model.schema import CONNECT_TIMEOUT, RETRIES, SSH, Inventory, Node
from fabfile.model.secrets import Masker, current as current_masker
from fabfile.parsers import known_hosts
from fabfile.parsers.lbtk import last_line
from fabfile.parsers.sudo import refusal

quiet_third_party_logging()


class RemoteError(LbtkError):
    """A node could not be reached or a command failed; str() is one line naming the node."""


@dataclass
class Result:
    stdout: str
    stderr: str
    exited: int


DEFAULT_PARALLEL = 64   # nodes worked on at once unless the run says otherwise (Env.parallel: --parallel N)


@dataclass(eq=False)
class NodeLink:
    """One node's SSH connection and what the toolkit needs to use it (Fabric's Connection carries
    nothing of ours). Every function here takes one; a NodeGroup owns them and closes them."""
    name: str                        # the node's name ("bastion HOST" for a bastion): every message names it
    conn: Connection
    become: str | None = None        # "sudo": every command through sudo, every file staged then installed
    password_env: str | None = None  # where sudo's password comes from (ssh.become_password_env / _file)
    password_file: str | None = None
    retries: int = RETRIES           # transient connect failures retried (ensure_open)
    masker: Masker | None = None     # the run's: a sudo password read here is masked in all it prints
    # connections kept between runs (fabfile/infra/keeper.py): the spec and key the keeper knows
    # this node's connection by (None: ssh.control_persist 0), the persist time, and whether this
    # run uses the kept connection (None: not asked yet; False: connected itself)
    spec: dict | None = None
    keep: str | None = None
    persist: int = 0
    kept: bool | None = None
    sftp_client: paramiko.SFTPClient | None = None
    inv: Inventory | None = None     # the node's inventory: the extensions' check before any socket opens

    @property
    def wait(self) -> float:
        """How long to wait for the node's SSH: ssh.connect_timeout."""
        return (self.spec or {}).get("connect_timeout") or CONNECT_TIMEOUT

    def close(self) -> None:
        if self.sftp_client is not None:
            try:
                self.sftp_client.close()
            except Exception:  # noqa: BLE001 - gone with its connection
                pass
            self.sftp_client = None
        self.conn.close()
        self.kept = None


class _Connection(Connection):
    """A Connection whose TCP socket has TCP_NODELAY. Paramiko leaves Nagle on, so every small
    request (a channel open, an exec, an exit status) waits for the peer's delayed ACK: measured on
    the lab, a `true` round trip took 48 ms with Nagle and 4 ms without, and a handshake is several
    such exchanges. Through a gateway the outer hop's socket is the one that matters (it is a
    _Connection too)."""

    lbtk_inv = None      # the node's Inventory: the extensions' check runs before any socket opens

    def open(self):
        if self.lbtk_inv is not None and not self.is_connected:
            extensions.before_connect(self.lbtk_inv)    # the lab's network rule: its addresses only via its bridge
        if self.is_connected or self.gateway or "sock" in self.connect_kwargs:
            return super().open()
        sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connect_kwargs["sock"] = sock
            return super().open()
        except BaseException:
            sock.close()
            raise
        finally:
            self.connect_kwargs.pop("sock", None)


_ssh_configs: dict[tuple, paramiko.SSHConfig] = {}


def _version(path: str) -> tuple:
    try:
        st = os.stat(path)
        return (path, st.st_mtime_ns, st.st_size)
    except OSError:
        return (path, None, None)


def _config_paths(config_file: str | None) -> list[str]:
    """The ssh_config files read: ssh.config_file, else ssh's own two."""
    return [os.path.expanduser(config_file)] if config_file else [os.path.expanduser("~/.ssh/config"),
                                                                  "/etc/ssh/ssh_config"]


def _config(config_file: str | None) -> Config:
    """A Fabric Config of its own for each connection (Connection attributes are stored in it), on
    an ssh_config parsed once per file and run (_ssh_config)."""
    return Config(ssh_config=_ssh_config(config_file))


def _ssh_config(config_file: str | None) -> paramiko.SSHConfig:
    """The ssh_config files parsed, once per file version and run: parsing them again for each
    Config was about 1 ms a connection in the GIL. Only read (lookup), never changed."""
    paths = _config_paths(config_file)
    if config_file and not os.path.isfile(paths[0]):
        # the lab-bastion's ssh_config is written by its lab.up: a lab that is down has none
        raise RemoteError(f"ssh.config_file {config_file}: no such file — write it, or fix the inventory's "
                          "ssh.config_file (a lab's is written by inv lab.up)")
    key = tuple(_version(p) for p in paths)        # a file edited since is parsed again
    parsed = _ssh_configs.get(key)
    if parsed is None:
        config = Config(runtime_ssh_path=paths[0]) if config_file else Config()
        parsed = _ssh_configs[key] = config.base_ssh_config
    return parsed


def _connection(host: str, user, port, key_filename, known_hosts, ssh: SSH, **kw) -> Connection:
    """A Connection as every hop gets it: ssh_config (ssh.config_file or ~/.ssh/config) for what is
    not stated, timeouts, no GSSAPI, the given key only, host keys checked against known_hosts."""
    timeout = ssh.connect_timeout or CONNECT_TIMEOUT
    kwargs = {"banner_timeout": timeout, "auth_timeout": timeout, "gss_auth": False, "gss_kex": False}
    if key_filename:
        kwargs.update(key_filename=os.path.expanduser(key_filename), look_for_keys=False, allow_agent=False)
    config = _config(ssh.config_file)
    c = _Connection(host, user=user, port=port, config=config, connect_kwargs=kwargs, connect_timeout=timeout, **kw)
    _verify_host_keys(c, known_hosts)
    return c


def _hop(h: dict, ssh, **kw) -> Connection:
    """_connection for one hop of a spec (_spec, _gateway_spec)."""
    return _connection(h["host"], h["user"], h["port"], h["key_filename"], h["known_hosts"], ssh, **kw)


def _gateway_spec(ssh: SSH) -> dict | None:
    """ssh.gateway as a spec's hop: its own key and known_hosts, else the node's known_hosts."""
    g = ssh.gateway
    return None if g is None else {"host": g.host, "user": g.user, "port": g.port, "key_filename": g.key_filename,
                                   "known_hosts": g.known_hosts or ssh.known_hosts}


def _bastion(ssh: SSH) -> Connection | None:
    """The connection to ssh.gateway."""
    g = _gateway_spec(ssh)
    return None if g is None else _hop(g, ssh)


def _spec(inv: Inventory, node: Node) -> dict:
    """What a node's connection is made from, as plain data: _link makes the run's connection from
    it, and the keeper (fabfile/infra/keeper.py) the kept one, through the same connect_spec."""
    ssh = inv.ssh_of(node)
    return {"host": node.host, "user": ssh.user, "port": ssh.port, "key_filename": ssh.key_filename,
            "known_hosts": ssh.known_hosts, "config_file": ssh.config_file, "connect_timeout": ssh.connect_timeout,
            "gateway": _gateway_spec(ssh)}


@dataclass
class _SpecSSH:
    """The two SSH fields _connection reads, from a spec."""
    connect_timeout: float | None
    config_file: str | None


def connect_spec(spec: dict) -> Connection:
    """The Connection a spec (_spec) describes, every hop's host keys checked (not yet open)."""
    ssh = _SpecSSH(spec["connect_timeout"], spec["config_file"])
    gateway = None if spec["gateway"] is None else _hop(spec["gateway"], ssh)
    c = _hop(spec, ssh, **({"gateway": gateway} if gateway else {}))
    hop = c.gateway if gateway is None else gateway.gateway
    while isinstance(hop, Connection):   # a ProxyJump from ssh_config: its host key is checked too
        _verify_host_keys(hop, spec["known_hosts"])
        hop = hop.gateway
    return c


def _keep_key(spec: dict) -> str:
    """The key a kept connection is found under: the spec and the version of every file the
    connection is made from (ssh_config, each hop's keys and known_hosts files, as ssh_config
    names them where the inventory does not), so an edit to any of them gets a new, freshly checked
    connection instead of the kept one. Made without a Connection: a kept run never makes one."""
    import hashlib
    cfg_file = spec["config_file"]
    paths = _config_paths(cfg_file)
    parsed = _ssh_config(cfg_file)
    files = list(paths)
    for hop in filter(None, (spec, spec["gateway"])):
        cfg = parsed.lookup(hop["host"])
        known = hop["known_hosts"] or cfg.get("userknownhostsfile", USER_KNOWN_HOSTS)
        words = known.split() + cfg.get("globalknownhostsfile", GLOBAL_KNOWN_HOSTS).split()
        keys = [hop["key_filename"]] if hop["key_filename"] else cfg.get("identityfile", [])
        files += [os.path.expanduser(w.replace("%h", hop["host"]).replace("%d", "~"))
                  for w in words + keys if w.lower() != "none"]
    text = json.dumps([spec, [_version(f) for f in files], os.geteuid()], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class _Lazy:
    """A node's Connection, made on first use: a run whose every command rides a kept connection
    never makes one (2-3 ms a node of Invoke config merging and known_hosts matching, in the GIL)."""

    def __init__(self, make):
        self._make, self._made = make, None

    @property
    def made(self) -> bool:
        return self._made is not None

    def close(self) -> None:
        if self._made is not None:
            self._made.close()

    def __getattr__(self, name):
        if self._made is None:
            self._made = self._make()
        return getattr(self._made, name)


def _link(inv: Inventory, node: Node, masker: Masker | None = None) -> NodeLink:
    """A node's link, lazy: nothing connects until a command needs it. Only a NodeGroup makes them
    (nodes()), and closes them: no code outside this module opens or closes a connection
    (tests/unit/test_node_group.py)."""
    ssh = inv.ssh_of(node)
    spec = _spec(inv, node)
    persist = keeper.persist_seconds(ssh.control_persist)

    def make() -> Connection:
        c = connect_spec(spec)
        c.lbtk_inv = inv              # checked when (and only if) a socket is about to open
        return c
    return NodeLink(node.name, _Lazy(make) if persist else make(), become=ssh.become,
                    password_env=ssh.become_password_env, password_file=ssh.become_password_file,
                    retries=RETRIES if ssh.retries is None else ssh.retries, masker=masker,
                    spec=spec, keep=_keep_key(spec) if persist else None, persist=persist, inv=inv)


def _gateway_link(inv: Inventory) -> NodeLink | None:
    """A link to the bastion itself (defaults.ssh.gateway), for work that runs there (HTTP probes
    through a VIP this machine cannot reach). None without a gateway. NodeGroup.bastion() makes
    it, and closes it with the group."""
    c = _bastion(inv.defaults.ssh)
    return None if c is None else NodeLink(f"bastion {c.host}", c)


class HostKeyRefused(paramiko.SSHException):
    """A host key refused for a reason other than "unknown" or "changed" (revoked, or vouched for
    only in a way lbtk cannot check); str() is the one line to show."""


USER_KNOWN_HOSTS = "~/.ssh/known_hosts ~/.ssh/known_hosts2"             # ssh's defaults
GLOBAL_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2"
_known_lines: dict[tuple, list] = {}


def _lines(path: str) -> list:
    """A known_hosts file's lines, parsed once per run and file version: parsing cost 18 ms a
    connection (serial, in the GIL), 0.5 s of a 30-node deploy. A missing file has none."""
    key = _version(path)
    if key not in _known_lines:
        try:
            text = open(path, encoding="utf-8", errors="replace").read()
        except OSError:
            text = ""
        _known_lines[key] = known_hosts.parse(text, path)
    return _known_lines[key]


def _known_hosts_files(c: Connection, known: str | None) -> list[str]:
    """The files ssh would read for this host: the inventory's ssh.known_hosts, else ssh_config's
    UserKnownHostsFile; and GlobalKnownHostsFile (ssh's defaults where ssh_config says nothing)."""
    cfg = c.ssh_config
    if cfg.get("revokedhostkeys", "none").lower() != "none":
        raise HostKeyRefused(f"ssh_config's RevokedHostKeys ({cfg['revokedhostkeys']}) is not supported by lbtk "
                             "— list those keys as `@revoked * TYPE KEY` lines in known_hosts instead")
    words = (known if known else cfg.get("userknownhostsfile", USER_KNOWN_HOSTS)).split() \
        + cfg.get("globalknownhostsfile", GLOBAL_KNOWN_HOSTS).split()
    return [_expand(w, c) for w in words if w.lower() != "none"]


def _expand(path: str, c: Connection) -> str:
    """~ and the ssh_config tokens a known_hosts path may use (%d home, %u local user, %h host,
    %%); any other token is refused in one line rather than guessed."""
    tokens = {"d": os.path.expanduser("~"), "u": getpass.getuser(), "h": c.host, "%": "%"}
    out, rest = "", path
    while "%" in rest:
        head, _, rest = rest.partition("%")
        if not rest or rest[0] not in tokens:
            raise HostKeyRefused(f"known_hosts path {path!r}: the token %{rest[:1]} is not supported by lbtk "
                                 "— name the file without it (ssh.known_hosts)")
        out, rest = out + head + tokens[rest[0]], rest[1:]
    return os.path.expanduser(out + rest)


class _KnownHostsPolicy(paramiko.RejectPolicy):
    """What to say about a key no trusted line names (paramiko asks only then): revoked, vouched
    for only by a @cert-authority line, or unknown (RejectPolicy's words)."""

    def __init__(self, known: known_hosts.HostKeys):
        self.known = known

    def missing_host_key(self, client, hostname, key):
        refused = _refusal(self.known, hostname, key)
        if refused:
            raise HostKeyRefused(refused)
        super().missing_host_key(client, hostname, key)


def _refusal(known: known_hosts.HostKeys, hostname: str, key) -> str | None:
    revoked = known.revocation(key.asbytes())
    if revoked is not None:
        return (f"host key of {hostname} ({key.get_name()}) is REVOKED ({revoked.where}) — "
                "refused; verify the node and give it a new host key")
    if known.authorities:
        return (f"host key of {hostname} is vouched for only by @cert-authority ({known.authorities[0].where}): "
                "host certificates are not supported by lbtk — add the host's own key to known_hosts "
                "(ssh-keyscan, checked by hand)")
    return None


def _verify_host_keys(c: Connection, known: str | None) -> None:
    """Host keys checked as ssh checks them, from the files ssh would read (_known_hosts_files):
    trusted keys only (revoked ones never, even where another line lists them), RejectPolicy for
    the rest. Read-only: the files are never written."""
    try:
        files = _known_hosts_files(c, known)
    except HostKeyRefused as e:
        raise RemoteError(f"{c.host}: {e}") from None
    lines = [ln for path in files for ln in _lines(path)]
    name = known_hosts.host_key_name(c.host, c.port)
    found = known_hosts.for_host(lines, name)
    keys = paramiko.HostKeys()
    for ln in found.trusted:
        try:
            keys.add(name, ln.keytype, paramiko.PKey.from_type_string(ln.keytype, ln.blob))
        except (paramiko.SSHException, ValueError, TypeError):
            continue          # a key type paramiko cannot read: as if the line were not there
    c.client._system_host_keys = keys
    c.client.set_missing_host_key_policy(_KnownHostsPolicy(found))


def _password(c: NodeLink) -> str | None:
    """sudo's password: ssh.become_password_env, else ssh.become_password_file (relative to
    inventories/); None: NOPASSWD."""
    env, file = c.password_env, c.password_file
    if not env and not file:
        return None
    value = os.environ.get(env) if env else None
    if not value and file:
        from fabfile.model.loading import inventory_file
        from fabfile.model.secrets import read_secret_file
        path = inventory_file(file)
        # a missing file is "sudo needs a password" below; one open to others is refused, as ssh does
        value = read_secret_file(path, f"{c.name}: ssh.become_password_file") if path.exists() else None
    if not value:
        raise RemoteError(f"{c.name}: sudo needs a password: set "
                          + " or ".join(x for x in (env and f"the environment variable {env}",
                                                     file and f"the file {file}") if x)
                          + " (ssh.become_password_env / become_password_file)")
    (c.masker or current_masker()).add(value)      # never printed
    return value


SUDO_PROMPT = "lbtk-sudo-{token}:"    # sudo -p: a fresh marker per command (no '%': sudo expands those)


class SudoPrompt:
    """sudo's password prompt, answered only when sudo asks for it.

    `sudo -k -S -p MARKER` prompts on stderr every time a password is needed (-k: a cached ticket,
    even `timestamp_type=global`'s, is ignored) and never when NOPASSWD grants the command. The
    password is written to stdin only after MARKER shows on stderr, so it is sudo that reads it:
    were it written up front, a sudo that does not ask would hand it to the command on stdin (the
    lock command read it as its `release` word and ended, freeing the flock under a running deploy).
    A second prompt means the password was refused: it gets an empty line, so sudo gives up after
    its tries (`N incorrect password attempts`) instead of waiting for a line that never comes."""

    def __init__(self, password: str, marker: str | None = None):
        self.marker = marker or SUDO_PROMPT.format(token=_random.token_hex(8))
        self.password = password
        self.answered = 0

    def reply(self, stderr_so_far: str) -> str | None:
        """What to write to stdin now that stderr reads `stderr_so_far` (all of it since the start)."""
        asked = stderr_so_far.count(self.marker)
        if asked <= self.answered:
            return None
        reply = self.password + "\n" if self.answered == 0 else "\n" * (asked - self.answered)
        self.answered = asked
        return reply

    def clean(self, stderr: str) -> str:
        """stderr without the prompts (what sudo and the command said)."""
        return stderr.replace(self.marker, "")


def privileged(c: NodeLink, command: str, stdin: bool = False) -> tuple[str, SudoPrompt | None]:
    """(the command as it runs on the node, the sudo prompt to answer or None): through sudo with
    become. The password never goes on the command line, and never to the command: sudo reads it
    at its own prompt (SudoPrompt); -n fails at once instead of prompting when no password is
    configured and NOPASSWD is not granted. Unless the command reads `stdin` (the lock's `release`),
    its stdin is /dev/null: whatever reaches the channel cannot reach it."""
    if c.become != "sudo":
        return command, None
    pw = _password(c)
    wrapped = f"sh -c {shlex.quote(command if stdin else 'exec </dev/null' + chr(10) + command)}"
    if pw is None:
        return f"sudo -n -H -- {wrapped}", None
    prompt = SudoPrompt(pw)
    return f"sudo -k -S -p {prompt.marker} -H -- {wrapped}", prompt


REFUSED = {
    "password-required": "a password is required — grant NOPASSWD or set ssh.become_password_env",
    "wrong-password": "wrong password (from ssh.become_password_env)",
    "not-allowed": "the SSH user may not run commands as root there — fix sudoers",
    "needs-tty": "it wants a terminal (requiretty) — allow !requiretty for the SSH user",
}


def _sudo_refused(c: NodeLink, stderr: str) -> str | None:
    if c.become != "sudo":
        return None
    why = refusal(stderr)
    return f"{c.name}: sudo refused: {REFUSED[why]}" if why else None


def ensure_open(c: NodeLink) -> None:
    """Connect now, retrying transient failures (timeout, reset, refused) with backoff; never an
    authentication or host-key failure."""
    if c.kept:
        return
    if c.keep and c.kept is None:
        if c.inv is not None:
            extensions.before_connect(c.inv)     # the lab's network rule, as an open checks it
        c.kept = keeper.holds(c.keep, wait=c.wait)
        if c.kept:
            return
    if c.conn.is_connected:
        return
    tries = c.retries
    for attempt in range(tries + 1):
        try:
            c.conn.open()
            return
        except (paramiko.AuthenticationException, paramiko.BadHostKeyException, HostKeyRefused):
            raise
        except paramiko.SSHException as e:
            if "known_hosts" in str(e) or attempt == tries:
                raise
        except (OSError, EOFError):
            if attempt == tries:
                raise
        time.sleep(0.3 * 2 ** attempt)


class CommandTimedOut(Exception):
    """A command that had not ended within its timeout (its channel is closed: the node's side gets
    a hangup)."""

    def __init__(self, command: str, timeout: float):
        super().__init__(f"`{_short(command)}` did not finish within {timeout:g}s")
        self.command, self.timeout = command, timeout


def run(c: NodeLink, command: str, check: bool = True, timeout: float | None = 60) -> Result:
    trace.command(c.name, command, c.masker, c.become)     # -v (fabfile/infra/trace.py)
    try:
        ensure_open(c)
        cmd, prompt = privileged(c, command)
        out, err, exited = _exec(c, cmd, prompt, timeout)
    except RemoteError:
        raise
    except Exception as e:  # noqa: BLE001 - every transport failure becomes one line
        raise RemoteError(describe(c, e)) from None
    stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
    stderr = prompt.clean(stderr) if prompt else stderr
    refused = _sudo_refused(c, stderr) if exited != 0 else None
    if refused:
        raise RemoteError(refused)
    if check and exited != 0:
        detail = last_line(stderr) or last_line(stdout)
        raise RemoteError(f"{c.name}: `{_short(command)}` exited {exited}"
                          + (f": {detail}" if detail else ""))
    return Result(stdout, stderr, exited)


def _exec(c: NodeLink, cmd: str, prompt: SudoPrompt | None, timeout: float | None) -> tuple[bytes, bytes, int]:
    """`cmd` on a channel of its own: (stdout, stderr, exit status; -1 when it ended without one).
    Straight on paramiko's channel, waiting on its file descriptor: Invoke's Runner (Fabric's run)
    starts three threads a command and polls every 10 ms, which made a `true` cost 15 ms where the
    channel takes 5, for every command of every node. stdin is closed at once, unless sudo may ask
    for its password (SudoPrompt), which is written only when sudo asks."""
    chan = _channel(c, cmd)
    try:
        if prompt is None:
            chan.shutdown_write()
        ready = chan.fileno()          # readable while either stream holds data, and once both end
        out, err = bytearray(), bytearray()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            got = False
            if chan.recv_ready():
                out += chan.recv(65536)
                got = True
            if chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
                got = True
                reply = prompt.reply(err.decode(errors="replace")) if prompt else None
                if reply:
                    chan.sendall(reply.encode())
            if got:
                continue
            if chan.eof_received or chan.closed:
                break
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise CommandTimedOut(cmd, timeout)
            select.select([ready], [], [], 1.0 if left is None else min(left, 1.0))
        return bytes(out), bytes(err), chan.recv_exit_status()
    finally:
        chan.close()


def _channel(c: NodeLink, cmd: str):
    """`cmd` started on a channel of its own: on the kept connection when this run uses one (a
    keeper.KeptChannel), else on the run's (a paramiko Channel). A kept connection that has gone
    since is dropped, and the run connects itself."""
    if c.kept:
        chan = keeper.session(c.keep, cmd, c.wait)
        if chan is not None:
            return chan
        c.kept = False
        ensure_open(c)
    chan = c.conn.transport.open_session()
    chan.exec_command(cmd)
    return chan


def _sftp(c: NodeLink) -> paramiko.SFTPClient:
    """The node's SFTP session (one per link): over the kept connection when this run uses one."""
    if c.kept and c.sftp_client is None:
        sock = keeper.sftp_socket(c.keep, c.wait)
        if sock is not None:
            c.sftp_client = paramiko.SFTPClient(sock)
        else:
            c.kept = False
            ensure_open(c)
    return c.sftp_client if c.sftp_client is not None else c.conn.sftp()


def put_many(c: NodeLink, files: list[tuple[bytes, str, int]]) -> None:
    """Write each (content, path, mode). As root: SFTP straight to path, mode set before the
    first byte. With become: SFTP into a private staging directory of the user's (0700), then one
    privileged `install` per file puts it at path with its mode, owned by root, and the staging
    directory goes."""
    if c.become != "sudo":
        for content, path, mode in files:
            put(c, content, path, mode)
        return
    stage = f"/tmp/lbtk-stage-{_random.token_hex(6)}"
    try:
        ensure_open(c)
        sftp = _sftp(c)
        sftp.mkdir(stage, 0o700)
        for k, (content, _path, _mode) in enumerate(files):
            with sftp.file(f"{stage}/{k}", "wb") as f:
                f.chmod(0o600)
                f.write(content)
    except Exception as e:  # noqa: BLE001
        _drop_stage(c, stage)
        raise RemoteError(describe(c, e, f"upload to {stage}")) from None
    q = shlex.quote
    cmds = [f"install -m {mode:o} -o root -g root {q(f'{stage}/{k}')} {q(path)}"
            for k, (_c, path, mode) in enumerate(files)]
    try:
        run(c, " && ".join(cmds))
    finally:
        _drop_stage(c, stage)


def _drop_stage(c: NodeLink, stage: str) -> None:
    try:
        _exec(c, f"rm -rf {shlex.quote(stage)}", None, 30)      # the user's own directory: no sudo
    except Exception:  # noqa: BLE001 - /tmp is cleaned at boot; the content is the user's own copy
        pass


def put(c: NodeLink, content: bytes, path: str, mode: int) -> None:
    """One file over SFTP as the SSH user (root): put_many is the way that also works with sudo."""
    try:
        ensure_open(c)
        sftp = _sftp(c)
        with sftp.file(path, "wb") as f:
            f.chmod(mode)  # before the first byte: a secret is never readable by others
            f.write(content)
    except Exception as e:  # noqa: BLE001
        raise RemoteError(describe(c, e, f"upload {path}")) from None


def parallel(items: list, fn, *args, limit: int | None = None):
    """fn(item, *args) on every item at once, at most `limit` (default DEFAULT_PARALLEL) at a time;
    results in the same order. Per-node work differs (files, commands), so this is a thread pool
    rather than one command for the lot. Each thread runs in a copy of the caller's context, so
    the run's masker (fabfile.model.secrets.masking) goes with it."""
    with ThreadPoolExecutor(max_workers=max(1, min(len(items), limit or DEFAULT_PARALLEL))) as pool:
        futures = [pool.submit(copy_context().run, fn, x, *args) for x in items]
        return [f.result() for f in futures]


def _open(c: NodeLink) -> None:
    try:
        ensure_open(c)
    except Exception as e:  # noqa: BLE001
        raise RemoteError(describe(c, e)) from None


class NodeGroup:
    """The links to a set of nodes, worked on together and closed together (Fabric's Group, for
    work that differs per node): `with remote.nodes(env) as group:` closes every connection when
    the block ends, whatever ends it. Iterating gives the NodeLinks, in the inventory's order."""

    def __init__(self, links: Iterable[NodeLink], limit: int | None = None, inv: Inventory | None = None,
                 owns: bool = True):
        self.links = list(links)
        self.limit = limit or DEFAULT_PARALLEL      # nodes worked on at once (--parallel N)
        self.inv = inv                              # for bastion()
        self.owns = owns                            # False: a part of another group, which closes the links
        self._bastion: NodeLink | None = None
        self._parent: NodeGroup | None = None

    @classmethod
    def of(cls, links) -> "NodeGroup":
        """`links` as a group: a NodeGroup as it is, a plain list of links as one that closes nothing
        (whoever opened them closes them)."""
        return links if isinstance(links, NodeGroup) else cls(links, owns=False)

    def __iter__(self):
        return iter(self.links)

    def __len__(self) -> int:
        return len(self.links)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.links]

    def __getitem__(self, name: str) -> NodeLink:
        for c in self.links:
            if c.name == name:
                return c
        raise KeyError(name)

    def only(self, names: Iterable[str]) -> "NodeGroup":
        """The links of these nodes, as a group this one closes."""
        keep = set(names)
        part = NodeGroup([c for c in self.links if c.name in keep], self.limit, self.inv, owns=False)
        part._parent = self
        return part

    def parallel(self, fn, *args) -> list:
        """fn(link, *args) on every node at once (at most `limit`); results in the nodes' order."""
        return parallel(self.links, fn, *args, limit=self.limit)

    def run(self, command: str, **kw) -> dict[str, Result | RemoteError]:
        """`command` on every node: {node: its Result, or the RemoteError it ended with} (a node
        that fails does not stop the others)."""
        def one(c):
            try:
                return run(c, command, **kw)
            except RemoteError as e:
                return e
        return dict(zip(self.names, self.parallel(one)))

    def open(self) -> None:
        """Connect every node now (in parallel), so threads sharing a link never race to open it."""
        self.parallel(_open)

    def bastion(self) -> NodeLink | None:
        """The link to the inventory's bastion itself (_gateway_link; None without one), closed
        with the group that opened the links."""
        if self._parent is not None:
            return self._parent.bastion()
        if self.inv is None:
            raise ValueError("a NodeGroup made of a plain list knows no inventory, so no bastion")
        if self._bastion is None:
            self._bastion = _gateway_link(self.inv)
        return self._bastion

    def reconnect(self, names: Iterable[str]) -> None:
        """Drop these nodes' connections (a reboot ended them), kept ones too: the next command
        opens a new one."""
        links = [self[name] for name in names]
        try:
            keeper.forget([c.keep for c in links if c.keep])
        except Exception:  # noqa: BLE001 - a keeper gone holds nothing
            pass
        for c in links:
            c.close()
            c.kept = False

    def close(self) -> None:
        """Close every connection; those this run made itself go to the keeper first, so the next
        run within ssh.control_persist finds them kept (keeper.adopt never fails the run)."""
        try:
            keeper.adopt([(c.keep, c.spec, c.persist) for c in self.links
                          if c.keep and not c.kept and getattr(c.conn, "made", True) and c.conn.is_connected])
        except Exception:  # noqa: BLE001
            pass
        for c in self.links + ([self._bastion] if self._bastion else []):
            c.close()

    def __enter__(self) -> "NodeGroup":
        return self

    def __exit__(self, *exc) -> bool:
        if self.owns:
            self.close()
        return False


def run_on(env, chosen: Iterable[Node | str] | None, command: str, **kw) -> dict[str, Result]:
    """`command` on env's nodes `chosen` (default all) over a group of its own: {node: Result}; the
    first node that failed raises its RemoteError (NodeGroup.run keeps every node's outcome)."""
    with nodes(env, chosen) as group:
        results = group.run(command, **kw)
    failed = [r for r in results.values() if isinstance(r, RemoteError)]
    if failed:
        raise failed[0]
    return results


def nodes(env, chosen: Iterable[Node | str] | None = None) -> NodeGroup:
    """The run's group of links to `chosen` (Nodes or names; default every node of env.inv), with
    the run's parallelism (env.parallel). Lazy: nothing connects until a command needs it. Use it
    as a context manager: the group closes every connection it opened."""
    picked = env.inv.nodes if chosen is None else [n if isinstance(n, Node) else env.inv.node(n) for n in chosen]
    return NodeGroup([_link(env.inv, n, env.masker) for n in picked], limit=env.parallel, inv=env.inv)


def stream(c: NodeLink, command: str, on_line, stop) -> None:
    """Run `command` and call on_line(line) as each stdout line arrives, until `stop` is set
    or the command ends. Closing the channel ends the remote command (SIGPIPE on its next write).
    Blocking: run it in a thread."""
    try:
        held = _start(c, command, stdin=False)
        buf = b""
        while not stop.is_set():
            data = held.recv(0.2)
            if data is None:
                continue
            if not data:
                break
            buf += data
            *lines, buf = buf.split(b"\n")
            for ln in lines:
                on_line(ln.decode(errors="replace"))
        held.close()
    except Exception as e:  # noqa: BLE001 - a dropped stream is reported by the caller's data gap
        on_line(f"@@error {describe(c, e, 'stream')}")


class Held:
    """A command that goes on running on a node while the caller holds something there (the
    deploy lock: fabfile/ops/lock.py). Its stdin stays open; closing the channel, or losing the
    connection, ends it. sudo's password prompt on its stderr is answered as it shows (SudoPrompt)."""

    def __init__(self, c: NodeLink, chan, prompt: SudoPrompt | None = None):
        self.c, self.chan, self.prompt, self._buf = c, chan, prompt, b""
        self._err = ""              # stderr read so far (the prompts stripped when shown: `stderr`)
        self.stderr = ""            # what it printed there, when it ended before holding

    def _answer_prompt(self) -> None:
        if self.prompt is None:
            return
        while self.chan.recv_stderr_ready():
            self._err += self.chan.recv_stderr(65536).decode(errors="replace")
        reply = self.prompt.reply(self._err)
        if reply:
            self.chan.sendall(reply.encode())

    def recv(self, timeout: float) -> bytes | None:
        """Up to 64 KiB of stdout: None when nothing came within `timeout` s, b"" once it ended."""
        self._answer_prompt()
        if self.prompt is not None and not self.prompt.answered:
            timeout = min(timeout, 0.05)       # sudo may be waiting on its prompt: look again soon
        self.chan.settimeout(timeout)
        try:
            return self.chan.recv(65536)
        except socket.timeout:
            return None

    def rest_of_stderr(self) -> str:
        """Everything it wrote on stderr, once it has ended (sudo's prompts left out)."""
        self._err += self.chan.makefile_stderr("rb").read().decode(errors="replace")
        return self.prompt.clean(self._err) if self.prompt else self._err

    def read_until(self, line: str, timeout: float) -> str:
        """stdout up to and including `line` (or to the end of the command), at most `timeout` s."""
        want = line.encode() + b"\n"
        deadline = time.monotonic() + timeout
        while want not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RemoteError(f"{self.c.name}: no answer within {timeout:g}s")
            data = self.recv(min(left, 1.0))
            if data is None:
                continue
            if not data:
                break
            self._buf += data
        text, sep, rest = self._buf.partition(want)
        self._buf = rest
        return (text + sep).decode(errors="replace")

    def send(self, text: str) -> None:
        self.chan.sendall(text.encode())

    @property
    def open(self) -> bool:
        return not self.chan.closed

    def close(self) -> None:
        try:
            self.chan.close()
        except Exception:  # noqa: BLE001 - already gone with its connection
            pass


def _start(c: NodeLink, command: str, stdin: bool) -> Held:
    """`command` started on a channel of its own (through sudo with become)."""
    trace.command(c.name, command, c.masker, c.become)
    ensure_open(c)
    cmd, prompt = privileged(c, command, stdin=stdin)
    return Held(c, _channel(c, cmd), prompt)


def hold(c: NodeLink, command: str, until: str, timeout: float = 30) -> tuple[Held, str]:
    """Start `command` and read its stdout up to the line `until` (or its end): (the running
    command, what it printed). A transport failure is a RemoteError naming the node."""
    try:
        held = _start(c, command, stdin=True)
        text = held.read_until(until, timeout)
        if not text.endswith(until + "\n"):   # it ended without holding: say why (sudo refusing...)
            err = held.rest_of_stderr()
            held.close()
            refused = _sudo_refused(c, err)
            if refused:
                raise RemoteError(refused)
            held.stderr = err
        return held, text
    except RemoteError:
        raise
    except Exception as e:  # noqa: BLE001
        raise RemoteError(describe(c, e, "lock")) from None


def describe(link: NodeLink, e: Exception, doing: str = "connect") -> str:
    """One line for a transport failure, naming the node and the likely fix."""
    c = link.conn
    gw = c.gateway if isinstance(getattr(c, "gateway", None), Connection) else None
    where = f"{link.name} ({c.host}:{c.port}" + (f" via bastion {gw.host}" if gw else "") + ")"
    if gw is not None and not gw.is_connected and not isinstance(e, paramiko.AuthenticationException) \
            and "not found in known_hosts" not in str(e):
        return f"{where}: the bastion {gw.host}:{gw.port} is unreachable or refused us ({e.__class__.__name__}" \
               f"{': ' + str(e) if str(e) else ''}) — is the bastion up? (ssh.gateway)"
    if isinstance(e, paramiko.SSHException) and "not found in known_hosts" in str(e):
        server = str(e).split("'")[1] if str(e).count("'") >= 2 else c.host
        return f"{where}: host key of {server} unknown — add it to the known_hosts named by ssh.known_hosts"
    if isinstance(e, HostKeyRefused):
        return f"{where}: {e}"
    if isinstance(e, paramiko.BadHostKeyException):
        revoked = _revoked_on_the_way(c, e)
        return f"{where}: {revoked}" if revoked else f"{where}: host key CHANGED — verify the node, then update ssh.known_hosts"
    if isinstance(e, paramiko.AuthenticationException):
        return f"{where}: SSH authentication failed — check ssh.user and ssh.key_filename"
    if isinstance(e, CommandTimedOut):
        return f"{where}: {e}"
    if isinstance(e, (socket.timeout, TimeoutError)):
        return f"{where}: unreachable ({doing} timed out) — is the node up? (inv lab.status for the lab)"
    if isinstance(e, OSError) and e.errno in (113, 101):  # EHOSTUNREACH, ENETUNREACH
        return f"{where}: unreachable (no route to host) — is the node up? (inv lab.status for the lab)"
    if isinstance(e, paramiko.ssh_exception.NoValidConnectionsError) and any(
            getattr(x, "errno", None) in (113, 101) for x in e.errors.values()):
        return f"{where}: unreachable (no route to host) — is the node up? (inv lab.status for the lab)"
    if isinstance(e, (ConnectionRefusedError, paramiko.ssh_exception.NoValidConnectionsError)):
        return f"{where}: connection refused — is sshd running on the node?"
    if isinstance(e, OSError) and e.errno == 28:
        return f"{where}: {doing} failed: no space left on the node's disk"
    if isinstance(e, FileNotFoundError) and doing == "connect":
        return f"{where}: SSH key file not found — check ssh.key_filename"
    return f"{where}: {doing} failed: {e.__class__.__name__}: {e}"


def _revoked_on_the_way(c: Connection, e: paramiko.BadHostKeyException) -> str | None:
    """A key that is not the trusted one may be a revoked one: say so (any hop's files)."""
    hop = c
    while isinstance(hop, Connection):
        policy = hop.client._policy
        if isinstance(policy, _KnownHostsPolicy) and policy.known.revocation(e.key.asbytes()):
            return _refusal(policy.known, e.hostname, e.key)
        hop = hop.gateway
    return None


def _short(cmd: str) -> str:
    cmd = " ".join(cmd.split())
    return cmd if len(cmd) < 70 else cmd[:67] + "..."


def as_bytes(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode())
