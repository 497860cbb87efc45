"""The deploy phases: one enum, in deploy order. Every list of phases derives from it: `inv deploy`'s
order, the phase tasks, `inv diff`'s phases, the names `check_phases` accepts.

Which managed file belongs to which phase is said where the file is rendered (each renderer in
fabfile/core/render/ tags its NodeFile with its Phase); a phase's service actions follow from the
files it changed (fabfile/core/plan.py). Pure, no imports: every layer may use it.
"""
from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    """A deploy phase; its value is the name the CLI, the owed records and the tables use."""
    INSTALL = "install"
    ARP = "arp"
    NGINX = "nginx"
    LVS = "lvs"
    KEEPALIVED = "keepalived"
    SYNC_DAEMON = "sync-daemon"
    MONITORING = "monitoring"

    @property
    def summary(self) -> str:
        """What the phase does (its task's help line)."""
        return _SUMMARY[self]

    @property
    def binary(self) -> str | None:
        """The program the phase drives, which must be on the node's PATH (None: drives none)."""
        return _BINARY.get(self)

    @property
    def writes_files(self) -> bool:
        """Does it manage files on the node (install only installs packages)?"""
        return self is not Phase.INSTALL

    @property
    def has_task(self) -> bool:
        """Is it an `inv` task of its own? sync-daemon runs within `inv deploy` only: its script is
        what keepalived.conf's notify calls, and `inv sync-start` flips the daemons themselves."""
        return self not in (Phase.SYNC_DAEMON, Phase.MONITORING)

    @classmethod
    def parse(cls, names) -> list[Phase]:
        """Names (or phases) -> phases, in the order given; an unknown name is a ValueError that says
        which and lists the phases."""
        out = []
        for n in names:
            try:
                out.append(cls(n))
            except ValueError:
                raise ValueError(f"unknown phase {str(n)!r} — phases are {', '.join(cls)}") from None
        return out


DEPLOY_ORDER: tuple[Phase, ...] = tuple(Phase)
FILE_PHASES: tuple[Phase, ...] = tuple(p for p in Phase if p.writes_files)   # what `inv diff` compares
RUNTIME_PHASE = Phase.KEEPALIVED   # the runtime record (drains) rides with keepalived.conf, whose weights it sets

_SUMMARY = {
    Phase.INSTALL: "Check packages (keepalived, ipvsadm, nginx, iptables) and versions; apt-install if allowed.",
    Phase.ARP: "ARP sysctls (all + interface + lo) applied with sysctl -p, VIP on lo through a unit.",
    Phase.NGINX: "nginx site and node-naming page; nginx -t, then reload.",
    Phase.LVS: "LVS side: keepalived start options (VRRP-only without IPVS), fwmark rules.",
    Phase.KEEPALIVED: "keepalived.conf: keepalived -t on the node, keep the previous file, reload.",
    Phase.SYNC_DAEMON: "sync_daemon mode notify: the script keepalived's notify runs to flip the IPVS "
                       "sync daemons, run once to set them for the node's VRRP state now.",
    Phase.MONITORING: "monitoring.publish: node_exporter (ipvs and textfile collectors) and a timer publishing "
                      "lbtk's metrics into its textfile directory.",
}
_BINARY = {Phase.KEEPALIVED: "keepalived", Phase.NGINX: "nginx", Phase.LVS: "keepalived"}
