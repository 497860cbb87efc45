"""Every failure a user can meet, and the one funnel that turns it into one line and an exit code.

The core raises these (never prints, never exits); the task layer (fabfile/tasks/common.py) calls
`one_line()` on whatever escaped and exits with the code. Exit codes, as documented in the README:

    0    all good
    1    the command ran and found a problem (verify, diff, status, check, failover-test)
    2    error: bad input or an operational failure, one line naming what to fix
    3    internal error: a bug in lbtk (one line; `inv --debug ...` or LBTK_DEBUG=1 shows the traceback)
    4    `deploy --check --detailed-exitcode`: changes pending (0 there: nothing to do)
    130  interrupted (Ctrl-C)
"""
from __future__ import annotations

import logging
import os

from fabfile.terminal import visible

EXIT_OK, EXIT_PROBLEM, EXIT_ERROR, EXIT_INTERNAL, EXIT_PENDING, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130


class LbtkError(Exception):
    """A failure the user can act on; str() is the whole one-line message."""
    exit_code = EXIT_ERROR

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()) if "\n" in str(message) else str(message))


class UsageError(LbtkError):
    """A bad flag value (--format, --mode, --node ...)."""


class FactError(LbtkError):
    """A node answered, but what it printed for one fact is not what the fact's parser knows."""

    def __init__(self, node: str, fact: str, problem: str):
        super().__init__(f"{node}: cannot read {fact}: {problem} — is this a Debian node with the "
                         "packages `inv install` checks? (`inv --debug` shows the raw output)")
        self.node, self.fact = node, fact


def debug_enabled() -> bool:
    """`inv --debug` (Invoke's own flag turns on root DEBUG logging) or LBTK_DEBUG=1."""
    return os.environ.get("LBTK_DEBUG") == "1" or logging.getLogger().getEffectiveLevel() <= logging.DEBUG


def one_line(e: BaseException) -> tuple[str, int]:
    """(message, exit code) for anything that reached the task layer: one line per problem
    (an inventory with three mistakes gives three lines), never a traceback."""
    from fabfile.parsers import ParseError
    if isinstance(e, KeyboardInterrupt):
        return "interrupted", EXIT_INTERRUPTED
    if isinstance(e, LbtkError):
        lines = getattr(e, "lines", None) or [str(e)]     # several problems: one line each
        return "\n".join(_line(f"error: {x}") for x in lines), e.exit_code
    if isinstance(e, ParseError):
        return _line(f"error: unexpected tool output: {e}"), EXIT_ERROR
    what = f"{e.__class__.__name__}: {e}" if str(e) else e.__class__.__name__
    return _line(f"internal error: {what} — a bug in lbtk; rerun with `inv --debug` for the traceback"), EXIT_INTERNAL


def _line(msg: str) -> str:
    """One line, shown safely: a node's stderr can be in it (fabfile.terminal.visible)."""
    return visible(" ".join(msg.split()))


def quiet_third_party_logging() -> None:
    """paramiko logs tracebacks (banner errors, resets) through Python's last-resort handler, which
    would print them before our one line. They go nowhere unless --debug asked for them."""
    for name in ("paramiko", "invoke", "fabric"):
        lg = logging.getLogger(name)
        if not any(isinstance(h, logging.NullHandler) for h in lg.handlers):
            lg.addHandler(logging.NullHandler())
        lg.propagate = debug_enabled()
