"""The one observation layer: ask every node for the facts a caller names, in ONE round trip per
node (all nodes in parallel), and hand back one typed `NodeState` per node.

Deploy planning, verify, settle, sync, failover and traffic all come through here; the facts and
their parsers are in fabfile/infra/facts.py and fabfile/parsers/.
"""
from __future__ import annotations

from typing import Iterable

from fabfile.infra import remote
from fabfile.core.actions import STDERR_FILE
from fabfile.errors import FactError
from fabfile.infra.facts import Fact, NodeState
from fabfile.parsers import ParseError
from fabfile.parsers.lbtk import FRAMES, frames_token, parse_sections


def script(facts: Iterable[Fact]) -> str:
    """The shell that runs every fact once and frames each output (see parsers.lbtk.frames_token and
    parse_sections): the frames' token is drawn on the node and never appears on a command line.
    Forks are what a node pays for (30 lab nodes share 2 cores): read, printf and [ are shell
    builtins, and a fact's stderr file is read (cat) only when the fact wrote something there."""
    parts = ["IFS= read -r __t < /proc/sys/kernel/random/uuid || exit 97",
             f"printf '{FRAMES} %s\\n' \"$__t\"", STDERR_FILE]
    for f in facts:
        parts.append(f"printf '\\n@@%s fact %s\\n' \"$__t\" {f.name}; {{ {f.command}\n}} 2>\"$__e\" </dev/null; "
                     f"__rc=$?; printf '\\n@@%s stderr\\n' \"$__t\"; [ -s \"$__e\" ] && cat \"$__e\"; "
                     f"printf '\\n@@%s rc %s\\n' \"$__t\" \"$__rc\"")
    parts.append('[ "$__e" = /dev/null ] || rm -f "$__e"; true')
    return "\n".join(parts) + "\n"


def parse_output(node: str, facts: Iterable[Fact], text: str) -> NodeState:
    """Pure: script()'s whole output (its header, then the frames) -> NodeState (see parse_state)."""
    try:
        token, frames = frames_token(text)
    except ParseError as e:
        raise FactError(node, "its facts", str(e)) from None
    return parse_state(node, facts, frames, token)


def parse_state(node: str, facts: Iterable[Fact], text: str, token: str) -> NodeState:
    """Pure: one node's framed output -> NodeState. Garbage, empty or truncated output is one FactError."""
    facts = list(facts)
    try:
        raw = parse_sections(text, token)
    except ParseError as e:
        raise FactError(node, "its facts", str(e)) from None
    state = NodeState(node)
    for f in facts:
        if f.name not in raw:
            raise FactError(node, f.name, "no output for it (truncated?)")
        try:
            value = f.parse(raw[f.name])
        except ParseError as e:
            raise FactError(node, f"{f.name} (`{f.command[:60]}`)", str(e)) from None
        f.store(state, value)
    return state


def observe(conns, facts: Iterable[Fact], per_node: dict[str, list[Fact]] | None = None,
            timeout: float = 60) -> dict[str, NodeState]:
    """{node: NodeState} for every connection. An unreachable node comes back with reachable=False
    and the one-line reason; a node whose output the parsers refuse raises FactError."""
    facts = list(facts)
    per_node = per_node or {}

    def one(c):
        mine = facts + per_node.get(c.lbtk_node, [])
        try:
            r = remote.run(c, script(mine), timeout=timeout)
        except remote.RemoteError as e:
            return NodeState(c.lbtk_node, reachable=False, error=str(e))
        return parse_output(c.lbtk_node, mine, r.stdout)

    return dict(zip([c.lbtk_node for c in conns], remote.parallel(conns, one)))


def observe_except(conns, facts: Iterable[Fact], per_node: dict[str, list[Fact]] | None,
                   known_down: dict[str, str]) -> dict[str, NodeState]:
    """observe() on every connection but those whose node is in `known_down` (node -> why it cannot
    be reached: the deploy lock could not reach it); those come back unreachable with that reason.
    One NodeState per connection, in the connections' order."""
    seen = observe([c for c in conns if c.lbtk_node not in known_down], facts, per_node)
    return {c.lbtk_node: seen[c.lbtk_node] if c.lbtk_node in seen
            else NodeState(c.lbtk_node, reachable=False, error=known_down[c.lbtk_node]) for c in conns}


def observe_reachable(conns, facts: Iterable[Fact], per_node: dict[str, list[Fact]] | None = None,
                      doing: str = "nothing was changed on any node") -> dict[str, NodeState]:
    """observe(), but every node must answer: the first unreachable one is a RemoteError."""
    states = observe(conns, facts, per_node)
    down = [s for s in states.values() if not s.reachable]
    if down:
        raise remote.RemoteError(down[0].error + (f" — {doing}" if doing else ""))
    return states


def observe_node(c, facts: Iterable[Fact]) -> NodeState:
    """One node, one round trip; unreachable is a RemoteError."""
    return observe_reachable([c], facts, doing="")[c.lbtk_node]
