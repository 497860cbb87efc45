"""Run the real `keepalived -t` on rendered configs, on this machine (the inventory field behind
each thing it reports: fabfile/core/keepalived_fields.py).

keepalived warns (exit 5) about interfaces that do not exist, so each check runs in a
throwaway network namespace holding the node's interface names and address. No packet is
sent: keepalived -t only parses. The namespace and the temporary files are removed on every
path (a failure to build the namespace included).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from fabfile.errors import LbtkError
from fabfile.model.schema import Inventory, Node
from fabfile.parsers.lbtk import last_line
from fabfile.parsers.keepalived_t import KeepalivedCheck, parse_keepalived_check


class ToolMissing(LbtkError):
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
        use_ns = os.geteuid() == 0 and shutil.which("ip") is not None
        try:
            if use_ns:
                _make_netns(ns, inv, node)
                cmd = ["ip", "netns", "exec", ns] + cmd
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        except subprocess.CalledProcessError as e:
            err = last_line((e.stderr or b"").decode(errors="replace"), "failed")
            raise LbtkError(f"{node.name}: could not build the check's network namespace "
                            f"(`{' '.join(e.cmd)}`: {err})") from None
        except subprocess.TimeoutExpired:
            raise LbtkError(f"{node.name}: keepalived -t did not finish within 30 s") from None
        finally:
            if use_ns:
                subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        return parse_keepalived_check(r.stdout.replace(str(conf), "keepalived.conf"),
                                      r.stderr.replace(str(conf), "keepalived.conf"), r.returncode)


def _make_netns(ns: str, inv: Inventory, node: Node) -> None:
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
    ifaces = {inv.interface_of(node, vi) for vi in inv.vrrp_instances} | {inv.interface_of(node)}
    if inv.sync_daemon:
        ifaces.add(inv.sync_daemon.interface)
    ifaces |= {t.name for vi in inv.vrrp_instances for t in vi.track_interface}   # else: "doesn't exist"
    for vi in inv.vrrp_instances:          # a VIP's `dev X` names an interface too
        for spec in vi.virtual_ipaddress:
            words = spec.split()
            if "dev" in words[1:-1]:
                ifaces.add(words[words.index("dev") + 1])
    for i, name in enumerate(sorted(ifaces)):
        # veth, not dummy: this host's kernel has no dummy driver
        # `name X`, `dev X`: an interface called "a" or "up" is not read as an ip keyword
        subprocess.run(["ip", "-n", ns, "link", "add", "name", name, "type", "veth", "peer", "name", f"lbtkp{i}"],
                       check=True, capture_output=True)
        subprocess.run(["ip", "-n", ns, "link", "set", "dev", name, "up"], check=True, capture_output=True)
    for family, ip in sorted(node.ips.items()):     # a dual-stack node's IPv6 address too
        net = node.network_of(family)
        subprocess.run(["ip", "-n", ns, "addr", "add", f"{ip}/{net.prefixlen}", "dev", inv.interface_of(node)]
                       + (["nodad"] if family == 6 else []), check=True, capture_output=True)
