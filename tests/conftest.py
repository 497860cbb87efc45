"""The test tiers, one marker each, given by directory: `pytest -m unit` runs tests/unit and nothing
else (likewise `-m lab`, `-m cluster`, `-m kernel`). The markers are declared in pyproject.toml."""
from __future__ import annotations

from pathlib import Path

import pytest

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
