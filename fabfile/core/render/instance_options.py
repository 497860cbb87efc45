"""The template's view of the vrrp_instance / vrrp_sync_group options and the node's static
sections (fabfile/model/instance_options.py); keepalived_instance.j2 writes them."""
from __future__ import annotations

from fabfile.core.vrrp import sync_groups
from fabfile.model.instance_options import mcast_src_of
from fabfile.model.schema import Inventory, Node, VrrpInstance, VrrpSyncGroup

STATIC_SECTIONS = ("static_ipaddress", "static_routes", "static_rules")
GROUP_KEYS = ("notify_master", "notify_backup", "notify_fault", "notify_stop", "notify")


def statics(node: Node) -> list[tuple[str, list[str]]]:
    """The node's static_ipaddress / static_routes / static_rules sections that have lines."""
    return [(k, getattr(node, k)) for k in STATIC_SECTIONS if getattr(node, k)]


def instance_extras(inv: Inventory, node: Node, vi: VrrpInstance) -> dict | None:
    """What node's vrrp_instance block adds for vi; None when nothing (the block is then as before)."""
    out = dict(mcast_src_ip=mcast_src_of(inv, node, vi), use_vmac=vi.use_vmac, vmac_xmit_base=vi.vmac_xmit_base,
               virtual_routes=vi.virtual_routes, virtual_rules=vi.virtual_rules, notify_stop=vi.notify_stop)
    return out if any(out.values()) else None


def group_extras(g: VrrpSyncGroup) -> dict | None:
    out = {k: getattr(g, k) for k in GROUP_KEYS} | {"tracking_weight": g.tracking_weight}
    return out if any(out.values()) else None


def sync_groups_with_options(inv: Inventory) -> list[tuple[str, list[str], dict | None]]:
    """fabfile.core.vrrp.sync_groups, each with its source group's options: multi_master expands
    each group into one per node, in that order (group by group, node by node)."""
    sources = [g for g in inv.vrrp_sync_groups for _ in (inv.nodes if inv.multi_master else (None,))]
    return [(name, members, group_extras(g)) for (name, members), g in zip(sync_groups(inv), sources)]
