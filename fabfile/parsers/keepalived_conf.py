"""keepalived.conf text -> a tree of blocks, read the way keepalived 2.2 reads it.

Used to read a rendered (or live) config back and compare what it says with the inventory
(the generative inventory test), and to name the block and keyword behind a line that
`keepalived -t` complains about.

keepalived's word rules (keepalived/core/parser.c, checked against 2.2.7): a word ends at
whitespace; `#` and `!` start a comment anywhere on a line (so `auth_pass ab#cd` is `ab`);
`{` and `}` are words of their own; a block is `KEYWORD ARGS... {` ... `}`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from fabfile.parsers import ParseError

_WORD = re.compile(r"[{}]|[^\s{}]+")


@dataclass
class Stmt:
    keyword: str
    args: list[str]
    line: int                                       # 1-based line of the keyword
    children: list["Stmt"] | None = None            # None: a plain statement, list: a block

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


@dataclass
class Conf:
    top: list[Stmt] = field(default_factory=list)

    def find(self, keyword: str) -> list[Stmt]:
        return [s for s in self.top if s.keyword == keyword]

    def at_line(self, line: int) -> list[Stmt]:
        """The chain of statements enclosing `line`, outermost first (for naming a -t message)."""
        chain: list[Stmt] = []

        def walk(stmts: list[Stmt], end: int | None) -> None:
            for k, s in enumerate(stmts):
                nxt = stmts[k + 1].line if k + 1 < len(stmts) else end
                if s.line <= line and (nxt is None or line < nxt):
                    chain.append(s)
                    if s.children:
                        walk(s.children, nxt)
                    return
        walk(self.top, None)
        return chain


def words_of(line: str) -> list[str]:
    """One line's words, comments removed (`#` / `!` anywhere end the line)."""
    cut = min((i for i in (line.find("#"), line.find("!")) if i >= 0), default=len(line))
    return _WORD.findall(line[:cut])


def parse_conf(text: str) -> Conf:
    stack: list[list[Stmt]] = [[]]
    for n, raw in enumerate(text.splitlines(), start=1):
        words = words_of(raw)
        while words:
            if words[0] == "}":
                if len(stack) == 1:
                    raise ParseError(f"keepalived.conf line {n}: '}}' closes no block")
                stack.pop()
                words = words[1:]
                continue
            if "{" in words:
                k = words.index("{")
                head, words = words[:k], words[k + 1:]
                if not head:
                    raise ParseError(f"keepalived.conf line {n}: '{{' without a keyword")
                block = Stmt(head[0], head[1:], n, [])
                stack[-1].append(block)
                stack.append(block.children)
                continue
            if "}" in words:
                k = words.index("}")
                head, words = words[:k], words[k:]
            else:
                head, words = words, []
            stack[-1].append(Stmt(head[0], head[1:], n))
    if len(stack) != 1:
        raise ParseError("keepalived.conf: a block is not closed (missing '}')")
    return Conf(stack[0])


__all__ = ["Stmt", "Conf", "parse_conf", "words_of"]
