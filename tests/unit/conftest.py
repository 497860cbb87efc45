"""The unit tier never writes into the repository's inventories/: every test (and every `inv` it
runs) sees a copy of them in a temporary directory, through $LBTK_INVENTORIES. Secrets the lab
inventories generate on first use and the clone's .state/ land there.

Secret files are refused when group or others may read them (fabfile/model/secrets.py), and git
checks every file out 0644: the committed ones (the seed's public demo secret, the broken
inventories' fixtures) are made 0600 before any test reads them, as a user's `chmod 600` would."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from fabfile.model.loading import INVENTORIES_VAR

ROOT = Path(__file__).resolve().parents[2]
REPO_INVENTORIES = ROOT / "inventories"
SHIPPED_SECRETS = ("README.md", "example.auth_pass")   # what the repository ships in secrets/
COMMITTED_SECRETS = [REPO_INVENTORIES / "secrets/example.auth_pass",
                     *(ROOT / "tests/inventories/broken/secrets").glob("*.auth_pass")]
OPEN_SECRET = ROOT / "tests/inventories/broken/secrets/open_to_others.secret"   # the refusal's own case

for p in COMMITTED_SECRETS:      # at import: before any test module is collected
    if p.is_file():
        p.chmod(0o600)
OPEN_SECRET.chmod(0o644)         # whatever the umask made of it


@pytest.fixture(scope="session", autouse=True)
def inventories_copy(tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo")
    (repo / "tests").symlink_to(ROOT / "tests")   # broken inventories name ../tests/...
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
