"""Write fabfile/model/keepalived_keywords.py: every keyword keepalived's parser installs, per block,
read from keepalived's own C sources (its install_keyword tables), for the loader's
"not supported: KEYWORD" message.

    .venv/bin/python scripts/gen-keepalived-keywords.py GIT_DIR [REF ...]

GIT_DIR is a clone (bare or not) of github.com/acassen/keepalived; REFs are tags, the first being
the version lbtk targets (default: v2.2.7 v2.3.3, Debian 12's and Debian 13's). A keyword only a
later REF has is recorded with that version.

How it reads C without compiling it: keepalived builds its keyword tree by calling, in order,
install_keyword_root(NAME) (a top-level block), install_keyword(NAME) (a keyword of the current
block), install_sublevel() (the last keyword opens a block) and install_sublevel_end(). The script
replays those calls from vrrp_init_keywords and check_init_keywords (what keepalived's VRRP and
checker processes read),
following calls into the helper functions that install keywords (install_checker_common_keywords,
install_http_ssl_check_keyword("HTTP_GET") ...), with string arguments bound to the helper's
parameters. Every #ifdef branch is taken: the list is what some build of keepalived accepts.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fabfile" / "model" / "keepalived_keywords.py"
# what the VRRP and the checker processes each read (global_defs, their own blocks, BFD, track_file)
ENTRIES = ("vrrp_init_keywords", "check_init_keywords")
DEFAULT_REFS = ("v2.2.7", "v2.3.3")

# a function definition in keepalived's style: the name at the start of a line, the body's brace
# on a line of its own
FUNC = re.compile(r"^(\w+)\(([^)]*)\)\s*\n\{\n(.*?)\n\}", re.M | re.S)
# a call statement; arguments hold no parentheses, so `if (...)` never swallows the call after it
CALL = re.compile(r"\b(\w+)\s*\(([^;()]*)\)\s*;")


def sources(git_dir: str, ref: str) -> str:
    """Every C file of keepalived/ at ref, concatenated (function names are unique across them)."""
    names = subprocess.run(["git", "--git-dir", git_dir, "ls-tree", "-r", "--name-only", ref, "keepalived/"],
                           check=True, capture_output=True, text=True).stdout.split()
    texts = [subprocess.run(["git", "--git-dir", git_dir, "show", f"{ref}:{n}"], check=True,
                            capture_output=True, text=True, errors="replace").stdout
             for n in names if n.endswith(".c")]
    return "\n".join(t for t in texts if "install_" in t)


def functions(text: str) -> dict[str, tuple[list[str], str]]:
    out = {}
    for m in FUNC.finditer(text):
        params = [p.split()[-1].lstrip("*") for p in m.group(2).split(",") if p.strip() not in ("", "void")]
        out.setdefault(m.group(1), (params, re.sub(r"/\*.*?\*/|//[^\n]*", "", m.group(3), flags=re.S)))
    return out


def replay(funcs: dict) -> dict[str, set[str]]:
    """{block path ('' = top level, 'vrrp_instance', 'virtual_server/real_server/HTTP_GET/url'): keywords}."""
    blocks: dict[str, set[str]] = {"": set()}
    state = {"path": [], "last": None}

    def word(arg: str, env: dict) -> str | None:
        arg = arg.split(",")[0].strip()
        if arg.startswith('"'):
            return arg.strip('"')
        return env.get(arg)

    def run(name: str, args: list[str], seen: tuple) -> None:
        params, body = funcs[name]
        env = {p: a.strip('"') for p, a in zip(params, args) if a.strip().startswith('"')}
        for call, arg in CALL.findall(body):
            if call == "install_keyword_root":
                kw = word(arg, env)
                blocks[""].add(kw)
                state["path"], state["last"] = [kw], kw
                blocks.setdefault(kw, set())
            elif call == "install_keyword":
                kw = word(arg, env)
                if kw is None:
                    raise SystemExit(f"{name}: install_keyword({arg}): not a literal nor a bound parameter")
                blocks.setdefault("/".join(state["path"]), set()).add(kw)
                state["last"] = kw
            elif call == "install_sublevel":
                state["path"] = state["path"] + [state["last"]]
            elif call == "install_sublevel_end":
                state["path"] = state["path"][:-1]
            elif call in funcs and call not in seen and "install_" in funcs[call][1]:
                run(call, [a.strip() for a in arg.split(",")], seen + (call,))

    for entry in ENTRIES:
        run(entry, ["true"], (entry,))
    return {k: v for k, v in blocks.items() if v}


def module(per_ref: list[tuple[str, dict[str, set[str]]]]) -> str:
    base_ref, base = per_ref[0]
    since: dict[tuple[str, str], str] = {}
    merged = {k: set(v) for k, v in base.items()}
    for ref, blocks in per_ref[1:]:
        for path, kws in blocks.items():
            for kw in kws - merged.get(path, set()):
                since[(path, kw)] = ref.lstrip("v")
                merged.setdefault(path, set()).add(kw)
    lines = ['"""Every keyword keepalived\'s parser installs, per block: GENERATED by',
             "scripts/gen-keepalived-keywords.py from keepalived's install_keyword tables (do not edit).",
             "",
             "BLOCKS maps a block's path (keepalived's nesting, '/'-joined; '' is the top level) to its",
             f"keywords in keepalived {base_ref.lstrip('v')} (Debian 12) and later; SINCE names the version",
             "that added a keyword the first one lacks.",
             '"""',
             "",
             f"VERSIONS = {tuple(r.lstrip('v') for r, _ in per_ref)!r}",
             "",
             "BLOCKS: dict[str, frozenset[str]] = {"]
    for path in sorted(merged):
        lines.append(f"    {path!r}: frozenset({{")
        words = sorted(merged[path])
        row = "       "
        for w in words:
            item = f" {w!r},"
            if len(row) + len(item) > 100:
                lines.append(row)
                row = "       "
            row += item
        lines.append(row)
        lines.append("    }),")
    lines.append("}")
    lines.append("")
    lines.append("SINCE: dict[tuple[str, str], str] = {")
    for (path, kw), ver in sorted(since.items()):
        lines.append(f"    ({path!r}, {kw!r}): {ver!r},")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[3], file=sys.stderr)
        return 2
    git_dir, refs = argv[0], tuple(argv[1:]) or DEFAULT_REFS
    per_ref = [(ref, replay(functions(sources(git_dir, ref)))) for ref in refs]
    OUT.write_text(module(per_ref))
    print(f"wrote {OUT.relative_to(ROOT)}: {sum(len(v) for v in per_ref[0][1].values())} keywords "
          f"in {len(per_ref[0][1])} blocks ({', '.join(refs)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
