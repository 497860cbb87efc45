#!/usr/bin/env python3
"""Re-capture, on the kernel tier (real IPVS), the outputs the runbooks quote.

The plain lab's kernel has no IPVS: its `verify`, `status` and `sync-status` rows say so, which is
not what an on-call engineer sees on a real director. The blocks this script owns are marked in
runbooks/*.md by an HTML comment right before their ```text block:

    <!-- kernel-output: STATE -->
    ```text
    $ inv verify --env prod
    ...
    ```

STATE is `healthy`, or the faults to inject first, in order, space-separated: the names of
tests/cluster/test_runbooks.py's `<!-- lab-fault: NAME -->` faults (the same code, run against the
kernel tier's nodes and VIP), or `drain-SERVER` (`inv drain --server SERVER`). The block's first
line names the command, written for production; the script runs it with `--env ENV` (default
kernel), in that state, and writes back its real output under the same line (`# exit N` when it
exits non-zero). verify's per-node check rows are shortened to the first node's, the cluster's and
any row that is not ok. After each faulty state the tier is put back (`inv deploy`, sync daemons
started, `inv verify` green) before the next one.

Run it under the lab lock, with the kernel tier up and deployed (the VM boots in minutes under TCG):

    flock /tmp/lbtk-lab.lock sh -c '.venv/bin/inv lab.up --env kernel && .venv/bin/inv deploy --env kernel \
        && .venv/bin/python scripts/capture-runbook-outputs.py; .venv/bin/inv lab.down --env kernel'

`--list` prints the marked blocks and their states and touches nothing (no lab needed). `--keep DIR`
also writes the raw outputs to DIR/results.json; `--from DIR` renders those into the runbooks again
(after a change to the shortening here), no lab needed.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNBOOKS = ROOT / "runbooks"
MARKER = re.compile(r"^\s*<!--\s*kernel-output:\s*([\w\s-]+?)\s*-->\s*$")
EXIT_NOTE = re.compile(r"\s+#\s*exit\s+\d+\s*$")
# run after every read-only command of a state: they change the state themselves
MUTATING = ("sync-start", "sync-stop")
# faults that move the VIP: captured last, so that verify's "VIP moved N times in the last 10 min"
# warning (they cause it) does not show in the other incidents' outputs
VIP_MOVES = ("auth-mismatch-node2", "keepalived-down")
LOG_LINES = 14             # a quoted `inv logs`: its last lines
SETTLE_S = 90.0            # how long a put-back tier may take to turn green again


@dataclass
class Block:
    path: Path
    start: int          # index of the ```text line
    end: int            # index of its closing ```
    indent: str
    state: tuple[str, ...]
    command: str        # as quoted: `inv verify --env prod`, `# exit N` dropped

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.start + 1}"


def blocks(paths=None) -> tuple[list[Block], list[str]]:
    """Every marked block of the runbooks, and what is wrong with the markers (one line each)."""
    found, problems = [], []
    for path in paths or sorted(RUNBOOKS.glob("*.md")):
        lines = path.read_text().splitlines()
        for k, line in enumerate(lines):
            m = MARKER.match(line)
            if not m:
                continue
            where = f"{path.name}:{k + 1}"
            if k + 1 >= len(lines) or lines[k + 1].strip() != "```text":
                problems.append(f"{where}: a kernel-output marker must sit right before a ```text block")
                continue
            end = next((j for j in range(k + 2, len(lines)) if lines[j].strip() == "```"), None)
            first = lines[k + 2].strip() if k + 2 < len(lines) else ""
            if end is None or not first.startswith("$ inv ") or "--env prod" not in first:
                problems.append(f"{where}: the block's first line must be `$ inv TASK --env prod ...`")
                continue
            state = tuple(m.group(1).split())
            bad = [s for s in state if s != "healthy" and s not in step_names()]
            if bad or ("healthy" in state and len(state) > 1):
                problems.append(f"{where}: unknown state {' '.join(state)!r}: `healthy`, drain-SERVER, "
                                f"or faults of tests/cluster/test_runbooks.py")
                continue
            indent = lines[k + 1][:len(lines[k + 1]) - len(lines[k + 1].lstrip())]
            found.append(Block(path, k + 1, end, indent, () if state == ("healthy",) else state,
                               EXIT_NOTE.sub("", first[2:])))
    return found, problems


def step_names() -> set[str]:
    """The states' steps a marker may name: the runbook test's faults and drain-SERVER."""
    text = (ROOT / "tests" / "cluster" / "test_runbooks.py").read_text()
    m = re.search(r"^FAULTS = \{(.*?)\}", text, re.S | re.M)
    names = set(re.findall(r'"([\w-]+)":', m.group(1))) if m else set()
    return names | {"drain-node1", "drain-node2", "drain-node3"}


# ---------------------------------------------------------------- running on the tier

def inv(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "LBTK_FORMAT": "plain"})


def on_tier(command: str, env: str) -> list[str]:
    """The quoted command's argv as run on the tier: `--env prod` becomes `--env ENV`."""
    argv = shlex.split(command)[1:]
    return [env if a == "prod" and k and argv[k - 1] in ("--env", "-e") else a for k, a in enumerate(argv)]


def inject(state: tuple[str, ...], env: str, tmp: Path) -> None:
    from fabfile.infra import remote
    from fabfile.model.context import Env
    from fabfile.model.loading import load
    from tests.cluster.test_runbooks import FAULTS
    invy, path = load(env)
    with remote.nodes(Env(inv=invy, path=path, secrets={}, name=env)) as group:
        nodes = {c.name: c for c in group}
        for step in state:
            if step.startswith("drain-"):
                r = inv("drain", "--env", env, "--server", step.removeprefix("drain-"))
                if r.returncode:
                    raise SystemExit(f"capture: `inv drain` exited {r.returncode}: {r.stderr.strip()[-500:]}")
            else:
                FAULTS[step](nodes, tmp, env=env)


def put_back(env: str) -> None:
    """Drains undone, the inventory deployed, sync daemons started; then wait for verify green."""
    import json
    st = inv("status", "--env", env, "--json")
    try:
        drained = json.loads(st.stdout)["runtime"]["drained"]
    except (ValueError, KeyError):
        drained = []
    for addr in drained:
        inv("undrain", "--env", env, "--server", addr)
    for args in (("deploy",), ("sync-start",)):
        r = inv(*args, "--env", env)
        if r.returncode:
            raise SystemExit(f"capture: `inv {args[0]} --env {env}` exited {r.returncode}: {r.stderr.strip()[-500:]}")
    t0 = time.monotonic()
    while True:
        r = inv("verify", "--env", env)
        if r.returncode == 0:
            return
        if time.monotonic() - t0 > SETTLE_S:
            raise SystemExit(f"capture: `inv verify --env {env}` not green {SETTLE_S:.0f}s after the put-back:\n"
                             f"{r.stdout[-2000:]}")
        time.sleep(3)


def shorten_checks(lines: list[str], first: str) -> list[str]:
    """verify's `checks` table: the cluster's rows, node `first`'s, and any other node's row that
    is not ok or is a check `first` has not; the rest (the same checks as `first`'s, ok) becomes
    one line saying how many rows of which nodes were left out."""
    out, k = [], 0
    while k < len(lines):
        line = lines[k]
        out.append(line)
        k += 1
        if not (line.startswith("check ") and " node " in line and " result " in line):
            continue
        node_at, result_at = line.index(" node ") + 1, line.index(" result ") + 1
        if k < len(lines) and set(lines[k].replace(" ", "")) == {"-"}:
            out.append(lines[k])
            k += 1
        left: dict[str, int] = {}
        mark = None
        end = next((j for j in range(k, len(lines)) if not lines[j].strip() or lines[j].startswith("verify:")),
                   len(lines))
        firsts = {row[:node_at].strip() for row in lines[k:end] if row[node_at:result_at].strip() == first}
        while k < end:
            row = lines[k]
            node, result = row[node_at:result_at].strip(), row[result_at:].split(" ")[0]
            if node in ("cluster", first, "") or result != "ok" or row[:node_at].strip() not in firsts:
                out.append(row)
            else:
                if mark is None:
                    mark = len(out)
                left[node] = left.get(node, 0) + 1
            k += 1
        if left:
            names = ", ".join(sorted(left))
            n = sum(left.values())
            out.insert(mark, "…".ljust(node_at) + f"({names}: {n} more row{'s' if n > 1 else ''}, all ok)")
    return out


def render(block: Block, r: subprocess.CompletedProcess, first_node: str) -> list[str]:
    head = f"$ {block.command}" + (f"        # exit {r.returncode}" if r.returncode else "")
    body = r.stdout.rstrip("\n").splitlines()
    task = shlex.split(block.command)[1]
    if task == "verify":
        body = shorten_checks(body, first_node)
    elif task == "logs" and len(body) > LOG_LINES + 4:
        body = body[:3] + ["…"] + body[-LOG_LINES:]       # its title and table header, then the tail
    return [block.indent + line if line else "" for line in [head, *body]]


def capture(env: str, keep: Path | None, previous: Path | None, only: list[str] | None = None) -> int:
    """`only`: the runbooks (file names) whose blocks are captured; the others are left as they are."""
    sys.path.insert(0, str(ROOT))
    only = [RUNBOOKS / Path(name).name for name in only] if only else None
    import fabfile.lab.hooks  # noqa: F401  (the inventory's `lab:` section, as `inv` loads it)
    from fabfile.model.loading import load
    found, problems = blocks(only)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    first_node = load(env)[0].nodes[0].name
    states: dict[tuple[str, ...], list[Block]] = {}
    for b in found:
        states.setdefault(b.state, []).append(b)
    results: dict[tuple[tuple[str, ...], str], subprocess.CompletedProcess] = {}
    if previous is not None:          # re-render what an earlier run kept, no lab
        for x in json.loads((previous / "results.json").read_text()):
            results[(tuple(x["state"]), x["command"])] = subprocess.CompletedProcess(
                x["argv"], x["exit"], x["stdout"], x["stderr"])
        states = {}
    try:
        for state in sorted(states, key=lambda s: (s != (), any(f in VIP_MOVES for f in s), s)):
            commands = list(dict.fromkeys(b.command for b in states[state]))
            commands.sort(key=lambda c: shlex.split(c)[1] in MUTATING)
            print(f"capture: state {' '.join(state) or 'healthy'}: {len(commands)} command(s)", flush=True)
            if state:
                with tempfile.TemporaryDirectory() as tmp:
                    inject(state, env, Path(tmp))
                time.sleep(6)        # TCP_CHECK (delay_loop 2, retry 1) and VRRP see the fault
            for cmd in commands:
                t0 = time.monotonic()
                r = inv(*on_tier(cmd, env))
                results[(state, cmd)] = r
                print(f"  {cmd}: exit {r.returncode}, {time.monotonic() - t0:.1f}s", flush=True)
            put_back(env)
    finally:
        if keep is not None:          # what was captured, even when a put-back failed
            keep.mkdir(parents=True, exist_ok=True)
            (keep / "results.json").write_text(json.dumps(
                [{"state": list(st), "command": cmd, "argv": r.args, "exit": r.returncode, "stdout": r.stdout,
                  "stderr": r.stderr} for (st, cmd), r in results.items()], indent=1) + "\n")
    found, _ = blocks(only)           # read again: the runbooks' text may have moved meanwhile
    missing = sorted({b.where for b in found if (b.state, b.command) not in results})
    if missing:
        print(f"capture: no output kept for {', '.join(missing)}", file=sys.stderr)
        return 1
    for path in sorted({b.path for b in found}):
        lines = path.read_text().splitlines()
        for b in sorted((b for b in found if b.path == path), key=lambda b: -b.start):
            lines[b.start + 1:b.end] = render(b, results[(b.state, b.command)], first_node)
        path.write_text("\n".join(lines) + "\n")
    print(f"capture: {len(found)} block(s) rewritten in {len({b.path for b in found})} runbook(s)")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="kernel", help="the kernel tier's inventory (default: kernel)")
    ap.add_argument("--list", action="store_true", help="print the marked blocks, run nothing")
    ap.add_argument("--keep", type=Path, help="also write the raw outputs to DIR/results.json")
    ap.add_argument("--from", dest="previous", type=Path,
                    help="render DIR/results.json (of --keep) into the runbooks; no lab")
    ap.add_argument("--only", action="append", metavar="RUNBOOK",
                    help="capture only this runbook's blocks (a file name, e.g. replace-node.md; repeatable)")
    a = ap.parse_args()
    if a.list:
        found, problems = blocks()
        for b in found:
            print(f"{b.where}  {' '.join(b.state) or 'healthy':24}  {b.command}")
        print("\n".join(problems), file=sys.stderr)
        return 2 if problems else 0
    return capture(a.env, a.keep, a.previous, a.only)


if __name__ == "__main__":
    sys.exit(main())
