"""The kernel tier's serial console (qemu `-serial file:`) -> the line saying the guest kernel crashed.

Real behaviour (Debian 13's 6.12 kernel under qemu TCG, tests/fixtures/kernel_console/, captured
from /var/tmp/lbtk-kernel/console.log after a CI boot failed): the guest boots with `quiet
loglevel=1`, so a healthy boot writes nothing there; a crash writes the kernel's report, each line
behind a `[    2.166594] ` timestamp: `Oops: int3: 0000 [#1] PREEMPT SMP NOPTI`, the registers, the
call trace, then `Kernel panic - not syncing: Fatal exception in interrupt`. The first such line
names the crash best.
"""
from __future__ import annotations

CRASH_STARTS = ("Oops:", "BUG:", "Kernel panic")


def guest_crash(console: str) -> str | None:
    """The console's first line saying the guest kernel crashed (Oops, BUG, panic, general
    protection fault), timestamp dropped; None when there is none."""
    for ln in console.splitlines():
        text = ln.split("] ", 1)[1] if ln.startswith("[") and "] " in ln else ln
        if text.startswith(CRASH_STARTS) or "general protection fault" in text:
            return text.strip()
    return None
