"""HTTP_GET digests: which URLs verify and `inv digest` hash, the verify check (pure) and the
digest rows, from genhash output captured on the lab (tests/fixtures/genhash/, read by the
fact's own parser through observe.parse_state)."""
from __future__ import annotations

from dataclasses import replace

import pytest
import yaml

from fabfile.infra import facts as F
from fabfile.core.checks import digest_checks, digest_targets
from fabfile.ops.digest import rows
from fabfile.model.loading import inventory_dir, parse
from fabfile.infra.observe import parse_state

from .core_fixtures import TOKEN, frame, read

HEALTHZ = "eff5bc1ef8ec9d03e640fc4370f5eacd"     # the lab's /healthz ("ok\n"), as genhash printed it
OTHER = "0123456789abcdef0123456789abcdef"


def lab(**http) -> object:
    """inventories/lab.yaml with HTTP_GET {path: /healthz, **http} on every real server."""
    data = yaml.safe_load((inventory_dir() / "lab.yaml").read_text())
    for rs in data["virtual_servers"][0]["real_servers"]:
        rs.pop("TCP_CHECK")
        rs["HTTP_GET"] = {"path": "/healthz", **http}
    return parse(data, "lab-digest.yaml")


def observed(fixture: str, node: str = "node1", targets=None):
    targets = targets or [(f"10.189.0.1{k}", 80, "/healthz", 3) for k in (1, 2, 3)]
    fact = F.genhash(targets)
    return parse_state(node, [fact], frame({"digests": (read(f"genhash/{fixture}.txt"), "", 0)}), TOKEN)


def test_targets_are_the_real_servers_with_a_digest():
    assert digest_targets(lab(status_code=200)) == []                 # no digest: nothing to hash
    ts = digest_targets(lab(digest=HEALTHZ, connect_timeout=2))
    assert [(t.address, t.port, t.path, t.timeout, t.digest, t.node) for t in ts] == [
        (f"10.189.0.1{k}", 80, "/healthz", 2, HEALTHZ, f"node{k}") for k in (1, 2, 3)]
    assert ts[0].name == "HTTP_GET digest 10.189.0.11:80/healthz" and ts[0].genhash == ("10.189.0.11", 80, "/healthz", 2)
    port = digest_targets(lab(digest=HEALTHZ, connect_port=8080))
    assert {t.port for t in port} == {8080}                           # keepalived connects to connect_port


def test_targets_of_one_server_for_inv_digest():
    inv = lab(digest=HEALTHZ)
    (t,) = digest_targets(inv, "10.189.0.13")
    assert (t.path, t.digest, t.node) == ("/healthz", HEALTHZ, "node3")
    (other,) = digest_targets(inv, "10.189.0.13", "/")                 # another page: no digest to compare
    assert (other.path, other.digest, other.status_code) == ("/", None, None)
    plain = parse(yaml.safe_load((inventory_dir() / "lab.yaml").read_text()), "lab.yaml")
    (tcp,) = digest_targets(plain, "10.189.0.12")                     # TCP_CHECK: / on the service port
    assert (tcp.port, tcp.path, tcp.digest, tcp.timeout) == (80, "/", None, 3)
    assert digest_targets(plain, "10.189.0.99") == []


def test_status_keepalived_accepts():
    t, coded = digest_targets(lab(digest=HEALTHZ))[0], digest_targets(lab(digest=HEALTHZ, status_code=204))[0]
    assert t.accepts(200) and t.accepts(299) and not t.accepts(404) and not t.accepts(301) and t.accepts(None)
    assert coded.accepts(204) and not coded.accepts(200)


def test_green_when_every_live_digest_is_the_inventorys():
    checks = digest_checks(digest_targets(lab(digest=HEALTHZ)), {"node1": observed("healthz_all")})
    assert [(c.name, c.node, c.ok) for c in checks] == [
        (f"HTTP_GET digest 10.189.0.1{k}:80/healthz", f"node{k}", True) for k in (1, 2, 3)]
    assert checks[0].detail == f"digest {HEALTHZ} as the inventory says (genhash from node1)"


def test_red_naming_both_digests_when_the_page_changed():
    checks = digest_checks(digest_targets(lab(digest=OTHER)), {"node1": observed("healthz_all"),
                                                                 "node2": observed("healthz_all", "node2")})
    assert not any(c.ok for c in checks)
    d = checks[2].detail
    assert f"live digest {HEALTHZ} (genhash from node1, node2)" in d and f"HTTP_GET.digest {OTHER}" in d
    assert "`inv digest --server node3`" in d and "\n" not in d


def test_red_on_a_404_and_when_no_page_comes_back():
    ts = [replace(t, digest="998368d7c95ea4293237f2320546e440")        # the 404 page's own digest
          for t in digest_targets(lab(digest=HEALTHZ), "10.189.0.12", "/no-such-page")]
    (c,) = digest_checks(ts, {"node1": observed("not_found", targets=[("10.189.0.12", 80, "/no-such-page", 3)])})
    assert not c.ok and "HTTP 404 Not Found from node1 (HTTP_GET wants 2xx)" in c.detail
    refused = [("10.189.0.12", 81, "/healthz", 3)]
    t = digest_targets(lab(digest=HEALTHZ, connect_port=81))[1]
    (c,) = digest_checks([t], {"node1": observed("refused", targets=refused)})
    assert not c.ok and c.detail == "genhash from node1 got no page: Connection failed — is the web server on node2 up?"


def test_unobserved_or_unreachable_directors_give_no_row():
    from fabfile.infra.facts import NodeState
    ts = digest_targets(lab(digest=HEALTHZ))
    assert digest_checks(ts, {"node1": NodeState("node1", reachable=False, error="down")}) == []


@pytest.mark.parametrize("fixture, inventory, ok, matches", [
    ("healthz_all", HEALTHZ, True, True), ("healthz_all", OTHER, False, False)])
def test_digest_rows(fixture, inventory, ok, matches):
    ts = digest_targets(lab(digest=inventory), "10.189.0.13")
    (r,) = rows(ts, "node1", observed(fixture).digests)
    assert r == dict(server="10.189.0.13", node="node3", port=80, path="/healthz", via="node1", status=200,
                     reason="OK", digest=HEALTHZ, inventory_digest=inventory, matches=matches, error="", ok=ok)


def test_digest_row_without_a_page():
    ts = digest_targets(lab(digest=HEALTHZ, connect_port=81), "10.189.0.12")
    (r,) = rows(ts, "node1", observed("refused", targets=[("10.189.0.12", 81, "/healthz", 3)]).digests)
    assert (r["digest"], r["matches"], r["ok"], r["error"]) == (None, None, False, "Connection failed")
