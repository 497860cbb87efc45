"""The Ansible side of bench/scale.py (issue 14): the same lab, the same files, the same four tasks,
done by ansible-playbook (bench/ansible/deploy.yml and verify.yml) instead of the toolkit.

One run on a lab of N nodes (`cycle`): fresh nodes (lab.down + lab.up), the toolkit renders the files
deploy would ship (`inv render --live --out DIR`: the live render has the node facts, e.g. no IPVS in
the plain lab's kernel), an inventory for node1..nodeN, then timed: first deploy, no-op deploy,
verify, one change (node2's real server weight to 0 in every keepalived.conf, what `inv drain
--server node2` ships) and, untimed, the change reverted. bench/scale.py runs it beside the
toolkit's side; the ansible-core it uses lives in bench/.venv-ansible (bench/ansible/setup.sh).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
PLAYBOOKS = HERE / "ansible"
PLAYBOOK_BIN = HERE / ".venv-ansible" / "bin" / "ansible-playbook"
LOG = Path("/tmp/lbtk-bench-ansible.log")     # the last playbook's full output, for a failure
CONF = "etc/keepalived/keepalived.conf"


def setup() -> None:
    """The bench's own virtualenv with the pinned ansible-core (quiet when already there)."""
    r = subprocess.run(["bash", str(PLAYBOOKS / "setup.sh")], capture_output=True, text=True)
    if r.returncode != 0:
        last = (r.stderr.strip() or r.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise SystemExit(f"bench/ansible/setup.sh failed ({r.returncode}): {last[0]}")


class Ansible:
    """ansible-playbook against one lab: its inventory, its SSH masters, one temporary directory."""

    def __init__(self, n: int, tree: Path):
        """`tree`: what `inv render --out` wrote (tree/NODE/<path>), read for the inventory's numbers."""
        self.n = n
        self.work = Path(tempfile.mkdtemp(prefix="lbtk-ansible-"))
        self.cp_dir = self.work / "cp"         # ControlPath directory: ours, so we can close the masters
        self.cp_dir.mkdir()
        self.inventory = self.work / "inventory.yml"
        self.inventory.write_text(inventory(tree, n))

    def playbook(self, name: str, rendered: Path | None = None) -> float:
        """Run one playbook cold (no SSH master left from the previous run, as the toolkit opens its
        connections afresh on every run); seconds taken. A failure is one line and SystemExit."""
        self.close_masters()
        cmd = [str(PLAYBOOK_BIN), "-i", str(self.inventory), "-f", str(max(self.n, 1)), str(PLAYBOOKS / name)]
        if rendered is not None:
            cmd += ["-e", f"lbtk_rendered={rendered}"]
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": os.environ.get("HOME", "/root"),
               "LC_ALL": "C.UTF-8",            # ansible refuses to run without a UTF-8 locale
               "ANSIBLE_CONFIG": str(PLAYBOOKS / "ansible.cfg"),
               "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.cp_dir), "ANSIBLE_NOCOLOR": "1"}
        t = time.monotonic()
        r = subprocess.run(cmd, cwd=PLAYBOOKS, capture_output=True, text=True, env=env)
        took = time.monotonic() - t
        LOG.write_text(r.stdout + r.stderr)
        if r.returncode != 0:
            raise SystemExit(f"ansible-playbook {name} failed ({r.returncode}): {last_error(r.stdout, r.stderr)}"
                             f" (full output: {LOG})")
        return took

    def close_masters(self) -> None:
        """Stop the SSH masters our playbooks left (ControlPersist): each is a process we started, and one
        whose node went down with lab.down would make the next connection hang."""
        for sock in self.cp_dir.iterdir():
            try:
                subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "lab-node"],
                               capture_output=True, timeout=10)
            except subprocess.TimeoutExpired:   # a wedged master: ControlPersist ends it within 60 s
                pass

    def close(self) -> None:
        self.close_masters()
        shutil.rmtree(self.work, ignore_errors=True)


def inventory(tree: Path, n: int) -> str:
    """node1..nodeN at 10.189.0.(10+k), as the generated lab-N has them; each host's VRRP priority,
    the VIP and the interface read from its rendered keepalived.conf (the toolkit's own numbers)."""
    hosts, vip, iface = [], None, None
    for k in range(1, n + 1):
        conf = (tree / f"node{k}" / CONF).read_text()
        prio = re.search(r"^\s*priority (\d+)$", conf, re.M)
        vips = re.search(r"virtual_ipaddress \{\n\s*([\d.]+)", conf)
        ifc = re.search(r"^\s*interface (\S+)$", conf, re.M)
        if not (prio and vips and ifc):
            raise SystemExit(f"{tree / f'node{k}' / CONF}: no priority, interface or virtual_ipaddress in it")
        vip, iface = vips.group(1), ifc.group(1)
        hosts.append(f"    node{k}: {{ansible_host: 10.189.0.{10 + k}, lbtk_priority: {prio.group(1)}}}")
    return ("# written by bench/ansible_side.py\nall:\n  vars:\n"
            f"    lbtk_vip: {vip}\n    lbtk_interface: {iface}\n  hosts:\n" + "\n".join(hosts) + "\n")


def drained(tree: Path, out: Path, address: str) -> Path:
    """A copy of the rendered tree with the real server at `address` at weight 0 in every node's
    keepalived.conf: the file `inv drain --server` renders and ships (modes kept)."""
    shutil.copytree(tree, out)
    pattern = re.compile(rf"(real_server {re.escape(address)} \{{\n\s*weight )\d+")
    for conf in out.glob(f"*/{CONF}"):
        text, count = pattern.subn(r"\g<1>0", conf.read_text())
        if count != 1:
            raise SystemExit(f"{conf}: real_server {address} found {count} times, expected once")
        conf.write_text(text)
    return out


def last_error(stdout: str, stderr: str) -> str:
    """The playbook's last error as one line: the last `fatal:` result's message (host first), else
    ansible's own last ERROR line, else its last line."""
    for line in reversed(stdout.splitlines()):
        m = re.match(r"fatal: \[([^\]]+)\]: (?:FAILED|UNREACHABLE)! => (\{.*\})\s*$", line)
        if m:
            try:
                res = json.loads(m.group(2))
            except json.JSONDecodeError:
                return f"{m.group(1)}: {m.group(2)[:300]}"
            msg = str(res.get("msg") or "").strip()
            detail = (res.get("stderr") or res.get("module_stderr") or "").strip().splitlines()
            return f"{m.group(1)}: " + " ".join((msg + (f": {detail[-1]}" if detail else "")).split())[:500]
    lines = [ln for ln in (stderr + "\n" + stdout).splitlines() if ln.strip()]
    errors = [ln for ln in lines if "ERROR" in ln]
    return " ".join((errors or lines or ["no output"])[-1].split())[:500]


def cycle(n: int, inv: Callable[..., float], fresh_nodes: Callable[[str], None]) -> dict[str, float]:
    """One run on fresh nodes: {task: seconds}, plus "render" (the toolkit's render, Ansible's input)."""
    env = f"lab-{n}"
    fresh_nodes(env)
    tmp = Path(tempfile.mkdtemp(prefix="lbtk-render-"))
    side = None
    try:
        tree = tmp / "rendered"
        took = {"render": inv("render", "--env", env, "--live", "--out", str(tree))}
        side = Ansible(n, tree)
        took["first deploy"] = side.playbook("deploy.yml", tree)
        took["no-op deploy"] = side.playbook("deploy.yml", tree)
        took["verify"] = side.playbook("verify.yml")
        # one change: node2's weight to 0 on every node (a keepalived.conf change and reload each)
        took["one change"] = side.playbook("deploy.yml", drained(tree, tmp / "drained", "10.189.0.12"))
        side.playbook("deploy.yml", tree)     # undrained again, untimed (as the toolkit's undrain)
        return took
    finally:
        if side is not None:
            side.close()
        shutil.rmtree(tmp, ignore_errors=True)
