"""keepalived.conf text -> a tree of blocks, read the way keepalived 2.2 reads it.

Used to read a rendered (or live, or hand-written) config back: to compare what it says with the
inventory (the generative inventory test, fabfile/core/conf_meaning.py), and to name the block and
keyword behind a line that `keepalived -t` complains about.

keepalived's reading (lib/parser.c of 2.2.7: decomment, read_line, alloc_strvec_r, check_include):
  * leading blanks go; `#` and `!` start a comment anywhere outside double quotes, `\\#` and `\\!`
    outside quotes are the characters themselves;
  * `@ID LINE` keeps LINE only when keepalived runs with config id ID (`-i`, default the short host
    name), `@^ID LINE` only when it does not;
  * `$NAME=TEXT` defines a parameter (a trailing `\\` continues the TEXT on the next line: the only
    line continuation keepalived has); `$NAME` and `${NAME}` on later lines are replaced;
    `~SEQ`/`~LST` loops are recognised and refused here;
  * `include PATTERN` (and includer/includem/includew/includeb/includea) reads the files a glob (with
    braces) matches, in sorted order, a relative pattern taken from the including file's directory;
    a pattern matching nothing is skipped silently by a plain `include` (recorded here);
  * `{` and `}` outside quotes are words of their own (`vrrp_instance VI_1{` is 3 words); a block is
    `KEYWORD ARGS... {` ... `}`, its `{` possibly alone on the next line;
  * words end at blanks; a word starting with `"` runs to the next `"` (blanks kept, quotes
    dropped): `script "/bin/pgrep -x nginx"` has one argument.

Pure: files are read only through the caller's `Reader` (a node's files fetched over SSH, a local
directory, `MemoryFiles` in tests). Every error is one ParseError line `FILE:LINE: what`.
"""
from __future__ import annotations

import fnmatch
import posixpath
import re
from dataclasses import dataclass, field
from typing import Iterator, Mapping, Protocol

from fabfile.parsers import ParseError

MAIN = "keepalived.conf"
MAX_INCLUDE_DEPTH = 32      # an include loop ends here, as one error line
MAX_EXPANSIONS = 64         # $A defined as $B ... : a substitution loop ends here
_INCLUDE = re.compile(r"^include([rmwba]?)[ \t]+(.*)$")
_DEFINITION = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)=[ \t]*(.*)$")
_CONDITION = re.compile(r"^@(\^?)([^ \t]+)[ \t]+(.*)$")
_PARAM = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


class Reader(Protocol):
    """How the parser sees files: `glob` lists the paths a pattern matches (sorted), `read` one
    file's text (raises OSError when it cannot)."""

    def glob(self, pattern: str) -> list[str]: ...

    def read(self, path: str) -> str: ...


@dataclass(frozen=True)
class MemoryFiles:
    """A Reader over texts already in hand: path -> text (files fetched from a node, tests)."""
    files: Mapping[str, str]

    def glob(self, pattern: str) -> list[str]:
        return sorted({p for alt in expand_braces(pattern) for p in self.files if glob_matches(alt, p)})

    def read(self, path: str) -> str:
        if path not in self.files:
            raise OSError(f"{path}: no such file")
        return self.files[path]


def expand_braces(pattern: str) -> list[str]:
    """GLOB_BRACE: `a{b,c}d` -> [abd, acd] (nested braces too; `\\{` is a brace character)."""
    depth, start = 0, None
    for i, ch in enumerate(pattern):
        if ch == "\\":
            continue
        if ch == "{" and (i == 0 or pattern[i - 1] != "\\"):
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth and pattern[i - 1] != "\\":
            depth -= 1
            if depth == 0:
                inner, parts, d, last = pattern[start + 1:i], [], 0, 0
                for j, c in enumerate(inner):
                    d += c == "{"
                    d -= c == "}"
                    if c == "," and d == 0:
                        parts.append(inner[last:j])
                        last = j + 1
                parts.append(inner[last:])
                return [x for p in parts for x in expand_braces(pattern[:start] + p + pattern[i + 1:])]
    return [pattern]


def glob_matches(pattern: str, path: str) -> bool:
    """glob(3) matching: `*` and `?` stay inside one path component."""
    pp, fp = pattern.split("/"), path.split("/")
    return len(pp) == len(fp) and all(fnmatch.fnmatchcase(f, p) for p, f in zip(pp, fp))


@dataclass
class Stmt:
    keyword: str
    args: list[str]
    line: int                                       # 1-based line of the keyword
    children: list["Stmt"] | None = None            # None: a plain statement, list: a block
    file: str = MAIN                                # the file the keyword is in

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def find(self, keyword: str) -> list["Stmt"]:
        return [c for c in self.children or [] if c.keyword == keyword]

    def first(self, keyword: str) -> "Stmt | None":
        found = self.find(keyword)
        return found[0] if found else None

    def value(self, keyword: str, default: str | None = None) -> str | None:
        s = self.first(keyword)
        return s.args[0] if s and s.args else default

    def words(self) -> list[str]:
        """A block of bare words (virtual_ipaddress, unicast_peer): each child's keyword."""
        return [c.keyword for c in self.children or []]


@dataclass(frozen=True)
class Include:
    file: str
    line: int
    pattern: str                     # as written
    paths: tuple[str, ...]           # what it read ((): matched nothing, or no reader was given)
    kind: str = "include"            # include, includer, includem, ...


@dataclass(frozen=True)
class Conditional:
    """An `@ID` / `@^ID` line: kept or dropped for the config id the parse was given."""
    file: str
    line: int
    config_id: str
    negated: bool
    taken: bool


@dataclass(frozen=True)
class Definition:
    file: str
    line: int
    name: str
    value: str                        # a multi-line definition's lines joined with "\n"


@dataclass
class Conf:
    top: list[Stmt] = field(default_factory=list)
    file: str = MAIN
    files: list[str] = field(default_factory=list)          # every file read, in reading order
    includes: list[Include] = field(default_factory=list)
    conditionals: list[Conditional] = field(default_factory=list)
    definitions: list[Definition] = field(default_factory=list)

    def find(self, keyword: str) -> list[Stmt]:
        return [s for s in self.top if s.keyword == keyword]

    def at_line(self, line: int, file: str | None = None) -> list[Stmt]:
        """The chain of statements enclosing `line` of `file` (default: the main file), outermost
        first (for naming a -t message)."""
        file = file or self.file
        chain: list[Stmt] = []

        def walk(stmts: list[Stmt], end: int | None) -> None:
            stmts = [s for s in stmts if s.file == file]
            for k, s in enumerate(stmts):
                nxt = stmts[k + 1].line if k + 1 < len(stmts) else end
                if s.line <= line and (nxt is None or line < nxt):
                    chain.append(s)
                    if s.children:
                        walk(s.children, nxt)
                    return
        walk(self.top, None)
        return chain


# -- one physical line -----------------------------------------------------------------------

def decomment(raw: str, where: str) -> tuple[str, bool]:
    """A line without its comment and outer blanks, and whether it ends in `\\` (continued)."""
    s = raw.lstrip(" \t")
    out, quote, i = [], False, 0
    while i < len(s):
        c = s[i]
        if c == '"':
            quote = not quote
        elif c == "\\":
            if i + 1 == len(s):
                return "".join(out).rstrip(" \t"), True
            if not quote and s[i + 1] in "#!":
                out.append(s[i + 1])
            else:
                out.append(s[i:i + 2])
            i += 2
            continue
        elif c in "#!" and not quote:
            break
        out.append(c)
        i += 1
    if quote:
        raise ParseError(f"{where}: unterminated quote in {s.strip()!r}")
    return "".join(out).rstrip(" \t"), False


def words_of(line: str) -> list[str]:
    """One line's words, as keepalived splits them: comments removed, `{`/`}` words of their own,
    a `"..."` word kept whole without its quotes."""
    text, _ = decomment(line, "line")
    return [w for seg in _brace_segments(text) for w in _split_words(seg)]


def _brace_segments(text: str) -> list[str]:
    """Cut a line at each `{` and `}` outside double quotes; each brace is a segment of its own."""
    segs, cur, quote = [], [], False
    for c in text:
        if c == '"':
            quote = not quote
        if c in "{}" and not quote:
            segs += ["".join(cur), c]
            cur = []
        else:
            cur.append(c)
    segs.append("".join(cur))
    return [s.strip(" \t") for s in segs if s.strip(" \t")]


def _split_words(seg: str) -> list[str]:
    words, i = [], 0
    while i < len(seg):
        if seg[i] in " \t":
            i += 1
        elif seg[i] == '"':
            j = seg.find('"', i + 1)
            j = len(seg) if j < 0 else j
            words.append(seg[i + 1:j])
            i = j + 1
        else:
            j = i
            while j < len(seg) and seg[j] not in ' \t"':
                j += 1
            words.append(seg[i:j])
            i = j
    return words


# -- the stream of lines across files --------------------------------------------------------

@dataclass
class _Reading:
    reader: Reader | None
    config_id: str | None
    conf: Conf
    params: dict[str, str] = field(default_factory=dict)


def _logical(state: _Reading, line: str, path: str, n: int, rounds: int) -> list[str]:
    """What keepalived makes of one decommented line (read_line): `@ID` conditions, `$NAME=`
    definitions, then `$NAME` / `${NAME}` replaced by their values (a multi-line value gives several
    lines, each read again); unknown names stay as written, as keepalived leaves them."""
    where = f"{path}:{n}"
    if rounds > MAX_EXPANSIONS:
        raise ParseError(f"{where}: parameter substitution does not end (a definition names itself?)")
    m = _CONDITION.match(line)
    if line.startswith("@"):
        taken = bool(m) and (state.config_id == m.group(2)) != bool(m.group(1))
        state.conf.conditionals.append(Conditional(path, n, m.group(2) if m else line[1:].lstrip("^"),
                                                   bool(m and m.group(1)), taken))
        if not taken:
            return []
        line = m.group(3)
    m = _DEFINITION.match(line)
    if m:
        state.params[m.group(1)] = m.group(2)
        state.conf.definitions.append(Definition(path, n, m.group(1), m.group(2)))
        return []
    if line.startswith(("~SEQ", "~LST")):
        raise ParseError(f"{where}: {line[:4]} (keepalived's repeated lines) is not read by lbtk")
    m = next((m for m in _PARAM.finditer(line) if (m.group(1) or m.group(2)) in state.params), None)
    if m is None:
        return [line]
    text = line[:m.start()] + state.params[m.group(1) or m.group(2)] + line[m.end():]
    return [x for part in text.split("\n") if part.strip(" \t")
            for x in _logical(state, decomment(part, where)[0], path, n, rounds + 1) if x]


def _lines(state: _Reading, path: str, text: str, depth: int) -> Iterator[tuple[str, int, str]]:
    """(file, line, content) of each line keepalived acts on, includes followed."""
    conf = state.conf
    conf.files.append(path)
    pending: Definition | None = None           # a multi-line definition being read
    for n, raw in enumerate(text.splitlines(), start=1):
        where = f"{path}:{n}"
        body, cont = decomment(raw.rstrip("\r\n"), where)
        if pending is not None:
            value = pending.value + ("\n" if pending.value and body else "") + body
            pending = Definition(pending.file, pending.line, pending.name, value)
            if not cont:
                state.params[pending.name] = pending.value
                conf.definitions.append(pending)
                pending = None
            continue
        if not body:
            continue
        m = _DEFINITION.match(body)
        if m and cont:                      # only a definition continues on the next line
            pending = Definition(path, n, m.group(1), m.group(2))
            continue
        for line in _logical(state, body, path, n, 0):
            m = _INCLUDE.match(line)
            if m:
                yield from _include(state, path, n, "include" + m.group(1), m.group(2).strip(), depth)
            else:
                yield path, n, line
    if pending is not None:
        state.params[pending.name] = pending.value
        conf.definitions.append(pending)


def _include(state: _Reading, path: str, n: int, kind: str, pattern: str, depth: int):
    where = f"{path}:{n}"
    if not pattern:
        raise ParseError(f"{where}: {kind} names no file")
    # keepalived chdir()s into the directory of each file it opens (when its name has one)
    full = pattern if pattern.startswith("/") or "/" not in path else \
        posixpath.normpath(posixpath.join(posixpath.dirname(path), pattern))
    if state.reader is None:
        state.conf.includes.append(Include(path, n, pattern, (), kind))
        return
    if depth >= MAX_INCLUDE_DEPTH:
        raise ParseError(f"{where}: includes nested deeper than {MAX_INCLUDE_DEPTH} (an include loop?)")
    paths = tuple(state.reader.glob(full))
    state.conf.includes.append(Include(path, n, pattern, paths, kind))
    for p in paths:
        try:
            text = state.reader.read(p)
        except OSError as e:
            raise ParseError(f"{where}: cannot read included {p}: {e}") from None
        yield from _lines(state, p, text, depth + 1)


# -- the tree --------------------------------------------------------------------------------

def parse_conf(text: str, file: str = MAIN, reader: Reader | None = None,
               config_id: str | None = None) -> Conf:
    """The tree of `text` (the file `file`). `include`s are followed through `reader` (without one
    they are only recorded in `Conf.includes`); `@ID` lines are kept for `config_id`."""
    conf = Conf(file=file)
    state = _Reading(reader, config_id, conf)
    stack: list[Stmt] = []                 # open blocks, innermost last
    level = conf.top
    last: Stmt | None = None                # the statement just read, that a lone `{` opens
    for path, n, line in _lines(state, file, text, 0):
        for seg in _brace_segments(line):
            if seg == "{":
                if last is None or last.children is not None:
                    raise ParseError(f"{path}:{n}: '{{' without a keyword")
                last.children = []
                stack.append(last)
                level, last = last.children, None
            elif seg == "}":
                if not stack:
                    raise ParseError(f"{path}:{n}: '}}' closes no block")
                stack.pop()
                level, last = (stack[-1].children if stack else conf.top), None
            else:
                words = _split_words(seg)
                last = Stmt(words[0], words[1:], n, None, path)
                level.append(last)
    if stack:
        s = stack[-1]
        raise ParseError(f"{s.where}: '{s.keyword}' block is never closed (missing '}}')")
    return conf


def parse_file(path: str, reader: Reader, config_id: str | None = None) -> Conf:
    """The tree of the config file `path` as `reader` gives it (keepalived -f PATH)."""
    try:
        text = reader.read(path)
    except OSError as e:
        raise ParseError(f"{path}: cannot read: {e}") from None
    return parse_conf(text, path, reader, config_id)


def secret_lines(text: str) -> list[str]:
    """The lines a VRRP secret can change (auth_pass and the vrrp_instance it sits in), stripped:
    two configs with the same list carry the same secrets, without parsing either (a drain at 30
    nodes parsed 60 whole configs only to learn that)."""
    return [ln.strip() for ln in text.splitlines() if "auth_pass" in ln or "vrrp_instance" in ln]


def format_conf(stmts: list[Stmt], indent: int = 0) -> str:
    """Statements back to keepalived.conf text (quoted where a word needs it): what parse_conf of
    the result reads is `stmts` again, comments and layout aside."""
    pad, out = "    " * indent, []
    for s in stmts:
        words = " ".join(_quote(w) for w in [s.keyword, *s.args])
        if s.children is None:
            out.append(f"{pad}{words}\n")
        else:
            out.append(f"{pad}{words} {{\n{format_conf(s.children, indent + 1)}{pad}}}\n")
    return "".join(out)


def _quote(word: str) -> str:
    return f'"{word}"' if not word or any(c in word for c in ' \t{}#!"$') else word


__all__ = ["secret_lines", "Stmt", "Conf", "Include", "Conditional", "Definition", "Reader", "MemoryFiles",
           "parse_conf", "parse_file", "format_conf", "words_of", "expand_braces", "glob_matches"]
