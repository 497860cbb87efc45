"""The only Fabric code: open verified SSH connections, run commands, move bytes.

Host keys are checked against the inventory's known_hosts (RejectPolicy: an unknown or
changed key is an error, never silently accepted). Everything else in the toolkit works on
the strings these functions return.
"""
from __future__ import annotations

import io
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import paramiko
from fabric import Connection, ThreadingGroup
from fabric.exceptions import GroupException
from invoke.exceptions import UnexpectedExit

from .errors import LbtkError, quiet_third_party_logging
from .model import Inventory, Node
from .parsers.lbtk import last_line

quiet_third_party_logging()


class RemoteError(LbtkError):
    """A node could not be reached or a command failed; str() is one line naming the node."""


@dataclass
class Result:
    stdout: str
    stderr: str
    exited: int


def connect(inv: Inventory, node: Node) -> Connection:
    ssh = inv.ssh_of(node)
    kwargs = {"look_for_keys": ssh.key_filename is None, "allow_agent": ssh.key_filename is None,
              "banner_timeout": ssh.connect_timeout,
              "auth_timeout": ssh.connect_timeout, "gss_auth": False, "gss_kex": False}
    if ssh.key_filename:
        kwargs["key_filename"] = os.path.expanduser(ssh.key_filename)
    c = Connection(node.host, user=ssh.user, port=ssh.port, connect_kwargs=kwargs,
                   connect_timeout=ssh.connect_timeout)
    known = os.path.expanduser(ssh.known_hosts or "~/.ssh/known_hosts")
    if os.path.exists(known):
        c.client.load_system_host_keys(known)  # read-only: never writes the file
    c.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    c.lbtk_node = node.name
    return c


def run(c: Connection, command: str, check: bool = True, timeout: float | None = 60) -> Result:
    try:
        r = c.run(command, hide=True, warn=not check, in_stream=False, timeout=timeout)
    except UnexpectedExit as e:
        r = e.result
        detail = last_line(r.stderr) or last_line(r.stdout)
        raise RemoteError(f"{c.lbtk_node}: `{_short(command)}` exited {r.exited}"
                          + (f": {detail}" if detail else "")) from None
    except Exception as e:  # noqa: BLE001 - every transport failure becomes one line
        raise RemoteError(describe(c, e)) from None
    return Result(r.stdout, r.stderr, r.exited)


def put(c: Connection, content: bytes, path: str, mode: int) -> None:
    try:
        sftp = c.sftp()
        with sftp.file(path, "wb") as f:
            f.chmod(mode)  # before the first byte: a secret is never readable by others
            f.write(content)
    except Exception as e:  # noqa: BLE001
        raise RemoteError(describe(c, e, f"upload {path}")) from None


def parallel(conns: list[Connection], fn, *args):
    """fn(conn, *args) on every connection at once; results in the same order.

    Per-node work differs (files, commands), so this is a thread pool rather than a Fabric
    Group; `group_run` below is the Group for identical commands.
    """
    with ThreadPoolExecutor(max_workers=max(1, len(conns))) as pool:
        futures = [pool.submit(fn, c, *args) for c in conns]
        return [f.result() for f in futures]


def group_run(conns: list[Connection], command: str, timeout: float = 60) -> dict[str, Result | RemoteError]:
    """One identical command on every node through a Fabric ThreadingGroup (one round trip each)."""
    group = ThreadingGroup.from_connections(conns)
    try:
        results = group.run(command, hide=True, warn=True, in_stream=False, timeout=timeout)
    except GroupException as e:
        results = e.result
    out = {}
    for c, r in results.items():
        if isinstance(r, Exception):
            out[c.lbtk_node] = RemoteError(describe(c, r))
        else:
            out[c.lbtk_node] = Result(r.stdout, r.stderr, r.exited)
    return out


def open_all(conns: list[Connection]) -> None:
    """Connect every node now (in parallel), so threads sharing a connection never race to open it."""
    def _open(c):
        try:
            c.open()
        except Exception as e:  # noqa: BLE001
            raise RemoteError(describe(c, e)) from None
    parallel(conns, _open)


def stream(c: Connection, command: str, on_line, stop) -> None:
    """Run `command` and call on_line(line) as each stdout line arrives, until `stop` is set
    or the command ends. Closing the channel ends the remote command (SIGPIPE on its next write).
    Blocking: run it in a thread."""
    try:
        c.open()
        chan = c.transport.open_session()
        chan.settimeout(0.2)
        chan.exec_command(command)
        buf = b""
        while not stop.is_set():
            try:
                data = chan.recv(65536)
            except socket.timeout:
                continue
            if not data:
                break
            buf += data
            *lines, buf = buf.split(b"\n")
            for ln in lines:
                on_line(ln.decode(errors="replace"))
        chan.close()
    except Exception as e:  # noqa: BLE001 - a dropped stream is reported by the caller's data gap
        on_line(f"@@error {describe(c, e, 'stream')}")


def close(conns: list[Connection]) -> None:
    for c in conns:
        c.close()


def describe(c: Connection, e: Exception, doing: str = "connect") -> str:
    """One line for a transport failure, naming the node and the likely fix."""
    where = f"{c.lbtk_node} ({c.host}:{c.port})"
    if isinstance(e, paramiko.SSHException) and "not found in known_hosts" in str(e):
        return f"{where}: host key unknown — add it to the known_hosts named by ssh.known_hosts"
    if isinstance(e, paramiko.BadHostKeyException):
        return f"{where}: host key CHANGED — verify the node, then update ssh.known_hosts"
    if isinstance(e, paramiko.AuthenticationException):
        return f"{where}: SSH authentication failed — check ssh.user and ssh.key_filename"
    if e.__class__.__name__ == "CommandTimedOut":
        return f"{where}: `{_short(e.result.command)}` did not finish within {e.timeout:g}s"
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


def _short(cmd: str) -> str:
    cmd = " ".join(cmd.split())
    return cmd if len(cmd) < 70 else cmd[:67] + "..."


def as_bytes(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode())
