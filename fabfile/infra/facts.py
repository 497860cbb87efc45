"""What the toolkit can know about a node: each fact is one shell command plus its parser from
fabfile/parsers/, and where its value lands in the typed `NodeState`.

Callers name the facts they need (`DEPLOY`, `VERIFY`, or a few) and fabfile.infra.observe gathers them
from every node in ONE round trip each. Nothing else in the toolkit reads node output.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any, Callable

from fabfile.parsers import (dpkg, genhash as genhash_parser, ip_addr, ipvsadm, journal, keepalived_json, lbtk, lbtk_scripts, lbtk_state, nginx_t, os_release, sysctl, systemctl_show)
from fabfile.parsers.ip_addr import Interface
from fabfile.parsers.lbtk import LiveFile, Raw

PACKAGES = ("keepalived", "ipvsadm", "nginx", "nginx-light", "nginx-core", "iptables", "iproute2", "rsyslog",
            "prometheus-node-exporter")
UNITS = ("keepalived", "nginx", "lbtk-vip-lo", "lbtk-fwmark", "rsyslog", "prometheus-node-exporter",
         "lbtk-publish-metrics.timer")
BINARIES = ("keepalived", "nginx", "ipvsadm", "iptables")
# the toolkit's own records on each node (formats: fabfile/parsers/lbtk_state.py), root's only: who
# deploys what and when, drains and the previous files (secrets among them) are no other user's
# business. Every command that writes one starts with `umask 077` (a new record is 0600, a new
# directory 0700) and makes what an older lbtk left readable private again (records_private).
RECORDS_DIR = "/var/lib/lbtk"
RECORD_MODE = 0o600
PENDING = "/var/lib/lbtk/pending"   # actions of a swap whose reloads have not all run yet
BACKUP_DIR = "/var/lib/lbtk/backup"
RUNTIME_PATH = "/var/lib/lbtk/runtime.json"   # drains and other runtime overrides, kept by every deploy
# per VRRP instance, a fingerprint of the live secret and the run that set it (never the secret):
# a deploy from a clone holding another secret is refused (fabfile/core/secret_record.py). A
# managed file like runtime.json: written by the keepalived phase with keepalived.conf, read with
# the other managed files (deploy_paths), backed up and rolled back with it.
SECRET_RECORD_PATH = "/var/lib/lbtk/vrrp-secret.json"
LOCK_PATH = "/var/lib/lbtk/lock"              # who holds the deploy lock (fabfile/ops/lock.py)
HISTORY_PATH = "/var/lib/lbtk/history"        # one line per change (fabfile/core/history.py)
# Where a round trip keeps what a command wrote on stderr: /run/lbtk/e.PID, PID being the shell's
# own ($$: unique among the node's live processes, so a lock-free read can run beside another
# operator's deploy), created by a builtin (`true >`; not `:`, a special builtin whose failed
# redirection ends a POSIX shell) — mktemp was a fork per round trip. mkdir only when /run/lbtk is
# missing (a tmpfs: after a boot); /dev/null when it cannot be made.
STDERR_FILE = ('__e=/run/lbtk/e.$$; { true > "$__e"; } 2>/dev/null || { mkdir -p /run/lbtk && true > "$__e"; } '
               '2>/dev/null || __e=/dev/null')


def records_private(*paths: str) -> str:
    """Shell: `chmod go=` of RECORDS_DIR and of `paths` (they must exist by then). A 0700 directory
    keeps everything under it from other users, backups included (their own modes are the live
    files', which a restore puts back: they are left as they are)."""
    return "chmod go= " + " ".join(shlex.quote(p) for p in (RECORDS_DIR, *paths))
# Named, not `sysctl -a -r REGEX`: walking every key cost a node 55 ms of CPU per observation, these
# 3 ms (the globs expand under /proc/sys; -e skips the IPVS keys of a kernel without IPVS). Output is
# sysctl's own `key = value`, interface dots shown as '/' exactly as `sysctl -a` shows them.
SYSCTL_PATHS = ("net/ipv4/conf/*/arp_ignore", "net/ipv4/conf/*/arp_announce", "net/ipv4/conf/*/rp_filter",
                "net/ipv4/ip_forward", "net/ipv4/vs/conntrack", "net/ipv4/vs/backup_only",
                "net/ipv4/vs/expire_nodest_conn", "net/ipv6/conf/all/forwarding")
NGINX_PACKAGES = ("nginx", "nginx-light", "nginx-core")


@dataclass
class NodeState:
    """One node as observed. A field stays None (or empty) when its fact was not asked for."""
    name: str
    reachable: bool = True           # False: not observed (no connection, or `unreadable`); `error` says why
    error: str = ""
    unreadable: bool = False         # it answered, but a parser refused what it printed
    kernel: str | None = None
    release: str | None = None                                   # Debian codename (/etc/os-release)
    packages: dict[str, str] = field(default_factory=dict)       # installed only: name -> version
    binaries: set[str] = field(default_factory=set)              # on PATH: keepalived, nginx, ...
    has_ipvs: bool | None = None                                 # the kernel has IPVS (ip_vs loads)
    no_ipvs_why: str = ""                                        # has_ipvs False: what `modprobe ip_vs` said
    interfaces: list[Interface] | None = None                    # ip -j addr
    sysctl: dict[str, str] = field(default_factory=dict)
    active: dict[str, str] = field(default_factory=dict)         # unit -> is-active word (ActiveState)
    enabled: dict[str, str] = field(default_factory=dict)        # unit -> is-enabled word (UnitFileState)
    ipvs: ipvsadm.IpvsTable | None = None                        # ipvsadm -L -n; None: no IPVS
    sync_daemons: list[ipvsadm.SyncDaemon] = field(default_factory=list)
    ipvs_stats: ipvsadm.IpvsStats | None = None                  # ipvsadm -L -n --stats --exact
    pending: list[tuple[str, str, str]] = field(default_factory=list)   # owed actions (verb, unit, arg)
    files: dict[str, LiveFile | None] = field(default_factory=dict)
    backups: list[tuple[str, list[str]]] = field(default_factory=list)   # (stamp, paths), newest first
    ipvs_rate: ipvsadm.IpvsStats | None = None                   # ipvsadm -L -n --rate
    vrrp: list[keepalived_json.VrrpView] | None = None           # keepalived's own view; None: not running
    changes: list[journal.StateChange] = field(default_factory=list)   # VRRP state entries, recent first
    runtime: lbtk_state.RuntimeRecord | None = None              # runtime.json; None: none on the node
    lock: lbtk_state.LockHolder | None = None                    # the deploy lock's holder; None: free
    history: list[lbtk_state.HistoryEntry] = field(default_factory=list)   # oldest first
    # genhash from this node: (address, port, path) -> the page's digest as keepalived's HTTP_GET sees it
    digests: dict[tuple[str, int, str], genhash_parser.GenHash] = field(default_factory=dict)
    nginx_defaults: list[nginx_t.DefaultListen] = field(default_factory=list)   # listen ... default_server
    config_tree: dict[str, bytes] = field(default_factory=dict)   # inv import: /etc/keepalived's files
    script_files: dict[str, str] = field(default_factory=dict)   # declared-present script -> ok|noexec|missing

    # -- derived views, so no caller walks interfaces itself
    @property
    def vips_on_iface(self) -> set[str]:
        """Addresses on interfaces other than lo (a VRRP MASTER's VIPs are among them)."""
        return {a.local for i in self.interfaces or [] if i.name != "lo" for a in i.addresses}

    @property
    def vips_on_lo(self) -> set[str]:
        return {a.local for i in self.interfaces or [] if i.name == "lo" for a in i.addresses}

    def holds(self, vip: str) -> bool:
        """Does this node hold `vip` as a VRRP master does (on an interface, not lo)?"""
        return any(i.has(vip) for i in self.interfaces or [] if i.name != "lo")

    @property
    def last_backup(self) -> tuple[str, list[str]] | None:
        """(stamp, paths) of the newest deploy backup set."""
        return self.backups[0] if self.backups else None

    def has(self, pkg: str) -> bool:
        return pkg in self.packages

    @property
    def nginx_installed(self) -> bool:
        return any(p in self.packages for p in NGINX_PACKAGES)


@dataclass(frozen=True)
class Fact:
    name: str                                 # also the frame name in the round trip's output
    command: str                              # POSIX sh, run on the node
    parse: Callable[[Raw], Any]               # a parser from fabfile/parsers/ (raises ParseError)
    field: str | tuple[str, ...]              # NodeState attribute it fills (several: a tuple value)
    key: str | None = None                    # ... or this key of that dict attribute

    def store(self, state: NodeState, value) -> None:
        if isinstance(self.field, tuple):
            for name, v in zip(self.field, value, strict=True):
                setattr(state, name, v)
        elif self.key is None:
            setattr(state, self.field, value)
        else:
            getattr(state, self.field)[self.key] = value


def _if_ipvs(cmd: str) -> str:
    return f"if [ -e /proc/net/ip_vs ]; then {cmd}; else echo {ipvsadm.NO_IPVS_MARK}; fi"


def ipvs_available(r: Raw) -> tuple[bool, str]:
    """IPVS_AVAILABLE's output -> (has IPVS, what `modprobe ip_vs` said when not: its last line)."""
    has = lbtk.yes_no(r.stdout)
    return has, "" if has else lbtk.last_line(r.stderr)


def _read(path: str) -> str:
    """`cat path` when it exists, with shell builtins only (no fork: 30 lab nodes share 2 cores), for
    the toolkit's own small text files on the node (a missing last newline comes out added)."""
    return (f"[ -r {path} ] && while IFS= read -r __l || [ -n \"$__l\" ]; do printf '%s\\n' \"$__l\"; "
            f"done < {path}; true")


# uname -r's answer, read by the shell itself: no fork (every deploy asks every node)
KERNEL = Fact("kernel", "IFS= read -r __k < /proc/sys/kernel/osrelease && printf '%s\\n' \"$__k\"",
              lambda r: lbtk.first_line(r.stdout), "kernel")
OS_RELEASE = Fact("release", "cat /etc/os-release", lambda r: os_release.parse_codename(r.stdout), "release")
INSTALLED = Fact("packages", "dpkg-query -W -f='${Package}\\t${Version}\\t${db:Status-Abbrev}\\n' "
                 + " ".join(PACKAGES), lambda r: dpkg.parse_installed(r.stdout), "packages")
ON_PATH = Fact("binaries", f"for b in {' '.join(BINARIES)}; do command -v $b >/dev/null 2>&1 && echo $b; done; true",
               lambda r: lbtk.word_set(r.stdout), "binaries")
# modprobe's stderr is the fact's (observe keeps it): when ip_vs will not load, its words are what a
# production deploy's refusal quotes (fabfile.core.checks.no_ipvs_error)
IPVS_AVAILABLE = Fact("has_ipvs", "if [ -e /proc/net/ip_vs ] || { modprobe ip_vs && "
                      "[ -e /proc/net/ip_vs ]; }; then echo yes; else echo no; fi",
                      ipvs_available, ("has_ipvs", "no_ipvs_why"))
ADDRS = Fact("addrs", "ip -j addr", lambda r: ip_addr.parse_ip_addr(r.stdout), "interfaces")
SYSCTLS = Fact("sysctl", "cd /proc/sys && sysctl -e " + " ".join(SYSCTL_PATHS),
               lambda r: sysctl.parse_sysctl(r.stdout).values, "sysctl")
# every unit's is-active and is-enabled word from ONE `systemctl show` (was is-active plus one
# is-enabled per unit, as is-enabled stops at a unit that does not exist: six calls, ~9 ms of a
# node's CPU each)
SERVICES = Fact("units", systemctl_show.command(UNITS),
                lambda r: systemctl_show.split(systemctl_show.parse_show(list(UNITS), r.stdout, r.stderr)),
                ("active", "enabled"))
IPVS_TABLE = Fact("ipvs", _if_ipvs("ipvsadm -L -n"), lambda r: ipvsadm.parse_list_if_ipvs(r.stdout), "ipvs")
SYNC_DAEMONS = Fact("sync_daemons", _if_ipvs("ipvsadm -L --daemon"),
                    lambda r: ipvsadm.parse_daemons_if_ipvs(r.stdout), "sync_daemons")
IPVS_STATS = Fact("ipvs_stats", _if_ipvs("ipvsadm -L -n --stats --exact"),
                  lambda r: ipvsadm.parse_stats_if_ipvs(r.stdout), "ipvs_stats")
OWED = Fact("pending", _read(PENDING), lambda r: lbtk.parse_pending(r.stdout), "pending")
BACKUPS = Fact("backups", f"ls -1 {BACKUP_DIR} 2>/dev/null | sort -r | while read -r d; do echo \"@@backup $d\"; "
               f"cat {BACKUP_DIR}/\"$d\"/.paths 2>/dev/null; echo; done; true",
               lambda r: lbtk.parse_backups(r.stdout), "backups")


IPVS_RATE = Fact("ipvs_rate", _if_ipvs("ipvsadm -L -n --rate"), lambda r: ipvsadm.parse_rate_if_ipvs(r.stdout),
                 "ipvs_rate")
# keepalived writes /tmp/keepalived.json when sent the signal `keepalived --signum=JSON` names; the
# command waits (at most 0.5 s) for the new dump, so it never reads the previous dump. Forks are what
# a node pays for (30 lab nodes share 2 cores): what shell builtins can do is done by them.
KA_JSON_FILE = "/tmp/keepalived.json"   # keepalived 2.2.7: $TMPDIR/keepalived.json, /tmp without TMPDIR
# Trusted only as keepalived's own: a regular file, not a symlink, owned by root (the command runs as
# root, so [ -O ] is root). /tmp is sticky: once root's file holds the name, no other user can
# replace it, and a name taken by another user's file or symlink fails the test. The old dump is
# removed before the signal, so a root-owned file there was written after it (a second clock
# check, -nt, would add nothing and compares whole seconds in some shells). Root does not follow
# another user's symlink in /tmp either (fs.protected_symlinks=1, Debian's default).
_KEEPALIVEDS = f"[ ! -L {KA_JSON_FILE} ] && [ -f {KA_JSON_FILE} ] && [ -O {KA_JSON_FILE} ]"
KA_SIGNUM = "/run/lbtk/keepalived.signum"
KEEPALIVED_VIEW = Fact(
    "vrrp",
    "p=; { read -r p < /run/keepalived.pid; } 2>/dev/null; "
    f"if [ -z \"$p\" ] || ! kill -0 \"$p\" 2>/dev/null; then echo {keepalived_json.NOT_RUNNING}; "
    # a keepalived younger than 2 s may not have its signal handlers yet: the signal's default
    # action would end it, so its view is "unavailable" for that moment. Its age in 1/100 s without
    # ps: /proc/uptime (two decimals; "1NN - 100" keeps a leading 0 from reading as octal) minus its
    # start, field 22 of /proc/PID/stat, in USER_HZ ticks (100 on every Debian architecture); the
    # fields are counted after "PID (comm) ", as comm may hold spaces
    "else t=; u=; { read -r t < /proc/$p/stat; read -r u _ < /proc/uptime; } 2>/dev/null; "
    "t=${t##*) }; set -- $t; "
    "if [ -n \"${20}\" ] && [ -n \"$u\" ] && [ $(( ${u%.*} * 100 + 1${u#*.} - 100 - ${20} )) -lt 200 ]; then "
    f"echo {keepalived_json.NO_JSON}; "
    # the signal's number depends only on the keepalived binary: kept in /run until the binary
    # changes (an exec of keepalived a node and verify saved; [ -nt ] is a shell builtin)
    f"else s=; if [ {KA_SIGNUM} -nt /usr/sbin/keepalived ]; then read -r s < {KA_SIGNUM}; "
    "else s=$(keepalived --signum=JSON 2>/dev/null); "
    f"[ -n \"$s\" ] && [ -x /usr/sbin/keepalived ] && mkdir -p /run/lbtk && echo \"$s\" > {KA_SIGNUM}; fi; "
    f"if [ -z \"$s\" ]; then echo {keepalived_json.NO_JSON}; "
    # keepalived writes the dump to a new file renamed over the old one (fopen_safe: mkostemp +
    # rename), then fills it: the old dump is removed first, so any file there is the new one, done
    # when its one line is whole (read succeeds only on a line with its newline) and closes the array.
    # Polled every 5 ms with builtins only (one sleep a poll), since keepalived answers in about 4 ms.
    # /tmp is everyone's: only a file keepalived can have written is read (_KEEPALIVEDS), checked
    # again after reading; anything else there is "unavailable"
    f"else rm -f {KA_JSON_FILE}; kill -\"$s\" \"$p\"; i=0; "
    "while :; do sleep 0.005; i=$((i+1)); j=; "
    f"if {_KEEPALIVEDS} && [ -s {KA_JSON_FILE} ] && {{ IFS= read -r j < {KA_JSON_FILE}; }} 2>/dev/null && "
    f"{_KEEPALIVEDS}; then case $j in *']') break;; esac; fi; j=; [ $i -ge 100 ] && break; done; "
    # none whole in time: what is there (the parser calls a cut-short dump unavailable)
    f"if [ -n \"$j\" ]; then printf '%s\\n' \"$j\"; elif {_KEEPALIVEDS}; then cat {KA_JSON_FILE} 2>/dev/null; "
    f"else echo {keepalived_json.NO_JSON}; fi; fi; fi; fi",
    lambda r: keepalived_json.parse_keepalived_json(r.stdout), "vrrp")
RECENT_S = 600    # how far back verify reads VRRP state changes (flapping, last transitions)
# journalctl's own -g (PCRE2, case-sensitive as the pattern has capitals): no grep fork and no pipe
# of every keepalived line; the same lines come out (systemd 252 and 257, tests/fixtures/keepalived_json)
STATE_CHANGES = Fact("changes", f"journalctl -u keepalived --since -{RECENT_S}s -o short-unix --no-pager -q "
                     "-g 'Entering (MASTER|BACKUP|FAULT) STATE' 2>/dev/null; true",
                     lambda r: journal.state_changes(r.stdout), "changes")


RUNTIME = Fact("runtime", _read(RUNTIME_PATH),
               lambda r: lbtk_state.parse_runtime(r.stdout), "runtime")
LOCK = Fact("lock", _read(LOCK_PATH), lambda r: lbtk_state.parse_holder_file(r.stdout), "lock")
HISTORY_LINES = 500     # per node, newest kept (the file is trimmed to twice this)
HISTORY = Fact("history", f"tail -n {HISTORY_LINES} {HISTORY_PATH} 2>/dev/null; true",
               lambda r: lbtk_state.parse_history(r.stdout), "history")


def files(paths: list[str]) -> Fact:
    """The managed files' modes and bytes: ONE tar of them all (symlinks followed, missing ones
    skipped), base64 on one line. Two forks a node instead of two per file (stat + base64): 30 lab
    nodes share 2 cores, and a no-op deploy of 30 nodes spent 0.4 s in those forks."""
    q = " ".join(shlex.quote(p) for p in paths)
    cmd = f"tar -chf - -b 1 --no-recursion --ignore-failed-read -- {q} 2>/dev/null | base64 -w0; echo"
    return Fact("files", cmd, lambda r: lbtk.parse_files(r.stdout, list(paths)), "files")


IMPORT_ROOTS = ["/etc/keepalived", "/etc/default/keepalived"]


def config_tree(roots: list[str] = IMPORT_ROOTS) -> Fact:
    """Every regular file under the roots (keepalived.conf and whatever it includes from there,
    the daemon's options): ONE tar, base64 on one line, for `inv import`."""
    q = " ".join(shlex.quote(r) for r in roots)
    cmd = f"tar -chf - -b 1 --ignore-failed-read -- {q} 2>/dev/null | base64 -w0; echo"
    return Fact("config_tree", cmd, lambda r: lbtk.parse_tree(r.stdout, list(roots)), "config_tree")


def genhash(targets: list[tuple[str, int, str, int]]) -> Fact:
    """keepalived's own `genhash` of each (address, port, path, timeout s), run on this node: the
    digest keepalived's HTTP_GET computes, from where its checker runs (a director reaches the real
    servers; this machine may not). Verbose (-v), for the status line the plain form leaves out (it
    prints the digest of a 404 page just the same); the body's hex dump is dropped on the node, so a
    large page costs no transfer. genhash exits 0 even when it cannot connect: the parser tells."""
    q = shlex.quote
    cmds = [f"printf '{genhash_parser.MARK} %s %s %s\\n' {q(a)} {p} {q(path)}; "
            f"genhash -v -t {t} -s {q(a)} -p {p} -u {q(path)} 2>&1 | awk {q(genhash_parser.DROP_BODY)}"
            for a, p, path, t in targets]
    return Fact("digests", "; ".join(cmds) + "; true", lambda r: genhash_parser.parse_genhash(r.stdout), "digests")


def script_files(paths: list[str]) -> Fact:
    """Each script the inventory declares present on the nodes: a regular file root may execute
    (`ok`), there but not executable (`noexec`), or `missing` (fabfile/parsers/lbtk_scripts.py)."""
    q = " ".join(shlex.quote(p) for p in paths)
    cmd = (f'for p in {q}; do if [ -f "$p" ] && [ -x "$p" ]; then s=ok; elif [ -e "$p" ]; then s=noexec; '
           'else s=missing; fi; printf "%s %s\\n" "$s" "$p"; done')
    return Fact("script_files", cmd, lambda r: lbtk_scripts.parse_script_states(r.stdout, list(paths)),
                "script_files")


# every `listen ... default_server` nginx reads besides the packaged nginx.conf (Debian includes
# conf.d/*.conf and sites-enabled/*): read when nginx -t refuses a duplicate default server, to
# name the other file that claims it
NGINX_DEFAULTS = Fact("nginx_defaults", "grep -HnE '^[[:space:]]*listen[[:space:]][^;#]*[[:space:]]"
                      "default(_server)?([[:space:];]|$)' /etc/nginx/conf.d/*.conf /etc/nginx/sites-enabled/* "
                      "2>/dev/null; true", lambda r: nginx_t.parse_default_listens(r.stdout), "nginx_defaults")


# what deploy planning reads (plus files(paths)); what verify, status, sync, watch and metrics read
DEPLOY = (KERNEL, INSTALLED, ON_PATH, IPVS_AVAILABLE, ADDRS, OWED, SERVICES, RUNTIME)
VERIFY = (ADDRS, SYSCTLS, SERVICES, IPVS_TABLE, SYNC_DAEMONS, IPVS_RATE, KEEPALIVED_VIEW, STATE_CHANGES, RUNTIME)
WATCH = (ADDRS, SERVICES, IPVS_TABLE, IPVS_RATE, IPVS_STATS, KEEPALIVED_VIEW, RUNTIME)   # STATS: the sparklines
METRICS = (SERVICES, IPVS_TABLE, SYNC_DAEMONS, KEEPALIVED_VIEW, RUNTIME)   # fabfile/core/monitoring/exposition.py
RENDER = (IPVS_AVAILABLE,)      # what rendering depends on (fabfile.core.render.RenderFacts)
ALL = (KERNEL, OS_RELEASE, INSTALLED, ON_PATH, IPVS_AVAILABLE, ADDRS, SYSCTLS, SERVICES, IPVS_TABLE,
       SYNC_DAEMONS, IPVS_STATS, OWED, BACKUPS, IPVS_RATE, KEEPALIVED_VIEW, STATE_CHANGES, RUNTIME, LOCK,
       HISTORY, NGINX_DEFAULTS)
