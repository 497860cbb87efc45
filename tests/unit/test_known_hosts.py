"""Host keys as ssh checks them (issue 24): `@revoked` keys refused in one line, `@cert-authority`
said to be unsupported in one line instead of crashing, and the files ssh_config names
(UserKnownHostsFile, GlobalKnownHostsFile) read. The handshakes run over a socketpair against
paramiko's own server side: no network."""
from __future__ import annotations

import base64
import hashlib
import hmac
import socket
import threading

import paramiko
import pytest

from fabfile.infra import remote
from fabfile.parsers import known_hosts as kh

from .test_reach import inv_with, link

HOST = "10.189.0.11"            # the lab inventory's first node, port 22


@pytest.fixture(scope="module")
def keys():
    return paramiko.ECDSAKey.generate(), paramiko.ECDSAKey.generate()


def line(key, hosts: str = HOST, marker: str = "") -> str:
    return " ".join(x for x in (marker, hosts, key.get_name(), key.get_base64(), "comment") if x) + "\n"


def hashed(name: str) -> str:
    salt = b"0123456789abcdefghij"
    mac = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(mac).decode()}"


# ------------------------------------------------------------------------------ the pure parser
def test_patterns_match_as_ssh_matches_them():
    assert kh.matches("lb1,10.0.0.1", "10.0.0.1") and kh.matches("LB1", "lb1")
    assert kh.matches("*.example.com", "lb1.example.com") and not kh.matches("*.example.com", "example.org")
    assert not kh.matches("*.example.com,!bad.example.com", "bad.example.com")
    assert kh.matches("[lb1]:2222", kh.host_key_name("lb1", 2222)) and not kh.matches("lb1", "[lb1]:2222")
    assert kh.matches("lb?", "lb1") and kh.matches(hashed("lb1"), "lb1") and not kh.matches(hashed("lb1"), "lb2")


def test_markers_are_read_and_bad_lines_skipped(keys):
    good, bad = keys
    text = (line(good) + line(bad) + line(bad, "*", "@revoked") + line(good, "*.example.com", "@cert-authority")
            + "@unknown-marker lb1 ssh-ed25519 AAAA\n" + "lb1 ssh-rsa not-base64!\n" + "# comment\n\n" + "lb1 short\n")
    found = kh.for_host(kh.parse(text, "kh"), HOST)
    assert [ln.blob for ln in found.trusted] == [good.asbytes()]           # revoked wins over a trusting line
    assert found.revocation(bad.asbytes()).where == "kh:3"
    assert found.authorities == []
    assert kh.for_host(kh.parse(text, "kh"), "lb1.example.com").authorities[0].where == "kh:4"


# ------------------------------------------------------------------------------ through a handshake
def accepted(e: Exception | None) -> bool:
    """The handshake got past the host key: only then does paramiko look for a way to log in."""
    return isinstance(e, paramiko.SSHException) and str(e) == "No authentication methods available"


def handshake(link, server_key) -> Exception | None:
    """Connect the link's SSHClient to a paramiko server presenting server_key: the exception raised."""
    c = link.conn
    ours, theirs = socket.socketpair()
    t = paramiko.Transport(theirs)
    t.add_server_key(server_key)

    class Server(paramiko.ServerInterface):
        def get_allowed_auths(self, username):
            return "publickey"
    def serve():
        try:
            t.start_server(server=Server())
        except (paramiko.SSHException, EOFError, OSError):
            pass                # the client hung up on a refused key: what the test is about
    threading.Thread(target=serve, daemon=True).start()
    try:
        c.client.connect(c.host, c.port, username="ops", sock=ours, look_for_keys=False, allow_agent=False,
                         timeout=5, banner_timeout=5, auth_timeout=5)
    except Exception as e:  # noqa: BLE001
        return e
    finally:
        c.client.close()
        t.close()
    return None


@pytest.fixture
def conn(tmp_path):
    """A node connection whose ssh_config names our files (nothing from ~/.ssh or /etc/ssh)."""
    def make(user_file: str, global_file: str = "none", extra: str = ""):
        cfg = tmp_path / "ssh_config"
        cfg.write_text(f"Host *\n  UserKnownHostsFile {user_file}\n  GlobalKnownHostsFile {global_file}\n{extra}")
        inv = inv_with({"config_file": str(cfg)})
        return link(inv, inv.nodes[0])
    return make


def test_a_trusted_key_passes_and_another_is_a_changed_key(tmp_path, keys, conn):
    good, other = keys
    (tmp_path / "kh").write_text(line(good))
    c = conn(str(tmp_path / "kh"))
    assert accepted(handshake(c, good))    # host key accepted
    e = handshake(conn(str(tmp_path / "kh")), other)
    assert isinstance(e, paramiko.BadHostKeyException)
    assert "host key CHANGED" in remote.describe(c, e)


def test_a_revoked_key_is_refused_in_one_line_even_where_trusted(tmp_path, keys, conn):
    good, _ = keys
    (tmp_path / "kh").write_text(line(good))
    (tmp_path / "global").write_text(line(good, "*", "@revoked"))
    c = conn(str(tmp_path / "kh"), str(tmp_path / "global"))
    e = handshake(c, good)
    assert isinstance(e, remote.HostKeyRefused)
    msg = remote.describe(c, e)
    assert "REVOKED" in msg and f"{tmp_path / 'global'}:1" in msg and "\n" not in msg


def test_a_revoked_key_beside_a_trusted_one_is_named_revoked_not_changed(tmp_path, keys, conn):
    good, bad = keys
    (tmp_path / "kh").write_text(line(good) + line(bad, "*", "@revoked"))
    c = conn(str(tmp_path / "kh"))
    e = handshake(c, bad)
    assert isinstance(e, paramiko.BadHostKeyException) and "REVOKED" in remote.describe(c, e)


def test_cert_authority_lines_do_not_crash_and_are_named_when_they_are_all_there_is(tmp_path, keys, conn):
    good, ca = keys
    (tmp_path / "kh").write_text(line(ca, "*", "@cert-authority") + line(good, "other.example.com"))
    c = conn(str(tmp_path / "kh"))
    e = handshake(c, good)
    assert isinstance(e, remote.HostKeyRefused)
    msg = remote.describe(c, e)
    assert "@cert-authority" in msg and "not supported" in msg and "\n" not in msg
    (tmp_path / "kh").write_text(line(ca, "*", "@cert-authority") + line(good))     # its own key: fine
    assert accepted(handshake(conn(str(tmp_path / "kh")), good))


def test_an_unknown_host_is_still_unknown(tmp_path, keys, conn):
    good, _ = keys
    (tmp_path / "kh").write_text(line(good, "someone-else"))
    c = conn(str(tmp_path / "kh"))
    e = handshake(c, good)
    assert "host key of" in remote.describe(c, e) and "unknown" in remote.describe(c, e)


def test_ssh_config_files_are_read_and_the_inventory_s_file_wins(tmp_path, keys, conn):
    good, _ = keys
    (tmp_path / "a").write_text(line(good))
    (tmp_path / "b").write_text("")
    c = conn(f"{tmp_path / 'b'} {tmp_path / 'a'}")          # several files: the second names it
    assert accepted(handshake(c, good))
    cfg = tmp_path / "ssh_config"
    inv = inv_with({"config_file": str(cfg), "known_hosts": str(tmp_path / "b")})
    e = handshake(link(inv, inv.nodes[0]), good)
    assert not accepted(e) and "not found in known_hosts" in str(e)


def test_revoked_host_keys_in_ssh_config_is_refused_in_one_line(tmp_path, conn):
    with pytest.raises(remote.RemoteError, match="RevokedHostKeys .* is not supported by lbtk"):
        conn(str(tmp_path / "kh"), extra=f"  RevokedHostKeys {tmp_path / 'krl'}\n")
