"""Compare what the inventory wants with what the nodes report. Pure: observations in, checks out.

Where is the VIP check? `vip_checks` below. Each check is one row of `inv verify`. What is wanted
comes from fabfile.core.desired (typed), never from the templates' context. The IPVS table is
judged here once (`judge_ipvs`): verify's check and the `inv ipvs` rows both say that judgment.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum, StrEnum

from fabfile.core import desired
from fabfile.core import sync_rules as sync
from fabfile.core.runtime import as_run
from fabfile.infra.facts import NodeState
from fabfile.parsers.lbtk import node_in_page
from fabfile.parsers.ipvsadm import service_key
from fabfile.model import extensions
from fabfile.model.checkers import status_accepts
from fabfile.model.schema import Inventory
from fabfile.parsers import join_host_port
from fabfile.core.vrrp import expected_holders, keepers

NO_IPVS = "kernel has no IPVS"
LAB_NO_IPVS = f"lab: {NO_IPVS}"
RATE_FIELDS = ("cps", "inpps", "outpps", "inbps", "outbps")


class CheckKind(StrEnum):
    """What a check is about: consumers match on it, never on the check's name."""
    REACHABLE = "reachable"
    SERVICE = "service"              # a daemon running (subject: its unit)
    ARP_SYSCTLS = "arp-sysctls"
    VIP_ON_LO = "vip-on-lo"
    IPVS_TABLE = "ipvs-table"
    SYNC_DAEMON = "sync-daemon"
    VIP = "vip"                      # who holds a VIP (subject: the VIP)
    HTTP = "http"                    # a GET through a VIP (subject: the VIP)
    DIGEST = "digest"                # a real server's HTTP_GET digest
    OTHER = "other"                  # the lab client's traffic checks


@dataclass(frozen=True)
class Check:
    name: str
    node: str          # node name, or "cluster"
    ok: bool
    detail: str
    kind: CheckKind = CheckKind.OTHER
    subject: str = ""  # what it is about beyond the node: the VIP, the unit

    def as_dict(self) -> dict:
        return {**asdict(self), "kind": self.kind.value}


def vip_holders(inv: Inventory, obs: dict[str, NodeState]) -> dict[str, list[str]]:
    return {vip: [n for n, o in obs.items() if vip in o.vips_on_iface]
            for vip in expected_holders(inv)}


def vip_checks(inv: Inventory, obs: dict[str, NodeState], isolated: frozenset[str] = frozenset()) -> list[Check]:
    """Exactly one holder per VIP. Two holders is split brain. A VIP a router brings to every
    director (vip_managed_by: external) has no VRRP holder: its row says so, and the VIP-on-lo
    check of each node is what is checked for it. `isolated`: nodes out of VRRP (`inv isolate`):
    a VIP away from its preferred holder because that one is isolated says so."""
    out = [_vip_check(vip, True, "brought by a router (vip_managed_by: external): on lo of every director, "
                      "no VRRP holder expected") for vip in desired.external_vips(inv)]
    expected, keep = expected_holders(inv), keepers(inv)
    for vip, holders in vip_holders(inv, obs).items():
        if len(holders) == 1:
            where = "" if holders[0] == expected[vip] or holders[0] in keep[vip] else \
                f" (inventory prefers {expected[vip]}{', isolated' if expected[vip] in isolated else ''})"
            out.append(_vip_check(vip, True, f"held by {holders[0]}{where}"))
        elif not holders:
            out.append(_vip_check(vip, False, "held by no node: VIP down"))
        else:
            out.append(_vip_check(vip, False, f"SPLIT BRAIN: held by {', '.join(holders)}"))
    return out


def _vip_check(vip: str, ok: bool, detail: str) -> Check:
    return Check(f"VIP {vip}", "cluster", ok, detail, CheckKind.VIP, vip)


ISOLATED = "ISOLATED"     # how a node out of VRRP (`inv isolate`) is labelled wherever it is shown


def keepalived_check(name: str, state: str, isolated: bool) -> Check:
    """keepalived running, or, on an isolated node, stopped as recorded (an expected state)."""
    if not isolated:
        return Check("keepalived running", name, state == "active", state, CheckKind.SERVICE, "keepalived")
    if state == "active":
        return Check("keepalived running", name, False, f"active, but {ISOLATED} (`inv isolate`): it may hold a "
                     "VIP again — `inv deploy` stops it, `inv isolate --undo` brings it back", CheckKind.SERVICE,
                     "keepalived")
    return Check("keepalived running", name, True, f"{ISOLATED}: {state}, out of VRRP as recorded (`inv isolate`; "
                 "`inv isolate --undo` brings it back)", CheckKind.SERVICE, "keepalived")


def node_checks(inv: Inventory, name: str, o: NodeState, is_master: bool = False,
                isolated: frozenset[str] = frozenset()) -> list[Check]:
    if not o.reachable:
        return [Check("reachable", name, False, o.error, CheckKind.REACHABLE)]
    node = inv.node(name)
    out = [keepalived_check(name, o.active.get("keepalived", "unknown"), name in isolated)]
    # rsyslog only where keepalived's log file is wanted: elsewhere it may well be absent
    for unit in ("nginx",) + (("rsyslog",) if inv.logging else ()):
        state = o.active.get(unit, "unknown")
        out.append(Check(f"{unit} running", name, state == "active", state, CheckKind.SERVICE, unit))
    want = desired.sysctls(inv, node, ipvs=o.ipvs is not None)
    if want:
        wrong = {k: o.sysctl.get(k, "missing") for k, v in want.items() if o.sysctl.get(k) != v}
        out.append(Check("ARP sysctls", name, not wrong,
                         "; ".join(f"{k}={v} (want {want[k]})" for k, v in wrong.items())
                         or f"{len(want)} values as wanted", CheckKind.ARP_SYSCTLS))
    lo = desired.dr_vips(inv, node)
    if lo:
        missing = [v for v in lo if v not in o.vips_on_lo]
        out.append(Check("VIP on lo", name, not missing,
                         f"missing {', '.join(missing)}" if missing else ", ".join(lo), CheckKind.VIP_ON_LO))
    if inv.virtual_servers:
        out.append(ipvs_check(inv, name, o))
    if inv.sync_daemon:
        out.append(sync_check(inv, name, o, is_master))
    return out


def wanted_ipvs(inv: Inventory) -> dict[str, dict[str, int]]:
    """{service key: {"addr:port": weight}} as keepalived will load it, keys as ipvsadm -L -n shows."""
    return desired.ipvs_table(inv)


def observed_ipvs(table) -> dict[str, dict[str, int]]:
    return {service_key(s): {r.endpoint: r.weight for r in s.real_servers} for s in table.services}


# ---------------------------------------------------------------- the IPVS table, judged once
class IpvsProblem(Enum):
    SERVICE_MISSING = "service missing"
    SERVICE_UNWANTED = "not in the inventory"
    EMPTY_POOL = "no real server in the pool"
    RS_MISSING = "missing from the pool (its health check fails?)"
    RS_UNWANTED = "real server not in the inventory"
    WEIGHT = "weight differs"
    SORRY_STANDS_IN = "out of the pool: the sorry server stands in (quorum lost)"

    @property
    def failing(self) -> bool:
        """The sorry server standing in is what the inventory asked for when its real servers are
        down: said, not failed."""
        return self is not IpvsProblem.SORRY_STANDS_IN


@dataclass(frozen=True)
class IpvsEntry:
    """One (service, real server) of a node's IPVS table, live or wanted, and what is wrong with it."""
    service: str
    real_server: str | None          # None: the service itself (missing, unwanted or empty)
    problem: IpvsProblem | None
    weight: int | None = None        # live
    wanted_weight: int | None = None

    @property
    def row_problem(self) -> str:
        """The words of `inv ipvs`'s problem column."""
        if self.problem is IpvsProblem.WEIGHT:
            return f"weight {self.weight}, inventory wants {self.wanted_weight}"
        return self.problem.value if self.problem else ""

    @property
    def check_problem(self) -> str | None:
        """The words of verify's IPVS check (None: said by another entry: an empty pool by its
        missing real servers, an unwanted service once by its first entry)."""
        svc, rs = self.service, self.real_server
        return {IpvsProblem.SERVICE_MISSING: f"{svc} missing",
                IpvsProblem.SERVICE_UNWANTED: f"{svc} not in inventory",
                IpvsProblem.RS_MISSING: f"{svc} -> {rs} not in pool (health check failing?)",
                IpvsProblem.RS_UNWANTED: f"{svc} -> {rs} not in inventory",
                IpvsProblem.WEIGHT: f"{svc} -> {rs} weight {self.weight} (want {self.wanted_weight})",
                IpvsProblem.SORRY_STANDS_IN: f"{svc} -> {rs} out, the sorry server stands in",
                }.get(self.problem)


def judge_ipvs(want: dict[str, dict[str, int]], table, sorry: dict[str, str] | None = None) -> list[IpvsEntry]:
    """Pure: a live table (ipvsadm -L -n) against the wanted one. Live services in table order
    (their real servers, then the wanted ones missing from the pool), then the wanted services
    missing from the table. `sorry` ({service: "addr:port"}, desired.sorry_servers): a service's
    sorry server is never unwanted, and while it serves (weight above 0) the real servers missing
    are its reason, not a failure."""
    sorry = sorry or {}
    out: list[IpvsEntry] = []
    for svc in table.services:
        key = service_key(svc)
        wanted = want.get(key)
        if wanted is None:
            out += [IpvsEntry(key, r.endpoint, IpvsProblem.SERVICE_UNWANTED, r.weight) for r in svc.real_servers] \
                or [IpvsEntry(key, None, IpvsProblem.SERVICE_UNWANTED)]
            continue
        if not svc.real_servers:
            out.append(IpvsEntry(key, None, IpvsProblem.EMPTY_POOL))
        live = {r.endpoint: r.weight for r in svc.real_servers}
        standby = sorry.get(key)
        for ep, weight in live.items():
            w = wanted.get(ep)
            if ep == standby and w is None:
                out.append(IpvsEntry(key, ep, None, weight))
                continue
            # a wanted weight of None is keepalived's to set (a dynamic checker): any is right
            problem = (IpvsProblem.RS_UNWANTED if ep not in wanted else
                       IpvsProblem.WEIGHT if w is not None and w != weight else None)
            out.append(IpvsEntry(key, ep, problem, weight, w))
        missing = IpvsProblem.SORRY_STANDS_IN if live.get(standby) else IpvsProblem.RS_MISSING
        out += [IpvsEntry(key, ep, missing, None, w) for ep, w in wanted.items() if ep not in live]
    seen = {service_key(svc) for svc in table.services}
    return out + [IpvsEntry(key, None, IpvsProblem.SERVICE_MISSING) for key in want if key not in seen]


# ---------------------------------------------------------------- a director without IPVS
def needs_ipvs(inv: Inventory) -> bool:
    """Does the inventory load balance (virtual servers) or sync connections? Then every director
    needs IPVS — except in the lab, whose kernel may lack it: an announced fallback (VRRP only)."""
    return bool(inv.virtual_servers or inv.sync_daemon) and not extensions.claims(inv)


def no_ipvs_words(inv: Inventory) -> str:
    """How a kernel without IPVS is named: the lab's announces itself as the lab's."""
    return LAB_NO_IPVS if extensions.claims(inv) else NO_IPVS


def without_ipvs(inv: Inventory, lab_detail: str) -> tuple[bool, str]:
    """(ok, detail) of a verify row for a director whose kernel has no IPVS: the lab's fallback,
    said as such, is ok; anywhere else nothing is load balanced, and the row fails."""
    if extensions.claims(inv):
        return True, f"{no_ipvs_words(inv)}: {lab_detail}"
    return False, (f"{NO_IPVS}: nothing is load balanced on this director — load the module "
                   "(`modprobe ip_vs`) or boot a kernel with IPVS, then `inv deploy`")


def no_ipvs_error(node: str, why: str) -> str:
    """The one line that refuses a production deploy to a director that cannot load ip_vs."""
    return (f"{node}: the kernel has no IPVS and `modprobe ip_vs` failed ({why or 'no message'}): this "
            "inventory load balances (virtual_servers, sync_daemon), which needs IPVS on every director "
            "— install the kernel's modules (or a kernel with IPVS) on the node; nothing was changed on any node")


def ipvs_check(inv: Inventory, name: str, o: NodeState) -> Check:
    if o.ipvs is None:
        return Check("IPVS table", name, *without_ipvs(inv, "keepalived runs VRRP-only"), CheckKind.IPVS_TABLE)
    want = wanted_ipvs(inv)
    entries = judge_ipvs(want, o.ipvs, desired.sorry_servers(inv))
    # the inventory's order: wanted services and their real servers as listed, then the unwanted
    order = {key: i for i, key in enumerate(want)}
    rank = {(key, ep): i for key, pool in want.items() for i, ep in enumerate(pool)}
    entries = sorted(entries, key=lambda e: (order.get(e.service, len(order)), rank.get((e.service, e.real_server),
                                                                                        len(rank))))
    problems = list(dict.fromkeys(e.check_problem for e in entries if e.check_problem and e.problem.failing))
    notes = list(dict.fromkeys(e.check_problem for e in entries if e.check_problem and not e.problem.failing))
    n = sum(len(s.real_servers) for s in o.ipvs.services)
    return Check("IPVS table", name, not problems,
                 "; ".join(problems + notes) or f"{len(o.ipvs.services)} service(s), {n} real server(s) as wanted",
                 CheckKind.IPVS_TABLE)


def ipvs_rows(inv: Inventory, states: dict[str, NodeState]) -> list[dict]:
    """One row per (director, service, real server), from `ipvsadm -L -n` and `--rate`, against the
    inventory as the cluster runs it (drains applied): `ok` false and `problem` saying what was
    wanted when they differ. A reachable node without IPVS is one row, without a service: ok in the
    lab only (`without_ipvs`).
    Plain values with stable field names: what `inv ipvs --json` prints."""
    run = as_run(inv, states)
    want, sorry = wanted_ipvs(run), desired.sorry_servers(run)
    rows: list[dict] = []
    for node, s in states.items():
        base = {"node": node}
        if not s.reachable:
            rows.append({**base, **_blank(), "problem": f"{'unreadable' if s.unreadable else 'unreachable'}: {s.error}", "ok": False})
            continue
        if s.ipvs is None:
            ok, detail = without_ipvs(inv, "keepalived runs VRRP-only")
            rows.append({**base, **_blank(), "problem": detail, "ok": ok})
            continue
        rates = {}
        for svc in (s.ipvs_rate.services if s.ipvs_rate else []):
            rates[service_key(svc)] = ({f: getattr(svc.stats, f) for f in RATE_FIELDS},
                                       {r.endpoint: {f: getattr(r.stats, f) for f in RATE_FIELDS}
                                        for r in svc.real_servers})
        live = {service_key(svc): svc for svc in s.ipvs.services}
        for e in judge_ipvs(want, s.ipvs, sorry):
            svc = live.get(e.service)
            if svc is None:                         # a wanted service the table lacks
                rows.append({**base, **_blank(), "service": e.service, "problem": e.row_problem, "ok": False})
                continue
            flags = list(svc.flags) + ([f"persistent {svc.persistent}"] if svc.persistent else []) \
                + ([f"mask {svc.netmask}"] if svc.netmask else [])
            head = {**base, "service": e.service, "scheduler": svc.scheduler, "flags": flags}
            svc_rates, rs_rates = rates.get(e.service, ({}, {}))
            r = next((r for r in svc.real_servers if r.endpoint == e.real_server), None)
            if e.real_server is None:               # the service alone: its pool is empty
                rows.append({**head, **_rs_blank(), **{f: svc_rates.get(f) for f in RATE_FIELDS},
                             "problem": e.row_problem, "ok": False})
            elif r is None:                         # a wanted real server missing from the pool
                rows.append({**head, **_rs_blank(), "real_server": e.real_server, "wanted_weight": e.wanted_weight,
                             "problem": e.row_problem, "ok": not e.problem.failing})
            else:
                rows.append({**head, "real_server": r.endpoint, "forward": r.forward, "weight": r.weight,
                             "wanted_weight": e.wanted_weight, "active_conn": r.active_conn,
                             "inact_conn": r.inact_conn, **{f: rs_rates.get(r.endpoint, {}).get(f) for f in RATE_FIELDS},
                             "problem": e.row_problem, "ok": e.problem is None})
    return rows


def _rs_blank() -> dict:
    return {"real_server": None, "forward": None, "weight": None, "wanted_weight": None,
            "active_conn": None, "inact_conn": None, **{f: None for f in RATE_FIELDS}}


def _blank() -> dict:
    return {"service": None, "scheduler": None, "flags": [], **_rs_blank()}


def sync_check(inv: Inventory, name: str, o: NodeState, is_master: bool) -> Check:
    """The VRRP MASTER runs the master sync daemon, every other director a backup one."""
    if o.ipvs is None:
        return Check("sync daemon", name, *without_ipvs(inv, "no connection sync"), CheckKind.SYNC_DAEMON)
    sd = inv.sync_daemon
    want = sync.role(is_master)
    roles = {d.role for d in o.sync_daemons if d.syncid == sd.syncid}
    detail = ", ".join(f"{d.role} (mcast={d.mcast_interface}, syncid={d.syncid})" for d in o.sync_daemons)
    return Check("sync daemon", name, want in roles,
                 (detail or "not running") + ("" if want in roles else f" — want {want}"), CheckKind.SYNC_DAEMON)


def http_check(vip: str, port: int, answer: str | None, error: str | None, nodes: list[str]) -> Check:
    """The GET through a VIP answered, and its page names a node (the whole name: lb1 is not lb10)."""
    label = f"HTTP {join_host_port(vip, port)}"
    if error or answer is None:
        return Check(label, "cluster", False, error or "no answer", CheckKind.HTTP, vip)
    who = node_in_page(answer, nodes)
    return Check(label, "cluster", who is not None,
                 f"answered by {who}" if who else f"answer names no node: {answer[:60]!r}", CheckKind.HTTP, vip)


# ---------------------------------------------------------------- HTTP_GET digests
@dataclass(frozen=True)
class DigestTarget:
    """One URL keepalived's HTTP_GET fetches from a real server, and what the inventory expects of it."""
    address: str
    port: int
    path: str
    timeout: int                   # HTTP_GET.connect_timeout: genhash -t
    digest: str | None             # HTTP_GET.digest (None: --path given, or no digest in the inventory)
    status_code: int | str | None  # HTTP_GET url's status_code: a code or ranges (None: keepalived's 2xx)
    node: str | None               # the inventory node that is this real server, if any

    @property
    def key(self) -> tuple[str, int, str]:
        return self.address, self.port, self.path

    @property
    def genhash(self) -> tuple[str, int, str, int]:
        return self.address, self.port, self.path, self.timeout

    @property
    def name(self) -> str:
        return f"HTTP_GET digest {self.address}:{self.port}{self.path}"

    def accepts(self, status: int | None) -> bool:
        """keepalived's HTTP_GET: the status_code it names, else any 2xx (genhash without -v: unknown)."""
        if status is None:
            return True
        return status_accepts(self.status_code, status)


def digest_targets(inv: Inventory, address: str | None = None, path: str | None = None) -> list[DigestTarget]:
    """Every real server's HTTP_GET URL that carries a digest (verify checks them); with `address`,
    that real server's URL(s) whatever its check (inv digest), at `path` if given. Ports are what
    keepalived connects to: connect_port, else the real server's port, else the virtual server's."""
    out: dict[tuple[str, int, str], DigestTarget] = {}
    for vs in inv.virtual_servers:
        for rs in vs.real_servers:
            # a node's address of the service's family; `address` may name the node by its primary one
            addr = inv.real_server_address(rs, vs)
            if address is not None and address not in (addr, inv.real_server_address(rs)):
                continue
            for t in _rs_digest_targets(rs, addr, rs.port or vs.port, address is not None, path):
                out.setdefault(t.key, t)
    return list(out.values())


def _rs_digest_targets(rs, addr: str, port: int, named: bool, path: str | None) -> list[DigestTarget]:
    """One real server's URLs: each HTTP_GET url with a digest (verify); named (inv digest): its
    urls, the one at `path`, else `path` (or /) on the port its checkers probe."""
    urls = [(h, u) for h in rs.HTTP_GET for u in h.urls]

    def target(h, u) -> DigestTarget:
        return DigestTarget(addr, h.connect_port or port, u.path, h.connect_timeout, u.digest, u.status_code,
                            rs.node)
    if not named:
        return [target(h, u) for h, u in urls if u.digest is not None]
    if path is None and urls:
        return [target(h, u) for h, u in urls]
    same = [target(h, u) for h, u in urls if u.path == (path or "/")]
    if same:
        return same[:1]
    probe = next((c for _, c in rs.checkers if getattr(c, "connect_port", None)), None)
    timeout = rs.HTTP_GET[0].connect_timeout if rs.HTTP_GET else 3
    return [DigestTarget(addr, probe.connect_port if probe else port, path or "/", timeout, None, None, rs.node)]


def digest_checks(targets: list[DigestTarget], obs: dict[str, NodeState]) -> list[Check]:
    """Pure: each real server's live page digest (keepalived's genhash, run on every director
    observed) against the inventory's HTTP_GET.digest. A differing digest is red and names both:
    keepalived's HTTP_GET would take that real server out of the pool."""
    out = []
    for t in targets:
        seen = {n: s.digests[t.key] for n, s in obs.items() if s.reachable and t.key in s.digests}
        if not seen:
            continue
        where = t.node or t.address
        got = {n: g for n, g in seen.items() if g.ok}
        failed = {n: g.error for n, g in seen.items() if not g.ok}
        if not got:
            first = next(iter(failed.items()))
            out.append(Check(t.name, where, False, f"genhash from {', '.join(failed)} got no page: {first[1]} "
                             f"— is the web server on {where} up?", CheckKind.DIGEST))
            continue
        digests = {g.digest for g in got.values()}
        bad_status = {n: g for n, g in got.items() if not t.accepts(g.status)}
        problems = []
        if digests != {t.digest}:
            live = "; ".join(f"{d} (genhash from {', '.join(n for n, g in got.items() if g.digest == d)})"
                             for d in sorted(digests))
            problems.append(f"live digest {live} differs from the inventory's HTTP_GET.digest {t.digest} — the page "
                            f"changed: restore it, or put the new digest in the inventory "
                            f"(`inv digest --server {where}`)")
        if bad_status:
            n, g = next(iter(bad_status.items()))
            want = t.status_code or "2xx"
            problems.append(f"HTTP {g.status} {g.reason} from {n} (HTTP_GET wants {want})".replace("  ", " "))
        if failed:
            problems.append(f"genhash from {', '.join(failed)}: {next(iter(failed.values()))}")
        out.append(Check(t.name, where, not problems, "; ".join(problems)
                         or f"digest {t.digest} as the inventory says (genhash from {', '.join(got)})",
                         CheckKind.DIGEST))
    return out
