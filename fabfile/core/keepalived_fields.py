"""The inventory field behind a `keepalived -t` message (fabfile/infra/confcheck.py runs it), e.g.
'virtual_servers[0].real_servers[1].TCP_CHECK.retry': pure, from the rendered text and the VRRP plan."""
from __future__ import annotations

import re

from fabfile.core.vrrp import plan
from fabfile.model.checkers import CHECKERS
from fabfile.model.schema import Inventory, Node
from fabfile.parsers import ParseError
from fabfile.parsers.keepalived_conf import parse_conf
from fabfile.parsers.keepalived_t import split_location

# keywords of a vrrp_instance that come from the node, not the instance
_NODE_KEYS = {"priority": "priority", "unicast_src_ip": "address", "state": "state"}
_INSTANCE_RE = re.compile(r"^\(([A-Za-z0-9_.-]+)\)")
# keepalived's word on a vrrp_script whose file is missing, not executable or on an unsafe path
_TRACK_SCRIPT_RE = re.compile(r"^Disabling track script (\S+) (?:since not found|due to insecure)")
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
        m = _TRACK_SCRIPT_RE.match(text)
        if m and m.group(1) in inv.vrrp_scripts:
            return f"vrrp_scripts.{m.group(1)}.script"
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
        declared = getattr(inv.vrrp_instances[i], rest[0], None) if rest and rest[0] in ("priority", "state") \
            else None
        if isinstance(declared, dict) and node.name in declared:    # the instance's own per-node value
            return f"vrrp_instances[{i}].{rest[0]}.{node.name}"
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
            if rest and rest[0] in CHECKERS:
                rest = _checker_path(inv.virtual_servers[idx].real_servers[j], chain[1:], rest)
        return ".".join([out, *rest]) if rest else out
    return f"keepalived.conf line {line}"


def _checker_path(rs, chain, rest: list[str]) -> list[str]:
    """['HTTP_GET', 'url', 'path'] -> ['HTTP_GET[1]', 'url[0]', 'path'] as the inventory names it:
    an index where the inventory lists several (one url inline: no url at all)."""
    kind, block = rest[0], chain[1]
    checks = getattr(rs, kind)
    siblings = [s for s in chain[0].children if s.keyword == kind]
    k = siblings.index(block)
    head = f"{kind}[{k}]" if len(checks) > 1 and kind != "SMTP_CHECK" else kind   # SMTP: host entries split
    if rest[1:2] == ["url"] and kind in ("HTTP_GET", "SSL_GET") and k < len(checks):
        if checks[k].url is None:
            return [head] + rest[2:]
        u = [s for s in block.children if s.keyword == "url"].index(chain[2])
        return [head, f"url[{u}]"] + rest[2:]
    return [head] + rest[1:]
