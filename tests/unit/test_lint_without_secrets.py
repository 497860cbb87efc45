"""Issue 29, lint without secrets: in a copy of the repository's inventories with no secrets/ at all
(a CI clone), `inv check` and `inv render` stand in a placeholder for each absent VRRP secret and
say so in one line on stderr; what deploys (or writes files with --out) still refuses."""
from __future__ import annotations

import json
import os
import shutil

import pytest

from fabfile.model.loading import inventory_dir
from tests.cli import run_inv

REPO_INVENTORIES = sorted(inventory_dir().glob("*.yaml"))      # the session's copy of the repository's
NOTE = "no VRRP secret for VI_1 (environment variable PROD_VRRP_PASS or file {d}/secrets/prod.auth_pass): " \
       "linted with a placeholder secret, which no deploy uses"


@pytest.fixture
def clone(tmp_path):
    """The repository's inventories, no secrets, no secret variables: (its directory, the environment)."""
    d = tmp_path / "inventories"
    d.mkdir()
    for p in REPO_INVENTORIES:
        shutil.copy2(p, d / p.name)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_VRRP_PASS")}
    return d, {**env, "LBTK_INVENTORIES": str(d), "LBTK_FORMAT": "plain"}


def test_check_passes_with_a_placeholder_and_says_so_once(clone):
    d, env = clone
    r = run_inv(["check", "--env", "prod.example"], env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr == f"note: {d}/prod.example.yaml: {NOTE.format(d=d)}\n"
    assert r.stdout.count("configuration is valid") == 3
    r = run_inv(["check", "--env", "prod.example", "--json"], env, timeout=120)
    assert r.returncode == 0 and json.loads(r.stdout)["placeholder_secrets"] == ["VI_1"]


@pytest.mark.parametrize("name", [p.stem for p in REPO_INVENTORIES])
def test_render_passes_on_every_inventory(clone, name):
    d, env = clone
    r = run_inv(["render", "--env", name], env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "lintonly" not in r.stdout                      # masked like any secret: auth_pass ********
    assert len(r.stderr.splitlines()) <= 1 and all(ln.startswith("note: ") for ln in r.stderr.splitlines())


def test_what_ships_still_needs_the_real_secret(clone, tmp_path):
    d, env = clone
    missing = (f"error: {d}/prod.example.yaml: vrrp_instances[0].authentication: the VRRP secret is missing — "
               f"set environment variable PROD_VRRP_PASS or file {d}/secrets/prod.auth_pass\n")
    for args in (["deploy", "--check"], ["render", "--out", str(tmp_path / "out")]):
        r = run_inv([*args, "--env", "prod.example"], env, timeout=60)
        assert (r.returncode, r.stderr) == (2, missing), args
    assert not (tmp_path / "out").exists()


def test_a_secret_that_is_there_but_unusable_is_still_refused(clone):
    d, env = clone
    r = run_inv(["check", "--env", "prod.example"], {**env, "PROD_VRRP_PASS": "ninebytes"}, timeout=60)
    assert r.returncode == 2 and "the secret is 9 bytes" in r.stderr
