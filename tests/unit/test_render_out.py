"""`inv render --out DIR` (issue 24): the files hold the plaintext VRRP secret. They are created
anew at 0600 without following links, in directories we own that no one else can write; an
existing file is replaced only when it is a regular file of ours. Every refusal is one line, exit 2."""
import os
import stat
from pathlib import Path

import pytest
from invoke import Context, Exit

from fabfile.core.render.keepalived import CONF
from fabfile.tasks.core import render

ROOT = Path(__file__).resolve().parents[2]
ENV = "tests/inventories/good/nat_wrr.yaml"


@pytest.fixture(autouse=True)
def _secret(monkeypatch):
    monkeypatch.setenv("TEST_VRRP_PASS", "s3cret")
    monkeypatch.chdir(ROOT)


def run(out) -> tuple[int, list[str]]:
    try:
        render(Context(), env=ENV, node="lb1", out=str(out))
    except Exit as e:
        return e.code, str(e.message or "").splitlines()
    return 0, []


def conf_of(out: Path) -> Path:
    return out / "lb1" / CONF.lstrip("/")


def test_writes_every_file_the_secret_0600_in_0700_directories(tmp_path):
    out = tmp_path / "out"
    assert run(out) == (0, [])
    conf = conf_of(out)
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600 and "auth_pass s3cret" in conf.read_text()
    assert stat.S_IMODE(out.stat().st_mode) == 0o700 and stat.S_IMODE((out / "lb1").stat().st_mode) == 0o700


def test_every_file_is_created_exclusively_0600_and_never_through_a_link(tmp_path, monkeypatch):
    created = []
    real_open = os.open

    def spy(path, flags, mode=0o777, *, dir_fd=None):
        if flags & os.O_CREAT:
            created.append((path, flags, mode))
        return real_open(path, flags, mode, dir_fd=dir_fd)
    monkeypatch.setattr(os, "open", spy)
    assert run(tmp_path / "out")[0] == 0
    assert created and {"keepalived.conf"} <= {p for p, _, _ in created}
    for path, flags, mode in created:
        assert flags & os.O_EXCL and flags & os.O_NOFOLLOW and mode == 0o600, path


def test_a_link_in_place_of_a_file_is_refused_and_its_target_untouched(tmp_path):
    out = tmp_path / "out"
    assert run(out)[0] == 0
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    conf = conf_of(out)
    conf.unlink()
    conf.symlink_to(victim)
    code, lines = run(out)
    assert code == 2 and len(lines) == 1 and "keepalived.conf: exists and is not a regular file of yours" in lines[0]
    assert victim.read_text() == "keep me\n"


def test_a_link_in_place_of_a_directory_is_refused(tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    out.mkdir()
    (out / "lb1").symlink_to(elsewhere)
    code, lines = run(out)
    assert code == 2 and len(lines) == 1 and "lb1: not a directory of yours" in lines[0], lines
    assert not any(elsewhere.iterdir())


def test_an_existing_file_of_ours_is_replaced_not_rewritten(tmp_path):
    out = tmp_path / "out"
    assert run(out)[0] == 0
    conf = conf_of(out)
    conf.chmod(0o644)
    before = conf.stat().st_ino
    other = tmp_path / "hardlink"
    os.link(conf, other)            # a second name someone kept: it must not receive the new secret
    other.write_text("old\n")
    assert run(out)[0] == 0
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600 and "s3cret" in conf.read_text()
    assert conf.stat().st_ino != before and other.read_text() == "old\n"


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o1777])
def test_a_directory_others_can_write_is_refused(tmp_path, mode):
    out = tmp_path / "shared"
    out.mkdir()
    out.chmod(mode)
    code, lines = run(out)
    assert code == 2 and len(lines) == 1 and "writable by group or others" in lines[0], lines
    assert not any(out.iterdir())


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_a_directory_or_file_of_another_user_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    os.chown(out, 65534, 65534)
    code, lines = run(out)
    assert code == 2 and "owned by uid 65534, not you" in lines[0], lines
    os.chown(out, 0, 0)
    assert run(out)[0] == 0
    os.chown(conf_of(out), 65534, 65534)
    code, lines = run(out)
    assert code == 2 and "not a regular file of yours" in lines[0], lines


@pytest.mark.parametrize("out", ["/proc/nope", "/dev/null", "/proc/nope/deeper"])
def test_an_impossible_out_is_one_line_exit_2(out):
    code, lines = run(out)
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"error: --out {out}: "), lines


def test_monitoring_writes_the_rules_scrape_job_and_dashboard_without_a_secret(tmp_path, monkeypatch, capsys):
    """`inv render --monitoring --out DIR`: the cluster's files, from the inventory alone."""
    monkeypatch.delenv("TEST_VRRP_PASS")
    render(Context(), env=ENV, out=str(tmp_path / "out"), monitoring=True)
    written = sorted(p.name for p in (tmp_path / "out" / "monitoring").iterdir())
    assert [n.rsplit(".", 2)[-2:] for n in written] == [["dashboard", "json"], ["rules", "yml"], ["scrape", "yml"]]
    assert "wrote " in capsys.readouterr().out


def test_monitoring_refuses_node_and_live_in_one_line(tmp_path):
    for flag in ("node", "live"):
        with pytest.raises(Exit) as e:
            render(Context(), env=ENV, monitoring=True, **{flag: "lb1" if flag == "node" else True})
        assert e.value.code == 2 and f"drop --{flag}" in str(e.value.message) and "\n" not in str(e.value.message)
