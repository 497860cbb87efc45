"""keepalived's own log file on the lab (inventory `logging:`, the seed's rsyslog section):
deployed from a temporary copy of the lab inventory, a real VRRP transition lands in
/var/log/keepalived.log (not in /var/log/syslog, still in the journal) and `inv logs` shows it
from the file; the plain lab deployed again takes it all away."""
from __future__ import annotations

import pytest

from .conftest import inv, inv_json, lab_variant, sh

ENV = "lab-logging-test"
LOG = "/var/log/keepalived.log"
RULE = "/etc/rsyslog.d/lbtk-keepalived.conf"


@pytest.fixture
def logging_env(deployed):
    with lab_variant(ENV, lambda d: d.update(logging={"facility": "local0", "file": LOG, "detail": True})) as env:
        yield env


def test_logging_file_gets_transitions_and_goes_away_with_the_plain_inventory(logging_env, nodes):
    r = inv("deploy", "--env", logging_env, check=True)
    assert "rsyslogd -N1" in r.stdout and "start rsyslog" in r.stdout, r.stdout
    for n, c in nodes.items():
        assert sh(c, "systemctl is-active rsyslog; systemctl is-enabled rsyslog").stdout.split() == ["active", "enabled"]
        args = sh(c, "cat /proc/$(cat /run/keepalived.pid)/cmdline | tr '\\0' ' '").stdout
        assert "--log-facility=local0 --log-detail" in args, (n, args)
        assert "& stop" in sh(c, f"cat {RULE}").stdout
    rc, report = inv_json("verify", "--env", logging_env)
    assert rc == 0, report
    assert sum(1 for ch in report["checks"] if ch["name"] == "rsyslog running" and ch["ok"]) == 3

    # a real VRRP transition: the graceful drill makes node2 MASTER, then BACKUP again
    before = int(sh(nodes["node2"], f"wc -l < {LOG}").stdout.strip() or 0)
    # (the keepalived the deploy restarted logged its last lines to facility daemon: /var/log/syslog)
    syslog_before = int(sh(nodes["node2"], "wc -l < /var/log/syslog").stdout.strip() or 0)
    rc, drill = inv_json("failover-test", "--env", logging_env, "--mode", "graceful")
    assert rc == 0 and drill["to"] == "node2", drill
    new = sh(nodes["node2"], f"tail -n +{before + 1} {LOG}").stdout
    assert "(VI_1) Entering MASTER STATE" in new and "(VI_1) Entering BACKUP STATE" in new, new
    assert new.splitlines()[0].split()[2].startswith("Keepalived"), new      # RSYSLOG_FileFormat: time host tag
    # `& stop`: not written twice; the journal keeps it (verify's flapping check reads the journal)
    assert "Keepalived" not in sh(nodes["node2"], f"tail -n +{syslog_before + 1} /var/log/syslog").stdout
    journal = sh(nodes["node2"], "journalctl -u keepalived --no-pager -o cat --since -120s").stdout
    assert "(VI_1) Entering MASTER STATE" in journal

    r = inv("logs", "--env", logging_env, "--node", "node2", check=True)
    assert f"state transitions and warnings ({LOG})" in r.stdout
    assert "(VI_1) Entering MASTER STATE" in r.stdout and f"--- node2: last 20 lines of {LOG}" in r.stdout

    # the plain lab again: the rule gone, keepalived back to the journal alone
    r = inv("deploy", "--env", "lab", check=True)
    assert "restart rsyslog" in r.stdout and "restart keepalived" in r.stdout, r.stdout
    for n, c in nodes.items():
        assert sh(c, f"test -e {RULE} || echo gone").stdout.strip() == "gone"
        assert "--log-facility" not in sh(c, "cat /etc/default/keepalived").stdout   # "--vrrp" alone: no IPVS
        args = sh(c, "cat /proc/$(cat /run/keepalived.pid)/cmdline | tr '\\0' ' '").stdout
        assert "--log-facility" not in args, (n, args)
    r = inv("logs", "--env", "lab", "--node", "node1", check=True)
    assert "state transitions and warnings (journal)" in r.stdout and "--- node1: last 20 journal lines" in r.stdout
