"""Clusters side by side (`inv check --all`): what no single inventory can see.

Separately managed clusters on one segment that pick the same virtual_router_id take each other's
adverts for their own (keepalived's trackers report the outage again and again); a VIP or a node
address claimed by two clusters is the same mistake one layer up. Each inventory claims its node
addresses, its VIPs and, per VRRP family, each virtual_router_id on each node's segment (the
network of the node's address on the instance's interface); a claim two inventories make is one
`Clash` naming both files. Inventories naming the same `estate` describe the same machines, one
of them deployed at a time (lab.yaml and lab-multi.yaml on node1..node3): they are not compared.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Iterable, Sequence

from fabfile.core.vrrp import plan
from fabfile.model.schema import Inventory, is_ip


FIX = {"node": "give one of them other node addresses", "vip": "give one of them other VIPs",
       "virtual_router_id": "give one of them other virtual_router_ids"}


@dataclass(frozen=True)
class Clash:
    """What two inventories (of different estates) both claim, of one kind: one line."""
    kind: str                   # "node", "vip" or "virtual_router_id"
    first: str                  # the two inventories' files
    second: str
    clusters: tuple[str, str]
    items: tuple[str, ...]      # "virtual_router_id 61 on 10.189.0.0/24 (VI_1 / VI_1_node1)"

    def line(self) -> str:
        return (f"{self.first} and {self.second}: {'; '.join(self.items)} in both (clusters {self.clusters[0]} "
                f"and {self.clusters[1]}) — {FIX[self.kind]}, or name the same `estate:` in both if only one of "
                "them is ever deployed")


def claims(inv: Inventory) -> Iterable[tuple[tuple, str, str]]:
    """(key, what, holder) for everything this inventory holds that no other cluster may."""
    for n in inv.nodes:
        addrs = [*n.ips.values(), *(a for entry in n.interfaces.values() for a in entry.ips.values())]
        for a in addrs:
            if is_ip(a):
                ip = ipaddress.ip_address(a)
                yield ("node", ip), f"node address {ip}", n.name
    for p in plan(inv):
        for v in p.addresses:
            if is_ip(v):
                ip = ipaddress.ip_address(v)
                yield ("vip", ip), f"VIP {ip}", p.name
        family = p.source.family
        for n in inv.nodes:
            net = inv.network_on(n, inv.interface_of(n, p.source), family)
            if net is not None:
                space = "IPv6 " if family == 6 else ""
                yield (("virtual_router_id", family, p.virtual_router_id, net),
                       f"{space}virtual_router_id {p.virtual_router_id} on {net}", p.name)


def clashes(inventories: Sequence[tuple[str, Inventory]]) -> list[Clash]:
    """Every claim two inventories of different estates make, one Clash per pair of files and kind
    (`source`: the file each was read from, as messages name it)."""
    held: dict[tuple, list[tuple[int, str, str]]] = {}     # key -> [(inventory's index, what, holder)]
    for k, (_, inv) in enumerate(inventories):
        for key, what, holder in claims(inv):
            mine = held.setdefault(key, [])
            if not any(i == k for i, _, _ in mine):
                mine.append((k, what, holder))
    pairs: dict[tuple[int, int, str], list[str]] = {}
    for key, holders in held.items():
        for n, (a, what, holder_a) in enumerate(holders):
            for b, _, holder_b in holders[n + 1:]:
                if _estate(inventories[a]) != _estate(inventories[b]):
                    pairs.setdefault((a, b, key[0]), []).append(f"{what} ({holder_a} / {holder_b})")
    return [Clash(kind, inventories[a][0], inventories[b][0], (inventories[a][1].cluster, inventories[b][1].cluster),
                  tuple(items)) for (a, b, kind), items in sorted(pairs.items())]


def _estate(entry: tuple[str, Inventory]) -> str:
    source, inv = entry
    return inv.estate or f"file:{source}"
