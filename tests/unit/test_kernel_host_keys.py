"""The kernel tier's nodes get SSH host keys made on the host (fabfile/lab/kernel.py
_seed_host_keys): under TCG on a busy machine the guest's own `ssh-keygen -A` outlasted a
node's boot budget."""
from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.unit


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="no ssh-keygen")
def test_host_keys_made_once_per_node_and_kept(tmp_path):
    from fabfile.lab.kernel import _seed_host_keys
    ks = SimpleNamespace(share=tmp_path, lab=SimpleNamespace(nodes=[SimpleNamespace(name="node1"),
                                                                    SimpleNamespace(name="node2")]))
    _seed_host_keys(ks)
    for node in ("node1", "node2"):
        keys = sorted(p.name for p in (tmp_path / "hostkeys" / node).iterdir())
        assert "ssh_host_ed25519_key" in keys and "ssh_host_ed25519_key.pub" in keys
        assert (tmp_path / "hostkeys" / node / "ssh_host_ed25519_key").stat().st_mode & 0o077 == 0
    before = (tmp_path / "hostkeys" / "node1" / "ssh_host_ed25519_key").read_text()
    _seed_host_keys(ks)                      # kept: known_hosts of earlier boots stay true
    assert (tmp_path / "hostkeys" / "node1" / "ssh_host_ed25519_key").read_text() == before
