"""The shell apply folds into fewer round trips (fabfile/ops/apply.py), run here against stand-ins
that print what the real tools printed (tests/fixtures/): keepalived -t before the swap, the
health check's `systemctl is-active` and the node finishing the change only when every daemon is up."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fabfile.ops import apply
from fabfile.parsers import systemctl
from fabfile.parsers.keepalived_t import held_back, parse_keepalived_check
from fabfile.parsers.lbtk import finished, health_section

FX = Path(__file__).resolve().parent.parent / "fixtures"


def stand_in(tmp_path: Path, tool: str, stdout: Path | None, rc: int, stderr: Path | None = None) -> dict:
    """PATH with `tool` printing a captured output and exiting as the real one did."""
    bin_ = tmp_path / "bin"
    bin_.mkdir(exist_ok=True)
    (bin_ / tool).write_text("#!/bin/sh\n" + (f"cat '{stdout}'\n" if stdout else "")
                             + (f"cat '{stderr}' >&2\n" if stderr else "") + f"exit {rc}\n")
    (bin_ / tool).chmod(0o755)
    return {"PATH": f"{bin_}:/usr/bin:/bin"}


def sh(cmd: str, env: dict) -> str:
    r = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=30, env=env)
    assert r.returncode == 0, r.stderr
    return r.stdout


# the fixtures' units, in the order systemctl printed them (tests/unit/test_parsers.py)
IS_ACTIVE = {"is_active": ["nginx", "keepalived", "ssh", "lbtk-vip-lo", "lbtk-fail", "lbtk-slow", "lbtk-nope"],
             "is_active_all_active": ["nginx", "ssh", "systemd-journald"],
             "is_active_after_stop": ["nginx"]}


@pytest.mark.parametrize("name", sorted(IS_ACTIVE))
def test_the_node_finishes_only_when_every_daemon_is_up(tmp_path, name):
    units = IS_ACTIVE[name]
    rc = int((FX / f"systemctl/{name}.rc").read_text()) if (FX / f"systemctl/{name}.rc").exists() else 0
    env = stand_in(tmp_path, "systemctl", FX / f"systemctl/{name}.txt", rc)
    out = sh(apply._health_script(units, f"touch {tmp_path}/done", wait=0), env)
    seen = systemctl.parse_is_active(units, health_section(out))
    everyone_up = all(w == "active" for w in seen.values())
    assert finished(out) == everyone_up == (tmp_path / "done").exists()
    assert name != "is_active" or (rc == 0 and not everyone_up)      # is-active's 0 means "any", not "all"


def test_a_silent_systemctl_is_no_health_and_no_finish(tmp_path):
    env = stand_in(tmp_path, "systemctl", None, 1)
    out = sh(apply._health_script(["keepalived"], f"touch {tmp_path}/done", wait=0), env)
    assert not finished(out) and not (tmp_path / "done").exists()
    with pytest.raises(Exception, match="0 line"):
        systemctl.parse_is_active(["keepalived"], health_section(out))


KT = ["clean", "auth_pass_long", "missing_include", "linkbeat_unknown_iface", "nopreempt_master"]


@pytest.mark.parametrize("name", KT)
def test_keepalived_t_holds_the_swap_back_unless_clean(tmp_path, name):
    """The check-then-swap round trip: what keepalived -t said decides on the node, and what the
    node prints back gives the same verdict as keepalived's own streams."""
    kt = FX / "keepalived_t"
    rc = int((kt / f"{name}.rc").read_text())
    env = stand_in(tmp_path, "keepalived", kt / f"{name}.stdout", rc, kt / f"{name}.txt")
    swapped = tmp_path / "swapped"
    out = sh(apply.check_then("x", f"touch {swapped}"), env)
    direct = parse_keepalived_check((kt / f"{name}.stdout").read_text(), (kt / f"{name}.txt").read_text(), rc)
    held = held_back(out)
    assert swapped.exists() == (held is None) == direct.ok
    if held is not None:
        assert parse_keepalived_check("", held[1], held[0]) == direct


def test_reloads_alone_wait_less_than_a_start_or_restart():
    """The health check's wait follows what the plan does to the daemons it looks at."""
    from fabfile.core.actions import Action
    from fabfile.core.plan import NodePlan

    def plan(*actions):
        p = NodePlan("lb1")
        p.actions += list(actions)
        return p
    assert apply.health_wait(plan(Action("reload", "keepalived"))) == apply.RELOAD_WAIT
    assert apply.health_wait(plan(Action("nginx-test"), Action("reload", "nginx"), Action("reload", "keepalived"))) \
        == apply.RELOAD_WAIT
    assert apply.health_wait(plan(Action("reload", "keepalived"), Action("restart", "nginx"))) == apply.HEALTH_WAIT
    assert apply.health_wait(plan(Action("enable-now", "keepalived"))) == apply.HEALTH_WAIT
    assert apply.RELOAD_WAIT < apply.HEALTH_WAIT
