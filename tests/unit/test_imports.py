"""Every module under fabfile/ imports on its own, in a fresh interpreter.

A module that only works because some other module happened to be imported first (a circular
import resolved by luck, a missing `import`, a name another module monkey-patches in) breaks the
first time a task or a test imports it alone. Each module is imported by its own child
process that has no fabfile module loaded (see FORKER), so the whole check takes a few seconds:
the children are forked from one interpreter that has loaded the libraries (stdlib and third
party) the package pulls in, never a fabfile module, so each child pays only for fabfile's code.

fabfile/lab/guest/ holds what runs INSIDE the kernel tier's VM: guest.sh and init are shell
scripts (not Python), and nodes.py is a module run there as `python3 -m fabfile.lab.guest.nodes`
(its work is behind `if __name__ == "__main__"`), with the VM's bare python3 — no virtualenv. So the
guest's modules are imported too, but with `-S` (no site-packages): they must need the stdlib only.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "fabfile"
GUEST = PKG / "lab" / "guest"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(under: Path, skip: Path | None = None) -> list[str]:
    out = []
    for p in sorted(under.rglob("*.py")):
        if "__pycache__" in p.parts or (skip is not None and skip in p.parents):
            continue
        out.append(module_name(p))
    return out


MODULES = modules(PKG, skip=GUEST)
GUEST_MODULES = modules(GUEST)


# One fresh interpreter loads the libraries the package uses (never a fabfile module), then forks
# one child per module: each child starts with no fabfile module imported, exactly as
# `python -c "import X"` would, without paying the interpreter and library start-up 120 times.
# Which libraries: a scout child imports every module and names every non-fabfile module that
# came with them (in their import order); the forker loads those, then checks no fabfile module
# came along.
FORKER = r"""
import os, sys, traceback
def ours(m):
    return m == "fabfile" or m.startswith("fabfile.")
r, w = os.pipe()
if os.fork() == 0:
    os.close(r)
    for mod in sys.argv[1:]:
        try:
            __import__(mod)
        except BaseException:
            pass
    os.write(w, "\n".join(m for m, v in list(sys.modules.items())
                          if v is not None and not ours(m) and m != "__main__").encode())
    os._exit(0)
os.close(w)
libs = b""
while chunk := os.read(r, 65536):
    libs += chunk
os.close(r)
os.wait()
for lib in libs.decode().split():
    try:
        __import__(lib)
    except BaseException:
        pass
assert not any(ours(m) for m in sys.modules)
for mod in os.environ.get("LBTK_IMPORT_BASE", "").split():    # the bottom layers, already checked alone
    __import__(mod)
# Importing a.b.c alone first imports a, then a.b, each exactly as importing it alone would: a
# child that got a.b.c reports the packages it completed on the way, and those need no child of
# their own (packages go last, so most are covered that way).
def parents(mod):
    parts = mod.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]
todo = sorted(sys.argv[1:], key=lambda m: any(p.startswith(m + ".") for p in sys.argv[1:]))
running, width = {}, 4                                 # children at once (each < 3000 bytes of output)
while todo or running:
    while todo and len(running) < width:
        mod = todo.pop(0)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                __import__(mod)
                code, err = 0, ""
            except BaseException:
                code, err = 1, traceback.format_exc()[-3000:]
            done = [p for p in parents(mod) if p in sys.modules]
            os.write(w, (" ".join(done) + "\n" + err).encode())
            os._exit(code)
        os.close(w)
        running[pid] = (mod, r)
    pid, status = os.wait()
    mod, r = running.pop(pid)
    out = b""
    while chunk := os.read(r, 65536):
        out += chunk
    os.close(r)
    done, _, err = out.decode(errors="replace").partition("\n")
    print(repr((mod, os.waitstatus_to_exitcode(status), err)), flush=True)
    for p in done.split():
        if p in todo:
            todo.remove(p)
            print(repr((p, 0, "")), flush=True)
"""


def _import_all(mods: list[str], *flags: str, base: list[str] = ()) -> dict[str, subprocess.CompletedProcess]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["LBTK_IMPORT_BASE"] = " ".join(base)
    r = subprocess.run([sys.executable, *flags, "-c", FORKER, *mods], cwd=ROOT, capture_output=True,
                       text=True, timeout=300, env=env)
    out = {}
    import ast
    for line in r.stdout.splitlines():
        mod, code, err = ast.literal_eval(line)
        out[mod] = subprocess.CompletedProcess([mod], code, "", err)
    for mod in mods:   # the forker itself died: every module not reported fails with its stderr
        out.setdefault(mod, subprocess.CompletedProcess([mod], 99, "", r.stderr[-3000:]))
    return out


# The bottom layers (the package itself, its shared terminal and errors, parsers, model) are
# imported alone from a clean interpreter. Every other module is imported alone from one that has
# already loaded those: the same check, because tests/unit/test_layers.py holds that no bottom-layer
# module imports an upper one, so no upper module can sit in an import cycle with them, and loading
# them first cannot change how an upper module's import resolves. It saves loading the model (the
# pydantic classes: ~0.15 s) in each of ~100 children.
BASE_PACKAGES = ("fabfile.parsers", "fabfile.model")
BASE = [m for m in MODULES if m in ("fabfile", "fabfile.terminal", "fabfile.errors")
        or any(m == p or m.startswith(p + ".") for p in BASE_PACKAGES)]


@pytest.fixture(scope="module")
def imported():
    return {**_import_all(BASE), **_import_all([m for m in MODULES if m not in BASE], base=BASE)}


def test_the_base_layers_import_nothing_above_them():
    """What makes the warm start sound: loading the base layers loads no other fabfile module."""
    code = ("import sys\n" + "".join(f"import {m}\n" for m in BASE)
            + "print(' '.join(m for m in sys.modules if m.startswith('fabfile')))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, env=env)
    assert set(out.stdout.split()) <= set(BASE), sorted(set(out.stdout.split()) - set(BASE))


def test_the_walk_finds_every_package():
    """The walk is not silently empty or missing a subpackage."""
    for pkg in ("fabfile", "fabfile.tasks", "fabfile.views", "fabfile.parsers", "fabfile.core.render",
                "fabfile.lab", "fabfile.tasks.common", "fabfile.infra.observe", "fabfile.infra.remote"):
        assert pkg in MODULES, pkg
    assert not any(m.startswith("fabfile.lab.guest") for m in MODULES)
    # every subdirectory holding Python is a package (an __init__.py), or `import` would not find it
    for d in {p.parent for p in PKG.rglob("*.py") if "__pycache__" not in p.parts}:
        assert (d / "__init__.py").exists(), f"{d.relative_to(ROOT)} has .py files but no __init__.py"


@pytest.mark.xdist_group("imports")      # one worker builds `imported` (pyproject.toml: --dist loadgroup)
@pytest.mark.parametrize("mod", MODULES)
def test_module_imports_alone(imported, mod):
    r = imported[mod]
    assert r.returncode == 0, f"`python -c 'import {mod}'` exited {r.returncode}:\n{r.stderr[-3000:]}"
    assert "Traceback" not in r.stderr, r.stderr[-3000:]


def test_guest_modules_are_scripts_or_guarded_modules():
    """What fabfile/lab/guest/ holds: Python modules whose work is behind a __main__ guard, and
    non-Python scripts. Importing a guest module must not start anything."""
    assert GUEST_MODULES, "fabfile/lab/guest/ has no .py files any more: update this test"
    for p in GUEST.glob("*.py"):
        if p.name != "__init__.py":
            assert 'if __name__ == "__main__":' in p.read_text(), f"{p.relative_to(ROOT)} runs on import"


@pytest.mark.parametrize("mod", GUEST_MODULES)
def test_guest_module_imports_with_the_stdlib_only(mod):
    """-S: no site-packages, as in the VM, where the host's python3 runs over 9p without the venv."""
    r = _import_all([mod], "-S")[mod]
    assert r.returncode == 0, f"`python -S -c 'import {mod}'` exited {r.returncode}:\n{r.stderr[-3000:]}"


# Issue 14: start-up imports only what the task needs. Loading the task tree (what every `inv ...`
# does before running anything) must not import the deploy engine, the drills, the lab's host-side
# code or the config checker: those load inside the tasks that use them. (The lab's light parts,
# its inventory section and hooks, do load: every inventory may have a `lab:` section.)
NOT_AT_STARTUP = ("fabfile.ops.deploy", "fabfile.ops.apply", "fabfile.ops.settle", "fabfile.ops.drill", "fabfile.ops.watch",
                  "fabfile.ops.rollback", "fabfile.infra.confcheck", "fabfile.lab.nspawn", "fabfile.lab.rootfs",
                  "fabfile.lab.kernel", "fabfile.progress",
                  "fabfile.views.deploy", "fabfile.views.failover", "fabfile.views.failover_timeline",
                  "fabfile.views.watch", "fabfile.ops.alerts", "fabfile.views.alerts", "fabfile.infra.prometheus")


def test_the_task_tree_loads_without_the_engines_it_does_not_run():
    code = ("import sys, tasks; print(' '.join(m for m in sys.modules if m.startswith('fabfile')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    assert "fabfile.tasks.deploy" in loaded and "fabfile.tasks.watch" in loaded
    assert not loaded & set(NOT_AT_STARTUP), sorted(loaded & set(NOT_AT_STARTUP))
