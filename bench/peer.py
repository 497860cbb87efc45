"""What bench/scale.py's sides share: the shell every command of a sitting goes through (or, with
--dry-run, is printed by), the toolkit's render as the peers' input, the numbers a peer's inventory
reads from it, the drained copy a peer ships as "one change", the drift check after a first deploy,
and one run of a peer (ansible_side.Ansible, pyinfra_side.Pyinfra) on fresh nodes.

A peer is a PeerTool: built as Peer(shell, n, tree), with deploy(tree) -> s, verify() -> s and close(),
its virtualenv made by its SETUP script; its deploys ship the files `inv render --live --out tree` wrote (tree/NODE/<absolute path>), byte
for byte what `inv deploy` ships, so `inv diff` finds no drift after them.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cost import settle_nodes

ROOT = Path(__file__).resolve().parents[1]
CONF = "etc/keepalived/keepalived.conf"
# the toolkit's environment: the user's choice of inventories ($LBTK_INVENTORIES) goes along
INV_ENV = {"LBTK_FORMAT": "plain", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
           **{k: v for k, v in os.environ.items() if k == "LBTK_INVENTORIES"}}
# a peer tool's environment (ansible refuses to run without a UTF-8 locale)
TOOL_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": os.environ.get("HOME", "/root"), "LC_ALL": "C.UTF-8"}
DRAINED_ADDRESS = "10.189.0.12"     # node2, the real server the one change drains
LBTK_RECORDS = "/var/lib/lbtk/"      # fabfile.infra.facts.RECORDS_DIR: the bench drives lbtk by its CLI only
DRIFT_WORDS = ("missing on node", "present, should not be", "differs")   # inv diff's drift rows


class Shell:
    """Runs a sitting's commands; a dry run prints each instead and answers as if it passed."""

    def __init__(self, dry: bool = False):
        self.dry = dry

    def run(self, cmd: list[str], *, cwd: Path, env: dict[str, str] | None) -> tuple[float, subprocess.CompletedProcess]:
        """(seconds taken, the finished process) of one command, its output captured; env None
        passes ours on."""
        if self.dry:
            print(f"  $ (cd {shlex.quote(str(cwd))} && {shlex.join(cmd)})", flush=True)
            return 0.0, subprocess.CompletedProcess(cmd, 0, "", "")
        t = time.monotonic()
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
        return time.monotonic() - t, r

    def inv(self, *args: str, check: bool = True) -> float:
        """Seconds one `inv ...` took; a failure (when checked) ends the sitting in one line."""
        took, r = self.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, env=INV_ENV)
        if check and r.returncode != 0:
            raise SystemExit(f"inv {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()[-500:]}")
        return took

    def fresh_nodes(self, env: str) -> None:
        """Back to a first deploy: the lab comes down and up again (nothing deployed on its nodes)."""
        self.inv("lab.down", "--env", env, check=False)
        self.inv("lab.up", "--env", env)
        if self.dry:
            print("  (wait until the nodes' cgroups and the machine are idle: bench/cost.py settle_nodes)", flush=True)
        else:
            # booted and idle, as nodes in an estate are (the boot's tail is not the deploy's); the
            # load average says how much of the previous side's work was still in the air
            waited = settle_nodes()
            print(f"    {env} settled in {waited:.0f} s, load average {os.getloadavg()[0]:.1f}", flush=True)

    def render(self, env: str, tree: Path) -> float:
        """The files deploy would ship, live (the node facts, e.g. no IPVS in the plain lab's kernel).
        A dry run prints that command, then renders with assumed facts (no node is asked) so the
        peer's inventory and commands can be shown for real."""
        took = self.inv("render", "--env", env, "--live", "--out", str(tree))
        if self.dry:
            r = subprocess.run([sys.executable, "-m", "invoke", "render", "--env", env, "--out", str(tree)],
                               cwd=ROOT, capture_output=True, text=True, env=INV_ENV)
            if r.returncode != 0:
                raise SystemExit(f"inv render --env {env} --out {tree} failed ({r.returncode}): "
                                 f"{r.stderr.strip()[-500:]}")
        return took

    def no_drift(self, env: str, side: str) -> None:
        """`inv diff` after a side's first deploy: every managed file as the toolkit renders it. A
        side that leaves drift would be timed shipping something else: the sitting fails here."""
        _, r = self.run([sys.executable, "-m", "invoke", "diff", "--env", env], cwd=ROOT, env=INV_ENV)
        if r.returncode == 0:
            return
        if r.returncode != 1:
            raise SystemExit(f"inv diff --env {env} failed ({r.returncode}): {r.stderr.strip()[-500:]}")
        rows = [" ".join(ln.split()) for ln in r.stdout.splitlines() if any(w in ln for w in DRIFT_WORDS)]
        # lbtk's own records (the secret's fingerprint, the runtime record under /var/lib/lbtk/) are
        # its bookkeeping, not configuration: a peer has no reason to write them
        if rows and all(LBTK_RECORDS in row for row in rows):
            return
        raise SystemExit(f"{side} left drift on {env} after its first deploy (a failed sitting): "
                         + "; ".join(rows[:6] or ["see `inv diff --env " + env + "`"]))


def venv_setup(shell: Shell, script: Path) -> None:
    """A peer's setup.sh (its own virtualenv with its pinned release, quiet when already there); a
    failure is one line."""
    _, r = shell.run(["bash", str(script)], cwd=script.parent, env=None)     # pip reads its settings from ours
    if r.returncode != 0:
        last = (r.stderr.strip() or r.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise SystemExit(f"{script.relative_to(ROOT)} failed ({r.returncode}): {last[0]}")


@dataclass(frozen=True)
class LabNumbers:
    """What a peer's inventory needs, read from the toolkit's render of lab-N."""
    hosts: list[tuple[str, str, int]]      # (node, address, VRRP priority)
    vip: str
    interface: str


def lab_numbers(tree: Path, n: int) -> LabNumbers:
    """node1..nodeN at 10.189.0.(10+k), as the generated lab-N has them; each node's VRRP priority, the
    VIP and the interface read from its rendered keepalived.conf (the toolkit's own numbers)."""
    hosts, vip, iface = [], "", ""
    for k in range(1, n + 1):
        conf = (tree / f"node{k}" / CONF).read_text()
        prio = re.search(r"^\s*priority (\d+)$", conf, re.M)
        vips = re.search(r"virtual_ipaddress \{\n\s*([\d.]+)", conf)
        ifc = re.search(r"^\s*interface (\S+)$", conf, re.M)
        if not (prio and vips and ifc):
            raise SystemExit(f"{tree / f'node{k}' / CONF}: no priority, interface or virtual_ipaddress in it")
        vip, iface = vips.group(1), ifc.group(1)
        hosts.append((f"node{k}", f"10.189.0.{10 + k}", int(prio.group(1))))
    return LabNumbers(hosts, vip, iface)


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


class PeerTool:
    """A peer's tool against one lab of n nodes: its inventory (written by `write_inventory` from the
    render) in a temporary directory of its own; SETUP makes its virtualenv (bench/venv.sh)."""
    SETUP: Path
    LOG: Path                 # the tool's last run's full output, for a failure
    PREFIX = "lbtk-peer-"
    INVENTORY = "inventory"

    def __init__(self, shell: Shell, n: int, tree: Path):
        """`tree`: what `inv render --out` wrote (tree/NODE/<path>), read for the inventory's numbers."""
        self.shell = shell
        self.n = n
        self.work = Path(tempfile.mkdtemp(prefix=self.PREFIX))
        self.inventory = self.work / self.INVENTORY
        self.inventory.write_text(self.write_inventory(tree, n))

    @staticmethod
    def write_inventory(tree: Path, n: int) -> str:
        raise NotImplementedError

    @staticmethod
    def last_error(stdout: str, stderr: str) -> str:
        raise NotImplementedError

    def timed(self, what: str, cmd: list[str], *, cwd: Path, env: dict[str, str]) -> float:
        """Seconds one run of the tool took, its output kept in LOG; a failure is one line (the tool's
        own words, last_error) and SystemExit."""
        took, r = self.shell.run(cmd, cwd=cwd, env={**TOOL_ENV, **env})
        if not self.shell.dry:
            self.LOG.write_text(r.stdout + r.stderr)
        if r.returncode != 0:
            raise SystemExit(f"{what} failed ({r.returncode}): {self.last_error(r.stdout, r.stderr)}"
                             f" (full output: {self.LOG})")
        return took

    def deploy(self, tree: Path) -> float:
        raise NotImplementedError

    def verify(self) -> float:
        raise NotImplementedError

    def close(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)


def cycle(n: int, shell: Shell, name: str, make: type[PeerTool]) -> dict[str, float]:
    """One run of a peer on fresh nodes: {task: seconds}, plus "render" (the toolkit's render, the
    peer's input, not in its times). Untimed: the drift check after the first deploy, and the change
    reverted at the end (as the toolkit's undrain)."""
    env = f"lab-{n}"
    shell.fresh_nodes(env)
    tmp = Path(tempfile.mkdtemp(prefix="lbtk-render-"))
    side = None
    try:
        tree = tmp / "rendered"
        took = {"render": shell.render(env, tree)}
        side = make(shell, n, tree)
        took["first deploy"] = side.deploy(tree)
        shell.no_drift(env, name)
        took["no-op deploy"] = side.deploy(tree)
        took["verify"] = side.verify()
        # one change: node2's weight to 0 on every node (a keepalived.conf change and reload each)
        took["one change"] = side.deploy(drained(tree, tmp / "drained", DRAINED_ADDRESS))
        side.deploy(tree)
        return took
    finally:
        if side is not None:
            side.close()
        shutil.rmtree(tmp, ignore_errors=True)
