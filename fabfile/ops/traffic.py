"""Send real client traffic through a VIP and read IPVS's own counters around it (the shell
around fabfile.core.balance). Where the requests start is an extension's (`TrafficClient`, from
fabfile.model.extensions): the lab's is a network namespace on its bridge (`lab.client` in the
inventory), so the packets reach the VIP from another MAC, like a real client's.
"""
from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field

from fabfile.infra import facts as F
from fabfile.core.balance import Traffic, endpoint_names, service_key, traffic_checks
from fabfile.core.checks import Check
from fabfile.model.extensions import TrafficClient, traffic_client
from fabfile.model.schema import Inventory
from fabfile.infra.observe import observe
from fabfile.parsers.lbtk import last_line, node_in_page_script, parse_client_lines

ESTIMATOR_S = 4.5      # IPVS folds per-CPU counters into --stats every 2 s (the rate estimator): wait two ticks, a
                       # slow (TCG) kernel may run one late

# One fresh TCP connection per request (Connection: close), sequential; prints one line each.
# Source ports are consecutive from a random base: a port the kernel handed out again within IPVS's
# TIME_WAIT (2 min) would match an old IPVS connection, which IPVS then does not count as new.
# The page is read by node_in_page's own source, sent ahead of this loop (client_command).
CLIENT_LOOP = r"""
import http.client, random, sys, time
vip, port, n, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
names = sys.argv[5:]
base = random.randrange(20000, 60000 - 2 * n)
for i in range(n):
    t = time.monotonic()
    try:
        c = http.client.HTTPConnection(vip, port, timeout=timeout, source_address=("", base + i))
        c.request("GET", "/", headers={"Connection": "close"})
        body = c.getresponse().read(4096).decode(errors="replace")
        c.close()
        who = node_in_page(body, names) or "?"
        print("ok", who, "%.4f" % (time.monotonic() - t), flush=True)
    except Exception as e:
        print("err", e.__class__.__name__, "%.4f" % (time.monotonic() - t), flush=True)
"""


class ClientMissing(Exception):
    pass


def client_command(vip: str, port: int, n: int, names: list[str], timeout: float) -> list[str]:
    """The client's argv (run behind the traffic client's prefix)."""
    return ["python3", "-c", node_in_page_script() + CLIENT_LOOP, vip, str(port), str(n), str(timeout), *names]


def client_requests(client: TrafficClient, vip: str, port: int, n: int, names: list[str],
                    timeout: float = 3.0) -> tuple[list[str | None], list[str], list[float]]:
    """n GETs from the client: (who answered each or None, errors, seconds each)."""
    if not client.ready():
        raise ClientMissing(client.missing)
    r = subprocess.run([*client.prefix, *client_command(vip, port, n, names, timeout)],
                       capture_output=True, text=True, timeout=n * (timeout + 1) + 30)
    answers, errors, times = [], [], []
    for ok, who, secs in parse_client_lines(r.stdout):
        answers.append(who if ok and who != "?" else None)
        if not ok or who == "?":
            errors.append(who if not ok else "answer names no node")
        times.append(secs)
    while len(answers) < n:
        answers.append(None)
        errors.append(last_line(r.stderr, "client died")[:80])
    return answers, errors, times


def snapshot(conns) -> dict[str, object]:
    """{node: IpvsStats or None} from every director, one parallel round trip (None: no IPVS or
    unreachable)."""
    return {n: s.ipvs_stats for n, s in observe(conns, [F.IPVS_STATS], timeout=30).items()}


def run(client: TrafficClient, inv: Inventory, conns, holders: dict[str, list[str]], requests: int = 30,
        index: int = 0, timeout: float = 3.0) -> tuple[Traffic, dict]:
    """requests GETs through virtual_servers[index]; returns (Traffic, {node: IpvsStats after})."""
    vs = inv.virtual_servers[index]
    key = service_key(inv, index)
    names = endpoint_names(inv, vs, fwmark=key.startswith("FWM"))
    weights = [(names[ep], rs.weight) for ep, rs in zip(names, vs.real_servers)]
    vip = vs.vip
    master = (holders.get(vip) or [None])[0]
    time.sleep(ESTIMATOR_S)            # earlier requests (verify's own GET) must be in `before`
    before = snapshot(conns)
    answers, errors, _ = client_requests(client, vip, vs.port, requests, [n.name for n in inv.nodes] +
                                         [a for a in names.values() if a not in {n.name for n in inv.nodes}],
                                         timeout=timeout)
    time.sleep(ESTIMATOR_S)
    after = snapshot(conns)
    from fabfile.core.balance import conns_delta
    deltas = {n: conns_delta(before.get(n), after.get(n), key) for n in after if after.get(n) is not None}
    return Traffic(vip=vip, port=vs.port, service=key, algo=vs.lb_algo, master=master, answers=answers,
                   errors=errors, deltas=deltas, names=names, weights=weights), after


@dataclass
class Section:
    """verify's traffic part: per VIP, the client's answers, the master's counters and IPVS table."""
    client: str = ""                  # where the requests started (TrafficClient.name)
    runs: list[tuple[Traffic, object, object]] = field(default_factory=list)   # (traffic, stats, table)
    checks: list[Check] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"checks": [c.as_dict() for c in self.checks],
                "runs": [{"vip": t.vip, "port": t.port, "service": t.service, "lb_algo": t.algo,
                          "master": t.master, "answers": t.answers, "per_real_server": t.rows(),
                          "new_conns_per_director": t.deltas} for t, _, _ in self.runs]}


def traffic_section(inv: Inventory, conns, report, requests: int = 30) -> Section | None:
    """With a client (the lab's `lab.client`): real requests through each VIP from it, the live IPVS
    table and --stats on the director holding it. None without a client.
    Adds its checks to report.checks."""
    client = traffic_client(inv)
    if client is None or not inv.virtual_servers:
        return None
    sec = Section(client=client.name)
    if not client.ready():
        sec.checks.append(Check("client traffic", "cluster", False, client.missing))
    else:
        for i, vs in enumerate(inv.virtual_servers):
            if vs.vip is None:
                continue
            t, after = run(client, inv, conns, report.vip_holders, requests=requests, index=i)
            master_obs = report.observed.get(t.master) if t.master else None
            sec.runs.append((t, after.get(t.master) if t.master else None,
                             getattr(master_obs, "ipvs", None)))
            sec.checks += traffic_checks(t)
    report.checks += sec.checks
    return sec
