"""Offline tasks: render the files each node needs, check them with the real keepalived -t."""
from __future__ import annotations

import os
from pathlib import Path

from invoke import Exit, task

from .. import output
from ..confcheck import ToolMissing, keepalived_check
from ..render import render_all
from ..render.keepalived import CONF
from ..secrets import mask
from .common import DEFAULT_ENV, LbtkError, load_env, one_line_errors


@task(help={"env": "inventory name (inventories/NAME.yaml)", "node": "only this node",
            "out": "write files under DIR/NODE/<path> instead of printing them"})
@one_line_errors
def render(c, env=DEFAULT_ENV, node=None, out=None):
    """Print (or write) every file for every node, rendered from the inventory."""
    e = load_env(env)
    per_node = render_all(e.inv, e.secrets)
    if node and node not in per_node:
        raise LbtkError(f"{e.path.name}: no node {node!r} — choose from {', '.join(per_node)}")
    for name, files in per_node.items():
        if node and name != node:
            continue
        for f in files:
            if out:
                target = Path(out) / name / f.path.lstrip("/")
                if f.content is None:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(f.content)
                os.chmod(target, f.mode)
                output.say(f"wrote {target} ({oct(f.mode)[2:]})")
            elif f.content is None:
                print(f"# ==== {name}:{f.path} (must not exist)\n")
            else:
                print(f"# ==== {name}:{f.path} (mode {oct(f.mode)[2:]}, phase {f.phase})")
                print(mask(f.content))


@task(help={"env": "inventory name (inventories/NAME.yaml)", "format": "auto|rich|plain|markdown",
            "json": "print one JSON object"})
@one_line_errors
def check(c, env=DEFAULT_ENV, format=None, json=False):
    """Validate the inventory and run the real `keepalived -t` on each node's keepalived.conf."""
    e = load_env(env)
    table = output.Table(f"keepalived -t ({e.path.name})", ["node", "file", "verdict", "keepalived says"])
    results = []
    for name, files in render_all(e.inv, e.secrets).items():
        conf = next(f for f in files if f.path == CONF)
        try:
            r = keepalived_check(e.inv, e.inv.node(name), conf.content)
        except ToolMissing as err:
            raise LbtkError(str(err)) from None
        msg = "; ".join(r.messages) or "configuration is valid"
        table.add(name, CONF, r.verdict, msg, ok=r.verdict == "ok")
        results.append({"node": name, "file": CONF, "verdict": r.verdict, "exit_code": r.exit_code,
                        "messages": r.messages})
    ok = all(r["verdict"] == "ok" for r in results)
    if json:
        output.show_json({"ok": ok, "inventory": str(e.path.name), "results": results})
    else:
        output.show(table, format)
    if not ok:
        raise Exit(code=1)
