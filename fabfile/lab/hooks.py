"""What the lab gives the product, registered in fabfile.model.extensions when this module is
imported (the task layer and tests/conftest.py import it): the `lab:` sections' schema, the
generated inventories `lab-N`, the network rule before a connection, the client namespace verify
sends traffic from, and os-upgrade's re-image. Also `spec_for`: an inventory's lab as a LabSpec.

Light to import (pydantic models and the guard): the host-side modules (nspawn, rootfs, kernel)
load inside the functions that need them.
"""
from __future__ import annotations

import os
import re
from pathlib import Path


from fabfile.errors import LbtkError, UsageError
from fabfile.lab import CLIENT_NETNS, LabBastion, LabError, LabNode, LabSpec, LabUsers
from fabfile.lab import schema
from fabfile.lab.guard import require_lab_segment
from fabfile.model import extensions
from fabfile.model.context import load_env
from fabfile.model.loading import InventoryError, inventory_file, read_yaml

GENERATED = re.compile(r"lab-(\d+)")
GENERATED_MAX = 50          # nodes 10.189.0.11 .. .60 on the lab bridge


def generated(env: str, inventory_dir: Path) -> tuple[dict, str] | None:
    """`--env lab-N` with no such file: the lab inventory with N nodes (node1..nodeN, 10.189.0.11..,
    priorities 200, 199, ..., every node a real server), so scale is one command (inv lab.up --env lab-30)."""
    m = GENERATED.fullmatch(env)
    if not m:
        return None
    n = int(m.group(1))
    if not 1 <= n <= GENERATED_MAX:
        raise InventoryError(f"--env {env}: a generated lab has 1 to {GENERATED_MAX} nodes")
    data = read_yaml((inventory_dir / "lab.yaml").read_text())
    data["cluster"] = env
    data["nodes"] = [{"name": f"node{k}", "host": f"10.189.0.{10 + k}", "priority": 201 - k,
                      **({"state": "MASTER"} if k == 1 else {}), "mac": f"02:bd:00:00:01:{10 + k:02x}"}
                     for k in range(1, n + 1)]
    for vs in data.get("virtual_servers", []):
        check = vs["real_servers"][0].get("TCP_CHECK")
        vs["real_servers"] = [{"node": f"node{k}", "weight": 1, **({"TCP_CHECK": check} if check else {})}
                              for k in range(1, n + 1)]
    return data, "lab.yaml"


def lab_call(fn, *args, **kw):
    """A lab entry point, its LabError as the product's one-line error."""
    try:
        return fn(*args, **kw)
    except LabError as e:
        raise LbtkError(str(e)) from None


def spec_for(env: str):
    """The lab spec of an inventory: a LabSpec, or a kernel.KernelSpec when `lab.kernel` is set (true:
    Debian 12's kernel, a release name: that release's).
    With `lab.bastion` (+ inner_bridge, users, ssh_config): the production-shaped lab, whose nodes
    only the bastion reaches (inventories/lab-bastion.yaml)."""
    e = load_env(env)
    lab = e.inv.lab
    if lab is None:
        raise LbtkError(f"{e.path.name}: no `lab:` section — the lab only builds inventories made for it (--env lab)")
    nodes = tuple(LabNode(n.name, n.ip, n.mac, schema.release_of(e.inv, n),
                          f"{n.address6}/{n.prefixlen6}" if n.address6 else None) for n in e.inv.nodes)
    if lab.kernel:
        from fabfile.lab import kernel
        if lab.bastion or lab.inner_bridge or lab.users or lab.ssh_config:
            raise LbtkError(f"{e.path.name}: the kernel tier has no bastion, inner bridge, users or ssh_config "
                            "(lab.kernel: true takes none of them)")
        return lab_call(kernel.spec, nodes, lab.bridge, lab.gateway, lab.client, lab.kernel_release,
                        lab.gateway6, lab.client6)
    bastion = users = None
    if lab.bastion is not None:
        b = lab.bastion
        bastion = LabBastion(b.name, b.host, b.inner, b.mac, b.inner_mac, lab.release)
    if lab.users is not None:
        u = lab.users
        users = LabUsers(u.name, tuple(u.sudo_password_nodes),
                         inventory_file(u.password_file) if u.password_file else None)
    return LabSpec(nodes=nodes, bridge=lab.bridge, gateway=lab.gateway, gateway6=lab.gateway6, name=e.inv.cluster,
                   inner_bridge=lab.inner_bridge, bastion=bastion, users=users,
                   ssh_config=Path(os.path.expanduser(lab.ssh_config)) if lab.ssh_config else None)


def traffic_client(inv) -> extensions.TrafficClient | None:
    """With `lab.client`: the client network namespace the lab made on its bridge, so requests reach
    the VIP from another MAC, like a real client's."""
    if inv.lab is None or inv.lab.client is None:
        return None
    return extensions.TrafficClient(
        name=CLIENT_NETNS, prefix=("ip", "netns", "exec", CLIENT_NETNS),
        ready=lambda: Path("/run/netns", CLIENT_NETNS).exists(),
        missing=f"no client namespace {CLIENT_NETNS}: run `inv lab.up` (as root)")


def os_swap(inv, env: str) -> extensions.OsSwap | None:
    """A lab node's OS is swapped by re-imaging it onto the new release's base: the lab nodes have
    no route to the archive. The kernel tier is refused (it builds bookworm nodes only)."""
    if inv.lab is None:
        return None
    from fabfile.lab import kernel, reimage, rootfs
    spec = spec_for(env)
    if isinstance(spec, kernel.KernelSpec):
        raise UsageError(f"--env {env}: the kernel tier builds bookworm nodes only; os-upgrade re-images "
                         "nodes of the plain lab (lab.kernel: false)")
    return extensions.OsSwap(
        how="lab: re-image",
        step=lambda node, release: (
            f"lab: re-image {node} onto {rootfs.base_dir(spec, release)} (name, addresses, MAC, SSH host keys "
            "and the lab key kept; the rest is a fresh Debian install: `inv deploy --node` puts the toolkit's "
            "files back)"),
        run=lambda node, release, say: lab_call(reimage, spec, node, release, progress=say))


extensions.register(extensions.Hooks(
    section=schema.Lab, node_section=schema.NodeLab, cross_problems=schema.cross_problems, generated=generated,
    before_connect=require_lab_segment, traffic_client=traffic_client, os_swap=os_swap))
