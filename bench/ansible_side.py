"""The Ansible side of bench/scale.py (issue 14): the same lab, the same files, the same four tasks,
done by ansible-playbook (bench/ansible/deploy.yml and verify.yml) instead of the toolkit.

One run on a lab of N nodes is bench/peer.py's `cycle` with this side's `Ansible`: fresh nodes, the
toolkit's live render, an inventory for node1..nodeN, then timed: first deploy, no-op deploy, verify,
one change (node2's real server weight to 0 in every keepalived.conf, what `inv drain --server node2`
ships) and, untimed, the change reverted. bench/scale.py runs it beside the toolkit's side; the
ansible-core it uses lives in bench/.venv-ansible (bench/ansible/setup.sh).
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from peer import PeerTool, Shell, lab_numbers

HERE = Path(__file__).resolve().parent
PLAYBOOKS = HERE / "ansible"
PLAYBOOK_BIN = HERE / ".venv-ansible" / "bin" / "ansible-playbook"


class Ansible(PeerTool):
    """ansible-playbook against one lab: its inventory, its SSH masters, one temporary directory."""
    SETUP = PLAYBOOKS / "setup.sh"
    LOG = Path("/tmp/lbtk-bench-ansible.log")
    PREFIX = "lbtk-ansible-"
    INVENTORY = "inventory.yml"

    def __init__(self, shell: Shell, n: int, tree: Path):
        super().__init__(shell, n, tree)
        self.cp_dir = self.work / "cp"         # ControlPath directory: ours, so we can close the masters
        self.cp_dir.mkdir()

    @staticmethod
    def write_inventory(tree: Path, n: int) -> str:
        return inventory(tree, n)

    @staticmethod
    def last_error(stdout: str, stderr: str) -> str:
        return last_error(stdout, stderr)

    def playbook(self, name: str, rendered: Path | None = None) -> float:
        """Run one playbook; seconds taken. A failure is one line and SystemExit. The SSH masters the
        cycle's earlier playbooks left (ControlPersist, Ansible's default) are used again, as the
        toolkit's runs use the connections its first deploy left (ssh.control_persist): each cycle's
        first deploy is cold for both, on fresh nodes, and close() ends the masters with the cycle."""
        cmd = [str(PLAYBOOK_BIN), "-i", str(self.inventory), "-f", str(max(self.n, 1)), str(PLAYBOOKS / name)]
        if rendered is not None:
            cmd += ["-e", f"lbtk_rendered={rendered}"]
        env = {"ANSIBLE_CONFIG": str(PLAYBOOKS / "ansible.cfg"),
               "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.cp_dir), "ANSIBLE_NOCOLOR": "1"}
        return self.timed(f"ansible-playbook {name}", cmd, cwd=PLAYBOOKS, env=env)

    def deploy(self, tree: Path) -> float:
        return self.playbook("deploy.yml", tree)

    def verify(self) -> float:
        return self.playbook("verify.yml")

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
        super().close()


def inventory(tree: Path, n: int) -> str:
    """node1..nodeN with ansible_host and lbtk_priority, lbtk_vip and lbtk_interface for all (peer.lab_numbers)."""
    lab = lab_numbers(tree, n)
    hosts = [f"    {name}: {{ansible_host: {address}, lbtk_priority: {prio}}}" for name, address, prio in lab.hosts]
    return ("# written by bench/ansible_side.py\nall:\n  vars:\n"
            f"    lbtk_vip: {lab.vip}\n    lbtk_interface: {lab.interface}\n  hosts:\n" + "\n".join(hosts) + "\n")


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
