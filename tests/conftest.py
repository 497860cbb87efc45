"""The test tiers, one marker each, given by directory: `pytest -m unit` runs tests/unit and nothing
else (likewise `-m lab`, `-m cluster`, `-m kernel`). The markers are declared in pyproject.toml.

A tier's directory that `-m` can match no test of is not even collected (its modules are not
imported): `-m unit` does not pay for importing the lab and kernel tests, `-m kernel` not for the
unit tier's Hypothesis.

Every tier loads lab inventories: the lab's hooks (fabfile.model.extensions) are registered here as
the task layer does when `inv` starts."""
from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

import fabfile.lab.hooks  # noqa: F401  (registers the lab's hooks)

TESTS = Path(__file__).resolve().parent
TIERS = ("unit", "lab", "cluster", "kernel")     # a directory of tests/ each, and its marker


def tier_of(path: Path) -> str | None:
    """The tier of a test file: the directory of tests/ it sits in (None: in no tier)."""
    try:
        parts = Path(path).resolve().relative_to(TESTS).parts
    except ValueError:
        return None
    return parts[0] if len(parts) > 1 and parts[0] in TIERS else None


def pytest_collection_modifyitems(config, items):
    for item in items:
        tier = tier_of(item.path)
        if tier is not None:
            item.add_marker(getattr(pytest.mark, tier))


def pytest_ignore_collect(collection_path, config):
    tier = tier_of(Path(collection_path) / "x") if Path(collection_path).is_dir() else None
    if tier is None or Path(collection_path).resolve() != TESTS / tier:
        return None
    return True if not may_select(config.getoption("markexpr") or "", tier) else None


def may_select(markexpr: str, tier: str) -> bool:
    """Can a test of `tier` (its tier marker, no other tier's, any other markers) match `-m markexpr`?
    True whenever in doubt: an expression this cannot read, too many names."""
    if not markexpr.strip():
        return True
    try:
        from _pytest.mark.expression import Expression     # pytest's own -m grammar
        expr = Expression.compile(markexpr)
    except Exception:  # noqa: BLE001 - pytest reports a bad expression itself, or its API moved
        return True
    if "(" in markexpr and "=" in markexpr:                # marker arguments: not read here
        return True
    names = sorted(set(re.findall(r"[\w:+\-.\[\]\\/]+", markexpr)) - {"and", "or", "not"} - set(TIERS))
    if len(names) > 10:
        return True
    for values in itertools.product((False, True), repeat=len(names)):
        others = dict(zip(names, values))
        if expr.evaluate(lambda name: name == tier or others.get(name, False)):
            return True
    return False
