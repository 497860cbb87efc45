"""Which of fabfile's packages may import which: every `import` under fabfile/ is read (ast: module
level, inside functions and under TYPE_CHECKING alike) and checked against ALLOWED below.

The layers, bottom up (a layer imports only what is below it, plus itself):

    parsers     one module per tool output; imports nothing of fabfile
    errors      error kinds and the one-line funnel (a ParseError is one of them)
    model       the inventory (schema, loading, secrets, context) and the extension hook
                (model/extensions.py: how the product reaches the lab without importing it)
    output, progress   shared by everything that prints (masking reads model.secrets);
                neither imports the other
    infra       the shell to the nodes: remote, facts, observe, confcheck, runinfo, trace (-v;
                shows commands through terminal's `visible`)
    core        pure: model, parsers, errors and the typed observed state `fabfile.infra.facts`
                only, never remote or observe (so nothing in core can open a connection)
    ops         what touches nodes: core, infra, model, parsers, errors, output, progress
    views       results -> tables: output, core, model, parsers, infra.facts, and from ops only
                result types and constants (a class or a NAME IN CAPITALS: `from fabfile.ops.verify
                import Report`), never a module or a function of ops, which would touch nodes
    tasks       flags in, one call, a view out: anything (the package face too: its __version__)
    lab         the local lab, an extension: model, infra, parsers, errors, output. Nothing imports
                it but tasks (which also registers its hooks, fabfile/lab/hooks.py); the product
                reaches it through fabfile.model.extensions only

`fabfile/__init__.py` imports nothing. fabfile/'s top level holds only the package face and the
shared modules (terminal, errors, output, progress); everything else lives in a layer's package.
fabfile/lab/guest/ is not checked: it runs inside the kernel tier's VM on the stdlib alone
(tests/unit/test_imports.py).
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from tests.source_trees import parse

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "fabfile"
GUEST = PKG / "lab" / "guest"

BELOW_OPS = {"core", "infra", "model", "parsers", "errors", "output", "progress"}
ALLOWED: dict[str, set[str]] = {
    "fabfile": set(),
    "terminal": set(),
    "parsers": set(),
    "errors": {"parsers", "terminal"},
    "model": {"parsers", "errors"},
    "output": {"model", "parsers", "errors", "terminal"},
    "progress": {"model", "parsers", "errors", "terminal", "output"},
    "infra": {"model", "parsers", "errors", "terminal"},
    "core": {"model", "parsers", "errors", "infra.facts"},
    "ops": BELOW_OPS,
    "views": {"output", "core", "model", "parsers", "infra.facts", "ops:types"},
    "tasks": BELOW_OPS | {"views", "ops", "lab", "fabfile"},      # fabfile: its __version__
    "lab": {"model", "infra", "parsers", "errors", "output"},
}
TOP_LEVEL = {"__init__.py", "errors.py", "output.py", "progress.py", "terminal.py"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(dotted: str) -> bool:
    p = ROOT.joinpath(*dotted.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def layer_of(dotted: str) -> str:
    """fabfile.ops.deploy -> ops; fabfile.errors -> errors; fabfile -> fabfile."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else "fabfile"


def imports_of(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, imported fabfile module, names taken from it) for every import in the file."""
    mod = module_name(path)
    pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out = []
    for node in ast.walk(parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            names = [a.name for a in node.names]
            subs = [n for n in names if is_module(f"{base}.{n}")]    # `from fabfile import output`
            out += [(node.lineno, f"{base}.{n}", []) for n in subs]
            rest = [n for n in names if n not in subs]
            if rest:
                out.append((node.lineno, base, rest))
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
              in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            out.append((node.lineno, node.args[0].value, []))
    return [(line, target, names) for line, target, names in out if target.split(".")[0] == "fabfile"]


def is_result_type(module: str, name: str) -> bool:
    """What views may take from ops: a class, or a constant (NAME IN CAPITALS)."""
    value = getattr(importlib.import_module(module), name)
    return isinstance(value, type) or name.isupper()


def violation(importer: str, target: str, names: list[str]) -> str | None:
    """Why `importer` may not import `target` (None: it may)."""
    src, dst = layer_of(importer), layer_of(target)
    if src == dst and src != "fabfile":
        return None
    allowed = ALLOWED[src]
    sub = ".".join(target.split(".")[1:3])        # infra.facts
    if dst in allowed or sub in allowed:
        return None
    if "ops:types" in allowed and dst == "ops" and names:
        bad = [n for n in names if not is_result_type(target, n)]
        if not bad:
            return None
        return (f"views take only result types and constants from ops, and {', '.join(bad)} "
                f"{'is' if len(bad) == 1 else 'are'} neither")
    shown = ", ".join(sorted(a.replace("ops:types", "ops (types)") for a in allowed)) or "nothing of fabfile"
    return f"{src} may import only {shown}"


def source_files() -> list[Path]:
    return [p for p in sorted(PKG.rglob("*.py")) if "__pycache__" not in p.parts and GUEST not in p.parents]


def test_every_package_has_a_layer():
    """A new package under fabfile/ gets its place in ALLOWED (and this docstring) first."""
    packages = {p.name for p in PKG.iterdir() if (p / "__init__.py").is_file()}
    assert packages <= set(ALLOWED), f"fabfile packages with no layer in {__file__}: {sorted(packages - set(ALLOWED))}"


def test_only_the_shared_modules_sit_at_the_top_level():
    top = {p.name for p in PKG.glob("*.py")}
    assert top <= TOP_LEVEL, (f"fabfile/ holds {', '.join(sorted(top - TOP_LEVEL))} at its top level: only "
                              f"{', '.join(sorted(TOP_LEVEL))} live there; move it into its layer's package")


def test_imports_go_down_the_layers():
    problems = []
    for path in source_files():
        importer = module_name(path)
        for line, target, names in imports_of(path):
            why = violation(importer, target, names)
            if why:
                taken = f" ({', '.join(names)})" if names else ""
                problems.append(f"{path.relative_to(ROOT)}:{line}: {importer} imports {target}{taken}: {why}")
    assert not problems, "imports against the layers (tests/unit/test_layers.py says which may import which):\n" \
        + "\n".join(problems)


def test_the_walk_sees_every_kind_of_import():
    """The checker itself: each form of import is found, and a bad one is named."""
    seen = {t for _, t, _ in imports_of(PKG / "tasks" / "__init__.py")}
    assert "fabfile.lab.hooks" in seen and "fabfile.tasks.core" in seen         # `import a.b`, `from pkg import mod`
    seen = {(t, tuple(n)) for _, t, n in imports_of(PKG / "views" / "verify.py")}
    assert ("fabfile.ops.verify", ("Report",)) in seen and ("fabfile.output", ()) in seen
    assert any(t == "fabfile.model.schema" for _, t, _ in imports_of(PKG / "model" / "extensions.py"))  # TYPE_CHECKING
    assert violation("fabfile.core.plan", "fabfile.infra.remote", []) == \
        "core may import only errors, infra.facts, model, parsers"
    assert violation("fabfile.core.plan", "fabfile.infra.facts", ["NodeState"]) is None
    assert violation("fabfile.model.loading", "fabfile.lab.hooks", []) == "model may import only errors, parsers"
    assert violation("fabfile.views.verify", "fabfile.ops.verify", ["verify"]).startswith(
        "views take only result types and constants from ops, and verify is neither")
    assert violation("fabfile.views.deploy", "fabfile.ops.deploy", ["REQUIRED", "Outcome"]) is None
    assert violation("fabfile.views.deploy", "fabfile.ops.deploy", []) is not None     # the whole module
    assert violation("fabfile.parsers.ip_addr", "fabfile.errors", []) == "parsers may import only nothing of fabfile"
    assert violation("fabfile", "fabfile.tasks", []) is not None


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_lab_is_imported_by_tasks_only(layer):
    """The product reaches the lab through fabfile.model.extensions; only the task layer imports it."""
    assert ("lab" in ALLOWED[layer]) == (layer == "tasks")
