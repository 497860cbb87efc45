"""ipvsadm output -> typed IPVS observations (ipvsadm 1.31, Debian 12; kernel 6.1 IPVS 1.2.1).

Always run ipvsadm with -n: without it addresses and ports are names and these parsers refuse them.

    ipvsadm -L -n                  parse_list(text)        -> IpvsTable (with ActiveConn/InActConn)
    ipvsadm -S -n                  parse_save(text)        -> IpvsTable (rules only, counters None)
    ipvsadm -L -n --stats [--exact] parse_stats(text)      -> IpvsStats (Counters)
    ipvsadm -L -n --rate           parse_rate(text)        -> IpvsStats (Rates)
    ipvsadm -L -n -c               parse_connections(text) -> list[Connection]
    ipvsadm -L --daemon            parse_daemons(text)     -> list[SyncDaemon] ([] for no output)
    stderr of a failed ipvsadm     ipvs_unavailable(text)  -> True when the kernel has no IPVS

What the real outputs look like (tests/fixtures/ipvsadm/, captured in the kernel-tier VM):
- Service lines: `TCP  10.190.0.100:80 rr`, `TCP  [fd00:190::100]:80 rr`, `FWM  1 rr persistent 300`,
  `FWM  2 IPv6 rr`, `TCP  ...:85 sh (sh-fallback,sh-port)`, `UDP  ...:514 rr ops`,
  `TCP  ...:443 rr persistent 60 mask 255.255.255.0` (keepalived's persistence_granularity /
  ipvsadm -M; the mask is printed only when it is not /32). `-p` without a value is 360.
- Real server lines: `  -> 10.190.0.11:80  Route 1 0 150`; forward is Route (DR, -g), Masq (NAT,
  -m), Tunnel (-i). ipvsadm can also print Local, but kernel 6.1 never reports it: a NAT real
  server on the director's own address still lists as Masq. FWM real servers show port 0.
- --stats numbers above 99,999,999 get a unit unless --exact: `160136K` (x1000), M, G, T. Such
  values are parsed to int (160136000) and `IpvsStats.exact` is False.
- `-L -n -t VIP:PORT` (one service) has no "IP Virtual Server version" line.
- --thresholds and --persistent-conn listings have other columns: rejected (ParseError).
- -c lists persistence templates too: state NONE/ASSURED with source port 0 (client network
  address with -M), and for fwmark services protocol `IP` with virtual `0.0.0.<fwmark>:0`.
- Without IPVS in the kernel ipvsadm prints nothing on stdout and, on stderr,
  "Can't initialize ipvs: Protocol not available" (exit 2).
"""
from __future__ import annotations

import re
from types import SimpleNamespace
from dataclasses import dataclass, field

from fabfile.parsers import ParseError, excerpt, join_host_port, split_host_port

PROTOCOLS = ("TCP", "UDP", "SCTP", "FWM")
FORWARDS = ("Route", "Masq", "Tunnel", "Local")
SAVE_FORWARD = {"-g": "Route", "--gatewaying": "Route", "-m": "Masq", "--masquerading": "Masq",
                "-i": "Tunnel", "--ipip": "Tunnel"}
SAVE_PROTO = {"-t": "TCP", "--tcp-service": "TCP", "-u": "UDP", "--udp-service": "UDP",
              "--sctp-service": "SCTP", "-f": "FWM", "--fwmark-service": "FWM"}

LIST_HEADER = "Prot LocalAddress:Port Scheduler Flags"
LIST_RS_HEADER = "-> RemoteAddress:Port Forward Weight ActiveConn InActConn"
STATS_HEADER = "Prot LocalAddress:Port Conns InPkts OutPkts InBytes OutBytes"
RATE_HEADER = "Prot LocalAddress:Port CPS InPPS OutPPS InBPS OutBPS"
COUNTERS_RS_HEADER = "-> RemoteAddress:Port"
VERSION_RE = re.compile(r"^IP Virtual Server version (\S+) \(size=(\d+)\)$")
CONN_HEADER = ("IPVS connection entries", "pro expire state source virtual destination")
DAEMON_RE = re.compile(r"^(master|backup) sync daemon \(mcast=(\S+), syncid=(\d+), maxlen=(\d+), "
                       r"group=([^,]+), port=(\d+), ttl=(\d+)\)$")
NO_IPVS = "Can't initialize ipvs"
UNITS = {"": 1, "K": 1000, "M": 1000 ** 2, "G": 1000 ** 3, "T": 1000 ** 4}


# ---------------------------------------------------------------- typed observations
@dataclass(frozen=True)
class RealServer:
    address: str                     # "10.190.0.11", "fd00:190::11" (no brackets)
    port: int                        # 0 for fwmark services
    forward: str                     # Route | Masq | Tunnel | Local
    weight: int
    active_conn: int | None = None   # None when parsed from ipvsadm -S
    inact_conn: int | None = None

    @property
    def endpoint(self) -> str:
        """'10.190.0.11:80' / '[fd00:190::11]:80', as ipvsadm prints it."""
        return join_host_port(self.address, self.port)


@dataclass(frozen=True)
class IpvsService:
    protocol: str                    # TCP | UDP | SCTP | FWM
    address: str | None              # None for FWM
    port: int | None                 # None for FWM
    fwmark: int | None               # None unless FWM
    scheduler: str                   # rr, wrr, wlc, sh, ...
    persistent: int | None = None    # persistence timeout (s), None if not persistent
    netmask: str | None = None       # persistence granularity: "255.255.255.0" (v4) / "64" (v6) if shown
    flags: list[str] = field(default_factory=list)   # scheduler flags (sh-fallback, sh-port) and "ops"
    real_servers: list[RealServer] = field(default_factory=list)
    family: str = "inet"             # inet | inet6
    pe: str | None = None            # persistence engine ("sip"), rare

    @property
    def key(self) -> str:
        return service_key(self)


@dataclass(frozen=True)
class IpvsTable:
    services: list[IpvsService]
    version: str | None = None       # "1.2.1"; None for -S output and one-service listings
    size: int | None = None          # connection hash table size, e.g. 4096

    def service(self, key: str) -> IpvsService | None:
        return next((s for s in self.services if service_key(s) == key), None)

    def keys(self) -> list[str]:
        return [service_key(s) for s in self.services]


@dataclass(frozen=True)
class Counters:                      # ipvsadm -L -n --stats: totals since the service was added
    conns: int
    inpkts: int
    outpkts: int
    inbytes: int
    outbytes: int


@dataclass(frozen=True)
class Rates:                         # ipvsadm -L -n --rate: per second, 2 s estimator
    cps: int
    inpps: int
    outpps: int
    inbps: int
    outbps: int


@dataclass(frozen=True)
class RealServerStats:
    address: str
    port: int
    stats: Counters | Rates

    @property
    def endpoint(self) -> str:
        return join_host_port(self.address, self.port)


@dataclass(frozen=True)
class ServiceStats:
    protocol: str
    address: str | None
    port: int | None
    fwmark: int | None
    stats: Counters | Rates
    real_servers: list[RealServerStats] = field(default_factory=list)
    family: str = "inet"

    @property
    def key(self) -> str:
        return service_key(self)


@dataclass(frozen=True)
class IpvsStats:
    services: list[ServiceStats]
    exact: bool = True               # False if any number carried a K/M/G/T unit (rounded down)
    version: str | None = None
    size: int | None = None

    def service(self, key: str) -> ServiceStats | None:
        return next((s for s in self.services if service_key(s) == key), None)


@dataclass(frozen=True)
class Endpoint:
    address: str
    port: int

    def __str__(self) -> str:
        return join_host_port(self.address, self.port)


@dataclass(frozen=True)
class Connection:
    protocol: str                    # TCP | UDP | SCTP | IP (fwmark persistence template)
    expire: int                      # seconds left
    state: str                       # ESTABLISHED, FIN_WAIT, TIME_WAIT, SYN_RECV, UDP, NONE, ASSURED, ...
    source: Endpoint                 # client (templates: port 0, network address with -M)
    virtual: Endpoint                # VIP:port (fwmark templates: 0.0.0.<mark>:0)
    destination: Endpoint            # real server

    @property
    def is_template(self) -> bool:
        """A persistence template, not a real connection."""
        return self.source.port == 0 or self.protocol == "IP"


@dataclass(frozen=True)
class SyncDaemon:
    role: str                        # master | backup
    mcast_interface: str
    syncid: int
    maxlen: int
    group: str
    port: int
    ttl: int


# ---------------------------------------------------------------- helpers
def service_key(s) -> str:
    """Stable identity of a service as ipvsadm -L -n names it: 'TCP 10.190.0.100:80',
    'TCP [fd00:190::100]:80', 'FWM 1', 'FWM 2 IPv6'. Works on IpvsService and ServiceStats."""
    if s.protocol == "FWM":
        return f"FWM {s.fwmark}" + (" IPv6" if s.family == "inet6" else "")
    return f"{s.protocol} {join_host_port(s.address, s.port)}"


key = service_key


def ipvs_unavailable(text: str) -> bool:
    """True if ipvsadm's output (stderr) says the kernel has no IPVS."""
    return NO_IPVS in text


def _lines(text: str) -> list[str]:
    return [ln.rstrip("\r\n").rstrip() for ln in text.splitlines() if ln.strip()]


def _norm(line: str) -> str:
    return " ".join(line.split())


def _int(tok: str, what: str, line: str) -> int:
    if not (tok.isascii() and tok.isdigit()):
        raise ParseError(f"ipvsadm: {what} is not a number in {excerpt(line)}")
    return int(tok)


def _addr(tok: str, line: str) -> tuple[str, int]:
    try:
        return split_host_port(tok)
    except ParseError:
        raise ParseError(f"ipvsadm: {tok!r} is not a numeric address:port in {excerpt(line)} "
                         "(run ipvsadm with -n)") from None


def _service_head(toks: list[str], line: str) -> tuple[dict, list[str]]:
    """'TCP 10.0.0.1:80 ...' / 'FWM 1 [IPv6] ...' -> (identity fields, remaining tokens)."""
    proto = toks[0]
    if proto not in PROTOCOLS or len(toks) < 2:
        raise ParseError(f"ipvsadm: not a service line: {excerpt(line)}")
    if proto == "FWM":
        ident = dict(protocol=proto, address=None, port=None, fwmark=_int(toks[1], "fwmark", line),
                     family="inet")
        rest = toks[2:]
        if rest and rest[0] == "IPv6":
            ident["family"], rest = "inet6", rest[1:]
        return ident, rest
    addr, port = _addr(toks[1], line)
    return dict(protocol=proto, address=addr, port=port, fwmark=None,
                family="inet6" if ":" in addr else "inet"), toks[2:]


def _preamble(lines: list[str], headers: tuple[str, str], what: str) -> tuple[str | None, int | None, int]:
    """Skip the version line and the two header lines; return (version, size, index of first row)."""
    version = size = None
    i = 0
    if lines and (m := VERSION_RE.match(lines[0])):
        version, size, i = m.group(1), int(m.group(2)), 1
    got = [_norm(x) for x in lines[i:i + 2]]
    if got != list(headers):
        found = got[0] if got else "empty output"
        for name, h in (("ipvsadm -L -n", LIST_HEADER), ("ipvsadm -L -n --stats", STATS_HEADER),
                        ("ipvsadm -L -n --rate", RATE_HEADER)):
            if got and got[0] == h:
                raise ParseError(f"expected {what} output, got {name} output")
        if got and got[0].startswith("Prot LocalAddress:Port"):
            raise ParseError(f"unsupported ipvsadm listing columns ({found!r}): use {what}")
        raise ParseError(f"not {what} output: {excerpt(found)}")
    return version, size, i + 2


# ---------------------------------------------------------------- ipvsadm -L -n
def _service_options(rest: list[str], line: str) -> dict:
    """Parse what follows the address on a -L service line: scheduler and its options."""
    if not rest:
        raise ParseError(f"ipvsadm: service without scheduler: {excerpt(line)}")
    out = dict(scheduler=rest[0], persistent=None, netmask=None, flags=[], pe=None)
    i = 1
    if i < len(rest) and rest[i].startswith("("):
        j = i
        while not rest[j].endswith(")"):
            j += 1
            if j >= len(rest):
                raise ParseError(f"ipvsadm: unclosed scheduler flags in {excerpt(line)}")
        out["flags"] = [f for f in " ".join(rest[i:j + 1])[1:-1].replace(" ", "").split(",") if f]
        i = j + 1
    while i < len(rest):
        tok = rest[i]
        if tok == "persistent" and i + 1 < len(rest):
            out["persistent"] = _int(rest[i + 1], "persistence timeout", line)
            i += 2
        elif tok == "mask" and i + 1 < len(rest):
            out["netmask"] = rest[i + 1]
            i += 2
        elif tok == "pe" and i + 1 < len(rest):
            out["pe"] = rest[i + 1]
            i += 2
        elif tok == "ops":
            out["flags"].append("ops")
            i += 1
        else:
            raise ParseError(f"ipvsadm: unknown service option {tok!r} in {excerpt(line)}")
    return out


def parse_list(text: str) -> IpvsTable:
    """`ipvsadm -L -n` (also `-L -n -t|-u|-f SERVICE`) -> IpvsTable."""
    lines = _lines(text)
    version, size, i = _preamble(lines, (LIST_HEADER, LIST_RS_HEADER), "ipvsadm -L -n")
    services: list[IpvsService] = []
    for line in lines[i:]:
        toks = line.split()
        if toks[0] == "->":
            if not services:
                raise ParseError(f"ipvsadm: real server before any service: {excerpt(line)}")
            if len(toks) != 6 or toks[2] not in FORWARDS:
                raise ParseError(f"ipvsadm: unrecognised real server line: {excerpt(line)}")
            addr, port = _addr(toks[1], line)
            services[-1].real_servers.append(RealServer(
                addr, port, toks[2], _int(toks[3], "weight", line),
                _int(toks[4], "ActiveConn", line), _int(toks[5], "InActConn", line)))
        else:
            ident, rest = _service_head(toks, line)
            services.append(IpvsService(**ident, **_service_options(rest, line)))
    return IpvsTable(services, version, size)


# ---------------------------------------------------------------- ipvsadm -S -n
def parse_save(text: str) -> IpvsTable:
    """`ipvsadm -S -n` (the -A/-a rule lines) -> IpvsTable without counters. Empty text: no rules."""
    services: list[IpvsService] = []
    for line in _lines(text):
        toks = line.split()
        cmd, opts = toks[0], toks[1:]
        if cmd not in ("-A", "--add-service", "-a", "--add-server"):
            raise ParseError(f"not ipvsadm -S output: {excerpt(line)}")
        proto = target = None
        sched, persistent, netmask, flags, pe, ipv6 = "wlc", None, None, [], None, False
        rs_addr, forward, weight = None, "Route", 1
        j = 0

        def value() -> str:
            nonlocal j
            if j + 1 >= len(opts):
                raise ParseError(f"ipvsadm -S: option {opts[j]} without value in {excerpt(line)}")
            j += 1
            return opts[j]

        while j < len(opts):
            o = opts[j]
            if o in SAVE_PROTO:
                proto, target = SAVE_PROTO[o], value()
            elif o in ("-s", "--scheduler"):
                sched = value()
            elif o in ("-p", "--persistent"):
                persistent = _int(value(), "persistence timeout", line)
            elif o in ("-M", "--netmask"):
                netmask = value()
            elif o in ("-b", "--sched-flags"):
                flags += [f for f in value().split(",") if f]
            elif o in ("-o", "--ops"):
                flags.append("ops")
            elif o == "--pe":
                pe = value()
            elif o in ("-6", "--ipv6"):
                ipv6 = True
            elif o in ("-r", "--real-server"):
                rs_addr = _addr(value(), line)
            elif o in SAVE_FORWARD:
                forward = SAVE_FORWARD[o]
            elif o in ("-w", "--weight"):
                weight = _int(value(), "weight", line)
            elif o in ("-x", "--u-threshold", "-y", "--l-threshold", "--tun-type", "--tun-port"):
                value()                       # not modelled
            elif o in ("--tun-nocsum", "--tun-csum", "--tun-remcsum"):
                pass
            else:
                raise ParseError(f"ipvsadm -S: unknown option {o!r} in {excerpt(line)}")
            j += 1
        if proto is None:
            raise ParseError(f"ipvsadm -S: no service in {excerpt(line)}")
        if proto == "FWM":
            ident = dict(protocol="FWM", address=None, port=None, fwmark=_int(target, "fwmark", line),
                         family="inet6" if ipv6 else "inet")
        else:
            a, p = _addr(target, line)
            ident = dict(protocol=proto, address=a, port=p, fwmark=None,
                         family="inet6" if ":" in a else "inet")
        if cmd in ("-A", "--add-service"):
            services.append(IpvsService(**ident, scheduler=sched, persistent=persistent,
                                        netmask=netmask, flags=flags, pe=pe))
            continue
        k = service_key(SimpleNamespace(**ident))
        svc = next((s for s in services if service_key(s) == k), None)
        if svc is None:
            raise ParseError(f"ipvsadm -S: real server for unknown service {k}: {excerpt(line)}")
        if rs_addr is None:
            raise ParseError(f"ipvsadm -S: -a without -r: {excerpt(line)}")
        svc.real_servers.append(RealServer(rs_addr[0], rs_addr[1], forward, weight))
    return IpvsTable(services)


# ---------------------------------------------------------------- --stats / --rate
def _number(tok: str, line: str) -> tuple[int, bool]:
    m = re.fullmatch(r"(\d+)([KMGT]?)", tok)
    if not m:
        raise ParseError(f"ipvsadm: bad counter {tok!r} in {excerpt(line)}")
    return int(m.group(1)) * UNITS[m.group(2)], not m.group(2)


def _parse_counters(text: str, header: str, cls, what: str) -> IpvsStats:
    lines = _lines(text)
    version, size, i = _preamble(lines, (header, COUNTERS_RS_HEADER), what)
    services: list[ServiceStats] = []
    exact = True

    def values(toks: list[str], line: str):
        nonlocal exact
        if len(toks) != 5:
            raise ParseError(f"ipvsadm: expected 5 counters in {excerpt(line)}")
        nums = []
        for t in toks:
            n, ex = _number(t, line)
            nums.append(n)
            exact = exact and ex
        return cls(*nums)

    for line in lines[i:]:
        toks = line.split()
        if toks[0] == "->":
            if not services:
                raise ParseError(f"ipvsadm: real server before any service: {excerpt(line)}")
            addr, port = _addr(toks[1], line)
            services[-1].real_servers.append(RealServerStats(addr, port, values(toks[2:], line)))
        else:
            ident, rest = _service_head(toks, line)
            services.append(ServiceStats(**ident, stats=values(rest, line)))
    return IpvsStats(services, exact, version, size)


def parse_stats(text: str) -> IpvsStats:
    """`ipvsadm -L -n --stats [--exact]` -> IpvsStats with Counters (K/M/G/T units expanded)."""
    return _parse_counters(text, STATS_HEADER, Counters, "ipvsadm -L -n --stats")


def parse_rate(text: str) -> IpvsStats:
    """`ipvsadm -L -n --rate` -> IpvsStats with Rates."""
    return _parse_counters(text, RATE_HEADER, Rates, "ipvsadm -L -n --rate")


# ---------------------------------------------------------------- -c
def parse_connections(text: str) -> list[Connection]:
    """`ipvsadm -L -n -c` -> list[Connection] in ipvsadm's order."""
    lines = _lines(text)
    if [_norm(x) for x in lines[:2]] != list(CONN_HEADER):
        raise ParseError(f"not ipvsadm -L -n -c output: {excerpt(lines[0] if lines else 'empty output')}")
    out = []
    for line in lines[2:]:
        toks = line.split()
        m = re.fullmatch(r"(\d+):(\d\d)", toks[1]) if len(toks) == 6 else None
        if not m:
            raise ParseError(f"ipvsadm -c: unrecognised connection line: {excerpt(line)}")
        ends = [Endpoint(*_addr(t, line)) for t in toks[3:6]]
        out.append(Connection(toks[0], int(m.group(1)) * 60 + int(m.group(2)), toks[2], *ends))
    return out


# ---------------------------------------------------------------- --daemon
def parse_daemons(text: str) -> list[SyncDaemon]:
    """`ipvsadm -L --daemon` -> list[SyncDaemon]; no output (no daemon running) -> []."""
    out = []
    for line in _lines(text):
        m = DAEMON_RE.match(line.strip())
        if not m:
            raise ParseError(f"not ipvsadm -L --daemon output: {excerpt(line)}")
        role, iface, syncid, maxlen, group, port, ttl = m.groups()
        out.append(SyncDaemon(role, iface, int(syncid), int(maxlen), group, int(port), int(ttl)))
    return out


__all__ = ["RealServer", "IpvsService", "IpvsTable", "Counters", "Rates", "RealServerStats",
           "ServiceStats", "IpvsStats", "Endpoint", "Connection", "SyncDaemon", "service_key", "key",
           "ipvs_unavailable", "parse_list", "parse_save", "parse_stats", "parse_rate",
           "parse_connections", "parse_daemons"]


# ---------------------------------------------------------------- guarded forms (fabfile/infra/facts.py)
# The facts run ipvsadm only where /proc/net/ip_vs exists and print NO-IPVS otherwise, so a
# kernel without IPVS is an answer, not an error.
NO_IPVS_MARK = "NO-IPVS"


def _unless_no_ipvs(text: str, parse, none):
    return none if text.strip() == NO_IPVS_MARK or ipvs_unavailable(text) else parse(text)


def parse_list_if_ipvs(text: str) -> IpvsTable | None:
    return _unless_no_ipvs(text, parse_list, None)


def parse_stats_if_ipvs(text: str) -> IpvsStats | None:
    return _unless_no_ipvs(text, parse_stats, None)


def parse_rate_if_ipvs(text: str) -> IpvsStats | None:
    return _unless_no_ipvs(text, parse_rate, None)


def parse_daemons_if_ipvs(text: str) -> list[SyncDaemon]:
    return _unless_no_ipvs(text, parse_daemons, [])
