"""The alert rules (fabfile/core/monitoring/alert_rules.py) against the real promtool (Debian's
prometheus package; scripts/setup.sh installs it).

- Every inventory's rules pass `promtool check rules` (duplicate rules a lint error).
- Every alert fires on synthetic series made to fire it (`promtool test rules`), with the labels
  and the annotations expected, and no alert fires on the healthy series, nor on a drain. The
  series are built from the inventory the way the directors will publish them: a healthy world
  (the inventory's holder MASTER, adverts flowing, the IPVS tables as wanted), and per alert the one
  change that should fire it. An alert the rules raise with no case here fails
  test_every_alert_has_a_firing_case: a new alert cannot land untested.

One promtool run per test: every case is a test group of one generated file.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fabfile.core import desired
from fabfile.core.monitoring import alert_rules as R, files, metrics as M, rules_yaml
from fabfile.core.vrrp import plan
from fabfile.model.loading import inventory_dir, load

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "runbooks"
ALL = sorted(p.stem for p in inventory_dir().glob("*.yaml"))
# the shapes the firing cases run on: fwmark DR with a sync daemon, NAT by address (the rest: check rules)
FIRED_ON = ("prod.example", "kernel-nat")
STEPS = 48                # samples per series: 12 minutes at the default 15 s scrape interval
# promtool evaluates the rules every 3 minutes (each evaluation of every group costs; every 15 s was
# 5 s a run): each case holds its change from the start, or for 4 minutes before the end at least,
# so every `for` (5 min at most) has run out by the last evaluation, at 12 minutes
EVERY = "3m"
JOB = "node"


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is missing: bash scripts/setup.sh installs Debian's prometheus package"
    return path


def run_promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=60)


# -- the world the directors publish ------------------------------------------------------------

@dataclass
class World:
    """Series by their label set (a frozenset of items, __name__ included): values per sample."""
    series: dict[frozenset, list[float]] = field(default_factory=dict)

    def put(self, metric: M.Metric, labels: dict, values) -> None:
        values = list(values) if not isinstance(values, (int, float)) else [values] * (STEPS + 1)
        self.series[frozenset({"__name__": metric.name, **labels}.items())] = values

    def drop(self, **match) -> None:
        for key in [k for k in self.series if set(match.items()) <= set(k)]:
            del self.series[key]

    def set(self, values, **match) -> None:
        keys = [k for k in self.series if set(match.items()) <= set(k)]
        assert keys, f"no series matches {match}"
        for k in keys:
            self.series[k] = list(values) if not isinstance(values, (int, float)) else [values] * (STEPS + 1)

    def input_series(self) -> list[dict]:
        out = []
        for key, values in self.series.items():
            labels = dict(key)
            name = labels.pop("__name__")
            shown = ",".join(f"{k}={R.string(v)}" for k, v in sorted(labels.items()) if v != "")
            out.append({"series": f"{name}{{{shown}}}", "values": expanded(values)})
        return out


def expanded(values: list[float]) -> str:
    """Samples in promtool's notation, a run of equal steps as one `a+bxn` (n + 1 samples)."""
    out, k = [], 0
    while k < len(values):
        j = k + 1
        step = values[j] - values[k] if j < len(values) else 0
        while j + 1 < len(values) and values[j + 1] - values[j] == step:
            j += 1
        if j == len(values):                   # the last sample alone
            out.append(f"{values[k]:g}")
            break
        out.append(f"{values[k]:g}{step:+g}x{j - k}")
        k = j + 1
    return " ".join(out)


def counter(per_step: float) -> list[float]:
    return [k * per_step for k in range(STEPS + 1)]


def target(node: str) -> dict:
    return {"job": JOB, "instance": f"{node}:9100"}


def healthy(inv) -> World:
    w, c = World(), inv.cluster
    scrape = inv.monitoring.scrape_interval
    for n in inv.nodes:
        t = {**target(n.name), "cluster": c, "node": n.name}
        w.put(M.NODE_INFO, {**t, "ipvs": "1"}, 1)
        w.put(M.NODE_ISOLATED, t, 0)
        for service in M.SERVICES:
            if service != "sync_daemon" or inv.sync_daemon is not None:
                w.put(M.SERVICE_UP, {**t, "service": service}, 1)
        for p in plan(inv):
            v = {**t, "vrrp_instance": p.name, "vip": M.vip_label(p)}
            master = n.name == p.owner
            w.put(M.VRRP_STATE, v, int(M.VrrpState.MASTER if master else M.VrrpState.BACKUP))
            adverts = counter(scrape / p.source.advert_int)
            w.put(M.VRRP_ADVERTS_SENT, v, adverts if master else 0)
            w.put(M.VRRP_ADVERTS_RECEIVED, v, 0 if master else adverts)
            w.put(M.VRRP_AUTH_FAILURES, v, 0)
            w.put(M.VRRP_TRANSITIONS, v, 1)
        for s in desired.ipvs_services(inv):
            for rs in s.real_servers:
                weight = 1 if rs.source.dynamic_weight else rs.weight
                r = {**t, "virtual_server": M.virtual_server_label(s), "real_server": M.real_server_label(s, rs)}
                w.put(M.REAL_SERVER_WEIGHT, r, weight)
                w.put(M.REAL_SERVER_WANTED_WEIGHT, r, weight)
                w.put(M.REAL_SERVER_DRAINED, r, 0)
                w.put(M.IPVS_BACKEND_WEIGHT, {**target(n.name), **M.ipvs_backend_labels(s, rs)}, weight)
    return w


# -- one case per alert: the change that fires it, and the alerts expected ----------------------

@dataclass
class Case:
    name: str
    world: World
    alert: str
    expected: list[dict]            # each alert's labels, the rule's own (severity ...) included


def labels_of(w: World, metric: M.Metric, **match) -> dict:
    """The labels (no __name__) of the one series of `metric` matching."""
    found = [dict(k) for k in w.series if dict(k)["__name__"] == metric.name and set(match.items()) <= set(k)]
    assert len(found) == 1, (metric.name, match, len(found))
    return {k: v for k, v in found[0].items() if k != "__name__"}


def first_planned(inv, preempting: bool = False):
    return next(p for p in plan(inv) if not (preempting and p.source.nopreempt))


def other(inv, p) -> str:
    """A director that is not the instance's holder."""
    return next(n.name for n in inv.nodes if n.name != p.owner)


def service_and_server(inv, weighted: bool = False):
    for s in desired.ipvs_services(inv):
        for rs in s.real_servers:
            if not weighted or (rs.weight > 0 and not rs.source.dynamic_weight):
                return s, rs
    raise AssertionError("no real server")


def vrrp(p, node: str) -> dict:
    return {"node": node, "vrrp_instance": p.name}


def split_brain(inv):
    w, p = healthy(inv), first_planned(inv)
    m = other(inv, p)
    w.set(int(M.VrrpState.MASTER), __name__=M.VRRP_STATE.name, **vrrp(p, m))
    return [Case("split brain", w, "LbtkSplitBrain",
                 [labels_of(w, M.VRRP_STATE, **vrrp(p, n)) for n in (p.owner, m)])]


def no_master(inv):
    out = []
    p = first_planned(inv)
    own = {"cluster": inv.cluster, "vrrp_instance": p.name, "vip": M.vip_label(p)}
    w = healthy(inv)
    w.set(int(M.VrrpState.BACKUP), __name__=M.VRRP_STATE.name, **vrrp(p, p.owner))
    out.append(Case("every director BACKUP", w, "LbtkNoMaster", [own]))
    w = healthy(inv)
    w.drop(__name__=M.VRRP_STATE.name, vrrp_instance=p.name)
    out.append(Case("no director reports the instance", w, "LbtkNoMaster", [own]))
    return out


def not_preferred(inv):
    w, p = healthy(inv), first_planned(inv, preempting=True)
    m = other(inv, p)
    w.set(int(M.VrrpState.BACKUP), __name__=M.VRRP_STATE.name, **vrrp(p, p.owner))
    w.set(int(M.VrrpState.MASTER), __name__=M.VRRP_STATE.name, **vrrp(p, m))
    return [Case("VIP on another director", w, "LbtkVipNotOnPreferredNode", [labels_of(w, M.VRRP_STATE, **vrrp(p, m))])]


def auth_failures(inv):
    w, p = healthy(inv), first_planned(inv)
    m = other(inv, p)
    w.set(counter(1), __name__=M.VRRP_AUTH_FAILURES.name, **vrrp(p, m))
    return [Case("auth failures rising", w, "LbtkVrrpAuthFailures", [labels_of(w, M.VRRP_AUTH_FAILURES, **vrrp(p, m))])]


def adverts_not_sent(inv):
    w, p = healthy(inv), first_planned(inv)
    w.set(7, __name__=M.VRRP_ADVERTS_SENT.name, **vrrp(p, p.owner))
    return [Case("MASTER silent", w, "LbtkVrrpAdvertsNotSent", [labels_of(w, M.VRRP_ADVERTS_SENT, **vrrp(p, p.owner))])]


def adverts_not_received(inv):
    w, p = healthy(inv), first_planned(inv)
    m = other(inv, p)
    w.set(7, __name__=M.VRRP_ADVERTS_RECEIVED.name, **vrrp(p, m))
    return [Case("BACKUP deaf", w, "LbtkVrrpAdvertsNotReceived", [labels_of(w, M.VRRP_ADVERTS_RECEIVED, **vrrp(p, m))])]


def rs_match(s, rs) -> dict:
    return {"virtual_server": M.virtual_server_label(s), "real_server": M.real_server_label(s, rs)}


def real_server_missing(inv):
    w = healthy(inv)
    s, rs = service_and_server(inv)
    m = inv.nodes[-1].name
    w.drop(__name__=M.REAL_SERVER_WEIGHT.name, node=m, **rs_match(s, rs))
    return [Case("out of the pool", w, "LbtkRealServerMissing",
                 [{**labels_of(w, M.NODE_INFO, node=m), **rs_match(s, rs)}])]


def real_server_zero(inv):
    w = healthy(inv)
    s, rs = service_and_server(inv, weighted=True)
    m = inv.nodes[-1].name
    w.set(0, __name__=M.REAL_SERVER_WEIGHT.name, node=m, **rs_match(s, rs))
    return [Case("weight 0 by hand", w, "LbtkRealServerWeightZero",
                 [labels_of(w, M.REAL_SERVER_WEIGHT, node=m, **rs_match(s, rs))])]


def sync_daemon_down(inv):
    w, m = healthy(inv), inv.nodes[0].name
    w.set(0, __name__=M.SERVICE_UP.name, node=m, service="sync_daemon")
    return [Case("sync daemon stopped", w, "LbtkSyncDaemonDown",
                 [labels_of(w, M.SERVICE_UP, node=m, service="sync_daemon")])]


def flapping(inv):
    w, p = healthy(inv), first_planned(inv)
    # two MASTER changes in the last minutes: one at 5 min, one at 8 min
    w.set([1] * 20 + [2] * 12 + [3] * (STEPS + 1 - 32), __name__=M.VRRP_TRANSITIONS.name, **vrrp(p, p.owner))
    return [Case("flapping", w, "LbtkVrrpFlapping", [labels_of(w, M.VRRP_TRANSITIONS, **vrrp(p, p.owner))])]


def service_down(service: str, alert: str):
    def case(inv):
        w, m = healthy(inv), inv.nodes[0].name
        w.set(0, __name__=M.SERVICE_UP.name, node=m, service=service)
        return [Case(f"{service} stopped", w, alert, [labels_of(w, M.SERVICE_UP, node=m, service=service)])]
    return case


def ipvs_differs(inv):
    out = []
    s, rs = service_and_server(inv, weighted=True)
    m = inv.nodes[-1].name
    node = {"cluster": inv.cluster, "node": m}
    w = healthy(inv)
    stranger = {**target(m), "proto": "TCP", "local_address": s.vip or "192.0.2.200", "local_port": "80",
                "local_mark": "", "remote_address": "192.0.2.250", "remote_port": "80"}
    w.put(M.IPVS_BACKEND_WEIGHT, stranger, 5)
    out.append(Case("a real server the inventory does not name", w, "LbtkIpvsTableDiffers",
                    [{**{k: v for k, v in stranger.items() if v}, **node}]))
    w = healthy(inv)
    backend = {**target(m), **M.ipvs_backend_labels(s, rs)}
    w.set(rs.weight + 4, __name__=M.IPVS_BACKEND_WEIGHT.name, **backend)
    out.append(Case("another weight than the inventory's", w, "LbtkIpvsTableDiffers",
                    [{**{k: v for k, v in backend.items() if v}, **node}]))
    return out


def silent(inv):
    w, m = healthy(inv), inv.nodes[1].name
    w.drop(node=m)
    return [Case("a director publishes nothing", w, "LbtkDirectorSilent", [{"cluster": inv.cluster, "node": m}])]


CASES = {"LbtkSplitBrain": split_brain, "LbtkNoMaster": no_master, "LbtkVipNotOnPreferredNode": not_preferred,
         "LbtkVrrpAuthFailures": auth_failures, "LbtkVrrpAdvertsNotSent": adverts_not_sent,
         "LbtkVrrpAdvertsNotReceived": adverts_not_received, "LbtkRealServerMissing": real_server_missing,
         "LbtkRealServerWeightZero": real_server_zero, "LbtkSyncDaemonDown": sync_daemon_down,
         "LbtkVrrpFlapping": flapping, "LbtkKeepalivedDown": service_down("keepalived", "LbtkKeepalivedDown"),
         "LbtkNginxDown": service_down("nginx", "LbtkNginxDown"), "LbtkIpvsTableDiffers": ipvs_differs,
         "LbtkDirectorSilent": silent}


def drained(inv) -> World:
    """A drain as `inv drain` leaves it: weight 0 in IPVS and in lbtk's view, the drain recorded."""
    w = healthy(inv)
    s, rs = service_and_server(inv, weighted=True)
    for n in inv.nodes:
        w.set(0, node=n.name, **rs_match(s, rs))                        # weight, wanted weight, drained
        w.set(1, __name__=M.REAL_SERVER_DRAINED.name, node=n.name, **rs_match(s, rs))
        w.set(0, __name__=M.IPVS_BACKEND_WEIGHT.name, **target(n.name), **M.ipvs_backend_labels(s, rs))
    return w


def isolated(inv) -> World:
    """The VIP owner isolated as `inv isolate` leaves it: its keepalived stopped (no VRRP series,
    service down, no sync daemon), the isolation recorded, another director MASTER in its place."""
    w, owner = healthy(inv), first_planned(inv, preempting=True).owner
    for metric in (M.VRRP_STATE, M.VRRP_ADVERTS_SENT, M.VRRP_ADVERTS_RECEIVED, M.VRRP_AUTH_FAILURES,
                   M.VRRP_TRANSITIONS):
        w.drop(__name__=metric.name, node=owner)
    w.set(0, __name__=M.SERVICE_UP.name, node=owner, service="keepalived")
    if inv.sync_daemon is not None:
        w.set(0, __name__=M.SERVICE_UP.name, node=owner, service="sync_daemon")
    w.set(1, __name__=M.NODE_ISOLATED.name, node=owner)
    for p in plan(inv):
        if p.owner == owner:         # every VIP it held: another director took it
            m = other(inv, p)
            w.set(int(M.VrrpState.MASTER), __name__=M.VRRP_STATE.name, **vrrp(p, m))
            w.set(counter(inv.monitoring.scrape_interval / p.source.advert_int),
                  __name__=M.VRRP_ADVERTS_SENT.name, **vrrp(p, m))
    return w


# -- the promtool test file ---------------------------------------------------------------------

def rules_of(inv) -> list[dict]:
    return R.Rules(inv, "test").all()


def rule_for(rules: list[dict], alert: str, labels: dict) -> dict:
    """The rule raising `alert` with these labels: its own labels agree with them."""
    return next(r for r in rules if r["alert"] == alert and all(labels.get(k, v) == v for k, v in r["labels"].items()))


def annotations(rule: dict, labels: dict) -> dict:
    """The annotations promtool must find: the rule's templates with $labels filled in (they are
    plain text around {{ $labels.X }} only)."""
    out = {}
    for k, v in rule["annotations"].items():
        v = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), v)
        assert "{{" not in v.replace('{{ "{{" }}', ""), f"{rule['alert']}: {k} uses more than $labels: {v}"
        out[k] = v.replace('{{ "{{" }}', "{{")
    return out


def expected_alert(rules: list[dict], alert: str, labels: dict) -> dict:
    rule = rule_for(rules, alert, labels)
    full = {**labels, **rule["labels"]}
    return {"exp_labels": full, "exp_annotations": annotations(rule, full)}


def promtool_group(inv, rules: list[dict], name: str, world: World, checks: list[tuple[str, list[dict]]]) -> dict:
    """One test group: the world's series, and per alert name the alerts expected at the end."""
    return {"name": name, "interval": R.duration(inv.monitoring.scrape_interval),
            "input_series": world.input_series(),
            "alert_rule_test": [{"eval_time": R.duration(STEPS * inv.monitoring.scrape_interval), "alertname": a,
                                 "exp_alerts": [expected_alert(rules, a, labels) for labels in expected]}
                                for a, expected in checks]}


def promtool_file(env: str, tmp: Path) -> tuple[Path, set[str]]:
    """tmp/ENV.test.yml with its rules file beside it; the alert names it makes fire."""
    inv, _ = load(env)
    rules = rules_of(inv)
    names = list(dict.fromkeys(r["alert"] for r in rules))
    (tmp / f"{env}.rules.yml").write_text(rules_yaml(inv, "test"))
    groups = [promtool_group(inv, rules, f"{env}: healthy", healthy(inv), [(a, []) for a in names]),
              promtool_group(inv, rules, f"{env}: a drain", drained(inv), [(a, []) for a in names]),
              promtool_group(inv, rules, f"{env}: a node isolated", isolated(inv), [(a, []) for a in names])]
    fired = set()
    for a in names:
        for case in CASES[a](inv):
            groups.append(promtool_group(inv, rules, f"{env}: {case.alert}: {case.name}", case.world,
                                         [(case.alert, case.expected)]))
            fired.add(case.alert)
    path = tmp / f"{env}.test.yml"       # JSON is YAML, and much faster to write
    path.write_text(json.dumps({"rule_files": [f"{env}.rules.yml"], "evaluation_interval": EVERY, "tests": groups},
                               indent=1))
    return path, fired


def test_every_alert_fires_on_its_case_and_none_on_healthy_series(tmp_path):
    paths, fired = [], set()
    for env in FIRED_ON:
        path, names = promtool_file(env, tmp_path)
        paths.append(path)
        fired |= names
    r = run_promtool("test", "rules", *(str(p) for p in paths))
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    assert fired == {a.name for a in R.ALERTS}, f"no firing case ran for {sorted({a.name for a in R.ALERTS} - fired)}"


def test_every_alert_has_a_firing_case():
    """Every alert any inventory's rules raise (and every alert alert_rules.py knows) has a case."""
    raised = {r["alert"] for env in ALL for r in rules_of(load(env)[0])}
    known = {a.name for a in R.ALERTS}
    assert raised <= known, f"rules raise alerts alert_rules.ALERTS does not list: {sorted(raised - known)}"
    assert known <= set(CASES), f"alerts with no firing case in {__file__}: {sorted(known - set(CASES))}"


def test_every_inventory_passes_promtool_check_rules(tmp_path):
    paths = []
    for env in ALL:
        inv, _ = load(env)
        for f in files(inv, env):
            if f.path.endswith(".rules.yml"):
                paths.append(tmp_path / f"{env}.{f.path}")
                paths[-1].write_text(f.content)
    r = run_promtool("check", "rules", "--lint-fatal", *(str(p) for p in paths))
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]


def slug(heading: str) -> str:
    """A Markdown heading's anchor as GitHub writes it."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_runbook_url_names_a_runbook_section():
    for a in R.ALERTS:
        page, _, anchor = a.runbook.partition("#")
        path = RUNBOOKS / page
        assert path.is_file(), f"{a.name}: runbooks/{page} does not exist"
        anchors = {slug(line.lstrip("#")) for line in path.read_text().splitlines() if line.startswith("#")}
        assert anchor in anchors, f"{a.name}: runbooks/{page} has no heading #{anchor} (it has {sorted(anchors)})"


def test_every_summary_names_the_node_and_the_vip():
    """On-call reads the summary first: it says where (the director) and what (the VIP or service)."""
    inv, _ = load("prod.example")
    for r in rules_of(inv):
        summary = r["annotations"]["summary"]
        names_node = "$labels.node" in summary or r["alert"] == "LbtkNoMaster"     # no node holds it: the point
        names_what = any(x in summary for x in ("$labels.vip", "VIP ", "$labels.real_server", "real server ",
                                                "IPVS table", "$labels.node"))
        assert names_node and names_what, f"{r['alert']}: {summary}"
        assert r["annotations"]["runbook_url"].startswith(inv.monitoring.runbook_url)


def test_nopreempt_never_alerts_on_where_the_vip_is():
    """A nopreempt VIP stays where it landed: no rule about its preferred node."""
    inv, _ = load("prod.example")
    vis = [vi.model_copy(update={"nopreempt": True}) for vi in inv.vrrp_instances]
    quiet = inv.model_copy(update={"vrrp_instances": vis})
    assert "LbtkVipNotOnPreferredNode" in {r["alert"] for r in rules_of(inv)}
    assert "LbtkVipNotOnPreferredNode" not in {r["alert"] for r in rules_of(quiet)}


def test_the_thresholds_come_from_the_inventory():
    inv, _ = load("prod.example")
    mon = inv.monitoring.model_copy(update={"scrape_interval": 30, "split_brain_for": 90,
                                            "runbook_url": "https://git.example.com/ops/lbtk/-/blob/main/runbooks/"})
    rules = rules_of(inv.model_copy(update={"monitoring": mon}))
    split = next(r for r in rules if r["alert"] == "LbtkSplitBrain")
    assert split["for"] == "90s"
    assert split["annotations"]["runbook_url"] == "https://git.example.com/ops/lbtk/-/blob/main/runbooks/split-brain.md#steps"
    auth = next(r for r in rules if r["alert"] == "LbtkVrrpAuthFailures")
    assert "[2m]" in auth["expr"]          # 4 scrapes of 30 s


@pytest.mark.parametrize("value, fix", [({"scrape_interval": 0}, "greater than or equal to 1"),
                                        ({"runbook_url": "runbooks"}, "ending in /"),
                                        ({"split_brain_for": "30s"}, "valid integer"),
                                        ({"scrape_interval": 15, "alerts": 1}, "unknown key")])
def test_a_bad_monitoring_section_is_one_line(value, fix):
    from fabfile.model.loading import InventoryError, parse, read_yaml
    data = read_yaml((inventory_dir() / "prod.example.yaml").read_text())
    data["monitoring"] = value
    with pytest.raises(InventoryError) as e:
        parse(data, "inventories/x.yaml")
    assert "monitoring." in str(e.value) and "\n" not in str(e.value).strip()


def test_every_runbook_an_alert_links_names_that_alert():
    """On call starts from the alert: the runbook its runbook_url opens says which alerts lead there."""
    for a in R.ALERTS:
        page = (RUNBOOKS / a.runbook.partition("#")[0]).read_text()
        assert f"`{a.name}`" in page, f"{a.runbook} does not name {a.name}"
