"""The unit tier never writes into the repository's inventories/: every test (and every `inv` it
runs) sees a copy of them in a temporary directory, through $LBTK_INVENTORIES. Secrets the lab
inventories generate on first use and the clone's .state/ land there."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from fabfile.model.loading import INVENTORIES_VAR

REPO_INVENTORIES = Path(__file__).resolve().parents[2] / "inventories"
SHIPPED_SECRETS = ("README.md", "example.auth_pass")   # what the repository ships in secrets/


@pytest.fixture(scope="session", autouse=True)
def inventories_copy(tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo")
    (repo / "tests").symlink_to(REPO_INVENTORIES.parent / "tests")   # broken inventories name ../tests/...
    root = repo / "inventories"
    root.mkdir()
    for p in REPO_INVENTORIES.glob("*.yaml"):
        shutil.copy2(p, root / p.name)
    (root / "secrets").mkdir()
    for name in SHIPPED_SECRETS:
        shutil.copy2(REPO_INVENTORIES / "secrets" / name, root / "secrets" / name)
    before = os.environ.get(INVENTORIES_VAR)
    os.environ[INVENTORIES_VAR] = str(root)
    yield root
    if before is None:
        os.environ.pop(INVENTORIES_VAR, None)
    else:
        os.environ[INVENTORIES_VAR] = before
