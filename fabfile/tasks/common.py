"""What every task shares: the --env default, flag checks, and the error funnel (one line + exit code).

Tasks only parse flags, call the core and print; `Env`, `load_env` and `select_nodes` live in
fabfile/model/context.py, the error types and exit codes in fabfile/errors.py.
"""
from __future__ import annotations

import functools
import os
import traceback

import invoke
from invoke import Exit

from fabfile.model import secrets
from fabfile.model.context import DEFAULT_ENV, Env, load_env, rel, select_nodes  # noqa: F401 (the tasks' imports)
from fabfile.errors import LbtkError, UsageError, debug_enabled, one_line, quiet_third_party_logging  # noqa: F401 (re-exported for tasks)

# what the task modules import from here (some only pass through)
__all__ = ["DEFAULT_ENV", "Env", "LbtkError", "UsageError", "load_env", "rel", "select_nodes", "one_line_errors",
           "node_env", "number", "check_format", "task", "SHORT_FLAGS", "WHOLE_NUMBERS"]

# A short flag means one thing on every task that has it, and a flag with no entry here has none:
# Invoke's automatic short flags gave `-f` to --format on most tasks and to --force on os-upgrade.
SHORT_FLAGS = {"env": "e", "node": "n", "format": "f", "json": "j", "check": "c"}
# Flags that take a whole number, on every task that has them: Invoke parses them (`--help` says
# INT, `--parallel x` is a usage error, exit 2) while the default stays None ("not given").
WHOLE_NUMBERS = {"parallel", "batch", "requests", "interval_ms", "lines", "limit", "count", "port"}


class Task(invoke.Task):
    """An Invoke task whose flags follow SHORT_FLAGS and WHOLE_NUMBERS instead of Invoke's guesses
    (a short flag from the first free letter, a type from the default value)."""

    def arg_opts(self, name, default, taken_names):
        self.auto_shortflags = False
        opts = super().arg_opts(name, default, taken_names)
        if name in SHORT_FLAGS:
            opts["names"] = [*opts["names"], SHORT_FLAGS[name]]
        if name in WHOLE_NUMBERS:
            opts["kind"] = int
        return opts


task = functools.partial(invoke.task, klass=Task)


def one_line_errors(fn):
    """Whatever the core raises ends as one line and a documented exit code (fabfile/errors.py),
    never a traceback; `inv --debug` (or LBTK_DEBUG=1) prints the traceback too."""
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        quiet_third_party_logging()
        keep_compiled_templates()
        # the task is one run: its secrets are masked in all it prints, this line included, and
        # forgotten when it ends (a task that calls another shares its run)
        with secrets.masking() as masker:
            try:
                return fn(*a, **kw)
            except Exit:
                raise
            except BrokenPipeError:  # `inv render | head`: the reader left, that is fine
                os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
                raise Exit(code=0) from None
            except (Exception, KeyboardInterrupt) as e:  # noqa: BLE001 - the funnel: every error, one line
                if debug_enabled():
                    traceback.print_exc()
                msg, code = one_line(e)
                raise Exit(masker.mask(msg), code=code) from None
    return wrapper


def keep_compiled_templates() -> None:
    """A command-line run keeps its compiled templates for the next (fabfile/infra/template_cache.py)."""
    from fabfile.core import render
    from fabfile.infra import template_cache
    render.bytecode_cache_factory = template_cache.user_cache


def node_env(env: str, node: str | None = None, quiet: bool = False, parallel=None,
             named: str | None = None) -> tuple[Env, list]:
    """Load --env for a task that touches nodes: caps concurrency (--parallel), picks --node, and
    names the inventory and its nodes on the first line (unless the output is JSON), so the
    environment is never a surprise. `named`: a node the task acts on without narrowing the run
    to it (isolate), refused like a bad --node before anything else is looked at."""
    from dataclasses import replace
    from fabfile import output
    from fabfile.model import extensions
    e = replace(load_env(env), parallel=number(parallel, "parallel", 0, int, 1) or None)
    nodes = select_nodes(e.inv, node)
    if named is not None:
        select_nodes(e.inv, named)
    extensions.before_connect(e.inv, e.name)      # the lab's network rule, before any node is touched
    if not quiet:
        output.say(f"{e.name} ({rel(e.path)}): {', '.join(n.name for n in nodes)}"
                   + (f" (of {len(e.inv.nodes)})" if len(nodes) != len(e.inv.nodes) else ""))
    return e, nodes


def number(value, flag: str, default: float, kind=int, least: float | None = None):
    """A numeric flag's value checked against its bounds: the command line's whole numbers arrive
    parsed (WHOLE_NUMBERS), seconds (--interval) and in-process callers' values as text."""
    if value is None or value == "":
        return default
    try:
        v = kind(value)
    except (TypeError, ValueError):
        raise UsageError(f"--{flag} {value}: not a {'whole ' if kind is int else ''}number") from None
    if least is not None and v < least:
        raise UsageError(f"--{flag} {value}: must be at least {least:g}")
    return v


def check_format(fmt: str | None) -> str | None:
    """--format is checked before any work, so a typo costs nothing."""
    from fabfile.output import FORMATS
    if fmt is not None and fmt not in FORMATS:
        raise UsageError(f"--format {fmt}: choose from {', '.join(FORMATS)}")
    return fmt


def fleet_names(env: str, node: str | None = None) -> list[str] | None:
    """The inventories `--env` names when it names several (A,B or a glob), else None; `--node`
    names a node of one inventory, so with several it is refused."""
    from fabfile.model.loading import env_names
    names = env_names(env)
    if names is not None and node:
        raise UsageError("--node names a node of one inventory: drop it, or give one --env")
    return names


def each_env(names: list[str], read):
    """A fleet's read-only task: `read(name)` for each inventory, in order. ([(name, result)],
    {name: why}): one cluster that cannot be read is its one line, not the fleet's end."""
    done, failed = [], {}
    for name in names:
        try:
            done.append((name, read(name)))
        except LbtkError as err:
            failed[name] = one_line(err)[0].removeprefix("error: ")
    return done, failed


def say_failed(failed: dict[str, str]) -> None:
    from fabfile import output
    for name, why in failed.items():
        output.say(f"{name}: not read: {why}")
