"""Issue 29, the CLI keeps its word: every usage error is one line and exit 2; a short flag means
one thing on every task; numeric flags are typed; `inv --list` shows whole lines; `--version`;
`-v` shows each remote command, secrets masked; every environment variable read is documented;
progress on a terminal shows nginx's `[emerg]` as nginx wrote it."""
from __future__ import annotations

import inspect
import io
import re
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import pytest

from fabfile import __version__
from fabfile.infra import remote, trace
from fabfile.model.secrets import Masker
from fabfile.tasks import namespace
from fabfile.tasks.common import SHORT_FLAGS, WHOLE_NUMBERS
from fabfile.tasks.program import Program
from tests.cli import run_inv

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- usage errors: exit 2, one line

@pytest.mark.parametrize("args,line", [
    (["verify", "--jsn"], "error: unknown flag --jsn — `inv --help verify` lists its flags"),
    (["--jsn", "verify"], "error: unknown flag --jsn — `inv --list` lists the tasks"),
    (["verfy"], "error: unknown task 'verfy' — `inv --list` lists the tasks"),
    (["verify", "--parallel", "x"], "error: --parallel x: not a whole number — `inv --help verify` lists its flags"),
    (["status", "deploy", "--batch=two"], "error: --batch two: not a whole number — `inv --help deploy` lists its flags"),
    (["verify", "--env"], "error: --env needs a value — `inv --help verify` lists its flags"),
    (["drain"], "error: drain needs --server — `inv --help drain` lists its flags"),
    (["--help", "verfy"], "error: unknown task 'verfy' — `inv --list` lists the tasks"),
    # Invoke's own short flags, after a task: no silent --search-root, --collection
    (["os-upgrade", "-r", "trixie"], "error: unknown flag -r (Invoke's own --search-root goes before the task) — "
                                     "`inv --help os-upgrade` lists its flags"),
    (["watch", "-c", "3"], "error: unknown flag -c (Invoke's own --collection goes before the task) — "
                           "`inv --help watch` lists its flags"),
])
def test_a_usage_error_is_one_line_and_exit_2(args, line):
    r = run_inv(args, timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == (2, "", line + "\n")


def test_lbtk_s_own_program_keeps_the_same_word(capsys):
    with pytest.raises(SystemExit) as e:
        Program(namespace=namespace, name="lbtk", binary="lbtk").run(["lbtk", "verify", "--jsn"])
    assert e.value.code == 2
    assert capsys.readouterr().err == "error: unknown flag --jsn — `lbtk --help verify` lists its flags\n"


def test_version_is_lbtk_s(capsys):
    with pytest.raises(SystemExit) as e:
        Program(namespace=namespace, name="lbtk", binary="lbtk", version=__version__).run(["lbtk", "--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith(f"lbtk {__version__} (Invoke ")


# ---------------------------------------------------------------- flags

def _contexts():
    return namespace.to_contexts()


def test_a_short_flag_means_one_thing_on_every_task():
    meanings = defaultdict(set)
    for ctx in _contexts():
        for arg in ctx.args.values():
            for short in (n for n in arg.names if len(n) == 1):
                meanings[short].add(arg.name)
    assert {s: sorted(m) for s, m in meanings.items() if len(m) > 1} == {}
    assert {s: m.pop() for s, m in meanings.items()} == {s: name for name, s in SHORT_FLAGS.items()
                                                         if s in meanings}


def test_whole_number_flags_are_typed_and_nothing_else_is_a_number_in_text():
    for ctx in _contexts():
        for arg in ctx.args.values():
            if arg.name in WHOLE_NUMBERS:
                assert arg.kind is int, (ctx.name, arg.name)
    r = run_inv(["--help", "deploy"], timeout=60)
    assert r.returncode == 0 and "--parallel=INT" in r.stdout and "--batch=INT" in r.stdout


def test_flag_values_arrive_as_numbers():
    r = run_inv(["history", "--limit", "0", "--env", "lab"], timeout=60)
    assert r.returncode == 2 and r.stderr == "error: --limit 0: must be at least 1\n"


# ---------------------------------------------------------------- inv --list

def _tasks(coll, prefix=""):
    for name, t in coll.tasks.items():
        yield prefix + name, t
    for name, sub in coll.collections.items():
        yield from _tasks(sub, f"{prefix}{name}.")


@pytest.mark.parametrize("name,task", list(_tasks(namespace)), ids=[n for n, _ in _tasks(namespace)])
def test_the_list_shows_each_task_s_whole_first_paragraph(name, task):
    """Invoke's --list shows a docstring's first line: that line is the whole summary."""
    doc = inspect.getdoc(task) or ""
    first, _, rest = doc.partition("\n")
    assert first.strip() and first.rstrip().endswith((".", ")")), name
    assert not rest or rest.startswith("\n"), f"{name}: the summary goes on past the first line: {doc[:160]!r}"


# ---------------------------------------------------------------- -v / LBTK_VERBOSE

def test_trace_shows_the_node_and_the_command_masked_and_visible():
    m = Masker(["s3cret"])
    assert trace.shown("node1", "echo s3cret\nsystemctl reload keepalived\n", m, "sudo") == \
        "node1 (sudo) $ echo ********\n    systemctl reload keepalived"
    assert trace.shown("node1", "printf '\x1b[2J'", m) == "node1 $ printf '\\x1b[2J'"


def test_run_traces_each_command_only_when_asked(monkeypatch, capsys):
    link = remote.NodeLink("lb1", SimpleNamespace(is_connected=True), masker=Masker(["pw1234"]))
    monkeypatch.setattr(remote, "_exec", lambda c, cmd, prompt, timeout: (b"ok\n", b"", 0))
    monkeypatch.delenv(trace.VAR, raising=False)
    remote.run(link, "echo pw1234")
    assert capsys.readouterr().err == ""
    monkeypatch.setenv(trace.VAR, "1")
    assert remote.run(link, "echo pw1234").stdout == "ok\n"
    assert capsys.readouterr().err == "lb1 $ echo ********\n"


def test_the_v_flag_turns_the_trace_on(monkeypatch):
    monkeypatch.setenv(trace.VAR, "0")      # recorded first: undone last, whatever the flag sets
    seen = {}
    monkeypatch.setattr(Program, "execute", lambda self: seen.setdefault("on", trace.enabled()))
    Program(namespace=namespace, name="lbtk", binary="lbtk").run(["lbtk", "status", "-v"], exit=False)
    assert seen == {"on": True}
    monkeypatch.setenv(trace.VAR, "0")      # the flag set it for the rest of this process
    r = run_inv(["-v", "render", "--env", "example", "--node", "node1"], timeout=60)
    assert r.returncode == 0 and r.stderr == ""       # render runs nothing on a node: nothing traced


# ---------------------------------------------------------------- environment variables

READS = re.compile(r"""(?:environ\.get\(|environ\[|getenv\()\s*["'](LBTK_[A-Z0-9_]+)""")
SHELL = re.compile(r"\$\{?(LBTK_[A-Z0-9_]+)")
NAMED = re.compile(r"""^\s*[A-Z_]*VAR\s*=\s*["'](LBTK_[A-Z0-9_]+)["']""", re.M)


def _read_variables() -> dict[str, str]:
    found = {}
    sources = [*ROOT.joinpath("fabfile").rglob("*.py"), ROOT / "tasks.py", *ROOT.joinpath("tests").rglob("*.py"),
               *ROOT.joinpath("bench").rglob("*.py")]
    for p in sources:
        text = p.read_text()
        for name in READS.findall(text) + NAMED.findall(text):
            found.setdefault(name, str(p.relative_to(ROOT)))
    for p in ROOT.joinpath("scripts").rglob("*.sh"):
        for name in SHELL.findall(p.read_text()):
            found.setdefault(name, str(p.relative_to(ROOT)))
    return found


def test_every_environment_variable_read_is_documented():
    documented = set(re.findall(r"`(LBTK_[A-Z0-9_]+)`", (ROOT / "docs/ENVIRONMENT.md").read_text()))
    read = _read_variables()
    assert {"LBTK_FORMAT", "LBTK_VERBOSE", "LBTK_INVENTORIES", "LBTK_DEBUG"} <= set(read)
    assert {n: where for n, where in read.items() if n not in documented} == {}


# ---------------------------------------------------------------- progress on a terminal

NGINX_T = ROOT / "tests/fixtures/nginx_t/test_duplicate_default.stderr"


def test_progress_on_a_terminal_shows_nginx_s_emerg():
    """nginx -t's captured refusal, drawn by the rich progress: `[emerg]` is text, not a style tag."""
    from rich.console import Console
    from fabfile import progress
    line = NGINX_T.read_text().splitlines()[0]
    assert "[emerg]" in line
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=400, color_system=None)
    with progress.Progress(["node1"], total=lambda n: 2, console=console) as p:
        p.step("node1", f"nginx -t: {line}")
        p.finish("node1", f"refused: {line}", ok=False)
    drawn = buf.getvalue()
    assert f"refused: {line}" in drawn and "[emerg] 630#630: a duplicate default server" in drawn
