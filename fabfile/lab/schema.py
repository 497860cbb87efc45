"""The lab's part of an inventory: its `lab:` section and a node's own `lab:` (pydantic models).

The product validates both through fabfile.model.extensions (it never imports this module);
fabfile/lab/hooks.py registers them. `spec_for` (fabfile/lab/hooks.py) turns a validated section
into the LabSpec the host-side code builds (fabfile/lab/__init__.py).
"""
from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field, field_validator

from fabfile.lab import DEFAULT_RELEASE
from fabfile.model.fields import FieldProblem, Strict, _check_any_ip, _check_ip, _check_ipv6

# The Debian releases the lab builds nodes of (fabfile/lab/rootfs.py builds each; a unit test keeps
# the two lists equal). Only the lab reads it: deploy and verify take what differs between
# releases from each node's own facts (dpkg versions), never from here.
Release = Literal["bookworm", "trixie"]


class NodeLab(Strict):
    """A node's own lab settings, over the inventory's `lab:` section (a mixed cluster)."""
    release: Release | None = Field(None, description="This node's Debian release, over lab.release (a mixed "
                                    "cluster).")


class LabBastion(Strict):
    """A production-shaped lab: the directors sit on `inner_bridge`, which the host has no address
    on (it cannot reach them), and one more node, the bastion, has a leg on both bridges."""
    name: str = Field("bastion", description="The bastion node's name.")
    host: str = Field(description="Its IPv4 address on `bridge`, which the host reaches.")
    inner: str = Field(description="Its address/prefix on inner_bridge, e.g. 10.189.0.94/27.")
    mac: str | None = Field(None, description="The MAC of its leg on `bridge`; unset: one the kernel picks.")
    inner_mac: str | None = Field(None, description="The MAC of its leg on inner_bridge; unset: likewise.")

    _ip = field_validator("host")(lambda v: _check_ip(v))


class LabUsers(Strict):
    """Who logs in: root login refused, `name` with sudo (NOPASSWD, except on `sudo_password_nodes`,
    whose password lab.up writes to `password_file`, relative to inventories/)."""
    name: str = Field("ops", description="The user that logs in, with sudo (root login is refused).")
    sudo_password_nodes: list[str] = Field([], description="Nodes whose sudo asks for a password (the others: "
                                           "NOPASSWD).")
    password_file: str | None = Field(None, description="Where lab.up writes that password (random, mode 0600), "
                                      "relative to inventories/.")


class Lab(Strict):
    """The local lab this inventory describes: `inv lab.up` builds its nodes on this machine."""
    bridge: str = Field("lbtk-br0", description="The host's bridge the nodes sit on.")
    gateway: str = Field("10.189.0.1/24", description="The host's address/prefix on `bridge`, the nodes' gateway.")
    inner_bridge: str | None = Field(None, description="With bastion: the directors' own segment, which the host "
                                     "has no address on.")
    bastion: LabBastion | None = Field(None, description="A bastion node on both bridges: the production shape.")
    users: LabUsers | None = Field(None, description="Who logs in; unset: root (the plain lab).")
    ssh_config: str | None = Field(None, description="Where lab.up writes the ssh_config naming every node.")
    gateway6: str | None = Field(None, description="The host's IPv6 address/prefix on `bridge` (dual-stack labs).")
    release: Release = Field(DEFAULT_RELEASE, description="The nodes' Debian release; a node's own lab.release "
                             "wins.")
    # the kernel tier: the nodes run inside a qemu VM on Debian's kernel (real IPVS), reached
    # through `bridge` (fabfile/lab/kernel.py)
    kernel: bool | Release = Field(False, description="The kernel tier: true runs the nodes in a qemu VM on Debian "
                                   "12's kernel (real IPVS), a release name on that release's; false: systemd-nspawn "
                                   "nodes on this host's kernel.")
    # verify's traffic check reads order, counts per real server and IPVS counters from it
    client: str | None = Field(None, description="The address of a client network namespace on `bridge` "
                               "(lbtk-kclient) that `inv verify` sends real requests from, through each VIP.")
    client6: str | None = Field(None, description="The client namespace's IPv6 address (with gateway6).")
    prometheus: bool = Field(False, description="A monitoring node: `inv lab.up` runs a real Prometheus and "
                             "Alertmanager on this host's loopback, scraping the directors' node_exporter with the "
                             "cluster's alert rules (`inv render --monitoring`'s). Prometheus listens where "
                             "monitoring.prometheus_url says (http://127.0.0.1:PORT), Alertmanager on PORT+3; "
                             "needs monitoring.publish.")

    _client_ip = field_validator("client")(lambda v: v if v is None else _check_ip(v))
    _client6_ip = field_validator("client6")(lambda v: v if v is None else _check_ipv6(v))

    @field_validator("gateway6")
    @classmethod
    def _gateway6(cls, v: str | None) -> str | None:
        if v is None:
            return v
        addr, slash, plen = v.partition("/")
        if ":" not in addr or not slash:
            raise ValueError(f"{v!r} is not an IPv6 address/prefix such as fd00:189::1/64")
        _check_any_ip(addr)
        if not (plen.isascii() and plen.isdigit() and 8 <= int(plen) <= 128):
            raise ValueError(f"prefix /{plen} is impossible here (8 to 128)")
        return v

    @field_validator("kernel", mode="before")
    @classmethod
    def _kernel(cls, v):
        if isinstance(v, bool) or v in get_args(Release):
            return v
        raise ValueError("neither true/false nor a Debian release the kernel tier boots "
                         f"({', '.join(get_args(Release))})")

    @property
    def kernel_release(self) -> str | None:
        """The Debian release whose kernel the kernel tier boots; None: not the kernel tier."""
        if self.kernel is False:
            return None
        return DEFAULT_RELEASE if self.kernel is True else self.kernel


def release_of(inv, node) -> str:
    """The Debian release the lab builds `node` of: its own lab.release, else lab.release."""
    if node.lab is not None and node.lab.release is not None:
        return node.lab.release
    return inv.lab.release if inv.lab is not None else DEFAULT_RELEASE


def cross_problems(inv):
    """A node's lab settings need a lab inventory."""
    for k, n in enumerate(inv.nodes):
        if n.lab is not None and inv.lab is None:
            yield FieldProblem(("nodes", k, "lab"), f"{n.name} has lab settings but the inventory has no "
                               "`lab:` section (only lab inventories build nodes)",
                               "remove the node's lab:, or add a lab: section")
    if inv.lab is not None and inv.lab.prometheus:
        yield from _prometheus_problems(inv.monitoring)


def _prometheus_problems(m):
    """lab.prometheus: the directors publish, on an address Prometheus on this host reaches, and
    Prometheus itself listens on this host's loopback (the lab's daemons answer no other machine)."""
    from urllib.parse import urlsplit
    from fabfile.model.monitoring import is_loopback
    if not m.publish:
        yield FieldProblem(("monitoring", "publish"), "lab.prometheus scrapes lbtk's metrics, which the "
                           "directors publish only with monitoring.publish", "set monitoring.publish: true")
    u = urlsplit(m.prometheus_url or "")
    try:
        port = u.port
    except ValueError:
        port = None
    if u.scheme != "http" or not is_loopback(u.hostname) or port is None or u.path not in ("", "/"):
        yield FieldProblem(("monitoring", "prometheus_url"), "lab.prometheus runs Prometheus on this host's "
                           f"loopback, at the address this names ({m.prometheus_url or 'unset'})",
                           "e.g. http://127.0.0.1:9190")
    if is_loopback(m.listen_host):
        yield FieldProblem(("monitoring", "listen_address"), "lab.prometheus scrapes the directors from this "
                           "host, and node_exporter listens on their loopback only", "e.g. :9100")
