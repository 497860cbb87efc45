"""The on-call runbooks (runbooks/*.md) are executable: every command they name exists, takes
the flags given, and runs on the lab as written, in order.

Conventions the runbooks follow (runbooks/README.md explains them to readers):
- a ```sh block holds commands only, one `inv TASK --env prod ...` a line (no pipes, no chains),
  rehearsed on the lab with `--env lab`;
- `# expect-exit: N` on the line before a command: the exit code it has during the drill
  (e.g. `inv verify` exits 1 while the fault is present, `inv diff` exits 1 on drift);
- `# expect-output: TEXT` on a line before a command: TEXT must be in what it prints (the
  symptom or the healthy result the step is about; several such lines may precede one command);
- `# prod-only` on the line before a command: checked here (task and flags) but not run on the lab;
- `<!-- lab-fault: NAME -->` between blocks: this test injects fault NAME at that point (a
  stand-in for the incident; see FAULTS), so the fix steps after it have something to fix;
- `inv ...` in inline code in the prose is checked too (task and flags), not run;
- `<!-- lab-env: NAME -->` anywhere: the runbook is rehearsed on inventories/NAME.yaml instead of
  lab.yaml (a shape the plain lab does not have, e.g. lab-multi); the test deploys NAME first and
  the plain lab again after;
- variables at the top, in the first ```sh block: `NAME=VALUE  # lab: LABVALUE` a line (ENV, NODE,
  SERVER, VIP...): the commands say "$NAME"; an operator sets the block once and pastes the rest,
  this test checks the commands with the production values and rehearses them with the lab's (ENV's
  lab value is the inventory the rehearsal runs on).

Part (a) needs no lab. Part (b) runs each runbook on the lab, then `inv verify --env lab` must
be green; a drain left behind is undone, and a runbook that did not end clean is followed by
`inv deploy --env lab`, so the next test (and the next engineer) finds the lab as deployed.
LBTK_RUNBOOK_CAPTURE=DIR keeps every command's output (what the runbooks quote as healthy output).
"""
from __future__ import annotations

import os
import re
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from fabfile.model.loading import inventory_dir

from .conftest import ROOT, inv, sh

RUNBOOKS = ROOT / "runbooks"
EXPECT = re.compile(r"^#\s*expect-exit:\s*(\d+)\s*$")
PROD_ONLY = re.compile(r"^#\s*prod-only\b")
EXPECT_OUT = re.compile(r"^#\s*expect-output:\s*(.+?)\s*$")
FAULT = re.compile(r"^<!--\s*lab-fault:\s*([\w-]+)\s*-->$")
INLINE = re.compile(r"`(inv [^`]+)`")
LAB_ENV = re.compile(r"^<!--\s*lab-env:\s*([\w-]+)\s*-->$")
VAR = re.compile(r"^([A-Z][A-Z0-9_]*)=(\S+)(?:\s+#\s*lab:\s*(\S+))?(?:\s.*)?$")
REF = re.compile(r"\$\{?([A-Z][A-Z0-9_]*)\}?")
SCENARIOS = ["failover-drill", "vip-not-answering", "split-brain", "real-server-out-of-pool",
             "add-drain-remove-real-server", "replace-node", "rotate-vrrp-secret", "sync-daemon-down",
             "multi-master"]


@dataclass
class Step:
    line: int
    command: str = ""          # an `inv ...` line, or "" for a fault
    expect: int = 0
    prod_only: bool = False
    output: list[str] = field(default_factory=list)
    fault: str = ""
    variables: dict[str, tuple[str, str]] = field(default_factory=dict)   # NAME: (production, lab)

    def written_for(self, which: int) -> str:
        """The command with its "$NAME"s set: 0 the production values, 1 the lab's."""
        return REF.sub(lambda m: self.variables[m.group(1)][which] if m.group(1) in self.variables
                       else m.group(0), self.command)

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.written_for(1))[1:]

    def rehearsal(self, lab_env: str = "lab") -> list[str]:
        """The command as the lab rehearsal runs it: the variables' lab values, and --env prod written
        out becomes --env lab (or the runbook's lab-env)."""
        argv = self.argv
        return [(lab_env if a == "prod" and k and argv[k - 1] in ("--env", "-e") else a) for k, a in enumerate(argv)]


@dataclass
class Runbook:
    path: Path
    steps: list[Step] = field(default_factory=list)
    inline: list[tuple[int, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lab_env: str = "lab"
    variables: dict[str, tuple[str, str]] = field(default_factory=dict)


def parse(path: Path) -> Runbook:
    rb = Runbook(path)
    in_sh = in_other = False
    expect, prod_only, outs = None, False, []
    for no, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        where = f"{path.name}:{no}"
        if "```" in line and not line.startswith("```"):
            rb.errors.append(f"{where}: a code fence must start its line (after indentation), or the test cannot see it")
            continue
        if line.startswith("```"):
            if in_sh or in_other:
                if in_sh and (expect is not None or outs or prod_only):
                    rb.errors.append(f"{where}: a marker (`# expect-...`, `# prod-only`) with no command after it")
                in_sh = in_other = False
                expect, prod_only, outs = None, False, []
            elif line == "```sh":
                in_sh = True
            else:
                in_other = True
            continue
        if in_other:
            continue
        if not in_sh:
            if m := LAB_ENV.match(line):
                rb.lab_env = m.group(1)
            if m := FAULT.match(line):
                rb.steps.append(Step(no, fault=m.group(1)))
            rb.inline += [(no, m.group(1)) for m in INLINE.finditer(line)]
            continue
        if not line:
            continue
        if m := EXPECT.match(line):
            expect = int(m.group(1))
        elif m := EXPECT_OUT.match(line):
            outs.append(m.group(1))
        elif PROD_ONLY.match(line):
            prod_only = True
        elif line.startswith("#"):
            continue
        elif m := VAR.match(line):
            name, prod, lab = m.groups()
            if any(st.command for st in rb.steps):
                rb.errors.append(f"{where}: `{name}=`: variables go at the top, before the first command")
            if lab is None:
                rb.errors.append(f"{where}: `{name}={prod}` names no lab value: end it with `# lab: VALUE`")
            rb.variables[name] = (prod, lab or prod)
            if name == "ENV":
                rb.lab_env = lab or prod
        else:
            if not line.startswith("inv "):
                rb.errors.append(f"{where}: `{line}`: a ```sh block in a runbook holds `inv ...` commands "
                                 "(and NAME=VALUE variables at the top) only")
            for ref in REF.findall(line):
                if ref not in rb.variables:
                    rb.errors.append(f"{where}: `{line}`: ${ref} is not set in the runbook's variables")
            rb.steps.append(Step(no, line, expect or 0, prod_only, outs, variables=rb.variables))
            expect, prod_only, outs = None, False, []
    return rb


def runbook_paths() -> list[Path]:
    return sorted(RUNBOOKS.glob("*.md"))


def _parser():
    from invoke.parser import Parser
    from fabfile.tasks import namespace
    return Parser(contexts=namespace.to_contexts())


def command_problem(cmd: str, prod_only: bool, strict_env: bool = True) -> str | None:
    """Why `cmd` would not run as written (unknown task or flag, two tasks, wrong --env), else None."""
    from invoke.parser import ParseError
    try:
        argv = shlex.split(cmd)
    except ValueError as e:
        return f"cannot split: {e}"
    if argv[:1] != ["inv"] or len(argv) < 2:
        return "not an `inv TASK ...` command"
    try:
        ctxs = _parser().parse_argv(argv[1:])
    except ParseError as e:
        return f"inv rejects it: {e}"
    if len(ctxs) != 1:
        return f"one task a line, not {len(ctxs)} ({', '.join(c.name for c in ctxs)})"
    env = ctxs[0].args["env"].value if "env" in ctxs[0].args else None
    if strict_env and env is not None and "--env" not in cmd and "-e" not in argv:
        return "name the inventory: add `--env prod` (the lab rehearsal swaps in `--env lab`)"
    if strict_env and env not in (None, "prod"):
        return f"--env {env}: runbooks are written for production: `--env prod`"
    return None


# ---------------------------------------------------------------- (a) no lab needed

def test_every_scenario_has_a_runbook_and_the_index_links_them():
    names = {p.stem for p in runbook_paths()}
    assert set(SCENARIOS) <= names, f"missing runbooks: {sorted(set(SCENARIOS) - names)}"
    index = (RUNBOOKS / "README.md").read_text()
    for s in SCENARIOS:
        assert f"({s}.md)" in index, f"runbooks/README.md does not link {s}.md"
    assert "(runbooks/README.md)" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("path", runbook_paths(), ids=lambda p: p.stem)
def test_runbook_commands_exist_with_their_flags(path):
    rb = parse(path)
    problems = list(rb.errors)
    for s in rb.steps:
        if s.fault:
            if s.fault not in FAULTS:
                problems.append(f"{path.name}:{s.line}: unknown lab-fault {s.fault!r} — known: {', '.join(FAULTS)}")
            continue
        why = command_problem(s.written_for(0), s.prod_only)
        if why:
            problems.append(f"{path.name}:{s.line}: `{s.command}`: {why}")
    for no, cmd in rb.inline:
        why = command_problem(cmd, prod_only=True, strict_env=False)
        if why:
            problems.append(f"{path.name}:{no}: `{cmd}` (in the text): {why}")
    assert not problems, "\n".join(problems)
    if path.stem in SCENARIOS:
        assert any(s.command and not s.prod_only for s in rb.steps), f"{path.name} has no command to run"
    if any(s.command for s in rb.steps):
        # 3 a.m.: the estate's names are set once, at the top; no box names a lab node or address
        assert rb.variables.get("ENV", ("", ""))[0] == "prod", f"{path.name}: no `ENV=prod  # lab: ...` at the top"
        lab_words = re.compile(r"\b(node\d|u\d|10\.189\.0\.\d+)\b")
        named = [f"{path.name}:{s.line}: `{s.command}`" for s in rb.steps if s.command and lab_words.search(s.command)]
        assert not named, "a lab name in a box (make it a variable):\n" + "\n".join(named)


def test_parser_catches_what_it_must():
    assert command_problem("inv status --env prod", False) is None
    assert "No idea" in command_problem("inv stauts --env prod", False)
    assert "No idea" in command_problem("inv verify --env prod --bogus", False)
    assert "positional" in command_problem("inv drain --env prod", False)
    assert "one task a line" in command_problem("inv status --env prod verify", False)
    assert "--env" in command_problem("inv status", False)
    assert command_problem("inv status --env prod", True) is None
    assert "written for production" in command_problem("inv status --env lab", False)


# ---------------------------------------------------------------- faults the drills inject

def _wait(pred, timeout=15.0, what="condition"):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return
        time.sleep(0.25)
    raise AssertionError(f"fault injection: {what} not reached in {timeout:.0f}s")


# Each fault takes the nodes' links, a scratch dir and the inventory the nodes run (the plain lab's,
# or the kernel tier's when scripts/capture-runbook-outputs.py captures an incident there).

def _vip(env: str) -> str:
    from fabfile.model.loading import load
    return str(load(env)[0].vrrp_instances[0].vips[0])


def _holders(nodes, env="lab"):
    vip = _vip(env)
    return [n for n, c in nodes.items() if f"{vip}/" in sh(c, "ip -4 -o addr show dev eth0").stdout]


def fault_keepalived_down(nodes, tmp, env="lab"):
    """keepalived stopped on every node: nobody holds the VIP."""
    for c in nodes.values():
        sh(c, "systemctl stop keepalived")
    _wait(lambda: not _holders(nodes, env), what="VIP gone")


def fault_bad_nginx_deploy(nodes, tmp, env="lab"):
    """A deploy from another checkout whose inventory moved nginx to port 8080: the VIP is held
    but nothing answers on :80. The live files no longer match the session's inventory."""
    data = yaml.safe_load((inventory_dir() / f"{env}.yaml").read_text())
    data["nginx"]["port"] = 8080
    other = tmp / f"{env}.yaml"   # the same stem: same drain record, secret file relative to inventories/
    other.write_text(yaml.safe_dump(data))
    inv("nginx", "--env", str(other), check=True)


def fault_auth_mismatch_node2(nodes, tmp, env="lab"):
    """A hand edit of auth_pass on node2: node1 and node2 ignore each other's adverts, both MASTER."""
    sh(nodes["node2"], "sed -i 's/^\\(\\s*auth_pass\\s\\+\\).*/\\1handedit/' /etc/keepalived/keepalived.conf"
                       " && systemctl reload keepalived")
    _wait(lambda: len(_holders(nodes, env)) == 2, timeout=20, what="split brain (VIP on two nodes)")


def fault_nginx_down_node3(nodes, tmp, env="lab"):
    """nginx stopped on node3: that real server fails its health check."""
    sh(nodes["node3"], "systemctl stop nginx")


def fault_rebuild_node3(nodes, tmp, env="lab"):
    """node3 replaced by a fresh machine: same name and address, packages installed, nothing deployed."""
    from fabfile.model.context import load_env
    from fabfile.core.render import managed_paths
    e = load_env(env)
    paths = managed_paths(e.inv, "node3", e.secrets)
    c = nodes["node3"]
    sh(c, "systemctl stop keepalived nginx lbtk-vip-lo lbtk-fwmark 2>/dev/null; "
          "systemctl disable keepalived lbtk-vip-lo lbtk-fwmark 2>/dev/null; "
          f"ip addr del {_vip(env)}/32 dev lo 2>/dev/null; rm -rf /var/lib/lbtk; "
          "rm -f " + " ".join(shlex.quote(p) for p in paths) + "; systemctl daemon-reload")


FAULTS = {"keepalived-down": fault_keepalived_down, "bad-nginx-deploy": fault_bad_nginx_deploy,
          "auth-mismatch-node2": fault_auth_mismatch_node2, "nginx-down-node3": fault_nginx_down_node3,
          "rebuild-node3": fault_rebuild_node3}


# ---------------------------------------------------------------- (b) on the lab

def _secrets() -> set[str]:
    d = inventory_dir() / "secrets"
    return {p.read_text().strip() for p in (d / "lab.auth_pass", d / "lab.auth_pass.prev") if p.exists()} - {""}


def _put_lab_back(clean: bool):
    """Whatever a runbook left: no drained server, no isolated node and, unless it ended clean (verify
    green, exit codes as written), every file and daemon as the inventory says."""
    import json
    st = inv("status", "--env", "lab", "--json")
    try:
        record = json.loads(st.stdout)["runtime"]     # drains and isolated nodes live on the nodes
    except (ValueError, KeyError):
        record = {}
    for addr in record.get("drained", []):
        inv("undrain", "--env", "lab", "--server", addr)
    for node in record.get("isolated", []):
        inv("isolate", "--env", "lab", "--node", node, "--undo")
    if not clean:
        inv("deploy", "--env", "lab")


@pytest.mark.parametrize("name", SCENARIOS)
def test_runbook_runs_on_the_lab(deployed, nodes, tmp_path, name):
    rb = parse(RUNBOOKS / f"{name}.md")
    capture = os.environ.get("LBTK_RUNBOOK_CAPTURE")
    out_dir = Path(capture) / name if capture else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    wrong, ran, clean = [], 0, False
    t0 = time.monotonic()
    try:
        if rb.lab_env != "lab":
            r = inv("deploy", "--env", rb.lab_env)
            assert r.returncode == 0, f"{name}.md: deploying its lab shape {rb.lab_env}: {r.stderr[-2000:]}"
        for k, s in enumerate(rb.steps):
            if s.fault:
                FAULTS[s.fault](nodes, tmp_path)
                continue
            if s.prod_only or s.argv[0] in ("lab.up", "lab.down"):
                continue
            r = inv(*s.rehearsal(rb.lab_env), timeout=300)
            ran += 1
            if out_dir:
                (out_dir / f"{k:02d}.txt").write_text(f"$ {s.command}\n# exit {r.returncode}\n{r.stdout}"
                                                      + (f"\n# stderr\n{r.stderr}" if r.stderr else ""))
            missing = [t for t in s.output if t not in r.stdout + r.stderr]
            leaked = [v for v in _secrets() if v in r.stdout + r.stderr]
            assert not leaked, f"{name}.md:{s.line}: `{s.command}` printed the VRRP secret"

            if r.returncode != s.expect or missing:
                wrong.append(f"{name}.md:{s.line}: `{s.command}` exited {r.returncode}, the runbook says "
                             f"{s.expect}" + "".join(f"; it does not print {t!r}" for t in missing)
                             + f"\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}")
                if len(wrong) >= 3:
                    break
        final = inv("verify", "--env", rb.lab_env)
        clean = not wrong and final.returncode == 0 and rb.lab_env == "lab"
    finally:
        if out_dir:
            (out_dir / "runtime.txt").write_text(f"{time.monotonic() - t0:.1f}s {ran} commands\n")
        _put_lab_back(clean)
    assert ran, f"{name}.md: nothing ran"
    assert not wrong, "\n\n".join(wrong)
    assert final.returncode == 0, f"after {name}.md, `inv verify --env {rb.lab_env}` is not green:\n{final.stdout}"


# ---------------------------------------------------------------- inv rotate-vrrp-secret, no lab

def test_rotate_refuses_when_the_env_var_wins(monkeypatch):
    before = inventory_dir() / "secrets" / "lab.auth_pass"
    old = before.read_text() if before.exists() else None
    monkeypatch.setenv("LAB_VRRP_PASS", "envpass1")
    r = inv("rotate-vrrp-secret", "--env", "lab")
    assert r.returncode == 2
    assert "LAB_VRRP_PASS is set in this shell and wins over auth_pass_file" in r.stderr
    assert "nothing was changed" in r.stderr and "envpass1" not in r.stdout + r.stderr
    assert (before.read_text() if before.exists() else None) == old


def test_rotate_swaps_secret_files_and_back(tmp_path):
    import stat
    from fabfile.model import secrets
    from fabfile.errors import LbtkError
    from fabfile.ops.secret import PREV, swap_in, undo
    p = tmp_path / "x.auth_pass"
    p.write_text("oldpass1\n")
    masker = secrets.Masker()
    old = swap_in([p], previous=False, masker=masker)
    new = p.read_text().strip()
    assert old == {p: "oldpass1"} and re.fullmatch(r"[0-9a-f]{8}", new)
    prev = p.with_name(p.name + PREV)
    assert prev.read_text().strip() == "oldpass1"
    assert stat.S_IMODE(p.stat().st_mode) == 0o600 == stat.S_IMODE(prev.stat().st_mode)
    assert masker.mask(f"x {new} y") == "x ******** y"
    swap_in([p], previous=True)                     # --previous: the two swap back
    assert (p.read_text().strip(), prev.read_text().strip()) == ("oldpass1", new)
    undo({p: "third111"})
    assert (p.read_text().strip(), prev.read_text().strip()) == ("third111", "oldpass1")
    q = tmp_path / "y.auth_pass"
    q.write_text("abc\n")
    with pytest.raises(LbtkError, match="no earlier rotation"):
        swap_in([q], previous=True)
    assert q.read_text() == "abc\n"


# ---------------------------------------------------------------- the 12 -> 13 upgrade, on its own lab

UPGRADE = "upgrade-debian-12-to-13"
PROBE_INTERVAL = 0.020


@pytest.fixture
def upgrade_lab():
    """lab-upgrade made fresh (three bookworm nodes: a node re-imaged by an earlier run would not
    be), and taken down after: its nodes end on trixie."""
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces, systemd-nspawn)")
    from fabfile import lab as labmod
    from fabfile.lab.hooks import spec_for
    rb = parse(RUNBOOKS / f"{UPGRADE}.md")
    spec = spec_for(rb.lab_env)
    labmod.down(spec, progress=lambda s: None)
    labmod.build_rootfs(spec, progress=lambda s: None)
    labmod.up(spec, progress=lambda s: None)
    try:
        yield rb
    finally:
        labmod.down(spec, progress=lambda s: None)


def _swaps(rb: Runbook) -> list[tuple[str, int, int, bool]]:
    """(node, first step, last step, VIP holder) of each node swap in the runbook: from its
    `os-upgrade` (not --check, not a refusal) to its `undrain`."""
    out, start = [], {}
    for k, s in enumerate(rb.steps):
        a = s.argv
        if not a:
            continue
        node = a[a.index("--node") + 1] if "--node" in a else a[a.index("--server") + 1] if "--server" in a else None
        if a[0] == "os-upgrade" and "--check" not in a and s.expect == 0 and node not in start:
            start[node] = (k, "--force" in a)
        elif a[0] == "undrain" and node in start:
            k0, holder = start.pop(node)
            out.append((node, k0, k, holder))
    return out


def test_upgrade_runbook_runs_on_the_lab(upgrade_lab, tmp_path):
    """runbooks/upgrade-debian-12-to-13.md verbatim on lab-upgrade (bookworm u1..u3) under an HTTP
    probe through the VIP every 20 ms: every exit code and output as written, all three nodes on
    trixie at the end, and no failed probe while a backup (a node not holding the VIP) is swapped."""
    import json
    import threading
    from fabfile.ops import upgrade
    from fabfile.ops.drill import Probe
    from fabfile.model.context import load_env
    from fabfile.model.loading import load
    rb = upgrade_lab
    env = rb.lab_env
    invy, _ = load(env)
    r = inv("deploy", "--env", env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert {s.release for s in upgrade.observe_all(load_env(env)).values()} == {"bookworm"}
    vip = invy.vrrp_instances[0].vips[0]
    probe = Probe(vip, invy.nginx.port, PROBE_INTERVAL, [n.name for n in invy.nodes])
    th = threading.Thread(target=probe.run, daemon=True)
    th.start()
    time.sleep(1.0)
    capture = os.environ.get("LBTK_RUNBOOK_CAPTURE")
    out_dir = Path(capture) / UPGRADE if capture else tmp_path
    out_dir.mkdir(parents=True, exist_ok=True)
    times, wrong = [], []
    try:
        for k, s in enumerate(rb.steps):
            t0 = time.monotonic()
            if s.prod_only or s.fault:
                times.append((t0, t0))
                continue
            r = inv(*s.rehearsal(env), timeout=600)
            times.append((t0, time.monotonic()))
            (out_dir / f"{k:02d}.txt").write_text(f"$ {s.command}\n# exit {r.returncode}  "
                                                  f"{times[-1][1] - t0:.1f}s\n{r.stdout}"
                                                  + (f"\n# stderr\n{r.stderr}" if r.stderr else ""))
            missing = [t for t in s.output if t not in r.stdout + r.stderr]
            if r.returncode != s.expect or missing:
                wrong.append(f"{UPGRADE}.md:{s.line}: `{s.command}` exited {r.returncode}, the runbook says "
                             f"{s.expect}" + "".join(f"; it does not print {t!r}" for t in missing)
                             + f"\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}")
                break
        time.sleep(0.5)
    finally:
        probe.stop.set()
        th.join()
    assert not wrong, "\n\n".join(wrong)
    releases = {n: s.release for n, s in upgrade.observe_all(load_env(env)).items()}
    assert releases == {n.name: "trixie" for n in invy.nodes}, releases
    figures = {"probe_interval_s": PROBE_INTERVAL, "probes": len(probe.results),
               "failed": sum(1 for x in probe.results if not x[1]), "swaps": []}
    for node, k0, k1, holder in _swaps(rb):
        a, b = times[k0][0], times[k1][1]
        res = [x for x in probe.results if a <= x[0] < b]
        figures["swaps"].append({"node": node, "vip_holder": holder, "os_upgrade_s": round(times[k0][1] - a, 1),
                                 "swap_s": round(b - a, 1), "probes": len(res),
                                 "failed": sum(1 for x in res if not x[1])})
    (out_dir / "figures.json").write_text(json.dumps(figures, indent=1) + "\n")
    print(f"\n{UPGRADE}: {json.dumps(figures)}")
    swaps = figures["swaps"]
    assert [s["node"] for s in swaps] == ["u3", "u2", "u1"] and [s["vip_holder"] for s in swaps] == [False, False, True]
    kept = [s for s in swaps if not s["vip_holder"]]
    assert all(s["probes"] > 100 for s in kept), swaps
    assert sum(s["failed"] for s in kept) == 0, f"failed probes while a backup was swapped: {swaps}"


# ---------------------------------------------------------------- adopt-existing-cluster.md

ADOPTED = "adopted-runbook"


def _adoption_argv(s: Step) -> list[str]:
    """A box of adopt-existing-cluster.md as the rehearsal runs it: the new inventory is
    ADOPTED, and `inv import` reaches the lab's nodes (their addresses, root and the lab's key)
    instead of production's host names, sudo user and bastion."""
    argv = [ADOPTED if a == "prod" and k and argv_k in ("--env", "-e") else a
            for k, (a, argv_k) in enumerate(zip(s.argv, [""] + s.argv[:-1]))]
    if argv[0] != "import":
        return argv
    from .test_adopt import HOSTS
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ("--hosts", "--user", "--gateway"):
            skip = True
            continue
        if a != "--become":
            out.append(a)
    return out + ["--hosts", ",".join(HOSTS.values()), "--user", "root",
                  "--key-filename", "/var/tmp/lbtk-lab/id_ed25519", "--known-hosts", "/var/tmp/lbtk-lab/known_hosts"]


def test_adopt_runbook_runs_on_a_hand_built_lab(deployed, nodes):
    """The adoption runbook on the lab built by hand as the seed tutorial builds it (test_adopt's
    script): every box as written, with the lab's hosts; verify green at the end; the lab put back."""
    from .test_adopt import STRIP, hand_build
    rb = parse(RUNBOOKS / "adopt-existing-cluster.md")
    assert rb.steps and not rb.errors, rb.errors
    for c in nodes.values():
        sh(c, STRIP)
    for name, c in nodes.items():
        hand_build(c, name)
    wrong = []
    try:
        for s in rb.steps:
            if s.fault or s.prod_only:
                continue
            argv = _adoption_argv(s)
            if argv[0] == "check" or argv[:2] == ["deploy", "--check"]:
                # the plain lab's kernel has no IPVS: the lab's section lets lbtk run VRRP-only
                path = inventory_dir() / f"{ADOPTED}.yaml"
                if "lab:" not in path.read_text():
                    path.write_text(path.read_text() + "lab: {bridge: lbtk-br0, gateway: 10.189.0.1/24}\n")
            r = inv(*argv, timeout=300)
            missing = [t for t in s.output if t not in r.stdout + r.stderr]
            if r.returncode != s.expect or missing:
                wrong.append(f"adopt-existing-cluster.md:{s.line}: `{' '.join(argv)}` exited {r.returncode}"
                             + "".join(f"; it does not print {t!r}" for t in missing)
                             + f"\n{r.stdout[-2000:]}\n{r.stderr[-1500:]}")
                break
    finally:
        (inventory_dir() / f"{ADOPTED}.yaml").unlink(missing_ok=True)
        (inventory_dir() / "secrets" / f"{ADOPTED}.auth_pass").unlink(missing_ok=True)
        for c in nodes.values():
            sh(c, "systemctl disable --now lvs-vip; rm -f /etc/systemd/system/lvs-vip.service "
                  "/etc/sysctl.d/99-lvs.conf; " + STRIP)
        inv("deploy", "--env", "lab", check=True)
    assert not wrong, "\n\n".join(wrong)
