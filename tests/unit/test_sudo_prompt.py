"""sudo's password reaches sudo and never the command (issue 24): answered only at sudo's own
prompt, with and without a cached ticket, with NOPASSWD, through run() and hold() (the lock's
channel). A fake `sudo` on PATH stands in for sudo 1.9: it uses a cached ticket unless -k,
asks nothing under NOPASSWD, and re-prompts after a wrong password."""
from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from types import SimpleNamespace

import pytest

from fabfile.infra import remote

PASSWORD = 's3"cr\\et'

FAKE_SUDO = r"""#!/bin/sh
k=; n=; prompt='Password:'
while [ $# -gt 0 ]; do
  case $1 in -k) k=1;; -S|-H) ;; -n) n=1;; -p) shift; prompt=$1;; --) shift; break;; *) break;; esac
  shift
done
if [ -z "$FAKE_SUDO_NOPASSWD" ] && { [ -n "$k" ] || [ -z "$FAKE_SUDO_TICKET" ]; }; then
  [ -n "$n" ] && { echo 'sudo: a password is required' >&2; exit 1; }
  tries=0
  while :; do
    printf '%s' "$prompt" >&2
    IFS= read -r pw || { echo 'sudo: no password was provided' >&2; exit 1; }
    [ "$pw" = "$FAKE_SUDO_PASSWORD" ] && break
    tries=$((tries + 1)); echo 'Sorry, try again.' >&2
    [ $tries -ge 3 ] && { echo "sudo: $tries incorrect password attempts" >&2; exit 1; }
  done
fi
exec "$@"
"""

# what the command read from its stdin, whatever came down the channel
READS_STDIN = "IFS= read -r line; printf 'got:%s\\n' \"$line\""


@pytest.fixture
def fake_env(tmp_path, monkeypatch):
    sudo = tmp_path / "sudo"
    sudo.write_text(FAKE_SUDO)
    sudo.chmod(0o755)
    monkeypatch.setenv("T_SUDO_PW", PASSWORD)
    return {"PATH": f"{tmp_path}:{os.environ['PATH']}", "FAKE_SUDO_PASSWORD": PASSWORD}


class LocalChannel:
    """The slice of paramiko's Channel that remote.run, remote.hold and remote.stream use, over a
    local sh. Like paramiko's, fileno() is readable while either stream holds data, and once both
    have ended."""

    def __init__(self, env: dict):
        self.env, self.closed, self.timeout = env, False, None
        self.out, self.err = bytearray(), bytearray()
        self.out_eof = threading.Event()
        self.err_eof = threading.Event()
        self.lock = threading.Condition()
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)

    def exec_command(self, cmd: str) -> None:
        self.p = subprocess.Popen(["sh", "-c", cmd], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env={**os.environ, **self.env})
        for f, buf, eof in ((self.p.stdout, self.out, self.out_eof), (self.p.stderr, self.err, self.err_eof)):
            threading.Thread(target=self._pump, args=(f, buf, eof), daemon=True).start()

    def _pump(self, f, buf, eof):
        while chunk := os.read(f.fileno(), 65536):
            with self.lock:
                buf += chunk
                self._wake()
        with self.lock:
            eof.set()
            self._wake()

    def _wake(self) -> None:
        self.lock.notify_all()
        if not self.closed:             # a channel closed early (hold's) has closed its pipe too
            os.write(self._w, b".")

    def _drained(self) -> None:
        """Nothing left to read: fileno() is no longer readable (unless both streams ended)."""
        if not self.out and not self.err and not self.eof_received:
            try:
                while os.read(self._r, 4096):
                    pass
            except BlockingIOError:
                pass

    @property
    def eof_received(self) -> bool:
        return self.out_eof.is_set() and self.err_eof.is_set()

    def fileno(self) -> int:
        return self._r

    def shutdown_write(self) -> None:
        self.p.stdin.close()

    def recv_ready(self) -> bool:
        with self.lock:
            return bool(self.out)

    def recv_exit_status(self) -> int:
        return self.p.wait(10)

    def settimeout(self, t):
        self.timeout = t

    def recv(self, n):
        with self.lock:
            if not self.lock.wait_for(lambda: self.out or self.out_eof.is_set(), self.timeout):
                raise socket.timeout()
            data = bytes(self.out[:n])
            del self.out[:n]
            self._drained()
            return data

    def recv_stderr_ready(self):
        with self.lock:
            return bool(self.err)

    def recv_stderr(self, n):
        with self.lock:
            data = bytes(self.err[:n])
            del self.err[:n]
            self._drained()
            return data

    def makefile_stderr(self, mode):
        self.err_eof.wait(10)
        return SimpleNamespace(read=lambda: self.recv_stderr(1 << 20))

    def sendall(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def close(self):
        with self.lock:
            self.closed = True
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(5)
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass


def fake_conn(env: dict):
    """What run/hold read of a NodeLink: sudo with a password from T_SUDO_PW, and a transport."""
    conn = SimpleNamespace(
        is_connected=True, host="127.0.0.1", port=22, gateway=None,
        transport=SimpleNamespace(open_session=lambda: LocalChannel(env)))
    return remote.NodeLink("lb1", conn, become="sudo", password_env="T_SUDO_PW")


# ------------------------------------------------------------------------------ the pure pieces
def test_the_command_line_ignores_tickets_prompts_with_a_marker_and_holds_no_password(monkeypatch):
    monkeypatch.setenv("T_SUDO_PW", PASSWORD)
    c = fake_conn({})
    cmd, prompt = remote.privileged(c, "cat /etc/shadow")
    assert cmd.startswith(f"sudo -k -S -p {prompt.marker} -H -- sh -c ")
    assert PASSWORD not in cmd and prompt.password == PASSWORD
    assert "exec </dev/null" in cmd           # a command that does not need stdin never sees the channel
    held_cmd, other = remote.privileged(c, "read -r w", stdin=True)
    assert "/dev/null" not in held_cmd and other.marker != prompt.marker   # a fresh marker per command


def test_the_prompt_is_answered_once_and_only_when_sudo_asks():
    p = remote.SudoPrompt(PASSWORD)
    assert p.reply("") is None and p.reply("anything the command says") is None
    assert p.reply(p.marker) == PASSWORD + "\n"
    assert p.reply(p.marker + "ok") is None                   # the same prompt: answered already
    assert p.reply(p.marker * 2) == "\n"                      # asked again: refused, give up
    assert p.clean(f"{p.marker}Sorry, try again.\n{p.marker}") == "Sorry, try again.\n"


# ------------------------------------------------------------------------------ a fake sudo on PATH
SUDO_STATES = {"no ticket": {}, "cached ticket": {"FAKE_SUDO_TICKET": "1"},
               "NOPASSWD": {"FAKE_SUDO_NOPASSWD": "1"}}


@pytest.mark.parametrize("state", SUDO_STATES)
def test_run_never_hands_the_password_to_the_command(fake_env, state):
    r = remote.run(fake_conn({**fake_env, **SUDO_STATES[state]}), READS_STDIN, timeout=10)
    assert r.stdout == "got:\n" and PASSWORD not in r.stdout + r.stderr


@pytest.mark.parametrize("state", SUDO_STATES)
def test_hold_gives_the_command_only_what_is_sent_to_it(fake_env, state):
    """The lock's shape: the command answers, then reads its word from stdin."""
    c = fake_conn({**fake_env, **SUDO_STATES[state]})
    held, text = remote.hold(c, "echo READY; " + READS_STDIN, "READY", timeout=10)
    try:
        assert text == "READY\n"
        held.send("release\n")
        assert held.read_until("got:release", 10) == "got:release\n"
    finally:
        held.close()


def test_stream_never_hands_the_password_to_the_command(fake_env):
    lines, stop = [], threading.Event()
    remote.stream(fake_conn({**fake_env, "FAKE_SUDO_TICKET": "1"}), READS_STDIN, lines.append, stop)
    assert lines == ["got:"]


def test_a_wrong_password_is_one_line_not_a_hang(fake_env):
    start = time.monotonic()
    with pytest.raises(remote.RemoteError, match="lb1: sudo refused: wrong password"):
        remote.run(fake_conn({**fake_env, "FAKE_SUDO_PASSWORD": "other"}), "true", timeout=10)
    assert time.monotonic() - start < 5
