"""Per-real-server rates from successive IPVS counter readings, and the watch's sparklines
(fabfile/core/ipvs_rates.py), on captured `ipvsadm -L -n --stats` output: the fx director's
(L_n_stats_exact.txt), and the same service read on another run's director (shared_q3), whose lower
counters are what a reset looks like between two readings.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from fabfile.core import ipvs_rates as R
from fabfile.core.balance import conns_delta
from fabfile.parsers.ipvsadm import IpvsStats, parse_stats

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "ipvsadm"
WEB = ("dir", "TCP 10.190.0.100:80", "10.190.0.11:80")


def stats(name: str) -> IpvsStats:
    return parse_stats((FIX / f"{name}.txt").read_text())


def plus(s: IpvsStats, endpoint: str, conns: int) -> IpvsStats:
    """The same reading with `conns` more connections to `endpoint` (a later reading of that director)."""
    return replace(s, services=[replace(svc, real_servers=[
        replace(rs, stats=replace(rs.stats, conns=rs.stats.conns + conns)) if rs.endpoint == endpoint else rs
        for rs in svc.real_servers]) for svc in s.services])


def test_a_reading_is_every_real_server_of_every_service():
    got = R.counters_of("dir", stats("L_n_stats_exact"))
    assert got[WEB].conns == 150 and got[("dir", "FWM 1", "10.190.0.12:0")].conns == 4
    assert len(got) == 23 and R.counters_of("dir", None) == {}


def test_rates_are_rises_over_the_time_between_readings_and_a_reset_counts_from_zero():
    h = R.RateHistory()
    first = stats("L_n_stats_exact")
    h.add(100.0, R.counters_of("dir", first))
    assert h.latest(WEB) is None                                   # one reading: no rate yet
    h.add(102.0, R.counters_of("dir", plus(first, "10.190.0.11:80", 30)))
    assert h.latest(WEB) == 15.0 and h.latest(("dir", "TCP 10.190.0.100:80", "10.190.0.12:80")) == 0.0
    h.add(103.0, R.counters_of("dir", stats("shared_q3_dir1_L_n_stats")))    # 180 -> 3: reset in between
    assert h.latest(WEB) == 3.0
    assert h.peak() == 15.0
    assert R.rate(5, 5, 0.0) is None and R.rise(2**40, 2**40 + 7) == 7


def test_a_real_server_not_read_starts_again():
    h = R.RateHistory()
    first = stats("L_n_stats_exact")
    h.add(0.0, R.counters_of("dir", first))
    h.add(1.0, {})                                              # the director did not answer
    h.add(2.0, R.counters_of("dir", plus(first, "10.190.0.11:80", 50)))
    assert h.latest(WEB) is None                                # not 25/s: the gap is unknown


def test_the_window_forgets_what_is_older():
    h = R.RateHistory(window_s=10.0)
    s = stats("shared_q3_dir1_L_n_stats")
    for t in range(0, 30):
        s = plus(s, "10.190.0.11:80", t)
        h.add(float(t), R.counters_of("dir", s))
    assert [p.at for p in h.series(WEB)] == [float(t) for t in range(20, 30)]


@pytest.mark.parametrize("values, top, want", [
    ([None, 0.0, 1.0, 4.0, 8.0], 8.0, "·▁▂▅█"),
    ([0.01, 8.0, 6.5], 8.0, "▂█▇"),
    ([0.0, 0.0], 0.0, "▁▁"),
])
def test_bars(values, top, want):
    assert "".join(R.bar(v, top) for v in values) == want


def test_sparkline_columns_the_last_minutes_oldest_first():
    h = R.RateHistory()
    s = stats("shared_q3_dir1_L_n_stats")
    h.add(0.0, R.counters_of("dir", s))
    for t in range(1, 301):                                     # 5 minutes, 1 s apart: 0 conn/s, then 8
        s = plus(s, "10.190.0.11:80", 8 if t > 150 else 0)
        h.add(float(t), R.counters_of("dir", s))
    line = R.sparkline(h.series(WEB), 300.0, h.peak())
    assert line == "▁" * 10 + "█" * 10 and len(line) == R.WIDTH
    assert R.sparkline(h.series(WEB)[-15:], 300.0, h.peak()) == "·" * 19 + "█"   # the last 15 s only


def test_conns_delta_counts_a_reset_from_zero():
    assert conns_delta(stats("L_n_stats_exact"), stats("shared_q3_dir1_L_n_stats"), "TCP 10.190.0.100:80") == {
        "10.190.0.11:80": 3, "10.190.0.12:80": 3}
