"""The one observation layer: ask every node for the facts a caller names, in ONE round trip per
node (all nodes in parallel), and hand back one typed `NodeState` per node.

Deploy planning, verify, settle, sync, failover and traffic all come through here; the facts and
their parsers are in fabfile/infra/facts.py and fabfile/parsers/.
"""
from __future__ import annotations

from typing import Iterable

from fabfile.infra import remote
from fabfile.errors import FactError
from fabfile.infra.facts import STDERR_FILE, Fact, NodeState
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
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, RecursionError) as e:
            # a parser that let a shape it did not expect through is a bug (tests/unit/
            # test_hostile_facts.py hunts for them), but still this node's output: its failed row
            raise FactError(node, f"{f.name} (`{f.command[:60]}`)",
                            f"output the parser did not expect ({e.__class__.__name__})") from None
        f.store(state, value)
    return state


def unreadable(node: str, e: FactError) -> NodeState:
    """The NodeState of a node that answered with output its parsers refuse: not observed, like an
    unreachable node (every view and check shows it as a failed row), with the reason."""
    return NodeState(node, reachable=False, error=str(e), unreadable=True)


def state_of(node: str, facts: Iterable[Fact], out: str | remote.RemoteError) -> NodeState:
    """What script(facts) printed on a node (or why it could not run there) -> its NodeState:
    unreachable with the one-line reason, unreadable when the parsers refuse the output."""
    if isinstance(out, remote.RemoteError):
        return NodeState(node, reachable=False, error=str(out))
    try:
        return parse_output(node, facts, out)
    except FactError as e:
        return unreadable(node, e)


def observe(nodes, facts: Iterable[Fact], per_node: dict[str, list[Fact]] | None = None,
            timeout: float = 60) -> dict[str, NodeState]:
    """{node: NodeState} for every node of `nodes` (a remote.NodeGroup, or a list of NodeLinks). An
    unreachable node comes back with reachable=False and the one-line reason; so does a node whose
    output the parsers refuse (unreadable=True): one node's bad output is that node's failed row,
    never the whole cluster's error."""
    group = remote.NodeGroup.of(nodes)
    facts = list(facts)
    per_node = per_node or {}

    def one(c: remote.NodeLink) -> NodeState:
        mine = facts + per_node.get(c.name, [])
        try:
            return state_of(c.name, mine, remote.run(c, script(mine), timeout=timeout).stdout)
        except remote.RemoteError as e:
            return state_of(c.name, mine, e)

    return dict(zip(group.names, group.parallel(one)))


def observe_nodes(env, nodes, facts: Iterable[Fact], how=None, **kw) -> dict[str, NodeState]:
    """observe() (or `how`: observe_reachable...) over a group of its own, env's nodes `nodes`
    (default all): it connects, asks once, and closes, whatever happens."""
    with remote.nodes(env, nodes) as group:
        return (how or observe)(group, facts, **kw)


def observe_except(nodes, facts: Iterable[Fact], per_node: dict[str, list[Fact]] | None,
                   known_down: dict[str, str]) -> dict[str, NodeState]:
    """observe() on every node but those in `known_down` (node -> why it cannot be reached: the
    deploy lock could not reach it); those come back unreachable with that reason. One NodeState
    per node, in the group's order."""
    group = remote.NodeGroup.of(nodes)
    seen = observe(group.only(n for n in group.names if n not in known_down), facts, per_node)
    return {n: seen[n] if n in seen else NodeState(n, reachable=False, error=known_down[n]) for n in group.names}


def observe_reachable(nodes, facts: Iterable[Fact], per_node: dict[str, list[Fact]] | None = None,
                      doing: str = "nothing was changed on any node") -> dict[str, NodeState]:
    """observe(), but every node must answer: the first unreachable (or unreadable) one is a RemoteError."""
    states = observe(nodes, facts, per_node)
    down = [s for s in states.values() if not s.reachable]
    if down:
        raise remote.RemoteError(down[0].error + (f" — {doing}" if doing else ""))
    return states


def observe_node(c: remote.NodeLink, facts: Iterable[Fact]) -> NodeState:
    """One node, one round trip; unreachable is a RemoteError."""
    return observe_reachable([c], facts, doing="")[c.name]
