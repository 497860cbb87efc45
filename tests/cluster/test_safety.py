"""Issue 6 against the real lab: zero-outage changes, transactional nodes, drift, bad input, secrets.

Every "nothing changed" claim is checked on the nodes themselves: a fingerprint of every file
the toolkit manages, the deploy backups, leftover uploads and the daemons' PIDs, taken before
and after.
"""
from __future__ import annotations

import contextlib
import json
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from fabfile.model.loading import inventory_dir

from .conftest import ROOT, inv, inv_json, sh

VIP = "10.189.0.100"
CONF = "/etc/keepalived/keepalived.conf"

# what "nothing changed on a node" means: same managed files, same backups, no upload left
# behind, same daemon processes (nothing reloaded into a new PID, nothing restarted)
FINGERPRINT = (
    "cd /; find etc/keepalived etc/nginx etc/sysctl.d etc/systemd/system etc/default/keepalived "
    "-type f -print0 2>/dev/null | sort -z | xargs -0 sha256sum; "
    "echo backups: $(ls /var/lib/lbtk/backup 2>/dev/null); "
    "echo uploads: $(find /etc -name '*.lbtk-new' 2>/dev/null); "
    "echo pids: $(systemctl show -p MainPID --value keepalived nginx)"
)


def fingerprints(nodes) -> dict[str, str]:
    return {name: sh(c, FINGERPRINT).stdout for name, c in nodes.items()}


@contextlib.contextmanager
def variant(name: str, change, extra_files: dict[str, str] | None = None):
    """A temporary inventory beside lab.yaml in the session's inventories (so relative secret
    paths still resolve): lab.yaml with `change(data)` applied. Yields its --env argument (its name)."""
    data = yaml.safe_load((inventory_dir() / "lab.yaml").read_text())
    change(data)
    path = inventory_dir() / f"lab-test-{name}.yaml"
    made = []
    try:
        for rel, text in (extra_files or {}).items():
            p = inventory_dir() / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
            p.chmod(0o600)          # secret files others may read are refused
            made.append(p)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        yield path.stem
    finally:
        path.unlink(missing_ok=True)
        for p in made:
            p.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                p.parent.rmdir()


def one_line_error(r) -> str:
    """The failure contract: non-zero exit, exactly one line on stderr, no traceback."""
    assert r.returncode != 0, r.stdout
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    return lines[0]


def lab_secret() -> str:
    from fabfile.model.loading import load
    from fabfile.model.secrets import resolve_all
    invy, _ = load("lab")
    return resolve_all(invy, "lab")["VI_1"]


# --- zero outage ---------------------------------------------------------------------------

def test_weight_change_under_10ms_probe_loses_nothing(deployed):
    from fabfile.ops.drill import Probe
    probe = Probe(VIP, 80, 0.010, ["node1", "node2", "node3"])
    t = threading.Thread(target=probe.run, daemon=True)
    t.start()
    try:
        time.sleep(0.3)
        inv("drain", "--env", "lab", "--server", "node3", check=True)
        inv("undrain", "--env", "lab", "--server", "node3", check=True)
        time.sleep(0.3)
    finally:
        probe.stop.set()
        t.join()
    failed = [r for r in probe.results if not r[1]]
    assert len(probe.results) > 100 and failed == [], failed[:5]
    assert {r[2] for r in probe.results} == {"node1"}   # the VIP never moved


CANARY = "roll: canary node3, then node2, then VIP holder node1 — reload-only, no VIP can move"


def test_drain_goes_to_a_canary_first_under_10ms_probe_and_loses_nothing(deployed, nodes):
    """Issue 25: a drain (reload-only, no VIP can move) goes to one canary backup, then the other
    backups, then the VIP holder, with no VRRP settle between: it says so, it loses no probe through
    the VIP, the VIP never moves, and every node ends on the drained weight. `deploy --check` of a
    weight change names the same plan."""
    from fabfile.ops.drill import Probe
    with variant("weight", lambda d: d["virtual_servers"][0]["real_servers"][2].update(weight=2)) as env:
        check = inv("deploy", "--env", env, "--check", check=True)
    assert CANARY in check.stdout, check.stdout
    probe = Probe(VIP, 80, 0.010, ["node1", "node2", "node3"])
    t = threading.Thread(target=probe.run, daemon=True)
    t.start()
    try:
        time.sleep(0.3)
        drained = inv("drain", "--env", "lab", "--server", "node2", check=True)
        weights = {n: sh(c, f"grep -A1 'real_server 10.189.0.12' {CONF}").stdout for n, c in nodes.items()}
        undrained = inv("undrain", "--env", "lab", "--server", "node2", check=True)
        time.sleep(0.3)
    finally:
        probe.stop.set()
        t.join()
    for r in (drained, undrained):
        assert CANARY in r.stdout, r.stdout
        assert "VRRP settle" not in r.stdout
    assert all("weight 0" in w for w in weights.values()), weights
    failed = [r for r in probe.results if not r[1]]
    assert len(probe.results) > 100 and failed == [], failed[:5]
    assert {r[2] for r in probe.results} == {"node1"}   # the VIP never moved


# --- transactional: a change keepalived -t rejects --------------------------------------------

def test_broken_template_override_is_rejected_on_first_node_and_nothing_swapped(deployed, nodes):
    ours = (ROOT / "fabfile/core/render/keepalived.conf.j2").read_text()
    assert "advert_int {{" in ours
    broken = ours.replace("advert_int {{", "bogus_keyword_xyz 1\n    advert_int {{", 1)
    before = fingerprints(nodes)
    with variant("broken-template", lambda d: d.update(templates_dir="lab-test-templates"),
                 {"lab-test-templates/keepalived.conf.j2": broken}) as env:
        r = inv("deploy", "--env", env)
    line = one_line_error(r)
    # the rolling order starts with the lowest-priority backup: node3 is the first and only node
    assert line.startswith("error: node3: keepalived -t rejected the new keepalived.conf")
    assert "bogus_keyword_xyz" in line and "nothing was swapped" in line
    assert "later nodes were not touched" in line
    assert fingerprints(nodes) == before
    rc, report = inv_json("verify", "--env", "lab")
    assert rc == 0 and report["vip_holders"] == {VIP: ["node1"]}


# --- drift ---------------------------------------------------------------------------------

def test_diff_after_hand_edit_on_node2_shows_exactly_that_edit(deployed, nodes):
    assert inv("diff", "--env", "lab").returncode == 0
    sh(nodes["node2"], f"sed -i 's/^    advert_int 1$/    advert_int 2/' {CONF}")
    try:
        r = inv("diff", "--env", "lab")
        assert r.returncode == 1, r.stdout + r.stderr
        edits = [ln for ln in r.stdout.splitlines()
                 if ln[:1] in ("+", "-") and not ln.startswith(("---", "+++"))]
        assert sorted(edits) == ["+    advert_int 1", "-    advert_int 2"], r.stdout
        rows = {ln.split()[0]: ln.split(None, 1)[1] for ln in r.stdout.splitlines() if ln.startswith("node")}
        assert rows["node2"].split() == [CONF, "differs"]
        assert rows["node1"].endswith("as rendered") and rows["node3"].endswith("as rendered")
        assert "1 file(s) drifted" in r.stdout
        assert lab_secret() not in r.stdout + r.stderr
    finally:
        inv("keepalived", "--env", "lab", check=True)
    assert inv("diff", "--env", "lab").returncode == 0


def test_diff_covers_the_sync_daemon_script(deployed, nodes):
    """issue 23: `inv diff` left the sync-daemon phase out, so its script was never compared. The
    lab runs sync_daemon mode keepalived, where the script must not exist (the kernel tier's
    inventories, mode notify, ship it): one put there by hand is drift."""
    script = "/usr/local/sbin/lbtk-ipvs-sync"
    assert inv("diff", "--env", "lab").returncode == 0
    sh(nodes["node2"], f"printf '#!/bin/sh\\n# left by hand\\n' > {script} && chmod 755 {script}")
    try:
        r = inv("diff", "--env", "lab")
        assert r.returncode == 1, r.stdout + r.stderr
        rows = {ln.split()[0]: ln.split(None, 1)[1] for ln in r.stdout.splitlines() if ln.startswith("node")}
        assert rows["node2"].rstrip().split(None, 1) == [script, "present, should not be"], r.stdout
        assert "-# left by hand" in r.stdout and "1 file(s) drifted" in r.stdout
    finally:
        sh(nodes["node2"], f"rm -f {script}")
    assert inv("diff", "--env", "lab").returncode == 0


# --- bad input: each a one-line error, non-zero, nothing changed on any node ----------------

def _other_key(tmp_path: Path) -> str:
    key = tmp_path / "not_the_lab_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return str(key)


def _empty_known_hosts(tmp_path: Path) -> str:
    kh = tmp_path / "known_hosts"
    kh.write_text("")
    return str(kh)


def _node3(d, **kw):
    d["nodes"][2].update(kw)


CASES = {
    # a node that does not answer (no such host on the lab bridge), 1 s connect timeout
    "unreachable node": (lambda d, tmp: (_node3(d, host="10.189.0.99"),
                                         d["defaults"]["ssh"].update(connect_timeout=1)),
                         ("node3", "10.189.0.99")),
    "wrong SSH key": (lambda d, tmp: d["defaults"]["ssh"].update(key_filename=_other_key(tmp)),
                      ("authentication",)),
    "unknown host key": (lambda d, tmp: d["defaults"]["ssh"].update(known_hosts=_empty_known_hosts(tmp)),
                         ("host key",)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_connection_gives_one_line_and_changes_nothing(deployed, nodes, tmp_path, case):
    change, words = CASES[case]
    before = fingerprints(nodes)
    with variant(case.replace(" ", "-"), lambda d: change(d, tmp_path)) as env:
        r = inv("deploy", "--env", env, timeout=120)
    line = one_line_error(r)
    for w in words:
        assert w in line, line
    assert fingerprints(nodes) == before


def test_node_without_keepalived_gives_one_line_and_changes_nothing(deployed, nodes):
    hide = "mv /usr/sbin/keepalived /usr/sbin/keepalived.hidden-by-test"
    show = "mv /usr/sbin/keepalived.hidden-by-test /usr/sbin/keepalived"
    before = fingerprints(nodes)
    sh(nodes["node2"], hide)
    try:
        # a real change (node3 drained) so there would be something to apply
        r = inv("drain", "--env", "lab", "--server", "node3")
        assert one_line_error(r) == ("error: node2: keepalived is not installed (no keepalived on PATH) — "
                                     "run `inv install` or install it on the node; nothing was changed on any node")
    finally:
        sh(nodes["node2"], show)
    assert fingerprints(nodes) == before
    # the drain record was rolled back with the failed deploy: inventory and nodes still agree
    assert not (inventory_dir() / ".state/lab.yaml").exists()
    assert inv("diff", "--env", "lab").returncode == 0


# --- secrets ---------------------------------------------------------------------------------

def test_secret_never_in_outputs_diffs_json_or_node_logs(deployed, nodes):
    old = lab_secret()
    new = "Rt9xQ2pz"
    with variant("rotated", lambda d: d["vrrp_instances"][0]["authentication"].update(
            auth_pass_env=None, auth_pass_file="lab-test-secret/rotated.auth_pass"),
            {"lab-test-secret/rotated.auth_pass": new + "\n"}) as env:
        outs = [inv("deploy", "--env", env, "--check"), inv("diff", "--env", env),
                inv("render", "--env", env), inv("verify", "--env", env, "--json"),
                inv("check", "--env", env)]
        assert "auth_pass" in outs[0].stdout   # the --check diff does show the changed line...
    outs += [inv("status", "--env", "lab"), inv("logs", "--env", "lab"), inv("diff", "--env", "lab"),
             inv("verify", "--env", "lab", "--json"), inv("deploy", "--env", "lab", "--check")]
    for r in outs:
        text = r.stdout + r.stderr
        assert old not in text and new not in text   # ...masked, old and new alike
    for name, c in nodes.items():
        logs = sh(c, "journalctl --no-pager -o cat 2>/dev/null; cat /var/log/nginx/*.log 2>/dev/null").stdout
        assert old not in logs, f"secret in {name}'s logs"
        mode = sh(c, f"stat -c '%a %U' {CONF}").stdout.split()
        assert mode == ["600", "root"], f"{name}: {CONF} is {mode}"
        backups = sh(c, "stat -c '%a' /var/lib/lbtk/backup/* 2>/dev/null | sort -u").stdout.split()
        assert set(backups) <= {"700"}, f"{name}: backup dirs {backups}"


# --- a node's disk full in the middle of a rolling deploy ----------------------------------

FILL = ("set -e; mkdir -p /run/lbtk-test-keep; cp -a /etc/keepalived/. /run/lbtk-test-keep/; "
        "mount -t tmpfs -o size=16k,mode=755 lbtk-test-full /etc/keepalived; "
        "cp -a /run/lbtk-test-keep/. /etc/keepalived/; "
        "dd if=/dev/zero of=/etc/keepalived/zz-fill bs=1k 2>/dev/null || true")
UNFILL = "umount /etc/keepalived; rm -rf /run/lbtk-test-keep"


def test_disk_full_mid_rolling_deploy_leaves_each_node_old_or_new(deployed, nodes):
    sh(nodes["node2"], FILL)
    try:
        before = fingerprints(nodes)
        r = inv("drain", "--env", "lab", "--server", "node3")
        line = one_line_error(r)
        # rolling order node3 (lowest backup), node2, node1: node3 took it, node2's upload failed
        assert line.startswith("error: node2 (10.189.0.12:22): upload /etc/keepalived/keepalived.conf.lbtk-new failed")
        assert line.endswith("later nodes were not touched; already on the new config: node3")
        after = fingerprints(nodes)
        assert after["node2"] == before["node2"] and after["node1"] == before["node1"]
        assert after["node3"] != before["node3"]
        assert "weight 0" in sh(nodes["node3"], f"grep -A1 'real_server 10.189.0.13' {CONF}").stdout
    finally:
        sh(nodes["node2"], UNFILL)
    # the drain stays recorded on node3 (the newest runtime record); a rerun finishes the job on
    # node2 and node1, from this clone or any other
    rc, st = inv_json("status", "--env", "lab")
    assert st["runtime"]["drained"] == ["10.189.0.13"]
    inv("keepalived", "--env", "lab", check=True)
    assert inv("diff", "--env", "lab").returncode == 0
    inv("undrain", "--env", "lab", "--server", "node3", check=True)
    rc, report = inv_json("verify", "--env", "lab")
    assert rc == 0 and report["vip_holders"] == {VIP: ["node1"]}


# --- a change that moves the VIP: announced by --check, done as one planned failover --------

def test_priority_change_is_announced_and_done_as_one_planned_failover(deployed):
    def node2_first(d):
        d["nodes"][1]["priority"] = 110
    with variant("priority", node2_first) as env:
        check = inv("deploy", "--env", env, "--check", check=True)
        assert "VIP 10.189.0.100 will move node1 -> node2 (a planned failover)" in check.stdout
        r = inv("deploy", "--env", env, check=True)
        assert "VIP 10.189.0.100 will move node1 -> node2" in r.stdout
        rc, report = inv_json("verify", "--env", env)
        assert rc == 0 and report["vip_holders"] == {VIP: ["node2"]}
    back = inv("deploy", "--env", "lab", check=True)
    assert "VIP 10.189.0.100 will move node2 -> node1" in back.stdout
    rc, report = inv_json("verify", "--env", "lab")
    assert rc == 0 and report["vip_holders"] == {VIP: ["node1"]}


# --- Ctrl-C at any point: every node on the old files or the new, never a mix ----------------

def _as_rendered(env: str) -> set[str]:
    r = inv("diff", "--env", env)
    return {ln.split()[0] for ln in r.stdout.splitlines()
            if ln.startswith("node") and ln.rstrip().endswith("as rendered")}


def _said(pattern: str):
    """The point at which the deploy has printed a progress line matching `pattern`."""
    rx = re.compile(pattern)
    return lambda lines, nodes: any(rx.match(ln) for ln in lines)


def _lock_held(lines, nodes) -> bool:
    """The point at which node1 carries the deploy's lock record (nothing applied yet)."""
    from fabfile.infra.facts import LOCK_PATH
    return sh(nodes["node1"], f"cat {LOCK_PATH} 2>/dev/null").stdout.strip() != ""


# Where the Ctrl-C lands, each a point the deploy makes observable (its lock record on the nodes, its
# progress lines), in the rolling order node3, node2, node1 of a weight change (every node's
# keepalived.conf, no VIP move); and the nodes that had taken the change before that point, whatever
# the machine's speed.
INTERRUPT_AT = {
    "lock-held": (_lock_held, set()),
    "node3-staged": (_said(r"node3: uploaded "), set()),
    "node3-validated": (_said(r"node3: keepalived -t: ok$"), set()),
    "node3-done": (_said(r"node3: \d+ change\(s\)$"), {"node3"}),
    "node1-staged": (_said(r"node1: uploaded "), {"node3", "node2"}),
}


def interrupted_deploy(env: str, reached, nodes) -> tuple[int, list[str], str]:
    """`inv deploy --env ENV`, SIGINT once it has started and `reached(stdout lines so far, nodes)` is true.
    Returns (exit code, stdout lines, stderr); fails if the deploy ended before that point."""
    import os
    import signal
    import sys
    p = subprocess.Popen([sys.executable, "-m", "invoke", "deploy", "--env", env], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "LBTK_FORMAT": "plain"})
    lines: list[str] = []
    err: list[str] = []

    def read_lines():
        for ln in p.stdout:          # each line as the deploy prints it (its progress flushes)
            lines.append(ln.rstrip("\n"))
    readers = [threading.Thread(target=read_lines, daemon=True),
               threading.Thread(target=lambda: err.append(p.stderr.read()), daemon=True)]
    for t in readers:
        t.start()
    deadline = time.monotonic() + 120
    try:
        # the task's first line first (its inventory named): a SIGINT while the interpreter
        # starts would test Python's start-up, not the deploy
        while not (lines and reached(list(lines), nodes)):
            assert p.poll() is None, f"the deploy ended (exit {p.returncode}) before the point:\n" + "\n".join(lines)
            assert time.monotonic() < deadline, "the deploy never reached the point:\n" + "\n".join(lines)
            time.sleep(0.01)
        p.send_signal(signal.SIGINT)
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
        for t in readers:
            t.join(10)
    return p.returncode, lines, "".join(err)


@pytest.mark.parametrize("point", list(INTERRUPT_AT))
def test_interrupted_deploy_leaves_each_node_old_or_new(deployed, nodes, point):
    reached, taken_before = INTERRUPT_AT[point]

    def node3_weight_2(d):
        d["virtual_servers"][0]["real_servers"][2]["weight"] = 2
    with variant("interrupt", node3_weight_2) as env:
        code, out, err = interrupted_deploy(env, reached, nodes)
        assert "Traceback" not in "\n".join(out) + err
        assert code == 130 and err.strip().splitlines() == ["interrupted"], (code, out, err)
        old, new = _as_rendered("lab"), _as_rendered(env)
    assert old | new == {"node1", "node2", "node3"}, (point, out, err)
    assert taken_before <= new, (point, new, out)
    inv("deploy", "--env", "lab", check=True)   # the next deploy finishes or reverts cleanly (no lock left)
    assert inv("diff", "--env", "lab").returncode == 0
    v = inv("verify", "--env", "lab", "--json")
    assert v.returncode == 0, v.stdout + v.stderr
    assert json.loads(v.stdout)["vip_holders"] == {VIP: ["node1"]}
