"""The compiled-template cache (fabfile/infra/template_cache.py): used when the directory is the
user's alone, refused otherwise, and never changes what a template renders."""
import os

import pytest

from fabfile.core import render
from fabfile.core.render import ASSUMED, render_node
from fabfile.infra import template_cache
from fabfile.model.context import load_env


@pytest.fixture
def cache_env(tmp_path, monkeypatch):
    monkeypatch.setenv("LBTK_CACHE_DIR", str(tmp_path / "c"))
    return tmp_path / "c" / template_cache.SUBDIR


def test_the_directory_is_made_private(cache_env):
    assert template_cache.user_cache() is not None
    assert oct(cache_env.stat().st_mode & 0o777) == "0o700"


def test_an_empty_setting_turns_it_off(monkeypatch):
    monkeypatch.setenv("LBTK_CACHE_DIR", "")
    assert template_cache.cache_dir() is None and template_cache.user_cache() is None


def test_a_directory_others_may_write_is_not_used(cache_env):
    cache_env.mkdir(parents=True)
    cache_env.chmod(0o770)
    assert template_cache.user_cache() is None


def test_a_symlink_is_not_followed(cache_env, tmp_path):
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    cache_env.parent.mkdir()
    os.symlink(tmp_path / "elsewhere", cache_env)
    assert template_cache.user_cache() is None


def test_a_cached_render_is_the_same_render(cache_env, monkeypatch):
    """Compiled once into the cache, then loaded from it by a new environment: the same files."""
    e = load_env("lab")
    node = e.inv.nodes[0].name
    plain = render_node(e.inv, node, e.secrets, ASSUMED)
    for _ in range(2):                       # the first fills the cache, the second reads it
        monkeypatch.setattr(render, "_envs", {})
        monkeypatch.setattr(render, "_rendered", {})
        monkeypatch.setattr(render, "bytecode_cache_factory", template_cache.user_cache)
        assert render_node(e.inv, node, e.secrets, ASSUMED) == plain
    assert any(cache_env.iterdir())
