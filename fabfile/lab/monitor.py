"""The lab's monitoring node: a real Prometheus and Alertmanager on this host's loopback, scraping the
lab directors' node_exporter with the cluster's own alert rules (inventory `lab.prometheus: true`).

What they load is what a team drops into its own Prometheus: `inv render --monitoring`'s rules and
scrape job (fabfile/core/monitoring). `files` is pure (the configs); `up` writes them under the lab
dir and starts both daemons, or makes running ones re-read them (SIGHUP: both reload config and
rules on it); `down` stops them by their recorded PID (and start time) only, never by name.
Prometheus listens where monitoring.prometheus_url says, which must be the loopback: the lab's
daemons answer no other machine.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from fabfile.lab import LabError, _default_lab_dir, lab_path, locked, remove_tree
from fabfile.lab.nspawn import _alive, _proc_stat

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Daemon:
    name: str            # prometheus | alertmanager
    exe: str             # the Debian package's binary
    package: str
    listen: str          # HOST:PORT on the loopback


@dataclass(frozen=True)
class MonitorSpec:
    cluster: str
    prometheus: Daemon
    alertmanager: Daemon
    evaluation_interval: int          # seconds: monitoring.scrape_interval, as the rules' group says
    scrape: dict                      # the cluster's scrape job (fabfile.core.monitoring.scrape_job)
    rules: str                        # the rules file (fabfile.core.monitoring.rules_yaml)
    lab_dir: Path = field(default_factory=_default_lab_dir)

    @property
    def dir(self) -> Path:
        return lab_path(self.lab_dir) / f"monitoring-{self.cluster}"

    @property
    def url(self) -> str:
        return f"http://{self.prometheus.listen}"


def spec(cluster: str, prometheus_listen: str, evaluation_interval: int, scrape: dict, rules: str) -> MonitorSpec:
    """The lab Prometheus at prometheus_listen (HOST:PORT), its Alertmanager on the next port but two
    (9090 -> 9093, as the two projects' defaults sit)."""
    host, _, port = prometheus_listen.rpartition(":")
    return MonitorSpec(cluster, Daemon("prometheus", "prometheus", "prometheus", prometheus_listen),
                       Daemon("alertmanager", "prometheus-alertmanager", "prometheus-alertmanager",
                              f"{host}:{int(port) + 3}"),
                       evaluation_interval, scrape, rules)


def files(s: MonitorSpec) -> dict[str, str]:
    """{file name: text} under the monitoring dir: Prometheus's config, the rules, Alertmanager's."""
    import yaml
    every = f"{s.evaluation_interval}s"
    prom = {"global": {"scrape_interval": every, "evaluation_interval": every},
            "rule_files": ["rules.yml"],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [s.alertmanager.listen]}]}]},
            "scrape_configs": [s.scrape]}
    # the lab's Alertmanager only holds and shows what fires (its API): no receiver sends anything
    am = {"route": {"receiver": "lab", "group_by": ["alertname", "cluster"], "group_wait": "1s",
                    "group_interval": "5s", "repeat_interval": "1h"},
          "receivers": [{"name": "lab"}]}
    head = "# Written by `inv lab.up` (fabfile/lab/monitor.py); `inv lab.down` removes it.\n"
    return {"prometheus.yml": head + yaml.safe_dump(prom, sort_keys=False),
            "rules.yml": s.rules,
            "alertmanager.yml": head + yaml.safe_dump(am, sort_keys=False)}


def argv(s: MonitorSpec, d: Daemon) -> list[str]:
    if d.name == "prometheus":
        return [d.exe, f"--config.file={s.dir}/prometheus.yml", f"--storage.tsdb.path={s.dir}/prometheus-data",
                f"--web.listen-address={d.listen}", "--storage.tsdb.retention.time=1d"]
    # --cluster.listen-address= : no HA gossip (it would listen on every address, port 9094)
    return [d.exe, f"--config.file={s.dir}/alertmanager.yml", f"--storage.path={s.dir}/alertmanager-data",
            f"--web.listen-address={d.listen}", "--cluster.listen-address="]


def _pidfile(s: MonitorSpec, d: Daemon) -> Path:
    return s.dir / f"{d.name}.pid"


def _running(pidfile: Path) -> tuple[int, int, str] | None:
    """(pid, start time, argv hash) of the recorded daemon if that very process still runs."""
    try:
        pid_s, start_s, digest = pidfile.read_text().split()
        pid, start = int(pid_s), int(start_s)
    except (OSError, ValueError):
        return None
    return (pid, start, digest) if _alive(pid, start) else None


def _digest(args: list[str]) -> str:
    return hashlib.sha256(json.dumps(args).encode()).hexdigest()[:16]


def _ready(listen: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                    f"http://{listen}/-/ready", timeout=1) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def _stop(pidfile: Path, name: str, progress) -> None:
    run = _running(pidfile)
    if run is not None:
        pid, start, _ = run
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while _alive(pid, start) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid, start):
            os.kill(pid, signal.SIGKILL)
        progress(f"monitoring: {name} stopped (pid {pid})")
    pidfile.unlink(missing_ok=True)


def up(s: MonitorSpec, progress=print) -> None:
    """Start (or refresh) the lab's Prometheus and Alertmanager with the cluster's files."""
    for d in (s.prometheus, s.alertmanager):
        if shutil.which(d.exe) is None:
            raise LabError(f"{d.exe}: command not found (apt-get install {d.package}; scripts/setup.sh does)")
    with locked(lab_path(s.lab_dir), f".lock-monitoring-{s.cluster}"):
        s.dir.mkdir(parents=True, exist_ok=True)
        changed = False
        for name, text in files(s).items():
            p = s.dir / name
            if not p.exists() or p.read_text() != text:
                p.write_text(text)
                changed = True
        for d in (s.alertmanager, s.prometheus):       # Alertmanager first: Prometheus sends to it
            args, pidfile = argv(s, d), _pidfile(s, d)
            run = _running(pidfile)
            if run is not None and run[2] == _digest(args):
                if changed:
                    os.kill(run[0], signal.SIGHUP)      # both re-read their config (and the rules) on it
                    progress(f"monitoring: {d.name} re-reads its files (pid {run[0]})")
                continue
            _stop(pidfile, d.name, progress)
            log = open(s.dir / f"{d.name}.log", "ab")
            try:
                p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     start_new_session=True, cwd=s.dir)
            finally:
                log.close()
            st = _proc_stat(p.pid)
            pidfile.write_text(f"{p.pid} {st[1] if st else 0} {_digest(args)}\n")
            if not _ready(d.listen, READY_TIMEOUT):
                tail = _log_tail(s.dir / f"{d.name}.log")
                raise LabError(f"{d.name} not ready on {d.listen} after {READY_TIMEOUT:.0f}s: {tail} "
                               f"(log: {s.dir}/{d.name}.log; `inv lab.down` cleans up)")
            progress(f"monitoring: {d.name} on http://{d.listen} (pid {p.pid})")


def _log_tail(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    return lines[-1][-200:] if lines else "empty log"


def down(cluster: str, progress=print, lab_dir: Path | None = None) -> None:
    """Stop the cluster's lab Prometheus and Alertmanager and remove their files (idempotent)."""
    lab_dir = lab_dir or _default_lab_dir()
    d = lab_path(lab_dir) / f"monitoring-{cluster}"
    if not d.exists():
        return
    with locked(lab_path(lab_dir), f".lock-monitoring-{cluster}"):
        for name in ("prometheus", "alertmanager"):
            _stop(d / f"{name}.pid", name, progress)
        remove_tree(d)
