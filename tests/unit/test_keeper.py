"""The keeper's pure parts (fabfile/infra/keeper.py): the frames a run reads back whatever way the
bytes arrive, what it sends, how long connections are kept, where the socket may live, and the key
that makes an edited known_hosts get a new connection. The keeper itself, on real sshd, is
tests/cluster/test_keeper.py."""
from __future__ import annotations

import os
import socket
import struct

import pytest

from fabfile.infra import keeper, remote

pytestmark = pytest.mark.unit


def frame(kind: bytes, data: bytes = b"") -> bytes:
    return struct.pack(">cI", kind, len(data)) + data


def test_a_command_reads_back_the_same_whatever_the_chunks():
    stream = (frame(keeper.OUT, b"hello ") + frame(keeper.ERR, b"lbtk-sudo-x:") + frame(keeper.OUT, b"world\n")
              + frame(keeper.EXIT, struct.pack(">i", 3)))
    for cut in (1, 2, 5, 7, len(stream)):
        a, b = socket.socketpair()
        chan = keeper.KeptChannel(a)
        for k in range(0, len(stream), cut):
            b.sendall(stream[k:k + cut])
        b.close()
        out = err = b""
        while True:
            got = False
            if chan.recv_ready():
                out += chan.recv(4)
                got = True
            if chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
                got = True
            if not got and chan.eof_received:
                break
        assert (out, err, chan.recv_exit_status()) == (b"hello world\n", b"lbtk-sudo-x:", 3)
        chan.close()


def test_what_a_run_writes_is_framed():
    a, b = socket.socketpair()
    chan = keeper.KeptChannel(a)
    chan.sendall(b"release\n")
    chan.shutdown_write()
    assert keeper.recv_frame(b) == (keeper.IN, b"release\n")
    assert keeper.recv_frame(b) == (keeper.IN_END, b"")
    chan.close()
    assert keeper.recv_frame(b) is None           # the keeper sees the run hang up: it closes the channel


def test_a_held_command_times_out_then_ends():
    a, b = socket.socketpair()
    chan = keeper.KeptChannel(a)
    chan.settimeout(0.05)
    with pytest.raises(socket.timeout):
        chan.recv(10)
    b.sendall(frame(keeper.OUT, b"LOCK HELD\n"))
    assert chan.recv(65536) == b"LOCK HELD\n"
    b.close()                                      # the connection went: the end, status unknown
    assert chan.recv(10) == b""
    assert chan.recv_exit_status() == -1


def test_how_long_connections_are_kept(monkeypatch):
    monkeypatch.delenv("LBTK_CONTROL_PERSIST", raising=False)
    assert keeper.persist_seconds(None) == keeper.PERSIST_DEFAULT == 60
    assert keeper.persist_seconds(0) == 0
    assert keeper.persist_seconds(300) == 300
    monkeypatch.setenv("LBTK_CONTROL_PERSIST", "0")
    assert keeper.persist_seconds(300) == 0


def test_the_socket_lives_only_in_a_directory_of_the_users_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("LBTK_CACHE_DIR", str(tmp_path / "c"))
    path = keeper.keeper_dir()
    assert path == str(tmp_path / "c" / "keeper") and os.stat(path).st_mode & 0o777 == 0o700
    os.chmod(path, 0o755)
    assert keeper.keeper_dir() is None            # open to others: nothing is kept, nothing asked
    assert keeper.stats() is None and not keeper.holds("k", 0.1)


def spec(known_hosts: str) -> dict:
    return {"host": "10.189.0.11", "user": "root", "port": 22, "key_filename": None, "known_hosts": known_hosts,
            "config_file": None, "connect_timeout": None, "gateway": None}


def test_an_edited_known_hosts_gets_a_new_connection(tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("10.189.0.11 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
    s = spec(str(known))
    key = remote._keep_key(s)
    assert remote._keep_key(s) == key
    known.write_text(known.read_text() + "10.189.0.12 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJm\n")
    assert remote._keep_key(s) != key
    other = spec(str(known)) | {"user": "ops"}
    assert remote._keep_key(other) != remote._keep_key(s)


def test_a_command_that_ended_before_its_stdin_closed_still_reads_back():
    """The race the 30-node drain met: the keeper sent a quick command's exit status and hung up
    before the run closed the command's stdin. The close is no error; the output and status are read."""
    a, b = socket.socketpair()
    chan = keeper.KeptChannel(a)
    b.sendall(frame(keeper.OUT, b"ok\n") + frame(keeper.EXIT, struct.pack(">i", 0)))
    b.close()
    chan.shutdown_write()
    chan.sendall(b"release\n")
    assert chan.recv(65536) == b"ok\n"
    assert chan.recv_exit_status() == 0
