"""Driving the toolkit through its real CLI, as an operator would: one place for every test tier."""
from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def shown(path: Path) -> str:
    """A path as `inv` (run from ROOT, as inv() runs it) prints it: relative to ROOT when inside
    it, else absolute (fabfile.model.context.rel): the session's inventories are a temporary copy."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def inv(*args, check=False, timeout=300):
    r = subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, capture_output=True,
                       text=True, timeout=timeout, env={**os.environ, "LBTK_FORMAT": "plain"})
    if check and r.returncode != 0:
        raise AssertionError(f"inv {' '.join(args)} exited {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}")
    return r


def inv_json(*args, timeout=300):
    r = inv(*args, "--json", timeout=timeout)
    try:
        return r.returncode, json.loads(r.stdout)
    except ValueError:
        raise AssertionError(f"inv {' '.join(args)} --json printed no JSON (exit {r.returncode})\n"
                             f"{r.stdout[-2000:]}\n{r.stderr[-2000:]}") from None


# ---------------------------------------------------------------- a warm `inv` for the unit tier
# Every `python -m invoke` pays ~0.5 s of imports (paramiko, pydantic, rich, the task tree) before
# it parses a flag; the unit tier runs a few dozen of them. A zygote imports all of that once per
# test process and forks a child per run: the child is a fresh `inv` in every way a test can see
# (its own argv, environment, working directory, stdout, stderr and exit code; nothing of one run
# reaches the next), started in milliseconds. Tests of the lab tiers keep real processes.
ZYGOTE = r"""
import io, json, os, struct, sys
sys.path.insert(0, os.getcwd())
import invoke.main, fabfile.tasks, tasks  # noqa: F401  (the whole task tree, loaded once)
inp, out = sys.stdin.buffer, sys.stdout.buffer
while True:
    head = inp.read(4)
    if len(head) < 4:
        break
    req = json.loads(inp.read(struct.unpack(">I", head)[0]))
    pid = os.fork()
    if pid == 0:
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        fd_in = os.open(os.devnull, os.O_RDONLY)
        os.dup2(fd_in, 0)
        os.dup2(os.open(req["stdout"], os.O_WRONLY), 1)
        os.dup2(os.open(req["stderr"], os.O_WRONLY), 2)
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r"))
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), write_through=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), write_through=True)
        code = 0
        try:
            invoke.main.program.run(["invoke", *req["args"]])     # what `python -m invoke` runs
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:
            import traceback
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    out.write(struct.pack(">i", os.waitstatus_to_exitcode(status)))
    out.flush()
"""

_zygote: subprocess.Popen | None = None


def _warm() -> subprocess.Popen:
    global _zygote
    if _zygote is None or _zygote.poll() is not None:
        _zygote = subprocess.Popen([sys.executable, "-c", ZYGOTE], cwd=ROOT, stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, env={**os.environ}, start_new_session=True)
        atexit.register(_stop, _zygote)
    return _zygote


def _stop(z: subprocess.Popen) -> None:
    """The zygote and any run it forked (its own session: nothing else of ours is in it)."""
    import signal
    try:
        os.killpg(z.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    z.wait()


def run_inv(args, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """`python -m invoke ARGS` run from ROOT with `env` (default: this process's), forked from the
    warm zygote: what subprocess.run would return, with text stdout and stderr."""
    import struct
    import tempfile
    z = _warm()
    with tempfile.NamedTemporaryFile("w+") as o, tempfile.NamedTemporaryFile("w+") as e:
        req = json.dumps({"args": [str(a) for a in args], "cwd": str(ROOT), "env": dict(env or os.environ),
                          "stdout": o.name, "stderr": e.name}).encode()
        z.stdin.write(struct.pack(">I", len(req)) + req)
        z.stdin.flush()
        import select
        if not select.select([z.stdout], [], [], timeout)[0]:
            _stop(z)
            raise subprocess.TimeoutExpired(["inv", *args], timeout)
        head = z.stdout.read(4)
        if len(head) < 4:
            raise RuntimeError("the inv zygote died")
        code = struct.unpack(">i", head)[0]
        return subprocess.CompletedProcess(["inv", *args], code, Path(o.name).read_text(errors="replace"),
                                           Path(e.name).read_text(errors="replace"))


def inv_warm(*args, check=False, timeout=300, env: dict | None = None):
    """inv(), forked from the zygote (the unit tier's CLI tests: same argv, environment, output
    and exit code as a real `python -m invoke` run from ROOT)."""
    r = run_inv(args, {**os.environ, "LBTK_FORMAT": "plain", **(env or {})}, timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"inv {' '.join(args)} exited {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}")
    return r
