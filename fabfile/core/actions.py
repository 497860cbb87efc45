"""Typed service actions: what a deploy does to a node's daemons, and the one place they become shell.

A plan holds `Action(verb, unit, arg)` values; the apply step, the summary, the health check and
the owed-actions record all read those fields, never command text.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from fabfile.infra.facts import STDERR_FILE

# verb -> shell template ({u}: the unit, {a}: the argument), and whether it validates (runs first,
# failing means "restore the previous files, reload nothing")
VERBS: dict[str, tuple[str, bool]] = {
    "daemon-reload": ("systemctl daemon-reload", False),
    # --no-reload: enable's implicit daemon-reload costs ~100 ms of systemd CPU per call (measured
    # on the lab; 30 nodes share 2 cores). The plan runs daemon-reload itself whenever a unit file
    # changed, and enabling only adds the symlinks the next boot reads.
    # SYSTEMCTL_SKIP_SYSV=1 (systemd's docs/ENVIRONMENT.md: "do not call SysV compatibility hooks"):
    # keepalived and nginx also ship init.d scripts, and enable/disable would run
    # systemd-sysv-install -> update-rc.d for them: 240 ms (bookworm) / 350 ms (trixie) of node CPU
    # per call, most of a first deploy's node work. The rc?.d links it syncs only matter to a
    # sysvinit boot; on systemd the sysv generator ignores an init.d script that has a native unit,
    # and the package's postinst already made the links.
    "enable": ("SYSTEMCTL_SKIP_SYSV=1 systemctl enable --no-reload {u}", False),
    "start": ("systemctl start {u}", False),
    "enable-now": ("SYSTEMCTL_SKIP_SYSV=1 systemctl enable --no-reload --now {u}", False),   # enable + start: one call
    "reload": ("systemctl reload {u}", False),
    "restart": ("systemctl restart {u}", False),
    "enable-restart": ("SYSTEMCTL_SKIP_SYSV=1 systemctl enable --no-reload {u} && systemctl restart {u}", False),
    "disable-now": ("SYSTEMCTL_SKIP_SYSV=1 systemctl disable --now {u}", False),
    # a unit whose file a deploy removes: stopped before any daemon-reload (NodePlan.add_actions), while
    # systemd still holds its ExecStop (lbtk-vip-lo's takes the VIP off lo); after the reload systemd
    # no longer has the unit loaded (a stop then fails, exit 5), and `disable` removes its wants/ link
    # (measured on the kernel tier, systemd 252). disable-now stays for owed records of older runs.
    "stop": ("systemctl stop {u}", False),
    "disable": ("SYSTEMCTL_SKIP_SYSV=1 systemctl disable {u}", False),
    # the sync daemon no longer wanted: the kernel's daemons stop (each may be running or not)
    "stop-sync-daemons": ("{{ ipvsadm --stop-daemon master; ipvsadm --stop-daemon backup; }} 2>/dev/null; true", False),
    "sysctl-load": ("sysctl -q -p {a}", False),
    "nginx-test": ("nginx -t -q", True),
    "rsyslog-test": ("rsyslogd -N1", True),   # rsyslog's config check (all of it, our rule included)
    "apt-install": ("DEBIAN_FRONTEND=noninteractive apt-get install -y -q {a}", False),
    "run": ("{a}", False),             # a script the toolkit rendered (e.g. lbtk-ipvs-sync), by path
}
DAEMON_VERBS = ("start", "reload", "restart", "enable-restart", "enable", "enable-now")


@dataclass(frozen=True)
class Action:
    verb: str
    unit: str = ""
    arg: str = ""
    why: str = field(default="", compare=False)

    def __post_init__(self):
        if self.verb not in VERBS:
            raise ValueError(f"unknown action verb {self.verb!r}")

    @property
    def validates(self) -> bool:
        return VERBS[self.verb][1]

    def touches(self, unit: str) -> bool:
        """Does this action (re)start or reload `unit`, so its health must be checked after?"""
        return self.unit == unit and self.verb in DAEMON_VERBS

    def shell(self) -> str:
        """The only place an Action becomes a command line."""
        args = " ".join(shlex.quote(a) for a in self.arg.split()) if self.arg else ""
        return VERBS[self.verb][0].format(u=shlex.quote(self.unit), a=args)

    def short(self) -> str:
        """How the deploy summary names it: `reload keepalived`, `daemon-reload`, `nginx -t`."""
        if self.verb == "enable-restart":
            return f"restart {self.unit}"
        if self.verb == "enable-now":
            return f"start {self.unit}"
        if self.verb == "disable-now":
            return f"disable {self.unit}"
        if self.verb == "nginx-test":
            return "nginx -t"
        if self.verb == "rsyslog-test":
            return "rsyslogd -N1"
        if self.verb == "stop-sync-daemons":
            return "ipvsadm --stop-daemon"
        if self.verb in ("sysctl-load", "apt-install", "run"):
            return {"sysctl-load": "sysctl -p", "apt-install": "apt-get install", "run": self.arg}[self.verb]
        return f"{self.verb} {self.unit}".strip()

    def record(self) -> str:
        """One line of the owed-actions file (parsers.lbtk.parse_pending reads it back)."""
        return f"{self.verb}\t{self.unit}\t{self.arg}"

    @classmethod
    def from_record(cls, rec: tuple[str, str, str], why: str = "owed by an interrupted deploy") -> "Action":
        return cls(rec[0], rec[1], rec[2], why)

    def __str__(self) -> str:
        return self.shell()


def script(actions: list[Action]) -> str:
    """Every action in ONE round trip, in order, stopping at the first that fails: after each, a
    marker line (`@@act I ok`, or `@@act I fail RC` followed by what the command printed on stderr).
    parsers.lbtk.parse_action_run reads it back."""
    lines = [STDERR_FILE]
    for i, a in enumerate(actions):
        lines.append(f"{{ {a.shell()}\n}} >/dev/null 2>\"$__e\" </dev/null; __rc=$?; "
                     f"if [ $__rc -ne 0 ]; then echo '@@act {i} fail' $__rc; cat \"$__e\"; "
                     "[ \"$__e\" = /dev/null ] || rm -f \"$__e\"; exit 0; fi; "
                     f"echo '@@act {i} ok'")
    lines.append('[ "$__e" = /dev/null ] || rm -f "$__e"; true')
    return "\n".join(lines) + "\n"
