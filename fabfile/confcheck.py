"""Run the real `keepalived -t` on rendered configs, on this machine.

keepalived warns (exit 5) about interfaces that do not exist, so each check runs in a
throwaway network namespace holding the node's interface names and address. No packet is
sent: keepalived -t only parses.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .model import Inventory, Node
from .parsers.keepalived_t import KeepalivedCheck, parse_keepalived_check


class ToolMissing(Exception):
    pass


def keepalived_check(inv: Inventory, node: Node, conf_text: str) -> KeepalivedCheck:
    exe = shutil.which("keepalived") or "/usr/sbin/keepalived"
    if not os.path.exists(exe):
        raise ToolMissing("keepalived is not installed here — run scripts/setup.sh")
    with tempfile.TemporaryDirectory(prefix="lbtk-check-") as d:
        conf = Path(d) / "keepalived.conf"
        conf.write_text(conf_text)
        cmd = [exe, "-t", "-f", str(conf)]
        ns = f"lbtk-chk{os.getpid()}"
        if os.geteuid() == 0 and shutil.which("ip"):
            _make_netns(ns, inv, node)
            cmd = ["ip", "netns", "exec", ns] + cmd
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        finally:
            if cmd[0] == "ip":
                subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        return parse_keepalived_check(r.stdout.replace(str(conf), "keepalived.conf"),
                                      r.stderr.replace(str(conf), "keepalived.conf"), r.returncode)


def _make_netns(ns: str, inv: Inventory, node: Node) -> None:
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
    ifaces = {inv.interface_of(node, vi) for vi in inv.vrrp_instances} | {inv.interface_of(node)}
    if inv.sync_daemon:
        ifaces.add(inv.sync_daemon.interface)
    for i, name in enumerate(sorted(ifaces)):
        # veth, not dummy: this host's kernel has no dummy driver
        subprocess.run(["ip", "-n", ns, "link", "add", name, "type", "veth", "peer", "name", f"lbtkp{i}"],
                       check=True, capture_output=True)
        subprocess.run(["ip", "-n", ns, "link", "set", name, "up"], check=True, capture_output=True)
    subprocess.run(["ip", "-n", ns, "addr", "add", f"{node.host}/{node.prefixlen}", "dev",
                    inv.interface_of(node)], check=True, capture_output=True)
