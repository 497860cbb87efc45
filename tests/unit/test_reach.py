"""Reaching real estates (no network needed): ssh_config honoured and overridden only where the
inventory says so, per-node ssh merged field by field, host names with addresses, bastions whose
host keys are checked, sudo wrapping and its refusals, the --parallel cap."""
from __future__ import annotations

import copy

import paramiko
import pytest
import yaml

from fabfile.infra import remote
from fabfile.model.loading import InventoryError, inventory_dir, parse
from fabfile.parsers.sudo import refusal


def link(inv, node) -> remote.NodeLink:
    """A node's link as a run gets it: from a node group (lazy: nothing connects yet)."""
    from fabfile.model.context import Env
    return remote.nodes(Env(inv=inv, path=None, secrets={}, name="t"), [node])[node.name]

BASE = yaml.safe_load((inventory_dir() / "lab.yaml").read_text())


def inv_with(ssh: dict | None = None, node_ssh: dict | None = None, hosts=None):
    d = copy.deepcopy(BASE)
    d["defaults"]["ssh"] = ssh or {}
    if node_ssh is not None:
        d["nodes"][1]["ssh"] = node_ssh
    for k, h in enumerate(hosts or []):
        d["nodes"][k]["host"] = h
        d["nodes"][k]["address"] = BASE["nodes"][k]["host"]
    return parse(d, "t.yaml")


@pytest.fixture
def ssh_config(tmp_path):
    p = tmp_path / "ssh_config"
    p.write_text("Host lb1\n  HostName 127.0.0.1\n  Port 2222\n  User deploy\n"
                 "Host lb2\n  HostName 127.0.0.2\n  ProxyJump ops@jump:2200\n")
    return p


def test_ssh_config_supplies_what_the_inventory_does_not_state(ssh_config):
    inv = inv_with({"config_file": str(ssh_config)}, hosts=["lb1"])
    c = link(inv, inv.nodes[0]).conn
    assert (c.host, c.port, c.user) == ("127.0.0.1", 2222, "deploy")


def test_the_inventory_overrides_only_what_it_states(ssh_config):
    inv = inv_with({"config_file": str(ssh_config), "port": 2200}, hosts=["lb1"])
    c = link(inv, inv.nodes[0]).conn
    assert (c.host, c.port, c.user) == ("127.0.0.1", 2200, "deploy")


def test_node_ssh_merges_field_by_field():
    inv = inv_with({"user": "ops", "key_filename": "/k", "known_hosts": "/kh", "become": "sudo"},
                   node_ssh={"port": 2222})
    merged = inv.ssh_of(inv.nodes[1])
    assert (merged.user, merged.port, merged.key_filename, merged.known_hosts, merged.become) == \
        ("ops", 2222, "/k", "/kh", "sudo")
    assert inv.ssh_of(inv.nodes[0]).port is None


def test_a_host_name_needs_an_address_for_keepalived():
    d = copy.deepcopy(BASE)
    d["nodes"][0]["host"] = "lb1.example.net"
    with pytest.raises(InventoryError, match=r"nodes\[0\]\.address: host 'lb1.example.net' is a name"):
        parse(d, "t.yaml")
    inv = inv_with(hosts=["lb1.example.net"])
    assert inv.nodes[0].ip == "10.189.0.11" and inv.nodes[0].host == "lb1.example.net"


def test_a_proxyjump_bastion_host_key_is_checked(ssh_config):
    inv = inv_with({"config_file": str(ssh_config)}, hosts=["lb1", "lb2"])
    c = link(inv, inv.nodes[1]).conn
    assert c.gateway is not None and c.gateway.host == "jump"
    assert isinstance(c.gateway.client._policy, paramiko.RejectPolicy)
    assert isinstance(c.client._policy, paramiko.RejectPolicy)


def test_an_inventory_gateway_is_checked_too():
    inv = inv_with({"user": "ops", "gateway": {"host": "127.0.0.9", "user": "ops", "known_hosts": "/nonexistent"}})
    c = link(inv, inv.nodes[0]).conn
    assert c.gateway.host == "127.0.0.9" and isinstance(c.gateway.client._policy, paramiko.RejectPolicy)


def test_sudo_wraps_every_command_and_answers_its_prompt(monkeypatch):
    inv = inv_with({"user": "ops", "become": "sudo"}, node_ssh={"become_password_env": "T_SUDO_PW"})
    c0, c1 = link(inv, inv.nodes[0]), link(inv, inv.nodes[1])
    cmd, prompt = remote.privileged(c0, "systemctl reload keepalived")
    assert cmd == "sudo -n -H -- sh -c 'exec </dev/null\nsystemctl reload keepalived'" and prompt is None
    monkeypatch.setenv("T_SUDO_PW", "s3cret")
    cmd, prompt = remote.privileged(c1, "cat /etc/shadow")
    assert cmd.startswith(f"sudo -k -S -p {prompt.marker} -H -- sh -c ") and "s3cret" not in cmd
    assert prompt.reply(prompt.marker) == "s3cret\n"     # tests/unit/test_sudo_prompt.py: only then
    monkeypatch.delenv("T_SUDO_PW")
    with pytest.raises(remote.RemoteError, match="sudo needs a password: set the environment variable T_SUDO_PW"):
        remote.privileged(c1, "true")
    plain = link(inv_with({"user": "root"}), inv.nodes[0])
    assert remote.privileged(plain, "true") == ("true", None)


@pytest.mark.parametrize("stderr, why", [
    ("sudo: a password is required\n", "password-required"),
    ("Sorry, try again.\nsudo: 1 incorrect password attempt\n", "wrong-password"),
    ("ops is not in the sudoers file.  This incident will be reported.\n", "not-allowed"),
    ("sudo: sorry, you must have a tty to run sudo\n", "needs-tty"),
    ("Job for keepalived.service failed.\n", None),
])
def test_sudo_refusals_are_recognised(stderr, why):
    assert refusal(stderr) == why


def test_parallel_caps_the_threads():
    import threading
    import time
    live, peak, lock = [0], [0], threading.Lock()

    def work(_):
        with lock:
            live[0] += 1
            peak[0] = max(peak[0], live[0])
        time.sleep(0.05)
        with lock:
            live[0] -= 1
    remote.parallel(list(range(6)), work, limit=2)
    assert peak[0] == 2


def test_the_group_takes_the_runs_parallelism_and_closes_what_it_opened():
    """--parallel travels on the run's Env (no process-wide setting); the `with` block closes every
    link, the bastion's too, whatever ends it."""
    from fabfile.model.context import Env
    inv = inv_with({"user": "ops", "gateway": {"host": "127.0.0.9", "user": "ops"}})
    env = Env(inv=inv, path=None, secrets={}, name="t", parallel=2)
    closed = []
    with pytest.raises(RuntimeError):
        with remote.nodes(env, [inv.nodes[0].name, inv.nodes[2]]) as group:
            assert group.names == [inv.nodes[0].name, inv.nodes[2].name] and group.limit == 2
            assert group.only([inv.nodes[2].name]).bastion() is group.bastion()   # one bastion link
            for link in [*group, group.bastion()]:
                link.conn.close = lambda link=link: closed.append(link.name)
            raise RuntimeError("the task failed")
    assert closed == [inv.nodes[0].name, inv.nodes[2].name, "bastion 127.0.0.9"]
    assert remote.nodes(Env(inv=inv, path=None, secrets={}, name="t")).limit == remote.DEFAULT_PARALLEL


def test_a_group_run_keeps_every_nodes_outcome(monkeypatch):
    inv = inv_with({"user": "root"})
    group = remote.NodeGroup([link(inv, n) for n in inv.nodes[:2]])

    def fake_run(c, command, **kw):
        if c.name == inv.nodes[1].name:
            raise remote.RemoteError(f"{c.name}: unreachable")
        return remote.Result(f"{c.name}: {command}", "", 0)
    monkeypatch.setattr(remote, "run", fake_run)
    got = group.run("uptime")
    assert got[inv.nodes[0].name].stdout == f"{inv.nodes[0].name}: uptime"
    assert isinstance(got[inv.nodes[1].name], remote.RemoteError)


class FakeConn:
    """Stands in for a Fabric Connection in ensure_open: fails `fails` times with `exc`."""
    def __init__(self, exc, fails):
        self.exc, self.fails, self.calls, self.is_connected = exc, fails, 0, False

    def open(self):
        self.calls += 1
        if self.calls <= self.fails:
            raise self.exc
        self.is_connected = True


def fake_link(exc, fails, retries=2) -> remote.NodeLink:
    return remote.NodeLink("node1", FakeConn(exc, fails), retries=retries)


def test_transient_failures_are_retried_with_backoff(monkeypatch):
    slept = []
    monkeypatch.setattr(remote.time, "sleep", slept.append)
    c = fake_link(ConnectionResetError(104, "reset"), fails=2)
    remote.ensure_open(c)
    assert c.conn.calls == 3 and slept == [0.3, 0.6]
    c = fake_link(TimeoutError("timed out"), fails=5)
    with pytest.raises(TimeoutError):
        remote.ensure_open(c)
    assert c.conn.calls == 3


def test_authentication_and_host_key_failures_are_not_retried(monkeypatch):
    monkeypatch.setattr(remote.time, "sleep", lambda s: None)
    c = fake_link(paramiko.AuthenticationException("denied"), fails=5)
    with pytest.raises(paramiko.AuthenticationException):
        remote.ensure_open(c)
    assert c.conn.calls == 1
    c = fake_link(paramiko.SSHException("Server '10.0.0.1' not found in known_hosts"), fails=5)
    with pytest.raises(paramiko.SSHException):
        remote.ensure_open(c)
    assert c.conn.calls == 1


def test_a_lab_inventory_whose_bridge_is_missing_is_refused_before_any_connection(monkeypatch):
    """Network rule: without the lab's bridge, 10.189.0.x would follow the default route out of the
    machine; nothing connects, one line names the fix."""
    import pytest as _pytest
    from fabfile.lab import guard as labguard
    from fabfile.errors import LbtkError
    from fabfile.model.loading import load
    inv, _ = load("lab-dual")
    inv = inv.model_copy(update={"lab": inv.lab.model_copy(update={"bridge": "lbtk-nonexist"})})
    assert labguard.segment_up("lbtk-nonexist", ["10.189.0.1/24"]) is False
    with _pytest.raises(LbtkError) as e:
        labguard.require_lab_segment(inv, "lab-dual")
    msg = str(e.value)
    assert "\n" not in msg and "lbtk-nonexist" in msg and "10.189.0.1/24 and fd00:189::1/64" in msg
    assert "inv lab.up --env lab-dual" in msg
    c = link(inv, inv.nodes[0])     # lazy: nothing opens yet
    with _pytest.raises(LbtkError):           # the connection layer refuses too (tasks that load the env themselves)
        c.conn.open()


def test_a_sudo_password_is_masked_by_the_run_that_read_it(monkeypatch):
    """The password joins the run's Masker (Env.masker), in the node group's threads too; another
    run knows nothing of it (no process-wide registry)."""
    from fabfile.model import secrets
    from fabfile.model.context import Env
    inv = inv_with({"user": "ops", "become": "sudo"}, node_ssh={"become_password_env": "T_SUDO_PW"})
    monkeypatch.setenv("T_SUDO_PW", "s3cretpw")
    masker = secrets.Masker()
    with remote.nodes(Env(inv=inv, path=None, secrets={}, name="t", masker=masker)) as group:
        group.parallel(lambda c: remote.privileged(c, "true"))
    assert masker.mask("pw s3cretpw") == f"pw {secrets.MASK}"
    with secrets.masking():
        assert secrets.mask("s3cretpw") == "s3cretpw"


def test_the_group_threads_mask_with_the_runs_masker():
    from fabfile.model import secrets
    with secrets.masking() as masker:
        masker.add("zz9secret")
        got = remote.parallel([1, 2], lambda _: secrets.mask("a zz9secret"))
    assert got == [f"a {secrets.MASK}"] * 2 and secrets.mask("a zz9secret") == "a zz9secret"
