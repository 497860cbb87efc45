"""lbtk's command line as an Invoke `Program`: the task tree with lbtk's own promises.

- Every usage error (an unknown task or flag, a flag without its value, `--parallel x`) is one
  line and exit 2, like every other bad input (Invoke's own Program exits 1, which the README
  documents as "the task ran and found a problem").
- `-v`/`--verbose` (or LBTK_VERBOSE=1) prints each remote command as it runs, secrets masked
  (fabfile/infra/trace.py).
- `--version` is lbtk's.
- Inventories (`lbtk` only): `--inventories DIR`, else $LBTK_INVENTORIES, else `./inventories` in
  the current directory: an installed lbtk has no repository to find them in. `inv` in the
  repository keeps reading the repository's (fabfile/model/loading.inventory_dir()).

`python -m fabfile.tasks` runs it; `inv` in the repository gets the same behaviour through
`adopt()`, which tasks.py calls once Invoke has loaded it (Invoke's own `--version` and bare
`--help` answer before any tasks.py is read: those stay Invoke's).
"""
from __future__ import annotations

import os
import re
import sys

import invoke
from invoke import Argument, Exit, ParseError

from fabfile import __version__
from fabfile.errors import EXIT_ERROR
from fabfile.model.loading import INVENTORIES_VAR

VERBOSE_VAR = "LBTK_VERBOSE"
# Invoke's core flags that mean something after a task name; any other there (`-r` is Invoke's
# --search-root, `-c` its --collection) would silently change nothing: a usage error instead
AFTER_A_TASK = {"help", "debug", "verbose"}


def verbose_flag() -> Argument:
    return Argument(names=("verbose", "v"), kind=bool, default=False,
                    help=f"print each remote command as it runs, secrets masked ({VERBOSE_VAR}=1)")


class Program(invoke.Program):
    """Invoke's Program, keeping lbtk's word on exit codes (see the module's docstring)."""

    command = "lbtk"        # how messages name the command (`inv` when adopted)

    finds_inventories = True   # --inventories DIR, else $LBTK_INVENTORIES, else ./inventories

    def core_args(self):
        inventories = Argument(names=("inventories",), default="",
                               help=f"the directory of NAME.yaml inventories (${INVENTORIES_VAR}, else ./inventories)")
        return [*super().core_args(), verbose_flag(), *([inventories] if self.finds_inventories else [])]

    def print_version(self) -> None:
        print(f"lbtk {__version__} (Invoke {invoke.__version__}, Python {sys.version.split()[0]})")

    def parse_tasks(self) -> None:
        if "verbose" not in self.core[0].args:    # adopted after Invoke parsed its core flags
            self.core[0].add_arg(verbose_flag())
        try:
            super().parse_tasks()
        except ParseError as e:
            raise self.usage_error(_reworded(str(e)), getattr(e.context, "name", None)) from None
        except ValueError as e:             # a WHOLE_NUMBERS flag given something else
            flag, value = self._flag_of(e)
            raise self.usage_error(f"{flag} {value}: not a whole number", self._task_before(flag)) from None
        late = [a for a in self.core_via_tasks.args.values() if a.got_value and a.name not in AFTER_A_TASK]
        if late and self.tasks:
            flag = next((t.partition("=")[0] for t in self.core.unparsed
                         if t.partition("=")[0] in {("-" if len(n) == 1 else "--") + n for n in late[0].names}),
                        f"--{late[0].name}")
            raise self.usage_error(f"unknown flag {flag} (Invoke's own --{late[0].name} goes before the task)",
                                   self._task_before(flag))

    def parse_cleanup(self) -> None:
        try:
            super().parse_cleanup()         # --help, --list
        except ParseError as e:             # `--help NOSUCHTASK`
            raise self.usage_error(_reworded(str(e)), None) from None
        except BrokenPipeError:             # `inv --list | head`: the reader left, that is fine
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise Exit(code=0) from None

    def update_config(self, merge: bool = True) -> None:
        super().update_config(merge)
        if self.args.verbose.value:
            os.environ[VERBOSE_VAR] = "1"    # read where commands run (fabfile/infra/trace.py), threads too
        if self.finds_inventories and "inventories" in self.args:    # where NAME.yaml lives
            chosen = self.args.inventories.value or os.environ.get(INVENTORIES_VAR) or "inventories"
            os.environ[INVENTORIES_VAR] = os.path.abspath(os.path.expanduser(chosen))

    def usage_error(self, message: str, task: str | None) -> Exit:
        fix = f"`{self.command} --help {task}` lists its flags" if task else f"`{self.command} --list` lists the tasks"
        return Exit(f"error: {message} — {fix}", code=EXIT_ERROR)

    def _flag_of(self, e: ValueError) -> tuple[str, str]:
        """Invoke's int() failed on a flag's value: (the flag, the value), the flag being the token
        before the value (or `--flag=value`)."""
        m = re.search(r"'(.*)'$", str(e))
        value = m.group(1) if m else str(e)
        argv = list(self.core.unparsed)
        for i, tok in enumerate(argv):
            if tok.startswith("-") and tok.partition("=")[2] == value:
                return tok.partition("=")[0], value
            if tok == value and i and argv[i - 1].startswith("-"):
                return argv[i - 1], value
        return "a flag", value

    def _task_before(self, flag: str) -> str | None:
        """The task whose flag `flag` is: the last task named before it on the command line."""
        task = None
        for tok in self.core.unparsed:
            if tok.partition("=")[0] == flag:
                return task
            if tok in self.parser.contexts:
                task = self.parser.contexts[tok].name
        return task


def _reworded(message: str) -> str:
    """Invoke's parse errors in lbtk's words (one line, no Python reprs)."""
    message = message.rstrip("!.")
    m = re.fullmatch(r"No idea what '(.*)' is", message)
    if m:
        return f"unknown flag {m.group(1)}" if m.group(1).startswith("-") else f"unknown task {m.group(1)!r}"
    m = re.fullmatch(r"Flag <Argument: ([\w-]+).*> needed value and was not given one", message)
    if m:
        return f"--{m.group(1)} needs a value"
    m = re.fullmatch(r"'(.*)' did not receive required positional arguments: (.*)", message)
    if m:
        return f"{m.group(1)} needs " + ", ".join(f"--{a.strip().strip(chr(39)).replace('_', '-')}"
                                                  for a in m.group(2).split(","))
    return message


class AdoptedProgram(Program):
    command = "inv"
    finds_inventories = False   # the repository's inventories/, or $LBTK_INVENTORIES, as always


def adopt(program: invoke.Program) -> None:
    """Invoke's own `inv` behaves as lbtk's Program from the moment tasks.py is loaded (its parsing
    of the tasks and their flags comes after). Only Invoke's plain Program is adopted."""
    if type(program) is invoke.Program:
        program.__class__ = AdoptedProgram


def main() -> None:
    from fabfile.tasks import namespace
    Program(namespace=namespace, name="lbtk", binary="lbtk", version=__version__).run()
