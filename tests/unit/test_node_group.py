"""Connections are opened and closed in one place: a node group (`with remote.nodes(env, names) as
group:`, fabfile/infra/remote.py). No module outside fabfile/infra/, and no test, makes a link
itself or closes a list of them: every call of the remote module is read (ast) and the helpers
that did (connect, close, open_all, connect_gateway) must not come back, nor their private
successors be reached from outside."""
from __future__ import annotations

import ast

from tests.source_trees import parse
from pathlib import Path

from fabfile.infra import remote

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "fabfile" / "infra"
GONE = {"connect", "close", "open_all", "connect_gateway"}    # dropped from remote's API
PRIVATE = {"_link", "_gateway_link"}                          # only a NodeGroup makes links


def sources() -> list[Path]:
    files = [*(ROOT / "fabfile").rglob("*.py"), *(ROOT / "tests").rglob("*.py"), ROOT / "tasks.py"]
    return [p for p in files if INFRA not in p.parents and "guest" not in p.parts]


def reaches(path: Path) -> list[str]:
    """`remote.NAME` and `from fabfile.infra.remote import NAME` for the names above, as 'file:line NAME'."""
    tree = parse(path.read_text(), str(path))
    where = path.relative_to(ROOT) if ROOT in path.parents else path.name
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "remote" \
                and node.attr in GONE | PRIVATE:
            out.append(f"{where}:{node.lineno} remote.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "fabfile.infra.remote":
            out += [f"{where}:{node.lineno} import {a.name}" for a in node.names if a.name in GONE | PRIVATE]
    return out


def test_nothing_outside_infra_opens_or_closes_a_connection():
    found = [hit for p in sources() for hit in reaches(p)]
    assert not found, "use `with remote.nodes(env, names) as group:` (group.open(), group.bastion()):\n" \
        + "\n".join(found)


def test_the_helpers_are_gone_from_remotes_api():
    assert not [name for name in GONE if hasattr(remote, name)]


def test_the_check_sees_a_call_it_must_refuse(tmp_path):
    """The AST walk is not vacuous: each way of reaching a helper is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("from fabfile.infra import remote\nfrom fabfile.infra.remote import _link\n"
                   "c = remote.connect(inv, n)\nremote.close([c])\nremote.open_all([c])\n"
                   "with remote.nodes(env) as group:\n    group.open()\n")
    assert sorted(h.split(" ", 1)[1] for h in reaches(bad)) == [
        "import _link", "remote.close", "remote.connect", "remote.open_all"]
