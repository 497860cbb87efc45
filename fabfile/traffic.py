"""Send real client traffic through a VIP and read IPVS's own counters around it (the shell
around fabfile.balance). The client is a network namespace the lab made on its bridge
(`lab.client` in the inventory, e.g. the kernel tier's 10.189.0.140 in `lbtk-kclient`), so its
packets reach the VIP from another MAC, like a real client's.
"""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

from . import remote
from .balance import Traffic, endpoint_names, service_key
from .model import Inventory
from .parsers import ipvsadm

CLIENT_NETNS = "lbtk-kclient"
STATS = "ipvsadm -L -n --stats --exact"
ESTIMATOR_S = 2.2      # IPVS folds per-CPU counters into --stats every 2 s (the rate estimator)

# One fresh TCP connection per request (Connection: close), sequential; prints one line each.
CLIENT = r"""
import http.client, sys, time
vip, port, n, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
names = sys.argv[5:]
for i in range(n):
    t = time.monotonic()
    try:
        c = http.client.HTTPConnection(vip, port, timeout=timeout)
        c.request("GET", "/", headers={"Connection": "close"})
        body = c.getresponse().read(4096).decode(errors="replace")
        c.close()
        who = next((x for x in names if ("served by %s " % x) in body or ("<h1>%s</h1>" % x) in body), "?")
        print("ok", who, "%.4f" % (time.monotonic() - t), flush=True)
    except Exception as e:
        print("err", e.__class__.__name__, "%.4f" % (time.monotonic() - t), flush=True)
"""


class ClientMissing(Exception):
    pass


def client_available(netns: str = CLIENT_NETNS) -> bool:
    return Path("/run/netns", netns).exists()


def client_requests(vip: str, port: int, n: int, names: list[str], timeout: float = 3.0,
                    netns: str = CLIENT_NETNS) -> tuple[list[str | None], list[str], list[float]]:
    """n GETs from the client namespace: (who answered each or None, errors, seconds each)."""
    if not client_available(netns):
        raise ClientMissing(f"no client namespace {netns} (bring the lab up: inv lab.up)")
    r = subprocess.run(["ip", "netns", "exec", netns, "python3", "-c", CLIENT, vip, str(port), str(n),
                        str(timeout), *names], capture_output=True, text=True, timeout=n * (timeout + 1) + 30)
    answers, errors, times = [], [], []
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) != 3:
            continue
        answers.append(f[1] if f[0] == "ok" and f[1] != "?" else None)
        if f[0] != "ok" or f[1] == "?":
            errors.append(f[1] if f[0] != "ok" else "answer names no node")
        times.append(float(f[2]))
    while len(answers) < n:
        answers.append(None)
        errors.append((r.stderr.strip().splitlines() or ["client died"])[-1][:80])
    return answers, errors, times


def snapshot(conns) -> dict[str, object]:
    """{node: IpvsStats or None} from every director, one parallel round trip."""
    res = remote.group_run(conns, STATS, timeout=30)
    out = {}
    for c in conns:
        r = res.get(c.lbtk_node)
        try:
            out[c.lbtk_node] = None if r is None or isinstance(r, Exception) else ipvsadm.parse_stats(r.stdout)
        except Exception:  # noqa: BLE001 - a node without IPVS: no counters
            out[c.lbtk_node] = None
    return out


def run(inv: Inventory, conns, holders: dict[str, list[str]], requests: int = 30, index: int = 0,
        timeout: float = 3.0) -> tuple[Traffic, dict]:
    """requests GETs through virtual_servers[index]; returns (Traffic, {node: IpvsStats after})."""
    vs = inv.virtual_servers[index]
    key = service_key(inv, index)
    names = endpoint_names(inv, vs, fwmark=key.startswith("FWM"))
    weights = [(names[ep], rs.weight) for ep, rs in zip(names, vs.real_servers)]
    vip = vs.vip
    master = (holders.get(vip) or [None])[0]
    time.sleep(ESTIMATOR_S)            # earlier requests (verify's own GET) must be in `before`
    before = snapshot(conns)
    answers, errors, _ = client_requests(vip, vs.port, requests, [n.name for n in inv.nodes] +
                                         [a for a in names.values() if a not in {n.name for n in inv.nodes}],
                                         timeout=timeout)
    time.sleep(ESTIMATOR_S)
    after = snapshot(conns)
    from .balance import conns_delta
    deltas = {n: conns_delta(before.get(n), after.get(n), key) for n in after if after.get(n) is not None}
    return Traffic(vip=vip, port=vs.port, service=key, algo=vs.lb_algo, master=master, answers=answers,
                   errors=errors, deltas=deltas, names=names, weights=weights), after
