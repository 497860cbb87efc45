"""Outputs of the toolkit's own small shell snippets: the one-round-trip framing of many facts,
managed files, yes/no answers, word lists, the deploy's owed actions, the last backup set, the
lab client's request lines and the failover sniffer's advert lines.

These formats are ours (fabfile/infra/facts.py writes the commands), so they are documented here,
beside their parsers. Everything else a node prints goes through the tool's own parser module.
"""
from __future__ import annotations

import base64
import binascii
import io
import re
import shlex
import tarfile
from dataclasses import dataclass

from fabfile.parsers import ParseError, excerpt


@dataclass(frozen=True)
class Raw:
    """One command's output as the node printed it."""
    stdout: str
    stderr: str = ""
    exited: int = 0


@dataclass(frozen=True)
class LiveFile:
    mode: int
    content: bytes


# ---------------------------------------------------------------- framing
# The script first prints `@@lbtk-frames TOKEN`: TOKEN is drawn on the node when the script starts
# (/proc/sys/kernel/random/uuid, read by a shell builtin), so it is on no command line: another user
# on the node, who sees the command in `ps`, cannot know it, and no fact's output can forge a
# marker. Then for each fact:
#   \n@@TOKEN fact NAME\n<stdout>\n@@TOKEN stderr\n<stderr>\n@@TOKEN rc N\n
# The newline before each marker is ours: exactly one is removed from each body.
FRAMES = "@@lbtk-frames"


def frames_token(text: str) -> tuple[str, str]:
    """(the token, the frames after it) of a script's output. The first header line counts: it is
    printed before any fact runs (a login shell's chatter before it is skipped)."""
    head, sep, rest = ("\n" + text).partition(f"\n{FRAMES} ")
    token, nl, frames = rest.partition("\n")
    if not sep or not nl or not re.fullmatch(r"[0-9a-f-]{32,36}", token):
        raise ParseError(f"no frame header in the output: {excerpt(text or 'empty output')}")
    return token, frames


def parse_sections(text: str, token: str) -> dict[str, Raw]:
    """The framed output of several facts -> {fact name: Raw}. A truncated frame (no rc line) is an error."""
    out: dict[str, Raw] = {}
    marker = f"\n@@{token} "
    parts = ("\n" + text).split(marker)
    if len(parts) == 1:
        raise ParseError(f"no fact frames in the output: {excerpt(text or 'empty output')}")
    name, stdout, stderr, state = None, "", "", None
    for part in parts[1:]:
        head, _, body = part.partition("\n")
        body = body[:-1] if body.endswith("\n") else body
        word, _, arg = head.partition(" ")
        if word == "fact":
            name, stdout, stderr, state = arg, body, "", "out"
        elif word == "stderr" and state == "out":
            stderr, state = body, "err"
        elif word == "rc" and state == "err" and arg.isascii() and arg.isdigit():
            out[name] = Raw(stdout, stderr, int(arg))
            state = None
        else:
            raise ParseError(f"broken fact frame {excerpt(head)}")
    if state is not None:
        raise ParseError(f"output ends inside fact {name!r} (truncated?)")
    return out


# ---------------------------------------------------------------- small answers
def first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise ParseError("empty output")
    return lines[0]


def last_line(text: str, default: str = "") -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else default


def yes_no(text: str) -> bool:
    word = text.strip()
    if word not in ("yes", "no"):
        raise ParseError(f"expected yes or no, got {excerpt(word or 'empty output')}")
    return word == "yes"


WORD = re.compile(r"^[A-Za-z0-9_.+-]+$")


def word_set(text: str) -> set[str]:
    """One word a line (e.g. the binaries found on PATH)."""
    words = {ln.strip() for ln in text.splitlines() if ln.strip()}
    bad = [w for w in words if not WORD.match(w)]
    if bad:
        raise ParseError(f"expected one word a line, got {excerpt(bad[0])}")
    return words


# ---------------------------------------------------------------- files
# Per path: `@@file PATH`, then either `MISSING` or the octal mode and the base64 content on one line.
def _tar_members(text: str, what: str):
    """A one-line base64 GNU tar archive (facts.files, facts.config_tree) -> (its path with the
    leading / put back, the member, the open archive) for each member, as the archive is read."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ParseError(f"{what}: not base64: {excerpt(text)}") from None
    if not raw:
        raise ParseError(f"{what}: empty (no tar archive, not even an empty one)")
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for m in tar:
                yield "/" + m.name.lstrip("/").rstrip("/"), m, tar
    except (tarfile.TarError, EOFError, OSError) as e:
        raise ParseError(f"{what}: not a complete tar archive ({e})") from None


def parse_files(text: str, paths: list[str]) -> dict[str, LiveFile | None]:
    """facts.files(paths): GNU tar's archive of the files that exist (leading / stripped), base64 on
    one line -> {path: LiveFile, or None when it does not exist}."""
    out: dict[str, LiveFile | None] = {p: None for p in paths}
    for path, m, tar in _tar_members(text, "file listing"):
        if path not in out:
            raise ParseError(f"file listing: a file nobody asked for: {excerpt(m.name)}")
        if not m.isfile():
            continue          # a directory where a file should be: as good as missing
        f = tar.extractfile(m)
        out[path] = LiveFile(m.mode & 0o7777, f.read() if f else b"")
    return out


def parse_tree(text: str, roots: list[str], limit: int = 4 << 20) -> dict[str, bytes]:
    """facts.config_tree(roots): one tar of every regular file under the roots (leading / stripped),
    base64 on one line -> {path: bytes}. A file outside the roots, or more than `limit` bytes in
    all, is refused (a node's output never grows without bound here)."""
    out: dict[str, bytes] = {}
    total = 0
    for path, m, tar in _tar_members(text, "config tree"):
        if not any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots):
            raise ParseError(f"config tree: a file outside {', '.join(roots)}: {excerpt(m.name)}")
        if not m.isfile():
            continue
        total += m.size
        if total > limit:
            raise ParseError(f"config tree: more than {limit >> 20} MiB under {', '.join(roots)}")
        f = tar.extractfile(m)
        out[path] = f.read() if f else b""
    return out


def daemon_args(text: str) -> list[str] | None:
    """/etc/default/keepalived -> the words of its DAEMON_ARGS (the last assignment wins, as the
    shell that reads it does); None when it sets none or cannot be read as one."""
    args = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("DAEMON_ARGS="):
            try:
                words = shlex.split(line[len("DAEMON_ARGS="):], comments=True)
            except ValueError:
                return None
            args = " ".join(words).split()
    return args


# ---------------------------------------------------------------- owed actions
# /var/lib/lbtk/pending: one action a line, `VERB<TAB>UNIT<TAB>ARG` (UNIT and ARG may be empty).
def parse_pending(text: str) -> list[tuple[str, str, str]]:
    out = []
    for ln in text.splitlines():
        if not ln.strip():
            continue
        parts = ln.split("\t")
        if len(parts) != 3 or not WORD.match(parts[0]):
            raise ParseError(f"pending actions: unrecognised line {excerpt(ln)} (written by an older lbtk? "
                             "remove /var/lib/lbtk/pending on the node after checking its daemons)")
        out.append((parts[0], parts[1], parts[2]))
    return out


# ---------------------------------------------------------------- backups
# Every deploy backup set, newest first: `@@backup STAMP` then the paths it saved (space separated).
def parse_backups(text: str) -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("@@backup "):
            stamp = line.removeprefix("@@backup ").strip()
            if not re.fullmatch(r"[0-9T.]+", stamp):
                raise ParseError(f"backup listing: not a deploy stamp: {excerpt(stamp)}")
            out.append((stamp, []))
        elif line.strip():
            if not out:
                raise ParseError(f"backup listing: paths before any stamp: {excerpt(line)}")
            out[-1][1].extend(line.split())
    return out


# ---------------------------------------------------------------- lab client
# One line a request: `ok NODE SECONDS` or `err ERRORCLASS SECONDS` (fabfile/ops/traffic.py client_command).
def parse_client_lines(text: str) -> list[tuple[bool, str, float]]:
    out = []
    for ln in text.splitlines():
        f = ln.split()
        if len(f) != 3 or f[0] not in ("ok", "err"):
            continue   # a stray line (a warning): the request count tells what is missing
        try:
            out.append((f[0] == "ok", f[1], float(f[2])))
        except ValueError:
            continue
    return out


# ---------------------------------------------------------------- VRRP sniffer
# `@@vrrp SOURCE` for every VRRP packet a node receives (fabfile/ops/drill.py SNIFFER).
def parse_advert(line: str) -> str | None:
    """The advert's source address, or None for a line that is not an advert."""
    f = line.strip().split()
    return f[1] if len(f) == 2 and f[0] == "@@vrrp" else None


__all__ = ["Raw", "LiveFile", "FRAMES", "frames_token", "parse_sections", "first_line", "last_line", "yes_no", "word_set",
           "parse_files", "parse_pending", "parse_backups", "parse_client_lines", "parse_advert"]


# ---------------------------------------------------------------- numbers
def first_int(text: str) -> int:
    """The first word of the output as a whole number (a PID, `du -sm`'s megabytes)."""
    words = text.split()
    if not words or not (words[0].isascii() and words[0].isdigit()):
        raise ParseError(f"expected a number, got {excerpt(text or 'empty output')}")
    return int(words[0])


# ---------------------------------------------------------------- remote HTTP probe
# `ok NODE` or `err ERRORCLASS`, one line per probe (fabfile/ops/drill.py remote_probe_command).
def parse_probe_line(line: str) -> tuple[bool, str] | None:
    f = line.split()
    if len(f) != 2 or f[0] not in ("ok", "err"):
        return None
    return f[0] == "ok", f[1]


# ---------------------------------------------------------------- the node-naming page
def node_in_page(page: str, names: list[str]) -> str | None:
    """Which node the page names (nginx.page carries {node}); the whole name: lb1 is not lb10."""
    import re
    named = [n for n in names if re.search(rf"(?<![\w.-]){re.escape(n)}(?![\w.-])", page)]
    return max(named, key=len) if named else None


def node_in_page_script() -> str:
    """node_in_page's own source, to head a probe that runs as a script elsewhere (on the SSH
    gateway, in the lab's client namespace): the page is read there exactly as it is here."""
    import inspect
    return "from __future__ import annotations\n" + inspect.getsource(node_in_page)


# ---------------------------------------------------------------- a failing boot's log
_CAUSES = ("Too many open files", "No space left", "Permission denied", "Operation not permitted",
           "Failed to", "failed", "error", "Error", "Cannot", "cannot")


def first_cause(log: str, default: str = "no log") -> str:
    """The first line of a log that says why (systemd-nspawn's last line, "Attempted to remove disk
    file system ...", hides the cause that came first, e.g. "Too many open files")."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    for word in _CAUSES:
        for ln in lines:
            if word in ln:
                return ln
    return lines[-1] if lines else default


# ---------------------------------------------------------------- actions run in one round trip
FINISHED = "@@finished"   # a change's round trip recorded it on the node (fabfile/ops/apply.py)
HEALTH = "@@health"       # what follows: `systemctl is-active` of the daemons a change touched


def finished(text: str) -> bool:
    """The node printed FINISHED on a line of its own: it recorded the change itself."""
    return FINISHED in text.split("\n")


def health_section(text: str) -> str:
    """The lines between HEALTH and FINISHED (or the end): `systemctl is-active`'s own output."""
    lines = text.split("\n")
    if HEALTH not in lines:
        raise ParseError("health check: no answer from systemctl is-active (cut short?)")
    rest = lines[lines.index(HEALTH) + 1:]
    return "\n".join(rest[:rest.index(FINISHED)] if FINISHED in rest else rest)


def parse_action_run(text: str, count: int) -> tuple[list[int], tuple[int, int, str] | None]:
    """fabfile.core.actions.script's output -> (indices that succeeded, (index, exit code, stderr) of the
    one that failed, or None). Output that ends before every action reported is an error."""
    ok: list[int] = []
    lines = text.split("\n")
    for k, ln in enumerate(lines):
        f = ln.split()
        if len(f) >= 3 and f[0] == "@@act" and f[1].isascii() and f[1].isdigit():
            i = int(f[1])
            if f[2] == "ok" and len(f) == 3:
                ok.append(i)
            elif f[2] == "fail" and len(f) == 4 and f[3].isascii() and f[3].isdigit():
                return ok, (i, int(f[3]), "\n".join(lines[k + 1:]).strip())
            else:
                raise ParseError(f"action run: unrecognised marker {excerpt(ln)}")
    if ok != list(range(count)):
        raise ParseError(f"action run: {len(ok)} of {count} actions reported (cut short?)")
    return ok, None
