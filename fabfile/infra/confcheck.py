"""Run the real `keepalived -t` on rendered configs, on this machine, and name the inventory field
behind each thing it reports.

keepalived warns (exit 5) about interfaces that do not exist, so each check runs in a
throwaway network namespace holding the node's interface names and address. No packet is
sent: keepalived -t only parses. The namespace and the temporary files are removed on every
path (a failure to build the namespace included).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from fabfile.errors import LbtkError
from fabfile.model.schema import Inventory, Node
from fabfile.parsers import ParseError
from fabfile.parsers.keepalived_conf import parse_conf
from fabfile.parsers.lbtk import last_line
from fabfile.parsers.keepalived_t import KeepalivedCheck, parse_keepalived_check, split_location
from fabfile.core.vrrp import plan


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


# ---------------------------------------------------------------- naming the field
# keywords of a vrrp_instance that come from the node, not the instance
_NODE_KEYS = {"priority": "priority", "unicast_src_ip": "address", "state": "state"}
_INSTANCE_RE = re.compile(r"^\(([A-Za-z0-9_.-]+)\)")
_VS_RE = re.compile(r"^Virtual server \[?([0-9.:a-fA-F]+)\]?:(?:tcp|udp|sctp):(\d+)", re.I)


def field_of(inv: Inventory, node: Node, conf_text: str, message: str) -> str:
    """The inventory field a `keepalived -t` message comes from, e.g.
    'virtual_servers[0].real_servers[1].TCP_CHECK.retry', or 'keepalived.conf line N' when the
    line is lbtk's own (or a templates_dir template's)."""
    _, line, text = split_location(message)
    planned = {p.name: p for p in plan(inv)}
    source_index = {vi.name: i for i, vi in enumerate(inv.vrrp_instances)}
    k = next(i for i, n in enumerate(inv.nodes) if n.name == node.name)
    if line is None:
        m = _INSTANCE_RE.match(text)
        if m and m.group(1) in planned:
            return f"vrrp_instances[{source_index[planned[m.group(1)].source.name]}]"
        m = _VS_RE.match(text)
        if m:
            for i, vs in enumerate(inv.virtual_servers):
                if vs.vip == m.group(1) and vs.port == int(m.group(2)):
                    return f"virtual_servers[{i}]"
        return "keepalived.conf"
    try:
        chain = parse_conf(conf_text).at_line(line)
    except ParseError:
        return f"keepalived.conf line {line}"
    if not chain:
        return f"keepalived.conf line {line}"
    head, rest = chain[0], [s.keyword for s in chain[1:]]
    if head.keyword == "global_defs":
        return ".".join(["global_defs", *rest[:1]]) if rest else "global_defs"
    if head.keyword == "vrrp_script" and head.args:
        return ".".join([f"vrrp_scripts.{head.args[0]}", *rest[:1]])
    if head.keyword == "vrrp_instance" and head.args and head.args[0] in planned:
        i = source_index[planned[head.args[0]].source.name]
        if rest and rest[0] in _NODE_KEYS:
            return f"nodes[{k}].{_NODE_KEYS[rest[0]]}"
        if rest and rest[0] in ("virtual_ipaddress", "virtual_ipaddress_excluded"):
            return f"vrrp_instances[{i}].virtual_ipaddress"
        if rest and rest[0] == "unicast_peer":
            return "nodes[].address"
        return ".".join([f"vrrp_instances[{i}]", *rest]) if rest else f"vrrp_instances[{i}]"
    if head.keyword == "virtual_server":
        idx = [s for s in parse_conf(conf_text).top if s.keyword == "virtual_server"].index(head)
        out = f"virtual_servers[{idx}]"
        if rest and rest[0] == "real_server":
            rs_line = chain[1]
            j = [s for s in head.children if s.keyword == "real_server"].index(rs_line)
            out += f".real_servers[{j}]"
            rest = rest[1:]
            if rest and rest[0] == "HTTP_GET" and rest[1:2] == ["url"]:
                rest = ["HTTP_GET"] + rest[2:]
        return ".".join([out, *rest]) if rest else out
    return f"keepalived.conf line {line}"
