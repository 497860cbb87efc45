"""Pure rendering: (inventory, node, facts, secrets) -> the exact files that node needs.

Each concern has a small module with its Jinja2 templates beside it. Nothing here touches
the network or the disk except reading the templates (and the compiled-template cache the
command line may hand in: bytecode_cache_factory).
"""
from __future__ import annotations

import re
import shlex
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fabfile.core.phase import Phase
from fabfile.model.schema import Inventory

if TYPE_CHECKING:
    from jinja2 import Environment


@dataclass(frozen=True)
class RenderFacts:
    """The node facts rendering depends on, passed in explicitly (fabfile.infra.facts.RENDER reads them
    from a live node; `inv render` without --live assumes ASSUMED and says so)."""
    ipvs: bool                 # kernel has IPVS; without it keepalived runs VRRP-only
    # the scripts an earlier deploy shipped (its record on the node): those the inventory no longer
    # names are removed (fabfile/core/render/scripts.py); none when not read (render, check)
    shipped_before: tuple[str, ...] = ()

    def describe(self) -> str:
        return "ipvs=yes (kernel has IPVS)" if self.ipvs else "ipvs=no (no IPVS: keepalived --vrrp, no net.ipv4.vs.*)"

    @classmethod
    def of(cls, state) -> "RenderFacts":
        """From an observed fabfile.infra.facts.NodeState (needs the facts in fabfile.infra.facts.RENDER)."""
        from fabfile.core.render.scripts import MANIFEST
        from fabfile.parsers.lbtk_scripts import parse_manifest
        live = state.files.get(MANIFEST)
        return cls(ipvs=bool(state.has_ipvs), shipped_before=parse_manifest(live.content if live else None))


Facts = RenderFacts            # the short name the renderers use
ASSUMED = RenderFacts(ipvs=True)   # a production director: the kernel has IPVS


@dataclass(frozen=True)
class NodeFile:
    path: str                  # absolute path on the node
    content: str | None        # None: the file must not exist
    phase: Phase               # the phase that writes it and whose service actions follow from it
    mode: int = 0o644
    secret: bool = False       # holds the VRRP secret: mask before showing, 0600 on the node
    # content None and not among the files deploy read: lbtk's own record says it wrote this file
    # (a script dropped from the inventory), so it is removed without having been read
    recorded: bool = False


HERE = Path(__file__).parent
_envs: dict[str | None, Environment] = {}   # a cache of Jinja2 environments, per templates_dir
_envs_lock = threading.Lock()               # deploy renders from threads
# Where compiled templates are kept between runs: a callable giving a jinja2 BytecodeCache, or None
# (set by the command line's shell, fabfile/infra/template_cache.py; the core itself writes nothing).
# Compiling the templates was 0.11 s of every deploy, drain and no-op run.
bytecode_cache_factory = None


# A value a systemd unit or an iptables-restore file takes as one word, unquoted: what the model
# lets through there (addresses, numbers, our own paths) and nothing a parser would act on
UNIT_WORD = re.compile(r"[A-Za-z0-9_.:/@+=-]+")


class UnsafeValue(ValueError):
    """A value a template would write unquoted into a unit or a rules file, holding more than a word."""


def shquote(value) -> str:
    """A value as one shell word (every value rendered into a shell script goes through it)."""
    return shlex.quote(str(value))


def unit_word(value) -> str:
    """A value written into a systemd unit or an iptables-restore file, where no shell quoting
    applies: refused unless it is one plain word."""
    text = str(value)
    if not UNIT_WORD.fullmatch(text):
        raise UnsafeValue(f"{text!r} is not one plain word (letters, digits and . _ : / @ + = -)")
    return text


class Templates:
    """The templates one inventory renders with: its templates_dir first (site overrides), then ours.

    Every template runs in Jinja2's immutable sandbox: a templates_dir template is the inventory's
    (trusted input, docs/SECURITY.md), but `inv render` and `inv check` run as root, so what a
    template can reach is limited to the values it is given (no attribute walk to os or
    subprocess, no mutation of the model)."""

    def __init__(self, override_dir: str | None, source: str = "<inventory>"):
        self.source = source
        # Jinja2 is imported when a template is first needed, not at start-up: verify, status and
        # the tables render nothing (17 ms of every task's start)
        from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined
        from jinja2.sandbox import ImmutableSandboxedEnvironment
        with _envs_lock:
            if override_dir not in _envs:
                dirs = [override_dir, str(HERE)] if override_dir else [str(HERE)]
                env = ImmutableSandboxedEnvironment(loader=ChoiceLoader([FileSystemLoader(d) for d in dirs]),
                                                    undefined=StrictUndefined, trim_blocks=True,
                                                    lstrip_blocks=True, keep_trailing_newline=True)
                env.filters.update(shquote=shquote, unit_word=unit_word)
                if bytecode_cache_factory is not None:
                    env.bytecode_cache = bytecode_cache_factory()
                _envs[override_dir] = env
            self.env = _envs[override_dir]

    def __call__(self, name: str, **values) -> str:
        from jinja2 import TemplateError, TemplateSyntaxError
        from jinja2.sandbox import SecurityError
        try:
            return self.env.get_template(name).render(**values)
        except UnsafeValue as e:
            from fabfile.model.loading import InventoryError
            raise InventoryError(f"{self.source}: {name}: {e} — fix the inventory value behind it")
        except SecurityError as e:
            raise _template_error(self.source, f"{name}: the sandbox refused it ({e}) — a template may use "
                                  "only the values it is given")
        except TemplateSyntaxError as e:
            where = f"{e.filename or e.name or name}" + (f" line {e.lineno}" if e.lineno else "")
            raise _template_error(self.source, f"{where}: {e.message} — fix the template (templates_dir overrides ours by name)")
        except TemplateError as e:
            msg = " ".join(str(e.message if hasattr(e, "message") and e.message else e).split())
            raise _template_error(self.source, f"{name}: {msg} — a templates_dir template may use only the values "
                                  "lbtk's own template of that name uses")


def _template_error(source: str, msg: str):
    from fabfile.model.loading import InventoryError
    return InventoryError(f"{source}: templates_dir: {msg}")


def templates(inv: Inventory) -> Templates:
    return Templates(inv.templates_path, inv.source)


_rendered: dict[tuple, tuple[Inventory, tuple[NodeFile, ...]]] = {}
_rendered_lock = threading.Lock()


def render_node(inv: Inventory, node_name: str, secrets: dict[str, str], facts: RenderFacts) -> list[NodeFile]:
    """The node's files (a new list each call). Memoised for the same inventory object, secrets and
    facts: a deploy asks for every node's files twice (managed_paths, then the plan), the bulk
    of a no-op deploy's controller CPU at 30 nodes."""
    key = (id(inv), node_name, tuple(sorted(secrets.items())), facts)
    with _rendered_lock:
        hit = _rendered.get(key)
    if hit is not None and hit[0] is inv:
        return list(hit[1])
    files = _render(inv, node_name, secrets, facts)
    with _rendered_lock:
        if len(_rendered) > 4096:     # a long-running watch or test session: start over
            _rendered.clear()
        _rendered[key] = (inv, tuple(files))
    return files


def _render(inv: Inventory, node_name: str, secrets: dict[str, str], facts: RenderFacts) -> list[NodeFile]:
    from fabfile.core.render import arp, fwmark, ipvs_sync, keepalived, monitoring, nginx, rsyslog, scripts  # noqa: E402 (they import NodeFile from here)
    node = inv.node(node_name)
    t = templates(inv)
    files = []
    files += scripts.files(inv, facts)      # before keepalived.conf: the files it runs
    files += keepalived.files(inv, node, secrets, facts, t)
    files += fwmark.files(inv, node, t)
    files += arp.files(inv, node, facts, t)
    files += nginx.files(inv, node, t)
    files += ipvs_sync.files(inv, node, facts, t)
    files += rsyslog.files(inv, t)
    files += monitoring.files(inv, node, t)
    return files


def render_all(inv: Inventory, secrets: dict[str, str],
               facts: dict[str, RenderFacts] | RenderFacts) -> dict[str, list[NodeFile]]:
    """Every node's files; `facts` is one RenderFacts for all nodes or one per node."""
    per = facts if isinstance(facts, dict) else {n.name: facts for n in inv.nodes}
    return {n.name: render_node(inv, n.name, secrets, per[n.name]) for n in inv.nodes}


def managed_paths(inv: Inventory, node_name: str, secrets: dict[str, str]) -> list[str]:
    """Every path the toolkit manages on a node, whatever its facts (deploy reads them all). One
    render is enough: every renderer names its paths whatever the facts (a file a fact rules out
    comes as content None, to be removed), which tests/unit/test_core_plan.py holds every inventory
    to; a second render per node was a sixth of a 30-node no-op deploy."""
    return list(dict.fromkeys(f.path for f in render_node(inv, node_name, secrets, ASSUMED)))
