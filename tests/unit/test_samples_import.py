"""Issue 26's acceptance: keepalived's own doc/samples (tests/fixtures/keepalived-samples/, the
valid ones by keepalived 2.2.7's -t: manifest.json) are expressible as inventories, and `inv render`
of the inventory means what the sample means.

Each sample goes through what `inv import --file SAMPLE --address ...` runs (a sample names no
source address: the test gives the node one in each interface's VIP subnet), the model validates
the inventory, lbtk renders keepalived.conf, and both files are compared as keepalived reads them
(fabfile/core/conf_meaning.py): every VRRP instance with its id, priority, state, interface,
advert interval, authentication type and VIPs (lbtk moves all VIPs after the first to
virtual_ipaddress_excluded: the set is compared), and every virtual server whole, with its real
servers, weights and checkers. global_defs are lbtk's policy (router_id, script security) and are
not compared; what the import changes there is in its notes.
"""
from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from fabfile.core import conf_import as ci
from fabfile.core.conf_meaning import behaviour, diff, meaning_of
from fabfile.core.render import ASSUMED, render_all
from fabfile.core.render.keepalived import CONF
from fabfile.model.schema import Inventory
from fabfile.parsers.keepalived_conf import MemoryFiles, parse_conf, parse_file

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "keepalived-samples"
MANIFEST = json.loads((SAMPLES / "manifest.json").read_text())["samples"]
VALID = sorted(name for name, m in MANIFEST.items() if m["valid"])


def test_the_corpus_is_keepalived_s_samples():
    assert len(MANIFEST) == 25 and len(VALID) == 16


def _addresses(conf) -> tuple[str, dict[str, str]]:
    """An address for the node in each interface's first VIP subnet (/24), not a VIP itself."""
    per_iface: dict[str, str] = {}
    taken = set()
    for s in conf.find("vrrp_instance"):
        for v in s.find("virtual_ipaddress") + s.find("virtual_ipaddress_excluded"):
            taken |= {c.keyword.split("/")[0] for c in v.children or []}
    for s in conf.find("vrrp_instance"):
        iface = s.value("interface", "eth0")
        vips = [c.keyword.split("/")[0] for v in s.find("virtual_ipaddress") for c in v.children or []]
        if iface in per_iface or not vips or ":" in vips[0]:
            continue
        net = ipaddress.ip_network(f"{vips[0]}/24", strict=False)
        per_iface[iface] = next(str(h) for h in reversed(list(net.hosts())) if str(h) not in taken)
    primary = next(iter(per_iface.values()), "192.168.200.250")
    return primary, {k: v for k, v in per_iface.items()}


@pytest.mark.parametrize("sample", VALID)
def test_a_valid_sample_is_expressible_and_renders_to_the_same_meaning(sample):
    path = SAMPLES / sample
    conf = parse_file(str(path), MemoryFiles({str(path): path.read_text()}))
    primary, per_iface = _addresses(conf)
    out = ci.import_configs([ci.NodeConfig("lb1", conf, address=primary, addresses=per_iface, file=sample)],
                            "sample", "secrets/sample.auth_pass")
    inv = Inventory.model_validate(out.inventory)
    password = next(iter(out.secrets.values()), None)
    secrets = {vi.name: password for vi in inv.vrrp_instances if vi.authentication} if password else {}
    text = next(f.content for f in render_all(inv, secrets, ASSUMED)["lb1"] if f.path == CONF)
    differences = diff(behaviour(meaning_of(conf)), behaviour(meaning_of(parse_conf(text))))
    assert differences == [], "\n".join(differences)


def test_inv_import_file_writes_the_inventory_and_the_secret_and_refuses_in_one_line_each(tmp_path):
    """The CLI path: `inv import --file` on keepalived's own sample (no source address in it:
    --address), then a file with a keyword lbtk cannot express (exit 2, one line naming file:line,
    nothing written)."""
    import stat
    from fabfile.model.loading import inventory_dir
    from tests.cli import run_inv
    sample = SAMPLES / "keepalived.conf.vrrp"
    out = tmp_path / "adopted.yaml"
    secret = inventory_dir() / "secrets" / "samples-cli.auth_pass"
    secret.unlink(missing_ok=True)
    try:
        r = run_inv(["import", "--env", "samples-cli", "--file", str(sample),
                     "--address", "192.168.200.250,eth1=192.168.201.250", "--out", str(out)])
        assert r.returncode == 0, r.stderr
        assert "1111" not in r.stdout + r.stderr + out.read_text()       # the sample's auth_pass
        assert secret.read_text().strip() == "1111" and stat.S_IMODE(secret.stat().st_mode) == 0o600
        assert "keepalived.conf keeps its meaning" in r.stdout
        bad = tmp_path / "bad.conf"
        bad.write_text(sample.read_text().replace("    advert_int 1\n", "    advert_int 1\n    promote_secondaries\n", 1))
        again = run_inv(["import", "--env", "samples-cli2", "--file", str(bad), "--address", "192.168.200.250",
                         "--out", str(tmp_path / "never.yaml")])
        assert again.returncode == 2
        lines = again.stderr.strip().splitlines()
        assert any(f"{bad}:" in ln and "promote_secondaries" in ln for ln in lines), lines
        assert all(ln.startswith("error: ") for ln in lines) and "Traceback" not in again.stderr
        assert not (tmp_path / "never.yaml").exists()
        assert not (inventory_dir() / "secrets" / "samples-cli2.auth_pass").exists()
    finally:
        secret.unlink(missing_ok=True)
