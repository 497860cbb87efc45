"""`inv digest`'s core: the digest keepalived's HTTP_GET would compute for a real server's page,
fetched with keepalived's own `genhash` on a director (the real servers sit behind the directors:
this machine may not reach them), and how it compares with the inventory. Drawn by
fabfile/views/digest.py."""
from __future__ import annotations

from fabfile.infra import facts as F
from fabfile.infra import remote
from fabfile.core.checks import DigestTarget
from fabfile.model.context import Env
from fabfile.model.schema import Node
from fabfile.infra.observe import observe_node
from fabfile.parsers.genhash import GenHash


def measure(env: Env, directors: list[Node], targets: list[DigestTarget]) -> tuple[str, dict]:
    """(the director it ran on, {(address, port, path): GenHash}): genhash on the first director that
    answers, one round trip. No director answering is a RemoteError naming the first one's reason."""
    fact = F.genhash([t.genhash for t in targets])
    first = None
    with remote.nodes(env, directors) as group:     # lazy: only the directors tried connect
        for c in group:
            try:
                return c.name, observe_node(c, [fact]).digests
            except remote.RemoteError as e:
                first = first or e
    raise remote.RemoteError(f"{first} — no director could run genhash")


def rows(targets: list[DigestTarget], via: str, got: dict[tuple[str, int, str], GenHash]) -> list[dict]:
    """Pure: one row per URL, with stable JSON names."""
    out = []
    for t in targets:
        g = got.get(t.key)
        digest = g.digest if g else None
        matches = None if digest is None or t.digest is None else digest == t.digest
        status_ok = g is not None and g.ok and t.accepts(g.status)
        out.append(dict(server=t.address, node=t.node, port=t.port, path=t.path, via=via,
                        status=g.status if g else None, reason=g.reason if g else "", digest=digest,
                        inventory_digest=t.digest, matches=matches,
                        error=(g.error if g else "genhash printed nothing for it"),
                        ok=status_ok and matches is not False))
    return out
