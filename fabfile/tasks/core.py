"""Offline tasks: render the files each node needs, check them with the real keepalived -t."""
from __future__ import annotations

import os
from pathlib import Path

from invoke import task

from fabfile.infra import facts as F
from fabfile import output
from fabfile.model.loading import InventoryError
from fabfile.parsers.keepalived_t import split_location
from fabfile.infra.observe import observe_nodes, observe_reachable
from fabfile.core.render import ASSUMED, RenderFacts, render_all, render_node
from fabfile.core.render.keepalived import CONF
from fabfile.model.secrets import mask
from fabfile.tasks.common import DEFAULT_ENV, check_format, load_env, one_line_errors, select_nodes


@task(help={"env": "inventory name (inventories/NAME.yaml)", "node": "only this node",
            "out": "write files under DIR/NODE/<path> instead of printing them",
            "live": "read the facts rendering depends on (IPVS in the kernel) from the nodes, one round "
                    "trip each: the output is then byte for byte what deploy ships"})
@one_line_errors
def render(c, env=DEFAULT_ENV, node=None, out=None, live=False):
    """Print (or write) every file for every node, rendered from the inventory and the node facts
    it depends on (assumed unless --live; the first line says which)."""
    e = load_env(env)
    nodes = select_nodes(e.inv, node)
    if live:
        facts, e = live_facts(e, nodes)
    else:
        facts = {n.name: ASSUMED for n in nodes}
    where = "read from the node" if live else "assumed; --live reads them from the nodes"
    if e.runtime is not None and e.runtime.drained:
        output.say(f"# drained on the nodes (weight 0): {', '.join(e.runtime.drained)}")
    for n in nodes:
        output.say(f"# {n.name}: node facts {facts[n.name].describe()} ({where})")
    for n in nodes:
        for f in render_node(e.inv, n.name, e.secrets, facts[n.name]):
            if out:
                target = Path(out) / n.name / f.path.lstrip("/")
                if f.content is None:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(f.content)
                os.chmod(target, f.mode)
                output.say(f"wrote {target} ({oct(f.mode)[2:]})")
            elif f.content is None:
                print(f"# ==== {n.name}:{f.path} (must not exist)\n")
            else:
                print(f"# ==== {n.name}:{f.path} (mode {oct(f.mode)[2:]}, phase {f.phase})")
                print(mask(f.content))


def live_facts(e, nodes):
    """The render facts of each node, observed (one round trip per node; all must answer), and the
    env with the runtime record (drains) the nodes hold."""
    from fabfile.core import runtime
    states = observe_nodes(e, nodes, (*F.RENDER, F.RUNTIME), how=observe_reachable, doing="nothing was rendered")
    return {n: RenderFacts.of(s) for n, s in states.items()}, runtime.of(e, states)


@task(help={"env": "inventory name (inventories/NAME.yaml)", "format": "auto|rich|plain|markdown",
            "json": "print one JSON object"})
@one_line_errors
def check(c, env=DEFAULT_ENV, format=None, json=False):
    """Validate the inventory and run the real `keepalived -t` on each node's keepalived.conf;
    whatever keepalived -t still reports is one error line naming the inventory field behind it."""
    from fabfile.infra.confcheck import field_of, keepalived_check  # (netns + keepalived -t: only this task)
    check_format(format)
    e = load_env(env)
    table = output.Table(f"keepalived -t ({e.path.name})", ["node", "file", "verdict", "keepalived says"])
    results, problems = [], {}   # (field, keepalived's words) -> nodes
    for name, files in render_all(e.inv, e.secrets, ASSUMED).items():
        node = e.inv.node(name)
        conf = next(f for f in files if f.path == CONF)
        r = keepalived_check(e.inv, node, conf.content)
        msg = "; ".join(r.messages) or "configuration is valid"
        table.add(name, CONF, r.verdict, msg, ok=r.verdict == "ok")
        fields = [field_of(e.inv, node, conf.content, m) for m in r.messages]
        results.append({"node": name, "file": CONF, "verdict": r.verdict, "exit_code": r.exit_code,
                        "messages": r.messages, "fields": fields})
        for f, m in zip(fields, r.messages):
            problems.setdefault((f, split_location(m)[2]), []).append(name)
    ok = not problems and all(r["verdict"] == "ok" for r in results)
    if json:
        output.show_json({"ok": ok, "inventory": str(e.path.name), "results": results})
    else:
        output.show(table, format)
    if not ok:
        raise InventoryError([f"{e.inv.source}: {f}: keepalived -t ({', '.join(nodes)}): {words}"
                              for (f, words), nodes in problems.items()]
                             or [f"{e.inv.source}: keepalived -t did not accept the config (exit "
                                 f"{', '.join(str(r['exit_code']) for r in results)})"])
