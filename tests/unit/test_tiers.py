"""Every test file sits in a tier, so `pytest -m TIER` (tests/conftest.py) misses none of them."""
from __future__ import annotations

from pathlib import Path

from tests.conftest import TESTS, TIERS, tier_of


def test_every_test_file_is_in_a_tier():
    files = sorted(TESTS.rglob("test_*.py"))
    assert files and [f for f in files if tier_of(f) is None] == []


def test_the_tier_is_the_directory_under_tests():
    assert [tier_of(TESTS / t / "test_x.py") for t in TIERS] == list(TIERS)
    assert tier_of(TESTS / "unit" / "deeper" / "test_x.py") == "unit"
    assert tier_of(TESTS / "test_x.py") is None and tier_of(TESTS / "golden" / "test_x.py") is None
    assert tier_of(Path("/elsewhere/unit/test_x.py")) is None


def test_every_tier_has_its_directory_and_its_marker_declared():
    import tomllib
    declared = tomllib.loads((TESTS.parent / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    names = {m.split(":", 1)[0] for m in declared}
    for t in TIERS:
        assert (TESTS / t).is_dir() and t in names, t


def test_a_tier_that_the_mark_expression_cannot_match_is_not_collected():
    from tests.conftest import may_select
    assert [t for t in TIERS if may_select("unit", t)] == ["unit"]
    assert [t for t in TIERS if may_select("not unit", t)] == ["lab", "cluster", "kernel"]
    assert [t for t in TIERS if may_select("both_kernels", t)] == list(TIERS)   # any tier may carry it
    assert [t for t in TIERS if may_select("kernel and not both_kernels", t)] == ["kernel"]
    assert all(may_select(x, "lab") for x in ("", "(((", "unit or lab"))           # in doubt: collected
