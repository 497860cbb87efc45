"""Shared helpers of the pure-core tests (test_core_plan, test_core_checks, test_core_vrrp).

Every NodeState these tests use is built the way the toolkit builds it on a live node: the
output of each fact is framed exactly as `fabfile.infra.observe.script` frames it and handed to
`fabfile.infra.observe.parse_state`, so the real parsers fill every field. The outputs themselves are
captured from the real tools (tests/fixtures/, and the two captures below); where a test needs
a node to hold a particular address, a captured `ip -j addr` JSON is edited (json.loads, change
the addresses, json.dumps) so its structure stays the one iproute2 printed.
"""
from __future__ import annotations

import base64
import io
import tarfile
import copy
import json
from pathlib import Path

from fabfile.infra import facts as F
from fabfile.model.context import Env
from fabfile.model.loading import load, parse
from fabfile.infra.observe import parse_state
from fabfile.parsers.lbtk import LiveFile
from fabfile.core import secret_record
from fabfile.core.render import RenderFacts, managed_paths, render_node
from fabfile.model.secrets import resolve_all

ROOT = Path(__file__).resolve().parents[2]
FX = ROOT / "tests" / "fixtures"
TOKEN = "5eed0f1e2a3b"          # a frames token (observe.script draws a random UUID on the node per run)

# `dpkg-query -W -f='${Package}\t${Version}\t${db:Status-Abbrev}\n' <facts.PACKAGES>` and
# `uname -r`, captured on a Debian 12 host with the packages installed (nginx-core is known to
# dpkg but not installed: status `un`).
DPKG_CAPTURE = ("iproute2\t6.1.0-3\tii \n"
                "iptables\t1.8.9-2\tii \n"
                "ipvsadm\t1:1.31-1+b1\tii \n"
                "keepalived\t1:2.2.7-1+b2\tii \n"
                "nginx\t1.22.1-9+deb12u11\tii \n"
                "nginx-core\t\tun \n"
                "nginx-light\t1.22.1-9+deb12u11\tii \n")
UNAME_CAPTURE = "6.18.44-fc-v669\n"


def read(rel: str) -> str:
    return (FX / rel).read_text()


# ------------------------------------------------------------------ words systemctl printed
def _words(*names: str) -> set[str]:
    return {w for n in names for w in read(f"systemctl/{n}.txt").split()}


ACTIVE_WORDS = _words("is_active", "is_active_all_active", "is_active_after_stop")


# ------------------------------------------------------------------ systemctl show (the units fact)
def _show_blocks() -> list[list[tuple[str, str]]]:
    """Every unit block of every captured `systemctl show` (Debian 12 and 13), keys in systemd's order."""
    blocks = []
    for path in sorted((FX / "systemctl").glob("**/show_*.txt")):
        for chunk in path.read_text().split("\n\n"):
            pairs = [tuple(ln.split("=", 1)) for ln in chunk.splitlines() if "=" in ln]
            if pairs:
                blocks.append(pairs)
    return blocks


SHOW_BLOCKS = _show_blocks()


def units_output(active: dict[str, str], enabled: dict[str, str], units=F.UNITS) -> str:
    """What the units fact prints (`systemctl show -p Id,LoadState,ActiveState,SubState,UnitFileState
    UNITS`) for units in these states: per unit a captured block in that state (a not-found one for
    "not-found"), its Id set to the unit; where no capture has that very pair, a captured loaded
    block with its UnitFileState set to a word systemctl printed there in a capture, and its
    ActiveState to one is-active printed (ActiveState is is-active's word: `activating` was
    captured by is-active only)."""
    from fabfile.parsers.systemctl import unit_name
    out = []
    for u in units:
        a, e = active[u], enabled[u]
        d = [dict(b) for b in SHOW_BLOCKS]
        same = [b for b, m in zip(SHOW_BLOCKS, d) if m["ActiveState"] == a and (
            m["LoadState"] == "not-found" if e == "not-found" else (m["LoadState"] != "not-found" and m["UnitFileState"] == e))]
        if same:
            block = same[0]
        else:
            assert e != "not-found" and e in {m["UnitFileState"] for m in d}, f"{e!r}: no capture shows it"
            assert a in ACTIVE_WORDS | {m["ActiveState"] for m in d}, f"{a!r}: no capture shows it"
            base = next(b for b, m in zip(SHOW_BLOCKS, d) if m["LoadState"] == "loaded")
            block = [(k, e if k == "UnitFileState" else a if k == "ActiveState" else v) for k, v in base]
        out.append("".join(f"{k}={unit_name(u) if k == 'Id' else v}\n" for k, v in block))
    return "\n".join(out)


# ------------------------------------------------------------------ framing
def frame(outputs: dict[str, tuple[str, str, int]], token: str = TOKEN) -> str:
    """What observe.script prints for these facts: per fact
    `\\n@@TOKEN fact NAME\\n<stdout>\\n@@TOKEN stderr\\n<stderr>\\n@@TOKEN rc N\\n`."""
    return "".join(f"\n@@{token} fact {name}\n{out}\n@@{token} stderr\n{err}\n@@{token} rc {rc}\n"
                   for name, (out, err, rc) in outputs.items())


def file_listing(files: dict[str, LiveFile | None]) -> str:
    """What facts.files(paths) prints: a tar of the files that exist, base64 on one line (the
    same layout GNU tar writes on the nodes: tests/fixtures/lbtk/files_tar.txt is one)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path, live in files.items():
            if live is None:
                continue
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode = len(live.content), live.mode
            tar.addfile(info, io.BytesIO(live.content))
    return base64.b64encode(buf.getvalue()).decode() + "\n"


# ------------------------------------------------------------------ ip -j addr
def addrs_json(host: str, on_iface: tuple[str, ...] = (), on_lo: tuple[str, ...] = ()) -> str:
    """tests/fixtures/ip_addr/guest_director.txt (a kernel-tier director: lo, eth0 with its
    address and the VIP, eth1) with eth0's address set to `host`, its VIP entries to
    `on_iface`, and lo's extra /32 entries (as tests/fixtures/ip_addr/guest_realserver_lo.txt
    shows a DR real server's VIP) to `on_lo`."""
    data = json.loads(read("ip_addr/guest_director.txt"))
    lo_vip = next(a for a in json.loads(read("ip_addr/guest_realserver_lo.txt"))[0]["addr_info"]
                  if a["family"] == "inet" and a["label"] == "lo" and a["local"] != "127.0.0.1")
    by = {d["ifname"]: d for d in data}
    eth0 = by["eth0"]["addr_info"]
    primary, vip = [a for a in eth0 if a["family"] == "inet"]          # 10.190.0.2/25, 10.190.0.100/32
    v6 = [a for a in eth0 if a["family"] != "inet"]
    by["eth0"]["addr_info"] = ([dict(primary, local=host)] + [dict(vip, local=v) for v in on_iface] + v6)
    lo = by["lo"]["addr_info"]
    by["lo"]["addr_info"] = ([a for a in lo if a["family"] == "inet"]
                             + [dict(copy.deepcopy(lo_vip), local=v) for v in on_lo]
                             + [a for a in lo if a["family"] != "inet"])
    return json.dumps(data)


# ------------------------------------------------------------------ inventories
def lab_env(monkeypatch, secret: str = "lab3cr3t", data: dict | None = None, name: str = "lab") -> Env:
    """An Env over inventories/lab.yaml (or `data`, a changed copy of it); the VRRP secret comes
    from the environment variable the inventory names, as in production."""
    inv, path = load("lab")
    monkeypatch.setenv("LAB_VRRP_PASS", secret)
    if data is not None:
        inv = parse(data, "lab.yaml")
    return Env(inv=inv, path=path, secrets=resolve_all(inv, "lab"), name=name)


def lab_env_of_size(monkeypatch, size: int) -> Env:
    """lab.yaml grown to `size` nodes (like lab-30): node4.. as backups below node3, lowest last."""
    data = lab_data()
    base = data["nodes"][2]
    for k in range(4, size + 1):
        data["nodes"].append(dict(base, name=f"node{k}", host=f"10.189.0.{100 + k}", priority=80 - k,
                                  mac=f"02:bd:00:00:02:{k:02d}"))
    return lab_env(monkeypatch, data=data)


def env_of(monkeypatch, data: dict, secret: str = "t3stpass") -> Env:
    monkeypatch.setenv("TEST_VRRP_PASS", secret)
    inv = parse(data, "test.yaml")
    return Env(inv=inv, path=Path("test.yaml"), secrets=resolve_all(inv, "test.yaml"), name="test")


def lab_data() -> dict:
    inv, _ = load("lab")
    return inv.model_dump(exclude_none=True)


# ------------------------------------------------------------------ NodeStates via parse_state
# a director deployed without monitoring.publish: lbtk's publisher timer is not there
ALL_UNITS_UP = {u: "active" for u in F.UNITS} | {"lbtk-publish-metrics.timer": "inactive"}
ALL_ENABLED = {u: "enabled" for u in F.UNITS} | {"lbtk-publish-metrics.timer": "not-found"}


def live_files(env: Env, node: str, ipvs: bool = True) -> dict[str, LiveFile | None]:
    """The node's managed files exactly as this inventory renders them (an up-to-date node)."""
    out: dict[str, LiveFile | None] = {p: None for p in managed_paths(env.inv, node, env.secrets)}
    for f in render_node(env.inv, node, env.secrets, RenderFacts(ipvs=ipvs)):
        out[f.path] = None if f.content is None else LiveFile(f.mode, f.content.encode())
    record = secret_record.record_text(env.secrets, {}, secret_record.Setter())   # the secret it runs
    out[F.SECRET_RECORD_PATH] = None if record is None else LiveFile(F.RECORD_MODE, record.encode())
    return out


def deploy_state(env: Env, node: str, **kw):
    """One node's fabfile.infra.facts.DEPLOY (+ files) round trip, parsed by observe.parse_state.
    Defaults: an up-to-date node (rendered files, every unit active and enabled)."""
    files = kw.pop("files", None)
    files = live_files(env, node, kw.get("has_ipvs", True)) if files is None else files
    outputs = deploy_outputs(env, node, files=files, **kw)
    facts = [*F.DEPLOY, F.files(listed_paths(env, node, files))]
    return parse_state(node, facts, frame(outputs), TOKEN)


def listed_paths(env: Env, node: str, files: dict[str, LiveFile | None]) -> list[str]:
    """The paths a deploy's file listing asks for: the managed files, and the secret record where the
    node is given one."""
    return [*managed_paths(env.inv, node, env.secrets), *([F.SECRET_RECORD_PATH] if F.SECRET_RECORD_PATH in files else [])]


def deploy_outputs(env: Env, node: str, *, files: dict[str, LiveFile | None] | None = None,
                   active: dict[str, str] | None = None, enabled: dict[str, str] | None = None,
                   has_ipvs: bool = True, on_iface: tuple[str, ...] = (), on_lo: tuple[str, ...] = (),
                   binaries: tuple[str, ...] = F.BINARIES, dpkg: str = DPKG_CAPTURE,
                   pending: str = "", runtime: str = "", modprobe: str = "") -> dict[str, tuple[str, str, int]]:
    """{fact name: (stdout, stderr, rc)} of deploy_state's round trip: what each fact prints.
    `modprobe`: what `modprobe ip_vs` wrote on stderr (has_ipvs False)."""
    active = {**ALL_UNITS_UP, **(active or {})}
    enabled = {**ALL_ENABLED, **(enabled or {})}
    files = live_files(env, node, has_ipvs) if files is None else files
    paths = listed_paths(env, node, files)
    assert set(paths) <= set(files), "a file listing names every managed path"
    for w in active.values():
        assert w in ACTIVE_WORDS, f"{w!r} is not a word systemctl is-active printed in the captures"
    outputs = {
        "kernel": (UNAME_CAPTURE, "", 0),
        "packages": (dpkg, "", 0),
        "binaries": ("".join(b + "\n" for b in binaries), "", 0),
        "has_ipvs": ("yes\n" if has_ipvs else "no\n", modprobe, 0),
        "addrs": (addrs_json(env.inv.node(node).host, on_iface, on_lo) + "\n", "", 0),
        "pending": (pending, "", 0),
        "units": (units_output(active, enabled), "", 0),
        "runtime": (runtime, "", 0),
    }
    outputs["files"] = (file_listing({p: files[p] for p in paths}), "", 0)
    return outputs


def verify_state(node: str, host: str, *, on_iface: tuple[str, ...] = (), on_lo: tuple[str, ...] = (),
                 sysctl: str = "", active: dict[str, str] | None = None, ipvs: str | None = None,
                 daemons: str = "", rate: str | None = None, vrrp: str = "NOT-RUNNING\n", changes: str = "",
                 runtime: str = ""):
    """One node's fabfile.infra.facts.VERIFY round trip, parsed by observe.parse_state.
    `ipvs` is ipvsadm -L -n output, or None for a kernel without IPVS (the fact prints its mark)."""
    from fabfile.parsers.ipvsadm import NO_IPVS_MARK
    active = {**ALL_UNITS_UP, **(active or {})}
    for w in active.values():
        assert w in ACTIVE_WORDS
    outputs = {
        "addrs": (addrs_json(host, on_iface, on_lo) + "\n", "", 0),
        "sysctl": (sysctl, "", 0),
        "units": (units_output(active, ALL_ENABLED), "", 0),
        "ipvs": (ipvs if ipvs is not None else NO_IPVS_MARK + "\n", "", 0),
        "sync_daemons": (daemons if ipvs is not None else NO_IPVS_MARK + "\n", "", 0),
        "ipvs_rate": (rate if ipvs is not None and rate is not None else NO_IPVS_MARK + "\n", "", 0),
        "vrrp": (vrrp, "", 0),
        "changes": (changes, "", 0),
        "runtime": (runtime, "", 0),
    }
    return parse_state(node, F.VERIFY, frame(outputs), TOKEN)
