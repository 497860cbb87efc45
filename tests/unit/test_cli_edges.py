"""Issue 24, CLI edges: --env is a name matched whole (or a .yaml path), secret files open to others
are refused as ssh refuses a private key, and YAML 1.1's implicit types never turn into a number or
a boolean the operator did not write. Each refusal is one line, exit 2."""
import types
from pathlib import Path

import pytest

from fabfile.model import loading
from tests.cli import run_inv
from fabfile.lab.hooks import generated
from fabfile.model.loading import inventory_dir, InventoryError, load, parse, read_yaml
from fabfile.model.schema import Authentication
from fabfile.model.secrets import resolve

ROOT = Path(__file__).resolve().parents[2]
INVENTORIES = sorted(inventory_dir().glob("*.yaml")) + sorted((ROOT / "tests/inventories/good").glob("*.yaml"))


def cli(*args):
    return run_inv(args, timeout=60)          # a real `python -m invoke`, forked warm (tests/cli.py)


# ---------------------------------------------------------------- --env

def test_a_5000_character_env_is_one_line_exit_2():
    r = cli("render", "--env", "a" * 5000)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and "(5000 characters): not an inventory name" \
        in r.stderr, r.stderr[:500]


@pytest.mark.parametrize("env", ["lab-3\n", "lab-3 ", " lab", "-lab", "lab\x1b[2J", "../inventories/lab",
                                 "a" * 65, "x/" * 3000 + "y.yaml", "/nonexistent/dir/x.yaml"])
def test_an_env_that_is_no_name_and_no_file_is_refused(env):
    with pytest.raises(InventoryError, match=r"^--env '.*: (not an inventory name|no such inventory file)") as e:
        load(env)
    assert len(e.value.lines) == 1 and "\n" not in str(e.value)


def test_lab_n_with_a_trailing_newline_is_no_generated_lab():
    assert generated("lab-3\n", inventory_dir()) is None and generated("lab-3", inventory_dir()) is not None


def test_names_and_paths_still_load():
    assert load("lab")[0].cluster == "lab" and load("lab-3")[0].cluster == "lab-3"
    assert load("tests/inventories/good/nat_wrr.yaml")[0].cluster


# ---------------------------------------------------------------- secret files

def _secret_file(tmp_path, mode, text="abc123\n"):
    p = tmp_path / "vrrp.pass"
    p.write_text(text)
    p.chmod(mode)
    return p


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o660])
def test_an_auth_pass_file_others_may_read_or_write_is_refused(tmp_path, mode):
    p = _secret_file(tmp_path, mode)
    with pytest.raises(InventoryError) as e:
        resolve(Authentication(auth_pass_file=str(p)), "inv.yaml: vrrp_instances[0].authentication")
    assert str(e.value) == (f"inv.yaml: vrrp_instances[0].authentication: auth_pass_file {p} is open to group or "
                            f"others (mode {oct(mode)[2:]}) — chmod 600 {p}")


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_an_auth_pass_file_of_the_owner_alone_is_read(tmp_path, mode):
    assert resolve(Authentication(auth_pass_file=str(_secret_file(tmp_path, mode))), "w") == "abc123"


def test_a_become_password_file_others_may_read_is_refused(tmp_path):
    from fabfile.infra import remote
    p = _secret_file(tmp_path, 0o644, "sudo-pw\n")
    c = types.SimpleNamespace(password_env=None, password_file=str(p), name="node1", masker=None)
    with pytest.raises(InventoryError, match=rf"node1: ssh.become_password_file {p} is open to group or others "
                                             rf"\(mode 644\) — chmod 600 {p}"):
        remote._password(c)
    p.chmod(0o600)
    assert remote._password(c) == "sudo-pw"


# ---------------------------------------------------------------- YAML's implicit types

@pytest.mark.parametrize("text,want", [
    ("yes", "yes"), ("on", "on"), ("No", "No"), ("off", "off"), ("y", "y"),
    ("1e3", "1e3"), ("0x10", "0x10"), ("010", "010"), ("0o10", "0o10"), ("0b1", "0b1"), ("1_000", "1_000"),
    ("1:30", "1:30"), ("12:34:56:78:9a:bc", "12:34:56:78:9a:bc"), ("2001-01-01", "2001-01-01"),
    (".inf", ".inf"), (".nan", ".nan"),
    ("true", True), ("False", False), ("0", 0), ("80", 80), ("-3", -3), ("0.5", 0.5), ("1.", 1.0),
    ("1.5e1", 15.0), ("~", None), ("''", ""),
])
def test_the_loader_reads_only_plain_decimals_and_true_false_as_such(text, want):
    got = read_yaml(f"v: {text}")["v"]
    assert got == want and type(got) is type(want)


@pytest.mark.parametrize("path", INVENTORIES, ids=[p.stem for p in INVENTORIES])
def test_every_shipped_inventory_reads_the_same_as_before(path):
    """The stricter loader and the strict model keep every inventory valid, and read each the way
    YAML 1.1 did (none relied on a surprise)."""
    import yaml
    text = path.read_text()
    assert read_yaml(text) == yaml.safe_load(text)
    parse(read_yaml(text), path.name)


@pytest.mark.parametrize("key,text,line", [
    ("virtual_router_id", "0x10", "'0x10' is text, not a whole number"),
    ("virtual_router_id", "010", "'010' is text, not a whole number"),
    ("virtual_router_id", "true", "True is true/false, not a whole number"),
    ("virtual_router_id", '"51"', "'51' is text, not a whole number"),
    ("advert_int", "1e3", "'1e3' is text, not a number"),
    ("nopreempt", "yes", "'yes' is text, not true or false"),
    ("nopreempt", "1", "1 is a number, not true or false"),
    ("name", "1.5", "1.5 is a number, not text"),
])
def test_a_value_of_the_wrong_kind_is_one_line_naming_the_field(key, text, line):
    data = read_yaml((ROOT / "tests/inventories/good/nat_wrr.yaml").read_text())
    data["vrrp_instances"][0][key] = read_yaml(f"v: {text}")["v"]
    with pytest.raises(InventoryError) as e:
        parse(data, "inv.yaml")
    assert e.value.lines == [next(ln for ln in e.value.lines if f"vrrp_instances[0].{key}: {line}" in ln)]


def test_env_name_pattern_is_the_one_in_loading():
    assert loading.ENV_NAME.fullmatch("prod.example") and not loading.ENV_NAME.fullmatch("lab-3\n")
