"""Issue 15 on the lab: HTTP_GET digests (inv digest, verify's digest check) and the nginx phase
owning only what it renders (an operator's default site left alone, a conflict named in one line).

Each test deploys a temporary copy of lab.yaml (written beside it in the session's inventories, so
its secret file resolves as the lab's) and ends with `inv deploy --env lab`: the lab is left as deployed.
"""
from __future__ import annotations

import re

import yaml

from fabfile.model.loading import inventory_dir

from .conftest import inv, inv_json, sh

SITE = "/etc/nginx/sites-enabled/lbtk.conf"
DEFAULT = "/etc/nginx/sites-enabled/default"


def lab_copy(name: str, change) -> str:
    data = yaml.safe_load((inventory_dir() / "lab.yaml").read_text())
    change(data)
    path = inventory_dir() / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return name


def test_digest_then_verify_flags_a_changed_page(deployed, nodes):
    rc, rows = inv_json("digest", "--env", "lab", "--server", "node3", "--path", "/healthz")
    assert rc == 0, rows
    (row,) = rows
    digest = row["digest"]
    assert re.fullmatch(r"[0-9a-f]{32}", digest) and row["status"] == 200 and row["via"] == "node1"
    rc, by_address = inv_json("digest", "--env", "lab", "--server", "10.189.0.13", "--path", "/healthz")
    assert rc == 0 and by_address[0]["digest"] == digest

    def with_digest(data):
        for rs in data["virtual_servers"][0]["real_servers"]:
            rs.pop("TCP_CHECK", None)
            rs["HTTP_GET"] = {"path": "/healthz", "digest": digest, "connect_timeout": 1, "retry": 1,
                              "delay_before_retry": 1}
    env = lab_copy("lab-digest", with_digest)
    try:
        inv("deploy", "--env", env, check=True)
        rc, report = inv_json("verify", "--env", env)
        rows = [c for c in report["checks"] if c["name"].startswith("HTTP_GET digest")]
        assert rc == 0 and len(rows) == 3 and all(c["ok"] for c in rows), report
        assert rc == 0 and inv_json("digest", "--env", env, "--server", "node3")[1][0]["matches"] is True

        # the page changes on node3 by hand: its live digest no longer is the inventory's
        sh(nodes["node3"], f"sed -i 's/return 200 \"ok/return 200 \"changed by hand/' {SITE} && systemctl reload nginx")
        for _ in range(20):
            rc, report = inv_json("verify", "--env", env)
            if rc:
                break
        bad = [c for c in report["checks"] if not c["ok"]]
        assert rc == 1 and [(c["name"], c["node"]) for c in bad] == [("HTTP_GET digest 10.189.0.13:80/healthz", "node3")]
        new = re.search(r"live digest ([0-9a-f]{32})", bad[0]["detail"]).group(1)
        assert new != digest and f"HTTP_GET.digest {digest}" in bad[0]["detail"]
        table = inv("verify", "--env", env)
        line = next(ln for ln in table.stdout.splitlines() if "HTTP_GET digest 10.189.0.13" in ln)
        assert new in line and digest in line and table.returncode == 1
        r = inv("digest", "--env", env, "--server", "node3")
        assert r.returncode == 1 and new in r.stdout and "NO" in r.stdout

        inv("deploy", "--env", env, check=True)           # the inventory's site comes back
        assert inv("verify", "--env", env).returncode == 0
    finally:
        (inventory_dir() / f"{env}.yaml").unlink()
        inv("deploy", "--env", "lab", check=True)


def test_an_operators_site_is_left_alone_and_a_conflict_named(deployed, nodes):
    c = nodes["node3"]
    env = lab_copy("lab-sites", lambda d: d["nginx"].pop("remove_sites"))
    sh(c, f"ln -sfn /etc/nginx/sites-available/default {DEFAULT}")
    try:
        r = inv("deploy", "--env", env, check=True)        # not named in remove_sites: not the toolkit's
        assert "no changes" in r.stdout and sh(c, f"test -e {DEFAULT}").exited == 0

        sh(c, f"rm -f {SITE}")                               # a fresh node3: lbtk.conf to create, nginx -t refuses it
        r = inv("deploy", "--env", env)
        assert r.returncode == 2 and "Traceback" not in r.stderr
        (line,) = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert "node3: nginx -t refused /etc/nginx/sites-enabled/lbtk.conf" in line
        assert f"{DEFAULT} (line 22) also claims default_server on 0.0.0.0:80" in line
        assert "nginx.remove_sites: [default]" in line
        assert sh(c, f"test -e {SITE}").exited == 1 and sh(c, "systemctl is-active nginx").stdout.strip() == "active"
    finally:
        (inventory_dir() / f"{env}.yaml").unlink()
        r = inv("deploy", "--env", "lab", check=True)         # remove_sites: [default] takes it away
    assert sh(c, f"test -e {DEFAULT}").exited == 1 and sh(c, f"test -e {SITE}").exited == 0
    assert inv("verify", "--env", "lab").returncode == 0
