"""SSH connections kept between runs: OpenSSH's ControlPersist, which Ansible turns on by default.

A run that finds no kept connection connects itself, exactly as before (every refusal, retry and
one-line error unchanged), and hands the connection's description to the keeper when it ends; the
keeper, a small process of the user's own, connects the same way and keeps the connection while
runs use it, `ssh.control_persist` seconds after the last use (default 60; 0 keeps none). The
next run's commands, its held lock and its SFTP uploads ride that connection through a Unix
socket, so a run within the minute skips the TCP and SSH handshakes and sshd's per-connection
work: about 30 ms of CPU a node on the lab, most of what a verify or a no-op deploy costs.

The socket lives in a directory of the user's alone (0700, refused otherwise), and the keeper
answers only its own user (SO_PEERCRED). A connection is kept under a key that covers every
input to it (host, port, user, key, bastion, ssh_config, and the versions of the key, known_hosts
and ssh_config files), so an edited known_hosts or key gets a new, freshly verified connection.
Like ControlPersist, a kept connection outlives a host key changed on the node (sshd keeps
established sessions): `inv connections --stop` (or control_persist: 0) ends them.

The keeper prints nothing and logs nothing: commands and sudo's password pass through it in
memory only.

Wire format on the socket: frames of one type byte, a 4-byte length and the payload; the first is
the request (JSON), the keeper's first answers it (SFTP: raw bytes once the keeper said `k`).
"""
from __future__ import annotations

import json
import os
import select
import socket
import struct
import sys
import threading
import time

PERSIST_DEFAULT = 60          # seconds (ssh.control_persist unset), Ansible's ControlPersist
SOCKET = "keeper-1.sock"        # the wire format's version: a keeper of another release is never asked
LOCK = "keeper.lock"

# frames, keeper -> run: ok, not held, stdout, stderr, exit status; run -> keeper: stdin, its end
OK, NOT_HELD, OUT, ERR, EXIT = b"k", b"n", b"o", b"e", b"x"
IN, IN_END, HEADER = b"i", b"w", b"h"
_HEAD = struct.Struct(">cI")


def persist_seconds(stated: int | None) -> int:
    """How long connections are kept: LBTK_CONTROL_PERSIST (a number of seconds) over the
    inventory's ssh.control_persist over PERSIST_DEFAULT; 0 keeps none."""
    env = os.environ.get("LBTK_CONTROL_PERSIST", "").strip()
    if env.isdigit():
        return int(env)
    return PERSIST_DEFAULT if stated is None else stated


def keeper_dir() -> str | None:
    """The keeper's directory: $XDG_RUNTIME_DIR/lbtk, else the user's lbtk cache directory
    (LBTK_CACHE_DIR...); None when it cannot be the user's alone (then nothing is kept)."""
    from fabfile.infra.template_cache import private_dir, xdg_cache_home
    explicit = os.environ.get("LBTK_CACHE_DIR")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if explicit:
        path = os.path.join(explicit, "keeper")
    elif runtime:
        path = os.path.join(runtime, "lbtk")
    else:
        path = os.path.join(xdg_cache_home(), "lbtk", "keeper")
    return path if private_dir(path) else None


# ---------------------------------------------------------------- frames

def send_frame(sock: socket.socket, kind: bytes, data: bytes = b"") -> None:
    sock.sendall(_HEAD.pack(kind, len(data)) + data)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        got = sock.recv(n - len(buf))
        if not got:
            return None
        buf += got
    return buf


def pop_frames(buf: bytearray):
    """Each whole frame at the head of `buf` as (type, payload), taken out of it; a partial frame
    stays for the bytes still to come."""
    while len(buf) >= _HEAD.size:
        kind, size = _HEAD.unpack_from(buf)
        if len(buf) < _HEAD.size + size:
            return
        payload = bytes(buf[_HEAD.size:_HEAD.size + size])
        del buf[:_HEAD.size + size]
        yield kind, payload


def recv_frame(sock: socket.socket) -> tuple[bytes, bytes] | None:
    """One whole frame (blocking), or None at the end of the stream."""
    head = _recv_exact(sock, _HEAD.size)
    if head is None:
        return None
    kind, size = _HEAD.unpack(head)
    data = _recv_exact(sock, size) if size else b""
    return None if data is None else (kind, data)


# ---------------------------------------------------------------- the run's side

def _dial(timeout: float = 2.0) -> socket.socket | None:
    path = keeper_dir()
    if path is None:
        return None
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(os.path.join(path, SOCKET))
    except OSError:
        s.close()
        return None
    return s


def _ask(header: dict, timeout: float = 2.0) -> tuple[socket.socket, bytes] | None:
    """Send a request; (the socket, the keeper's first frame type), or None when no keeper answers."""
    s = _dial(timeout)
    if s is None:
        return None
    try:
        send_frame(s, HEADER, json.dumps(header).encode())
        first = recv_frame(s)
    except OSError:
        first = None
    if first is None:
        s.close()
        return None
    return s, first[0]


def holds(key: str, wait: float) -> bool:
    """Whether the keeper holds a live connection under `key` (waiting up to `wait` s for one it is
    making)."""
    got = _ask({"op": "have", "key": key, "wait": wait}, timeout=wait + 2.0)
    if got is None:
        return False
    got[0].close()
    return got[1] == OK


def _channel_socket(op: str, key: str, open_timeout: float, **extra) -> socket.socket | None:
    """The socket of a new channel (`op`: exec, sftp) on the kept connection under `key`, blocking,
    once the keeper said it opened; None when the keeper does not hold it (any more)."""
    got = _ask({"op": op, "key": key, "timeout": open_timeout, **extra}, timeout=open_timeout + 2.0)
    if got is None:
        return None
    s, kind = got
    if kind != OK:
        s.close()
        return None
    s.settimeout(None)
    return s


def session(key: str, command: str, open_timeout: float) -> "KeptChannel | None":
    """`command` started on a new channel of the kept connection: a channel-like object (the subset
    of paramiko's Channel that remote uses), or None when the keeper does not hold it (any more)."""
    s = _channel_socket("exec", key, open_timeout, command=command)
    return None if s is None else KeptChannel(s)


def sftp_socket(key: str, open_timeout: float) -> socket.socket | None:
    """A socket carrying an SFTP session of the kept connection (paramiko.SFTPClient takes it), or
    None when the keeper does not hold it."""
    s = _channel_socket("sftp", key, open_timeout)
    return None if s is None else SftpSocket(fileno=s.detach())


class SftpSocket(socket.socket):
    """The socket as paramiko's SFTP client uses a channel besides send/recv: its name (logging) and
    whether a reply is waiting (pipelined writes)."""

    def get_name(self) -> str:
        return "lbtk-kept-sftp"

    def recv_ready(self) -> bool:
        return bool(select.select([self], [], [], 0)[0])


def adopt(entries: list[tuple[str, dict, int]]) -> None:
    """Ask the keeper to connect each (key, spec, persist) for the next runs; starts the keeper
    when none runs. Never waits for the connections and never fails the run: a keeper that cannot
    connect simply holds nothing, and the next run connects itself again."""
    if not entries:
        return
    header = {"op": "adopt", "entries": [[k, spec, persist] for k, spec, persist in entries]}
    got = _ask(header)
    if got is not None:
        got[0].close()
        return
    _spawn(header)


def forget(keys: list[str]) -> None:
    """Drop these kept connections (their node rebooted, or is being replaced)."""
    if keys and (got := _ask({"op": "forget", "keys": keys})) is not None:
        got[0].close()


def stop() -> bool:
    """End the keeper and every connection it keeps; False when none ran."""
    got = _ask({"op": "stop"})
    if got is None:
        return False
    got[0].close()
    return True


def stats() -> dict | None:
    """What the keeper holds: {"held": n, "connects": made since it started, "sessions": served}."""
    got = _ask({"op": "stats"})
    if got is None:
        return None
    s, _ = got
    try:
        frame = recv_frame(s)
    finally:
        s.close()
    return json.loads(frame[1]) if frame else None


def _spawn(first: dict) -> None:
    """Start the keeper, detached (its own session, no terminal, nothing printed), with the first
    request on its stdin; it exits by itself once nothing has been kept for the persist time."""
    import subprocess
    path = keeper_dir()
    if path is None:
        return
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    try:
        proc = subprocess.Popen([sys.executable, "-m", "fabfile.infra.keeper", path], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/",
                                start_new_session=True, close_fds=True, env=env)
        proc.stdin.write(json.dumps(first).encode())
        proc.stdin.close()
    except OSError:
        pass


class KeptChannel:
    """A command running on a kept connection, seen as the part of paramiko's Channel that
    remote._exec and remote.Held use."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self._out, self._err, self._pending = bytearray(), bytearray(), bytearray()
        self.eof_received = False
        self.closed = False
        self.status = -1
        self._timeout: float | None = None

    # reading
    def _take(self, block: float | None) -> None:
        """Read what the socket has (waiting up to `block` s for something when given), and file
        each whole frame."""
        if self.eof_received:
            return
        if block is not None or select.select([self.sock], [], [], 0)[0]:
            if block is not None and not select.select([self.sock], [], [], block)[0]:
                return
            try:
                data = self.sock.recv(262144)
            except OSError:
                data = b""
            if not data:
                self.eof_received = True
                return
            self._pending += data
        for kind, payload in pop_frames(self._pending):
            if kind == OUT:
                self._out += payload
            elif kind == ERR:
                self._err += payload
            elif kind == EXIT:
                self.status = struct.unpack(">i", payload)[0]
                self.eof_received = True

    def recv_ready(self) -> bool:
        self._take(None)
        return bool(self._out)

    def recv_stderr_ready(self) -> bool:
        self._take(None)
        return bool(self._err)

    @staticmethod
    def _cut(buf: bytearray, n: int) -> bytes:
        part = bytes(buf[:n])
        del buf[:n]
        return part

    def recv(self, n: int) -> bytes:
        """stdout, as Channel.recv: waits up to settimeout's time (socket.timeout), b"" at the end."""
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        while not self._out and not self.eof_received:
            left = 1.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout()
            self._take(left)
        return self._cut(self._out, n)

    def recv_stderr(self, n: int) -> bytes:
        while not self._err and not self.eof_received:
            self._take(1.0)
        return self._cut(self._err, n)

    def recv_exit_status(self) -> int:
        while not self.eof_received:
            self._take(1.0)
        return self.status

    def makefile_stderr(self, _mode: str = "rb"):
        """What is left of stderr once the command ends (Held.rest_of_stderr)."""
        chan = self

        class _Rest:
            def read(self) -> bytes:
                chan.recv_exit_status()
                return chan._cut(chan._err, len(chan._err))
        return _Rest()

    def fileno(self) -> int:
        return self.sock.fileno()

    def settimeout(self, timeout: float | None) -> None:
        self._timeout = timeout

    # writing
    def _send(self, kind: bytes, data: bytes = b"") -> None:
        """A frame to the command's stdin. A command that has already ended (the keeper sent its
        exit status and hung up; a `true` can end before the run closes its stdin) takes nothing:
        what it printed and its status are still in the socket, for the reads to come."""
        try:
            send_frame(self.sock, kind, data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def sendall(self, data: bytes) -> None:
        self._send(IN, data)

    def shutdown_write(self) -> None:
        self._send(IN_END)

    def close(self) -> None:
        """The keeper closes the channel when this socket ends: the node's side gets a hangup, as
        when a direct connection's channel closes."""
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass


# ---------------------------------------------------------------- the keeper's side

class _Held:
    """One kept connection: made once (`ready` set when done), used by many sessions."""

    def __init__(self, spec: dict, persist: int):
        self.spec, self.persist = spec, persist
        self.conn = None
        self.ready = threading.Event()
        self.in_use = 0
        self.last = time.monotonic()

    def alive(self) -> bool:
        t = self.conn.client.get_transport() if self.conn is not None else None
        return t is not None and t.is_active()


def _keepalive(conn) -> None:
    """TCP keepalives on a kept connection's socket: a node that went away without a word (powered
    off, its container gone) is noticed within about 30 s, not at the next run's timeout."""
    sock = getattr(conn.client.get_transport(), "sock", None)
    if not isinstance(sock, socket.socket):
        return                            # through a bastion: the bastion's connection carries it
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
    except OSError:
        pass


class Keeper:
    def __init__(self, path: str):
        self.path = path
        self.held: dict[str, _Held] = {}
        self.lock = threading.Lock()
        self.busy = 0                   # requests being served
        self.last = time.monotonic()
        self.connects = self.sessions = 0
        self.done = threading.Event()
        self.listener: socket.socket | None = None

    # connections
    def _connect(self, key: str, h: _Held) -> None:
        from fabfile.infra import remote
        try:
            conn = remote.connect_spec(h.spec)
            conn.open()
            _keepalive(conn)
            h.conn = conn
            with self.lock:
                self.connects += 1
        except Exception:  # noqa: BLE001 - nothing kept; the next run connects itself and says why
            with self.lock:
                if self.held.get(key) is h:
                    del self.held[key]
        finally:
            h.ready.set()

    def adopt(self, entries: list) -> None:
        for key, spec, persist in entries:
            with self.lock:
                if key in self.held:
                    self.held[key].persist = persist
                    continue
                h = self.held[key] = _Held(spec, persist)
            threading.Thread(target=self._connect, args=(key, h), daemon=True).start()

    def _get(self, key: str, wait: float) -> _Held | None:
        with self.lock:
            h = self.held.get(key)
        if h is None or not h.ready.wait(wait):
            return None
        if not h.alive():
            self._drop([key])
            return None
        return h

    def _drop(self, keys: list[str]) -> None:
        with self.lock:
            gone = [self.held.pop(k) for k in keys if k in self.held]
        for h in gone:
            if h.conn is not None:
                try:
                    h.conn.close()
                except Exception:  # noqa: BLE001
                    pass

    # requests
    def close(self) -> None:
        """Stop answering at once (the socket goes, so the next run finds no keeper), then end."""
        self.done.set()
        try:
            os.unlink(os.path.join(self.path, SOCKET))
        except FileNotFoundError:
            pass
        if self.listener is not None:
            try:
                self.listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def serve(self, listener: socket.socket) -> None:
        self.listener = listener
        threading.Thread(target=self._reap, daemon=True).start()
        listener.settimeout(1.0)
        while not self.done.is_set():
            try:
                s, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            threading.Thread(target=self._handle, args=(s,), daemon=True).start()
        self._drop(list(self.held))

    def _reap(self) -> None:
        """Drop connections idle for their persist time; end once nothing is kept or asked."""
        while not self.done.wait(1.0):
            now = time.monotonic()
            with self.lock:
                idle = [k for k, h in self.held.items()
                        if h.in_use == 0 and h.ready.is_set() and now - h.last > h.persist]
            self._drop(idle)
            with self.lock:
                ending = not self.held and self.busy == 0 and now - self.last > 5
            if ending:
                self.close()

    def _handle(self, s: socket.socket) -> None:
        with self.lock:
            self.busy += 1
            self.last = time.monotonic()
        try:
            uid = struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
            if uid != os.geteuid():
                return
            frame = recv_frame(s)
            if frame is None or frame[0] != HEADER:
                return
            self.request(json.loads(frame[1]), s)
        except Exception:  # noqa: BLE001 - one request failed; the run falls back or reports it
            pass
        finally:
            with self.lock:
                self.busy -= 1
                self.last = time.monotonic()
            try:
                s.close()
            except OSError:
                pass

    def request(self, req: dict, s: socket.socket) -> None:
        op = req.get("op")
        if op == "adopt":
            self.adopt(req["entries"])
            send_frame(s, OK)
        elif op == "have":
            send_frame(s, OK if self._get(req["key"], float(req.get("wait", 5))) else NOT_HELD)
        elif op == "forget":
            self._drop(req["keys"])
            send_frame(s, OK)
        elif op == "stats":
            send_frame(s, OK)
            with self.lock:
                body = {"held": sum(1 for h in self.held.values() if h.conn is not None),
                        "connects": self.connects, "sessions": self.sessions, "pid": os.getpid()}
            send_frame(s, OK, json.dumps(body).encode())
        elif op == "stop":
            self.close()
            send_frame(s, OK)
        elif op in ("exec", "sftp"):
            self._session(req, s)

    def _session(self, req: dict, s: socket.socket) -> None:
        h = self._get(req["key"], float(req.get("timeout", 5)))
        if h is None:
            send_frame(s, NOT_HELD)
            return
        with self.lock:
            h.in_use += 1
            self.sessions += 1
        try:
            try:
                chan = h.conn.client.get_transport().open_session(timeout=float(req.get("timeout", 5)))
                if req["op"] == "sftp":
                    chan.invoke_subsystem("sftp")
                else:
                    chan.exec_command(req["command"])
            except Exception:  # noqa: BLE001 - a connection gone since: the run connects itself
                self._drop([req["key"]])
                send_frame(s, NOT_HELD)
                return
            send_frame(s, OK)
            try:
                (_pipe if req["op"] == "sftp" else _relay)(chan, s)
            finally:
                chan.close()
        finally:
            with self.lock:
                h.in_use -= 1
                h.last = time.monotonic()


def _relay(chan, s: socket.socket) -> None:
    """A command's channel <-> the run's socket, as frames, until the command ends (its exit
    status is the last frame) or the run hangs up (the channel is closed: the node sees a hangup)."""
    inbox = bytearray()
    while True:
        readable = select.select([chan, s], [], [], 1.0)[0]
        if s in readable:
            data = s.recv(65536)
            if not data:
                return
            inbox += data
            for kind, payload in pop_frames(inbox):
                if kind == IN:
                    chan.sendall(payload)
                elif kind == IN_END:
                    chan.shutdown_write()
        moved = False
        while chan.recv_ready():
            send_frame(s, OUT, chan.recv(65536))
            moved = True
        while chan.recv_stderr_ready():
            send_frame(s, ERR, chan.recv_stderr(65536))
            moved = True
        if not moved and (chan.eof_received or chan.closed):
            send_frame(s, EXIT, struct.pack(">i", chan.recv_exit_status()))
            return


def _pipe(chan, s: socket.socket) -> None:
    """An SFTP channel <-> the run's socket, bytes as they are, until either side ends."""
    while True:
        readable = select.select([chan, s], [], [], 1.0)[0]
        if s in readable:
            data = s.recv(65536)
            if not data:
                return
            chan.sendall(data)
        if chan in readable or chan.recv_ready():
            data = chan.recv(65536)
            if not data:
                return
            s.sendall(data)


def main(path: str) -> None:
    """The keeper process: one per user, held by an flock on LOCK (a second one exits at once)."""
    import fcntl
    os.umask(0o077)
    lock = open(os.path.join(path, LOCK), "a")
    first = sys.stdin.read()
    deadline = time.monotonic() + 5
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError:
            # another keeper: a running one takes the request; one that is ending (stopped, or
            # idle) lets go of the lock within moments, and this one takes over
            got = _ask(json.loads(first)) if first else None
            if got or time.monotonic() > deadline:
                if got:
                    got[0].close()
                return
            time.sleep(0.05)
    sock_path = os.path.join(path, SOCKET)
    try:
        os.unlink(sock_path)
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    listener.listen(256)
    keeper = Keeper(path)
    if first:
        req = json.loads(first)
        if req.get("op") == "adopt":
            keeper.adopt(req["entries"])
    try:
        keeper.serve(listener)
    finally:
        keeper.close()
        listener.close()


if __name__ == "__main__":
    main(sys.argv[1])
