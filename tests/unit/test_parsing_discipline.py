"""Only fabfile/parsers/ reads command output: nothing else splits, greps or decodes it.

An AST check over every module in fabfile/ outside fabfile/parsers/. Command output is any
`.stdout` / `.stderr` attribute (`sys.stdout` / `sys.stderr` excepted), the result of
`subprocess.check_output` / `getoutput` / `.communicate()`, and everything derived from them:
string methods on them (`r.stdout.strip()`), slices, f-strings, containers holding them, variables
assigned from them (`out = r.stdout` ... `out.split()`, `for line in out: ...`), and values that
go through a helper function (its parameter, or what it returns) in any fabfile module.

Flagged — the output being parsed outside a parser:
  * `.split` `.rsplit` `.splitlines` `.partition` `.rpartition` `.startswith` `.endswith` on it
    (so `.strip().split()` too);
  * `json.loads`/`json.load`, `yaml.*load`, `ast.literal_eval`, `shlex.split`, `int()`/`float()` of it;
  * regex matching it: `re.match/search/findall/fullmatch/finditer/split/sub`, or a compiled
    pattern's `.match/.search/.findall/.fullmatch/.finditer/.sub`;
  * `"word" in output` / `output == "word"` (a grep by another name).

Allowed: handing it to a function imported from fabfile.parsers (or a Fact's parser lambda in
fabfile/infra/facts.py, which is the same thing): what such a call returns is parsed data. Printing it,
storing it, putting it in an error message are not parsing.

fabfile/lab/ (the lab's own host-side plumbing: ip/nspawn/qemu on this machine) is held to the
same rule: it reads `ip -j`, `systemctl` and `du` through fabfile/parsers/ too.
"""
from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.source_trees import parse

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "fabfile"
PARSERS = PKG / "parsers"
LAB = PKG / "lab"

SOURCE_ATTRS = {"stdout", "stderr"}
SOURCE_CALLS = {"subprocess.check_output", "subprocess.getoutput", "subprocess.getstatusoutput"}
STR_SINKS = {"split", "rsplit", "splitlines", "partition", "rpartition", "startswith", "endswith"}
REGEX_METHODS = {"match", "search", "findall", "fullmatch", "finditer"}
FUNC_SINKS = {"json.loads", "json.load", "yaml.safe_load", "yaml.load", "yaml.full_load",
              "ast.literal_eval", "shlex.split", "csv.reader", "builtins.int", "builtins.float",
              *(f"re.{m}" for m in ("match", "search", "findall", "fullmatch", "finditer", "split"))}
SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
# what keeps text text: its own methods (and a dict's or list's, for containers of it), copying builtins
TEXT_METHODS = {"strip", "lstrip", "rstrip", "lower", "upper", "casefold", "replace", "decode", "encode",
                "expandtabs", "removeprefix", "removesuffix", "title", "ljust", "rjust", "center", "zfill",
                "split", "rsplit", "splitlines", "partition", "rpartition",
                "items", "values", "get", "pop", "copy"}
PASS_BUILTINS = {f"builtins.{n}" for n in ("str", "bytes", "list", "dict", "tuple", "set", "frozenset", "zip",
                                           "map", "filter", "sorted", "reversed", "enumerate", "next", "iter",
                                           "min", "max", "repr")}
BUILTINS = {"int", "float", "str", "bytes", "list", "dict", "tuple", "set", "frozenset", "zip", "map",
            "filter", "sorted", "reversed", "enumerate", "next", "iter", "len", "bool", "repr", "print",
            "any", "all", "min", "max"}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    what: str
    code: str

    def __str__(self):
        return f"{self.path}:{self.line}: {self.what}: {self.code}"


@dataclass
class Module:
    name: str                     # fabfile.tasks.oncall
    path: str                     # fabfile/tasks/oncall.py (for messages)
    tree: ast.Module
    source: str
    is_package: bool
    imports: dict[str, str] = field(default_factory=dict)   # local name -> qualified name
    defs: dict[str, str] = field(default_factory=dict)      # top-level def/class name -> qualified


def _module_name(rel: Path) -> tuple[str, bool]:
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def load_module(name: str, path: str, source: str, is_package: bool = False) -> Module:
    m = Module(name, path, parse(source, path), source, is_package)
    pkg = name.split(".") if is_package else name.split(".")[:-1]
    for node in ast.walk(m.tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    m.imports[a.asname] = a.name
                else:
                    m.imports[a.name.split(".")[0]] = a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[:len(pkg) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                m.imports[a.asname or a.name] = f"{mod}.{a.name}"
    for node in m.tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            m.defs[node.name] = f"{name}.{node.name}"
    return m


def load_tree() -> list[Module]:
    mods = []
    for p in sorted(PKG.rglob("*.py")):
        if "__pycache__" in p.parts or PARSERS in p.parents or p.parent == PARSERS:
            continue
        rel = p.relative_to(ROOT)
        name, is_pkg = _module_name(rel)
        mods.append(load_module(name, str(rel), p.read_text(), is_pkg))
    return mods


def _targets(t: ast.AST) -> list[str]:
    """Names bound by an assignment / for target (tuple unpacking, starred)."""
    if isinstance(t, ast.Name):
        return [t.id]
    if isinstance(t, (ast.Tuple, ast.List)):
        return [n for e in t.elts for n in _targets(e)]
    if isinstance(t, ast.Starred):
        return _targets(t.value)
    return []


BINDERS = (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr, ast.For, ast.AsyncFor)   # what scope_taint reads


def _params(args: ast.arguments) -> list[str]:
    return [a.arg for a in (*args.posonlyargs, *args.args)]


class Analysis:
    """Where command output (text) flows, through every fabfile module (parsers excepted), to a fixpoint.

    Only text is followed: string methods that return text, slices, concatenation, f-strings,
    containers and the builtins that copy them, variables, loops, comprehensions; fabfile functions
    through their parameters and return values; a call handed a function that returns output (as
    `remote.parallel(conns, lambda c: remote.run(c, cmd).stdout)`) returns output. Any other call
    (a constructor, int(), a parser) ends the flow: what it returns is not raw text.
    """

    def __init__(self, modules: list[Module]):
        self.modules = modules
        self.funcs: dict[str, tuple[Module, ast.AST]] = {}     # qualified name -> (module, def)
        self.nested: dict[tuple[str, str], str] = {}           # (module, local def name) -> qualified
        self._scopes = {m.name: self.scopes(m) for m in modules}
        for m in modules:
            for qual, _params, _body, _cls, _parent, node in self._scopes[m.name]:
                if qual:
                    self.funcs[qual] = (m, node)
                    if qual.count(".") > m.name.count(".") + 1:
                        self.nested[(m.name, node.name)] = qual
        self._listed: dict[int, tuple[list, list[ast.AST], list[ast.AST]]] = {}   # see _nodes_of
        self._events: dict[int, tuple[ast.AST, list]] = {}                        # see _events_of
        self.tainted_params: dict[str, set[str]] = {}   # function -> parameters that receive output
        self.tainted_returns: set[str] = set()          # functions that return output
        self.findings: set[Finding] = set()

    # ---------------------------------------------------------------- name resolution
    def resolve(self, m: Module, e: ast.AST, cls: str | None) -> str | None:
        if isinstance(e, ast.Name):
            if e.id in m.imports:
                return m.imports[e.id]
            if e.id in m.defs:
                return m.defs[e.id]
            if (m.name, e.id) in self.nested:
                return self.nested[(m.name, e.id)]
            if e.id in BUILTINS:
                return f"builtins.{e.id}"
            return None
        if isinstance(e, ast.Attribute):
            if isinstance(e.value, ast.Name) and e.value.id in ("self", "cls") and cls:
                return f"{m.name}.{cls}.{e.attr}"
            base = self.resolve(m, e.value, cls)
            return f"{base}.{e.attr}" if base else None
        return None

    def is_parser(self, m: Module, func: ast.AST, cls: str | None) -> bool:
        q = self.resolve(m, func, cls) or ""
        if q.startswith("fabfile.parsers.") or q == "fabfile.parsers":
            return True
        # a Fact's parser lambda (fabfile/infra/facts.py): FACT.parse(raw)
        return isinstance(func, ast.Attribute) and func.attr == "parse" and (
            q.startswith("fabfile.infra.facts.") or m.name == "fabfile.infra.facts")

    # ---------------------------------------------------------------- what carries output
    def returns_output(self, m: Module, e: ast.AST, tainted: set[str], cls: str | None) -> bool:
        """Is `e` a function that returns command output (a lambda, or a fabfile function)?"""
        if isinstance(e, ast.Lambda):
            return self.carries(m, e.body, tainted - set(_params(e.args)), cls)
        if isinstance(e, (ast.Name, ast.Attribute)):
            return (self.resolve(m, e, cls) or "") in self.tainted_returns
        return False

    def carries(self, m: Module, e: ast.AST | None, tainted: set[str], cls: str | None) -> bool:
        if e is None:
            return False
        c = lambda x, t=tainted: self.carries(m, x, t, cls)  # noqa: E731
        if isinstance(e, ast.Attribute):
            return e.attr in SOURCE_ATTRS and self.resolve(m, e.value, cls) != "sys"
        if isinstance(e, ast.Name):
            return e.id in tainted
        if isinstance(e, ast.Call):
            f = e.func
            if self.is_parser(m, f, cls):
                return False                      # parsed data from here on
            q = self.resolve(m, f, cls) or ""
            if q in SOURCE_CALLS or (isinstance(f, ast.Attribute) and f.attr == "communicate"):
                return True
            if q in self.tainted_returns:
                return True
            args = [*e.args, *(k.value for k in e.keywords)]
            if isinstance(f, ast.Attribute) and f.attr in TEXT_METHODS and c(f.value):
                return True                       # r.stdout.strip(), out.items(), ...
            if isinstance(f, ast.Attribute) and f.attr == "join" and any(c(a) for a in args):
                return True
            if q in PASS_BUILTINS and any(c(a) for a in args):
                return True
            return q not in self.funcs and any(self.returns_output(m, a, tainted, cls) for a in args)
        if isinstance(e, ast.Subscript):
            return c(e.value)
        if isinstance(e, ast.BinOp):
            return c(e.left) or c(e.right)
        if isinstance(e, ast.BoolOp):
            return any(c(v) for v in e.values)
        if isinstance(e, ast.IfExp):
            return c(e.body) or c(e.orelse)
        if isinstance(e, ast.JoinedStr):
            return any(c(v) for v in e.values)
        if isinstance(e, (ast.FormattedValue, ast.Starred, ast.Await, ast.NamedExpr)):
            return c(e.value)
        if isinstance(e, (ast.Tuple, ast.List, ast.Set)):
            return any(c(x) for x in e.elts)
        if isinstance(e, ast.Dict):
            return any(c(v) for v in e.values)
        if isinstance(e, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            inner = self._comp_taint(m, e, tainted, cls)
            elts = [e.key, e.value] if isinstance(e, ast.DictComp) else [e.elt]
            return any(self.carries(m, x, inner, cls) for x in elts)
        return False

    def _comp_taint(self, m, e, tainted, cls) -> set[str]:
        inner = set(tainted)
        for g in e.generators:
            if self.carries(m, g.iter, inner, cls):
                inner |= set(_targets(g.target))
        return inner

    # ---------------------------------------------------------------- scopes
    def scope_taint(self, m: Module, body: list[ast.AST], start: set[str], cls: str | None) -> set[str]:
        """Names in this scope that hold output (flow-insensitive, to a fixpoint)."""
        tainted = set(start)
        stmts = self._nodes_of(body)[1]           # the binding statements
        while True:
            before = len(tainted)
            for n in stmts:
                if isinstance(n, ast.Assign) and self.carries(m, n.value, tainted, cls):
                    tainted |= {x for t in n.targets for x in _targets(t)}
                elif isinstance(n, (ast.AnnAssign, ast.AugAssign)) and n.value is not None \
                        and self.carries(m, n.value, tainted, cls):
                    tainted |= set(_targets(n.target))
                elif isinstance(n, ast.NamedExpr) and self.carries(m, n.value, tainted, cls):
                    tainted.add(n.target.id)
                elif isinstance(n, (ast.For, ast.AsyncFor)) and self.carries(m, n.iter, tainted, cls):
                    tainted |= set(_targets(n.target))
            if len(tainted) == before:
                return tainted

    def _nodes_of(self, body: list[ast.AST]) -> tuple[list[ast.AST], list[ast.AST]]:
        """(every node of the scope, the ones that bind names), listed once: each pass to the
        fixpoint reads the same scopes again."""
        got = self._listed.get(id(body))
        if got is None or got[0] is not body:           # `body` held too: its id is not reused
            nodes = list(self._scope_nodes(body))
            got = self._listed[id(body)] = (body, nodes, [n for n in nodes if isinstance(n, BINDERS)])
        return got[1], got[2]

    @staticmethod
    def _scope_nodes(body: list[ast.AST]):
        """Every node of a scope: nested functions, lambdas and classes are yielded, not entered."""
        todo = list(body)
        while todo:
            n = todo.pop()
            yield n
            if not isinstance(n, SCOPES):
                todo.extend(ast.iter_child_nodes(n))

    def scopes(self, m: Module):
        """(qualified name, params, body, class, index of the enclosing scope, node), outermost first."""
        out = [(None, [], m.tree.body, None, None, m.tree)]

        def visit(body, prefix, cls, parent):
            for n in self._scope_nodes(body):
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    q = f"{prefix}.{n.name}"
                    out.append((q, _params(n.args), n.body, cls, parent, n))
                    visit(n.body, q, cls, len(out) - 1)
                elif isinstance(n, ast.Lambda):
                    body = [ast.Expr(n.body)]
                    out.append((None, _params(n.args), body, cls, parent, n))
                    visit(body, f"{prefix}.<lambda>", cls, len(out) - 1)
                elif isinstance(n, ast.ClassDef):
                    out.append((None, [], n.body, n.name, parent, n))
                    visit(n.body, f"{prefix}.{n.name}", n.name, len(out) - 1)

        visit(m.tree.body, m.name, None, 0)
        return out

    def run(self) -> set[Finding]:
        for _ in range(50):
            changed = False
            for m in self.modules:
                changed |= self._pass(m, report=False)
            if not changed:
                break
        for m in self.modules:
            self._pass(m, report=True)
        return self.findings

    def _pass(self, m: Module, report: bool) -> bool:
        changed = False
        taints: list[set[str]] = []
        for qual, params, body, cls, parent, _node in self._scopes[m.name]:
            start = set(taints[parent]) if parent is not None else set()
            start -= set(params)                      # a parameter shadows the outer name
            if qual:
                start |= self.tainted_params.get(qual, set())
            tainted = self.scope_taint(m, body, start, cls)
            taints.append(tainted)
            if qual and qual not in self.tainted_returns:
                rets = [n.value for n in self._nodes_of(body)[0] if isinstance(n, ast.Return)]
                if any(self.carries(m, r, tainted, cls) for r in rets):
                    self.tainted_returns.add(qual)
                    changed = True
            for s in body:
                changed |= self._calls_and_sinks(m, s, tainted, cls, report)
        return changed

    def _calls_and_sinks(self, m: Module, stmt: ast.AST, tainted: set[str], cls, report: bool) -> bool:
        changed = False
        for n, comps in self._events_of(stmt):
            t = tainted
            for comp in comps:                                    # a comprehension's names
                t = self._comp_taint(m, comp, t, cls)
            if isinstance(n, ast.Call):
                changed |= self._propagate_call(m, n, t, cls)
                if report:
                    self._sink_call(m, n, t, cls)
            elif report:
                self._sink_compare(m, n, t, cls)
        return changed

    def _events_of(self, stmt: ast.AST) -> list[tuple[ast.AST, tuple]]:
        """The calls and comparisons of a statement in walk order (nested scopes are their own),
        each with the comprehensions around it: listed once, every pass to the fixpoint reads them."""
        got = self._events.get(id(stmt))
        if got is None or got[0] is not stmt:               # `stmt` held too: its id is not reused
            events: list[tuple[ast.AST, tuple]] = []

            def walk(n, comps):
                if isinstance(n, SCOPES):
                    return
                if isinstance(n, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
                    comps = (*comps, n)
                if isinstance(n, (ast.Call, ast.Compare)):
                    events.append((n, comps))
                for ch in ast.iter_child_nodes(n):
                    walk(ch, comps)
            walk(stmt, ())
            got = self._events[id(stmt)] = (stmt, events)
        return got[1]

    def _propagate_call(self, m, call: ast.Call, tainted, cls) -> bool:
        q = self.resolve(m, call.func, cls)
        if q not in self.funcs or self.is_parser(m, call.func, cls):
            return False
        fm, fdef = self.funcs[q]
        params = _params(fdef.args)
        if params and params[0] in ("self", "cls") and isinstance(call.func, ast.Attribute):
            params = params[1:]
        got = set()
        for i, a in enumerate(call.args):
            if isinstance(a, ast.Starred):
                break
            if i < len(params) and self.carries(m, a, tainted, cls):
                got.add(params[i])
        for k in call.keywords:
            if k.arg and self.carries(m, k.value, tainted, cls):
                got.add(k.arg)
        have = self.tainted_params.setdefault(q, set())
        if got - have:
            have |= got
            return True
        return False

    def _add(self, m: Module, n: ast.AST, what: str):
        code = ast.get_source_segment(m.source, n) or ""
        self.findings.add(Finding(m.path, n.lineno, what, " ".join(code.split())[:120]))

    def _sink_call(self, m, call: ast.Call, tainted, cls):
        if self.is_parser(m, call.func, cls):
            return
        f = call.func
        c = lambda x: self.carries(m, x, tainted, cls)  # noqa: E731
        if isinstance(f, ast.Attribute) and f.attr in STR_SINKS and c(f.value):
            self._add(m, call, f".{f.attr}() on command output")
            return
        q = self.resolve(m, f, cls) or ""
        args = [*call.args, *(k.value for k in call.keywords)]
        if q in FUNC_SINKS and any(c(a) for a in args):
            self._add(m, call, f"{q.removeprefix('builtins.')}() on command output")
        elif isinstance(f, ast.Attribute) and f.attr in REGEX_METHODS and not q.startswith("re.") \
                and any(c(a) for a in call.args):
            self._add(m, call, f"regex .{f.attr}() on command output")

    def _sink_compare(self, m, cmp: ast.Compare, tainted, cls):
        sides = [cmp.left, *cmp.comparators]
        for op, left, right in zip(cmp.ops, sides, sides[1:]):
            c = lambda x: self.carries(m, x, tainted, cls)  # noqa: E731
            if isinstance(op, (ast.In, ast.NotIn)) and c(right) and not c(left):
                self._add(m, cmp, "membership test on command output")
            elif isinstance(op, (ast.Eq, ast.NotEq)) and (
                    (c(left) and isinstance(right, ast.Constant) and isinstance(right.value, str)) or
                    (c(right) and isinstance(left, ast.Constant) and isinstance(left.value, str))):
                self._add(m, cmp, "string comparison on command output")


def check(modules: list[Module]) -> tuple[list[Finding], list[Finding]]:
    """(violations, lab findings), each sorted."""
    found = sorted(Analysis(modules).run(), key=lambda f: (f.path, f.line, f.what))
    lab = [f for f in found if f.path.startswith("fabfile/lab/")]
    return [f for f in found if f not in lab], lab


# ---------------------------------------------------------------- the tree
def test_no_module_outside_parsers_parses_command_output():
    mods = load_tree()
    assert any(m.name == "fabfile.infra.observe" for m in mods) and not any(m.name.startswith("fabfile.parsers") for m in mods)
    violations, lab = check(mods)
    assert not violations + lab, "command output parsed outside fabfile/parsers/ (move it into a parser):\n" + \
        "\n".join(f"  {f}" for f in violations + lab)


# ---------------------------------------------------------------- the check itself
def findings(src: str, name: str = "fabfile.somewhere", extra: dict[str, str] | None = None) -> list[str]:
    mods = [load_module(name, name.replace(".", "/") + ".py", textwrap.dedent(src))]
    for n, s in (extra or {}).items():
        mods.append(load_module(n, n.replace(".", "/") + ".py", textwrap.dedent(s)))
    v, lab = check(mods)
    return [f"{f.line}:{f.what}" for f in v + lab]


HEADER = """\
import json, re, subprocess, sys
from . import remote
from .parsers.lbtk import last_line, first_line
from .parsers import ipvsadm
PAT = re.compile("x")
"""

CAUGHT = {
    "split": "def f(c):\n    return remote.run(c, 'x').stdout.split()",
    "splitlines": "def f(r):\n    for ln in r.stdout.splitlines():\n        pass",
    "strip_split": "def f(r):\n    return r.stdout.strip().split(':')",
    "partition": "def f(r):\n    return r.stderr.partition(' ')[0]",
    "json": "def f(r):\n    return json.loads(r.stdout)",
    "json_index": "def f(r):\n    return json.loads(r.stdout)[0]['x']",
    "re_module": "def f(r):\n    return re.search('a', r.stdout)",
    "re_compiled": "def f(r):\n    return PAT.findall(r.stderr.lower())",
    "int": "def f(r):\n    return int(r.stdout.strip())",
    "variable": "def f(r):\n    out = r.stdout\n    text = out.strip()\n    return text.splitlines()",
    "loop": "def f(rs):\n    outs = [r.stdout for r in rs]\n    for o in outs:\n        o.split()",
    "comprehension": "def f(r):\n    return [ln.split() for ln in r.stdout.splitlines()]",
    "lambda": "def f(conns):\n    return remote.parallel(conns, lambda c: remote.run(c, 'x').stdout.split())",
    "through_parallel": ("def f(conns):\n    out = dict(zip(conns, remote.parallel(conns, lambda c: remote.run(c, 'x').stdout)))\n"
                         "    for n, text in out.items():\n        text.splitlines()"),
    "helper_param": "def _lines(text):\n    return text.splitlines()\ndef f(r):\n    return _lines(r.stdout)",
    "helper_return": "def _get(c):\n    return remote.run(c, 'x').stdout\ndef f(c):\n    return _get(c).split()",
    "method_param": ("class K:\n    def _words(self, t):\n        return t.split()\n"
                     "    def f(self, r):\n        return self._words(r.stdout)"),
    "check_output": "def f():\n    return subprocess.check_output(['ip']).decode().split()",
    "communicate": "def f(p):\n    _, err = p.communicate()\n    return err.splitlines()",
    "membership": "def f(r):\n    return 'active' in r.stdout",
    "equality": "def f(r):\n    return r.stdout.strip() == 'yes'",
    "startswith": "def f(r):\n    return r.stdout.startswith('SSH-')",
}

ALLOWED = {
    "parser": "def f(r):\n    return ipvsadm.parse_list(r.stdout)",
    "parser_lambda": "F = lambda r: first_line(r.stdout)",
    "parser_then_split": "def f(r):\n    return last_line(r.stderr or r.stdout).split()",
    "parser_of_derived": "def f(r):\n    return ipvsadm.parse_list(r.stdout.replace('a', 'b'))",
    "sys_stdout": "def f(x):\n    sys.stdout.write(x.split()[0])\n    sys.stderr.flush()",
    "print": "def f(r):\n    print(r.stdout)\n    raise ValueError(f'failed: {r.stderr}')",
    "store": "def f(r):\n    return Result(r.stdout, r.stderr, r.exited)",
    "truthiness": "def f(r):\n    if r.stderr:\n        return 1",
    "other_text": "def f(name):\n    return name.split('.')",
    "parsed_variable": "def f(r):\n    ls = ipvsadm.parse_list(r.stdout)\n    return [s.key.split() for s in ls.services]",
    "wrapped_in_object": "def f(r):\n    res = Result(r.stdout)\n    return res.name.split()",
    "parallel_parsed": ("def f(conns):\n    out = remote.parallel(conns, lambda c: ipvsadm.parse_list(remote.run(c, 'x').stdout))\n"
                        "    return [t.split() for t in out]"),
    "shadowed": "def f(r):\n    out = r.stdout\n    def g(out):\n        return out.split()\n    return g('a b')",
}


@pytest.mark.parametrize("name", CAUGHT)
def test_the_check_catches(name):
    assert findings(HEADER + CAUGHT[name]), f"not flagged:\n{CAUGHT[name]}"


@pytest.mark.parametrize("name", ALLOWED)
def test_the_check_allows(name):
    assert not findings(HEADER + ALLOWED[name]), ALLOWED[name]


def test_the_check_follows_helpers_across_modules():
    helper = {"fabfile.util": "def words(text):\n    return text.split()\n"}
    src = "from .util import words\ndef f(r):\n    return words(r.stdout)\n"
    assert findings(src, extra=helper) == ["2:.split() on command output"]


def test_lab_findings_are_listed_apart():
    mods = [load_module("fabfile.lab.x", "fabfile/lab/x.py", "def f(r):\n    return r.stdout.split()\n")]
    violations, lab = check(mods)
    assert not violations and [f.line for f in lab] == [2]
