"""`inv isolate` (and `--undo`): a node out of VRRP, recorded on the directors, and back.

The record is the runtime record's `isolated` list (fabfile/core/runtime.py), written by a keepalived
phase deploy under the deploy lock, like a drain: every deploy, from any clone, keeps the node's
keepalived stopped and disabled until `--undo` (core.runtime.keep_isolated). The refusals are pure
(core.runtime.isolate_refusal); this module adds the one wait the undo needs: the node's
keepalived, started again by that deploy, in the VRRP state the inventory expects.
"""
from __future__ import annotations

import time

from fabfile.core.vrrp import settled_states
from fabfile.infra import facts as F
from fabfile.infra import remote
from fabfile.infra.observe import observe
from fabfile.model.context import Env
from fabfile.parsers.keepalived_json import VrrpView


def not_settled(want: dict[str, frozenset[str]], views: list[VrrpView] | None) -> list[str]:
    """Pure: the instances whose state is not (yet) one `want` allows, in words (empty: settled)."""
    if views is None:
        return ["keepalived not running"]
    have = {v.instance: v.state for v in views}
    return [f"{name} {have.get(name, 'missing')} (want {' or '.join(sorted(ok))})"
            for name, ok in want.items() if have.get(name) not in ok]


def wait_in_vrrp(env: Env, node: str, timeout: float, interval: float = 0.25) -> tuple[bool, str]:
    """Poll keepalived's own view on `node` until each of its instances is in the state the inventory
    expects (vrrp.settled_states). Returns (ok, one line)."""
    want = settled_states(env.inv, node)
    t0 = time.monotonic()
    with remote.nodes(env, [node]) as group:
        while True:
            s = observe(group, [F.KEEPALIVED_VIEW])[node]
            wrong = not_settled(want, s.vrrp) if s.reachable else [s.error]
            secs = time.monotonic() - t0
            if not wrong:
                states = ", ".join(f"{v.instance} {v.state}" for v in s.vrrp or [])
                return True, f"{node} is back in VRRP after {secs:.1f}s: {states}"
            if secs > timeout:
                return False, (f"{node} not back in VRRP after {secs:.0f}s: {'; '.join(wrong)} — "
                               f"`inv vrrp --env {env.name} --node {node}` and `inv logs` say why")
            time.sleep(interval)
