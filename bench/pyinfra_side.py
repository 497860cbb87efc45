"""The pyinfra side of bench/scale.py (issue 25): the same lab, the same files, the same four tasks,
done by pyinfra (bench/pyinfra/deploy.py and verify.py) instead of the toolkit.

One run on a lab of N nodes is bench/peer.py's `cycle` with this side's `Pyinfra`: fresh nodes, the
toolkit's live render, an inventory for node1..nodeN (a Python file with the hosts' data, as pyinfra
reads inventories), then timed: first deploy, no-op deploy, verify, one change (node2's real server
weight to 0 in every keepalived.conf) and, untimed, the change reverted. Every task is one `pyinfra -y
--parallel N` process, all nodes at once; the pyinfra it uses lives in bench/.venv-pyinfra
(bench/pyinfra/setup.sh, the release pinned in bench/pyinfra/requirements.txt).
"""
from __future__ import annotations

import re
from pathlib import Path

from peer import PeerTool, lab_numbers

HERE = Path(__file__).resolve().parent
DEPLOYS = HERE / "pyinfra"           # deploy.py, verify.py, wanted.py: pyinfra runs from there
PYINFRA_BIN = HERE / ".venv-pyinfra" / "bin" / "pyinfra"
LAB_DIR = Path("/var/tmp/lbtk-lab")  # the lab's client key and its nodes' known_hosts (as bench/ansible/ansible.cfg)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Pyinfra(PeerTool):
    """pyinfra against one lab: its inventory file in one temporary directory."""
    SETUP = DEPLOYS / "setup.sh"
    LOG = Path("/tmp/lbtk-bench-pyinfra.log")
    PREFIX = "lbtk-pyinfra-"
    INVENTORY = "inventory.py"

    @staticmethod
    def write_inventory(tree: Path, n: int) -> str:
        return inventory(tree, n)

    @staticmethod
    def last_error(stdout: str, stderr: str) -> str:
        return last_error(stdout + stderr)

    def command(self, deploy_file: str, *extra: str) -> list[str]:
        """pyinfra with no prompt (-y: no change detection before executing, as a pipeline runs it)
        and every node at once (--parallel N)."""
        return [str(PYINFRA_BIN), "-y", "--parallel", str(max(self.n, 1)), str(self.inventory), deploy_file, *extra]

    def run(self, deploy_file: str, *extra: str) -> float:
        return self.timed(f"pyinfra {deploy_file}", self.command(deploy_file, *extra), cwd=DEPLOYS,
                          env={"NO_COLOR": "1"})

    def deploy(self, tree: Path) -> float:
        return self.run("deploy.py", "--data", f"lbtk_rendered={tree}")

    def verify(self) -> float:
        return self.run("verify.py")


def inventory(tree: Path, n: int, lab_dir: Path = LAB_DIR) -> str:
    """A pyinfra inventory (Python) with one group, `lbtk`: node1..nodeN with ssh_hostname and
    lbtk_priority; for all, root over SSH with the lab's key, host keys checked against the lab's
    known_hosts (never accepted blindly), lbtk_vip and lbtk_interface (peer.lab_numbers)."""
    lab = lab_numbers(tree, n)
    top = max(prio for _, _, prio in lab.hosts)
    tops = [name for name, _, prio in lab.hosts if prio == top]
    if len(tops) != 1:      # verify.py checks each node against the one VRRP elects
        raise SystemExit(f"{tree}: the highest VRRP priority ({top}) is on {', '.join(tops)}, expected one node")
    group = {"ssh_user": "root", "ssh_key": str(lab_dir / "id_ed25519"),
             "ssh_known_hosts_file": str(lab_dir / "known_hosts"), "ssh_strict_host_key_checking": "yes",
             "lbtk_vip": lab.vip, "lbtk_interface": lab.interface}
    hosts = "".join(f"        ({name!r}, {{'ssh_hostname': {address!r}, 'lbtk_priority': {prio}}}),\n"
                    for name, address, prio in lab.hosts)
    data = "".join(f"        {k!r}: {v!r},\n" for k, v in group.items())
    return (f"# written by bench/pyinfra_side.py for lab-{n}\nlbtk = (\n    [\n{hosts}    ],\n"
            f"    {{\n{data}    }},\n)\n")


def last_error(output: str) -> str:
    """pyinfra's first error as one line: a check's message (python.call), else the first host line
    that says error or could not connect (with the output line before it: the command's own words),
    else pyinfra's last line."""
    lines = [ANSI.sub("", ln).strip() for ln in output.splitlines() if ln.strip()]
    for ln in lines:
        if "Unexpected error in Python callback:" in ln:
            return " ".join(ln.split())[:500]
    for i, ln in enumerate(lines):
        if re.match(r"\[[^\]]+\] .*(Error|error|Could not connect|Could not resolve)", ln):
            before = lines[i - 1] if i and lines[i - 1].startswith("[") and lines[i - 1] != ln else ""
            return " ".join(f"{ln} {before}".split())[:500]
    return " ".join((lines or ["no output"])[-1].split())[:500]
