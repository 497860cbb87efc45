"""The docs say what the code does: the inventory reference is the schema's, the README's task
table is `inv --list`'s, and no merge left its conflict markers behind."""
from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
README_MAX_LINES = 300

# built here so that this file never holds a marker itself
CONFLICT_MARKERS = re.compile("^(" + "<" * 7 + " |" + "=" * 7 + "$|" + ">" * 7 + " )")


def _generator():
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen-docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_inventory_reference_matches_the_schema():
    gen = _generator()
    for path, wanted in gen.render().items():
        current = path.read_text() if path.exists() else ""
        assert current == wanted, (f"{path.relative_to(ROOT)} differs from fabfile/model/schema.py — "
                                   f"run: {gen.REGENERATE}")


def test_json_schema_is_for_editors():
    schema = json.loads((ROOT / "docs" / "inventory.schema.json").read_text())
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert {"cluster", "nodes"} <= set(schema["required"])
    # none only for directors behind a router (vip_managed_by: external): a rule of the model, not the schema
    assert "vrrp_instances" in schema["properties"]


def test_every_key_is_described():
    """The reference is a manual: each key of every section (the lab's too) says what it does."""
    gen = _generator()
    bare = [f"{model.__name__}.{name}" for model, _ in gen.sections()
            for name, field in model.model_fields.items() if not gen.description_of(field)]
    assert not bare, "keys without Field(description=...): " + ", ".join(bare)


def test_the_lab_sections_are_documented_from_the_registered_models():
    """`lab:` is typed Any in the product's schema (the lab is an extension): the reference and the
    editors' JSON Schema still show the models fabfile.model.extensions validates it with."""
    from fabfile.model import extensions
    gen = _generator()
    documented = {model for model, _ in gen.sections()}
    assert {extensions.section_model("inventory"), extensions.section_model("node")} <= documented
    schema = json.loads((ROOT / "docs" / "inventory.schema.json").read_text())
    assert schema["properties"]["lab"]["anyOf"][0] == {"$ref": "#/$defs/Lab"}
    assert schema["$defs"]["Node"]["properties"]["lab"]["anyOf"][0] == {"$ref": "#/$defs/NodeLab"}
    assert schema["$defs"]["Lab"]["properties"]["kernel"]["description"]


def test_the_ssh_defaults_in_code_are_in_the_reference():
    """What applies when ssh.connect_timeout or ssh.retries is unset lives in code (CONNECT_TIMEOUT,
    RETRIES, used by fabfile/infra/remote.py): the reference names those values."""
    from fabfile.model.schema import CONNECT_TIMEOUT, RETRIES, SSH
    assert f"unset: {CONNECT_TIMEOUT:g} s" in SSH.model_fields["connect_timeout"].description
    assert f"unset: {RETRIES}" in SSH.model_fields["retries"].description


def _tracked_text_files() -> list[Path]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: no list of tracked files")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / name for name in out.decode().split("\0") if name]


def test_no_merge_conflict_markers():
    found = []
    for path in _tracked_text_files():
        if not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data:
            continue    # binary
        for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if CONFLICT_MARKERS.match(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line[:40]}")
    assert not found, "merge-conflict markers left in:\n" + "\n".join(found)


def test_readme_is_short():
    lines = len(README.read_text().splitlines())
    assert lines < README_MAX_LINES, (f"README.md has {lines} lines (under {README_MAX_LINES}): "
                                      "move long sections to docs/")


def _listed_tasks(capsys) -> set[str]:
    """Every task `inv --list` shows: Invoke's own program on the namespace tasks.py exposes (in this
    process: a subprocess would pay the interpreter's and the imports' start-up again)."""
    from invoke import Program

    from fabfile.tasks import namespace
    capsys.readouterr()
    Program(namespace=namespace, name="lbtk", binary="inv").run(["inv", "--list", "--list-format=json"],
                                                               exit=False)
    out = capsys.readouterr().out
    names = set()

    def walk(collection: dict, prefix: str) -> None:
        names.update(prefix + task["name"] for task in collection["tasks"])
        for sub in collection["collections"]:
            walk(sub, prefix + sub["name"] + ".")

    walk(json.loads(out), "")
    return names


def _readme_task_table() -> list[str]:
    """The first cell's task of each row of the README's task table (`| `inv NAME ...` | ... |`)."""
    text = README.read_text()
    section = text.split("\n## Tasks\n", 1)
    assert len(section) == 2, "README.md has no '## Tasks' section"
    rows = []
    for line in section[1].split("\n## ", 1)[0].splitlines():
        match = re.match(r"\|\s*`inv ([\w.-]+)", line)
        if match:
            rows.append(match.group(1))
    return rows


def test_readme_task_table_is_the_task_list(capsys):
    rows = _readme_task_table()
    assert len(rows) == len(set(rows)), f"tasks listed twice: {sorted({r for r in rows if rows.count(r) > 1})}"
    listed = _listed_tasks(capsys)
    assert not listed - set(rows), f"README.md's task table lacks: {sorted(listed - set(rows))}"
    assert not set(rows) - listed, f"README.md's task table names tasks inv --list lacks: {sorted(set(rows) - listed)}"


def test_readme_inventory_example_is_valid():
    """The inventory at a glance is one the schema accepts, read as inventories are (strict YAML: no
    example that a user's copy would fail)."""
    from fabfile.model.loading import parse, read_yaml
    section = README.read_text().split("\n## The inventory at a glance\n", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    parse(read_yaml(block), "README.md")


def test_relative_links_resolve():
    broken = []
    for page in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" not in target and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, "links to nothing:\n" + "\n".join(broken)
