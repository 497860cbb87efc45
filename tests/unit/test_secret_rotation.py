"""Secret rotation's orchestration (fabfile/ops/secret.py) without nodes: the deploy and the VRRP
wait are handed in, so a failure at each step is staged without monkeypatching."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fabfile.errors import LbtkError
from fabfile.model import secrets
from fabfile.model.loading import INVENTORIES_VAR, inventory_dir
from fabfile.ops.lock import LockError
from fabfile.ops.secret import PREV, rotate

@pytest.fixture
def lab_dir(tmp_path, monkeypatch):
    """inventories/ with lab.yaml alone and its secret file, through $LBTK_INVENTORIES."""
    shutil.copy2(inventory_dir() / "lab.yaml", tmp_path / "lab.yaml")   # the session's
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "lab.auth_pass").write_text("oldpass1\n")
    (tmp_path / "secrets" / "lab.auth_pass").chmod(0o600)      # a secret file others may read is refused
    monkeypatch.setenv(INVENTORIES_VAR, str(tmp_path))
    monkeypatch.delenv("LAB_VRRP_PASS", raising=False)
    return tmp_path / "secrets" / "lab.auth_pass"


def test_a_rotation_deploys_the_new_secret_and_masks_both(lab_dir):
    deployed, said = [], []
    with secrets.masking() as masker:
        rotate("lab", False, deploy=lambda e: deployed.append(e.secrets["VI_1"]),
               settle=lambda e: (True, "VRRP settled"), say=said.append)
    new = lab_dir.read_text().strip()
    assert deployed == [new] != ["oldpass1"]
    assert lab_dir.with_name(lab_dir.name + PREV).read_text().strip() == "oldpass1"
    assert masker.mask(f"{new} oldpass1") == f"{secrets.MASK} {secrets.MASK}"
    assert not any(new in line for line in said) and said[-1].startswith("VRRP secret rotated")


def test_a_rotation_that_does_not_settle_puts_the_old_secret_back_everywhere(lab_dir):
    deployed = []
    with pytest.raises(LbtkError, match="did not settle.*previous secret is back"):
        rotate("lab", False, deploy=lambda e: deployed.append(e.secrets["VI_1"]),
               settle=lambda e: (False, "VRRP not settled"))
    assert lab_dir.read_text().strip() == "oldpass1" and deployed[-1] == "oldpass1" and len(deployed) == 2


def test_a_held_lock_only_puts_the_file_back(lab_dir):
    deployed = []

    def locked(e):
        deployed.append(e)
        raise LockError("node1: deploy lock held by carol")
    with pytest.raises(LockError):
        rotate("lab", False, deploy=locked, settle=lambda e: (True, ""))
    assert lab_dir.read_text().strip() == "oldpass1" and len(deployed) == 1
