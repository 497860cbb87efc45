"""The test tiers, one marker each, given by directory: `pytest -m unit` runs tests/unit and nothing
else (likewise `-m lab`, `-m cluster`, `-m kernel`). The markers are declared in pyproject.toml.

A tier's directory that `-m` can match no test of is not even collected (its modules are not
imported): `-m unit` does not pay for importing the lab and kernel tests, `-m kernel` not for the
unit tier's Hypothesis.

Every tier loads lab inventories: the lab's hooks (fabfile.model.extensions) are registered here as
the task layer does when `inv` starts.

No tier writes into the repository's inventories/: from pytest_configure on (so collection too),
every test, and every `inv` it runs (a subprocess inherits the variable), sees a copy of them in a
temporary directory through $LBTK_INVENTORIES (fabfile.model.loading.inventory_dir()). Variant
inventories, the secrets lab inventories generate on first use and the clone's .state/ land
there, and go with it. One copy a process: each pytest-xdist worker has its own. A session
that changed the repository's inventories/ anyway fails, naming the files.

The live tiers (lab, cluster, kernel) drive labs that are up already, deployed from this checkout
with its local secrets (gitignored: lab.auth_pass, lab-bastion.sudo ...): a session holding their
tests starts from a copy of those and of .state/ too, read, never written back. A secret first
generated in a session dies with it: a lab that outlives the session then holds a secret no later
session has (a deploy is refused as secret drift); `inv deploy --env lab` from the checkout keeps
the lab's secret in the checkout, as an operator's run would.

Secret files are refused when group or others may read them (fabfile/model/secrets.py), and git
checks every file out 0644: the committed ones (the seed's public demo secret, the broken
inventories' fixtures) are made 0600 before any test reads them, as a user's `chmod 600` would."""
from __future__ import annotations

import compileall
import gc
import itertools
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

import fabfile.lab.hooks  # noqa: F401  (registers the lab's hooks)
from fabfile.model.loading import INVENTORIES_VAR

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
TIERS = ("unit", "lab", "cluster", "kernel")     # a directory of tests/ each, and its marker
LIVE_TIERS = ("lab", "cluster", "kernel")        # tiers that drive labs deployed from this checkout

REPO_INVENTORIES = ROOT / "inventories"          # read here only: copied, never written
SHIPPED_SECRETS = ("README.md", "example.auth_pass")   # what the repository ships in secrets/
COMMITTED_SECRETS = [REPO_INVENTORIES / "secrets/example.auth_pass",
                     *(TESTS / "inventories/broken/secrets").glob("*.auth_pass")]
OPEN_SECRET = TESTS / "inventories/broken/secrets/open_to_others.secret"   # the refusal's own case

for _p in COMMITTED_SECRETS:     # at import: before any test module is collected
    if _p.is_file():
        _p.chmod(0o600)
if OPEN_SECRET.is_file():
    OPEN_SECRET.chmod(0o644)     # whatever the umask made of it


def copy_inventories(repo: Path) -> Path:
    """repo/inventories: the repository's inventories and shipped secrets (not this checkout's
    generated ones, nor its .state/). repo/tests links to tests/: broken inventories name ../tests/..."""
    (repo / "tests").symlink_to(TESTS)
    root = repo / "inventories"
    root.mkdir()
    for p in REPO_INVENTORIES.glob("*.yaml"):
        shutil.copy2(p, root / p.name)
    (root / "secrets").mkdir(mode=0o700)
    for name in SHIPPED_SECRETS:
        shutil.copy2(REPO_INVENTORIES / "secrets" / name, root / "secrets" / name)
    return root


def add_checkout_state(root: Path) -> None:
    """This checkout's local secrets and .state/ into the copy (what its live labs were deployed
    with), where the copy has none of its own yet."""
    for sub in ("secrets", ".state"):
        src = REPO_INVENTORIES / sub
        if src.is_dir():
            shutil.copytree(src, root / sub, dirs_exist_ok=True,
                            ignore=lambda d, names: [n for n in names if (root / sub / n).exists()])


_COPY = pytest.StashKey[tuple]()      # (the temporary directory, $LBTK_INVENTORIES before it)


_BEFORE = pytest.StashKey[dict]()      # the repository's inventories/ as the session found it
_WROTE = pytest.StashKey[list]()       # what the session changed there


def repo_inventories_now() -> dict[str, tuple[int, int]]:
    """Every file under the repository's inventories/ (secrets/ and .state/ too): its size and mtime."""
    return {str(p.relative_to(REPO_INVENTORIES)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(REPO_INVENTORIES.rglob("*")) if p.is_file()}


def pytest_configure(config):
    if not hasattr(config, "workerinput") and not sys.dont_write_bytecode:
        # a fresh clone has no bytecode: compiled once here, not by every worker and every child
        # process of the import checks (tests/unit/test_imports.py) racing to write the same files
        compileall.compile_dir(ROOT / "fabfile", quiet=2)
        compileall.compile_file(ROOT / "tasks.py", quiet=2)
    work = Path(tempfile.mkdtemp(prefix="lbtk-inventories-"))
    config.stash[_COPY] = (work, os.environ.get(INVENTORIES_VAR))
    os.environ[INVENTORIES_VAR] = str(copy_inventories(work))
    # compiled templates (fabfile/infra/template_cache.py) go to the session's directory, not the
    # user's ~/.cache: the tasks and every `inv` the tests run use the cache as a user's run does
    os.environ.setdefault("LBTK_CACHE_DIR", str(work / "cache"))
    # connections are not kept between the tests' runs (fabfile/infra/keeper.py): each test sees a
    # run that connects, as it has since before the keeper; tests/cluster/test_keeper.py turns it on
    os.environ.setdefault("LBTK_CONTROL_PERSIST", "0")
    config.stash[_BEFORE] = repo_inventories_now()


def pytest_sessionfinish(session, exitstatus):
    """A test (or what it ran: bench/, a subprocess with an environment of its own) that wrote into
    the repository's inventories/ fails the session, naming the files. Once, in the process that
    saw the whole session (xdist's controller, or the only one)."""
    if hasattr(session.config, "workerinput") or _BEFORE not in session.config.stash:
        return
    before, now = session.config.stash[_BEFORE], repo_inventories_now()
    changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    if changed:
        session.config.stash[_WROTE] = changed
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if config.stash.get(_WROTE, None):
        terminalreporter.write_line(f"error: the tests wrote into the repository's inventories/ "
                                    f"({', '.join(config.stash[_WROTE])}): they must use "
                                    f"fabfile.model.loading.inventory_dir(), the session's copy", red=True)


def pytest_collection_finish(session):
    """Before the first test: a session with live-tier tests takes this checkout's secrets and .state/.
    What collection built (every module, every parametrized case) lives as long as the session, so
    it goes where the cyclic collector no longer walks it (gc.freeze): else each full collection
    during the tests, and pytest's five at the end, walk it again."""
    if {tier_of(item.path) for item in session.items} & set(LIVE_TIERS):
        add_checkout_state(Path(os.environ[INVENTORIES_VAR]))
    gc.collect()
    gc.freeze()


def pytest_unconfigure(config):
    work, before = config.stash.get(_COPY, (None, None))
    if work is None:
        return
    if before is None:
        os.environ.pop(INVENTORIES_VAR, None)
    else:
        os.environ[INVENTORIES_VAR] = before
    shutil.rmtree(work, ignore_errors=True)


def tier_of(path: Path) -> str | None:
    """The tier of a test file: the directory of tests/ it sits in (None: in no tier)."""
    try:
        parts = Path(path).resolve().relative_to(TESTS).parts
    except ValueError:
        return None
    return parts[0] if len(parts) > 1 and parts[0] in TIERS else None


def pytest_collection_modifyitems(config, items):
    for item in items:
        tier = tier_of(item.path)
        if tier is not None:
            item.add_marker(getattr(pytest.mark, tier))


def pytest_ignore_collect(collection_path, config):
    tier = tier_of(Path(collection_path) / "x") if Path(collection_path).is_dir() else None
    if tier is None or Path(collection_path).resolve() != TESTS / tier:
        return None
    return True if not may_select(config.getoption("markexpr") or "", tier) else None


def may_select(markexpr: str, tier: str) -> bool:
    """Can a test of `tier` (its tier marker, no other tier's, any other markers) match `-m markexpr`?
    True whenever in doubt: an expression this cannot read, too many names."""
    if not markexpr.strip():
        return True
    try:
        from _pytest.mark.expression import Expression     # pytest's own -m grammar
        expr = Expression.compile(markexpr)
    except Exception:  # noqa: BLE001 - pytest reports a bad expression itself, or its API moved
        return True
    if "(" in markexpr and "=" in markexpr:                # marker arguments: not read here
        return True
    names = sorted(set(re.findall(r"[\w:+\-.\[\]\\/]+", markexpr)) - {"and", "or", "not"} - set(TIERS))
    if len(names) > 10:
        return True
    for values in itertools.product((False, True), repeat=len(names)):
        others = dict(zip(names, values))
        if expr.evaluate(lambda name: name == tier or others.get(name, False)):
            return True
    return False
