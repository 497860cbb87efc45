"""No test reaches the repository's inventories/: every tier runs on the session's copy
($LBTK_INVENTORIES, made by tests/conftest.py), named through fabfile.model.loading.inventory_dir().

A path built from the repository root and "inventories" (`ROOT / "inventories" / ...`,
`f"{ROOT}/inventories/..."`, `Path(__file__).parents[2] / "inventories"`) is how a test came to
write variant inventories, generated secrets and .state/ into the checkout; the rule below finds
each one in tests/, and the allow-list holds the few reads that cannot be anything else."""
from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from tests.source_trees import parse

from fabfile.model.loading import INVENTORIES_VAR, inventory_dir

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
ROOT_NAMES = {"ROOT", "REPO", "REPO_ROOT"}     # what tests call the checkout (also TESTS.parent)

# (file under tests/, the expression as written): why it may name the repository's inventories/
ALLOWED = {
    ("conftest.py", 'ROOT / "inventories"'):
        "REPO_INVENTORIES: the source the session's copy is made from (read only, copied)",
}


def _rooted(node: ast.AST, here: Path) -> bool:
    """Is `node` the checkout's root: a name like ROOT, TESTS.parent, or Path(__file__) walked up
    to it (.parent, .parents[N]; `here` is the file's path)?"""
    if isinstance(node, ast.Name):
        return node.id in ROOT_NAMES
    if isinstance(node, ast.Attribute) and node.attr == "parent" and isinstance(node.value, ast.Name):
        return node.value.id == "TESTS"
    return _of_file(node, here) == ROOT


def _of_file(node: ast.AST, here: Path) -> Path | None:
    """The directory an expression of __file__ names (Path(__file__).resolve().parents[2]), else None."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Path" \
            and [ast.dump(a) for a in node.args] == [ast.dump(ast.Name("__file__", ast.Load()))]:
        return here
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("resolve", "absolute"):
        return _of_file(node.func.value, here)
    if isinstance(node, ast.Attribute) and node.attr == "parent":
        base = _of_file(node.value, here)
        return base.parent if base else None
    if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "parents"
            and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, int)):
        base = _of_file(node.value.value, here)
        return base.parents[node.slice.value] if base and node.slice.value < len(base.parents) else None
    return None


def _names_inventories(text: str) -> bool:
    return text.strip("/").split("/")[0] == "inventories"


def repo_inventory_paths(source: str, here: Path = TESTS / "unit" / "test_x.py") -> list[tuple[int, str]]:
    """(line, expression) of every path to the repository's inventories/ built in `source` (the file `here`)."""
    tree = parse(source)
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)
                and isinstance(node.right, ast.Constant) and isinstance(node.right.value, str)
                and _names_inventories(node.right.value)
                and not (isinstance(node.left, ast.BinOp) and isinstance(node.left.op, ast.Div))
                and _rooted(node.left, here)):           # ROOT / "tests" / "inventories" is tests/inventories
            found.append((node.lineno, ast.get_source_segment(source, node)))
        if isinstance(node, ast.JoinedStr):
            parts = node.values
            for before, after in zip(parts, parts[1:]):
                if (isinstance(before, ast.FormattedValue) and _rooted(before.value, here)
                        and isinstance(after, ast.Constant) and isinstance(after.value, str)
                        and after.value.startswith("/") and _names_inventories(after.value)):
                    found.append((node.lineno, ast.get_source_segment(source, node)))
    return sorted(set(found))


@pytest.mark.parametrize("code", [
    'ROOT / "inventories" / "lab.yaml"',
    'ROOT / "inventories/secrets/lab.auth_pass"',
    'INV_DIR = ROOT / "inventories"',
    'f"auth_pass_file: {ROOT}/inventories/secrets/x"',
    'Path(__file__).resolve().parents[2] / "inventories"',
    'TESTS.parent / "inventories" / ".state"',
    'Path(__file__).parent.parent.parent / "inventories"',
])
def test_the_rule_finds_a_path_into_the_repositorys_inventories(code):
    assert repo_inventory_paths(code), code


@pytest.mark.parametrize("code", [
    'ROOT / "tests/inventories/good"',
    'ROOT / "tests" / "inventories"',
    'TESTS / "inventories/broken/secrets"',
    'Path(__file__).resolve().parents[2] / "tests/inventories"',
    'Path(__file__).resolve().parents[1] / "inventories" / "good"',      # tests/inventories, from tests/unit
    'inventory_dir() / "lab.yaml"',
    'clone_a / "inventories" / "lab.yaml"',
    'f"{inventory_dir()}/secrets/lab.auth_pass"',
    '"inventories/x.yaml: nodes[0].host"',
])
def test_the_rule_leaves_other_paths_alone(code):
    assert repo_inventory_paths(code) == [], code


def test_no_test_builds_a_path_into_the_repositorys_inventories():
    found, used = [], set()
    for path in sorted(TESTS.rglob("*.py")):
        rel = str(path.relative_to(TESTS))
        for line, expr in repo_inventory_paths(path.read_text(), path):
            if (rel, expr) in ALLOWED:
                used.add((rel, expr))
            else:
                found.append(f"tests/{rel}:{line}: {expr} — use fabfile.model.loading.inventory_dir() "
                             "(the session's copy)")
    assert not found, "\n".join(found)
    assert used == set(ALLOWED), f"allow-list entries no longer needed: {sorted(set(ALLOWED) - used)}"


def test_the_session_runs_on_a_copy_outside_the_checkout():
    where = inventory_dir().resolve()
    assert os.environ.get(INVENTORIES_VAR) and where.is_relative_to(ROOT) is False
    assert (where / "lab.yaml").is_file() and (where / "secrets" / "example.auth_pass").is_file()
