"""`inv os-upgrade`'s lines: the plan (what `--check` prints, and what runs) and the closing line."""
from __future__ import annotations

from fabfile import output
from fabfile.ops.upgrade import Prepared


def show_plan(p: Prepared, check: bool = False) -> None:
    d = p.decision
    if d.nothing_to_do:
        output.say(f"{d.node} already runs {d.target}: nothing to do")
        return
    output.say(f"{d.node}: Debian {d.current} -> {d.target}" + (f" ({p.swap.how})" if p.swap else " (apt)")
               + (", --check: nothing is changed" if check else ""))
    for note in d.notes:
        output.say(f"note: {note}")
    for k, s in enumerate(p.steps, 1):
        output.say(f"{k}. {s.what}")
        for cmd in s.commands:
            output.say(f"     $ {cmd}")


def show_done(p: Prepared, env: str, seconds: float) -> None:
    node, release = p.decision.node, p.decision.target
    output.say(f"{node}: now on Debian {release}, in {seconds:.1f}s; keepalived not running, "
               f"real server drained — next: `inv deploy --env {env} --node {node}`, `inv verify --env {env}`, "
               f"`inv undrain --env {env} --server {node}`")
