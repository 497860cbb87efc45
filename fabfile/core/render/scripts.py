"""The scripts an inventory ships (`scripts:` with source or content): root's files, mode 0755, written
by the keepalived phase with the keepalived.conf that runs them; and the record of what lbtk shipped,
so a script dropped from the inventory is removed from the nodes (and one the operator put there
never is). Scripts declared `present: true` are the node's own: nothing is rendered for them.
"""
from __future__ import annotations

from pathlib import Path

from fabfile.core.phase import Phase
from fabfile.core.render import Facts, NodeFile
from fabfile.model.schema import Inventory
from fabfile.model.scripts import SHEBANG
from fabfile.parsers.lbtk_scripts import render_manifest

# what lbtk shipped, one path a line: a record of the toolkit's (root's only, like the others there)
MANIFEST = "/var/lib/lbtk/shipped-scripts"
MODE = 0o755
# what `inv check` runs in place of a script the nodes have already (the real one is not here)
STUB = "#!/bin/sh\n# stands in for the node's own script during `inv check`\nexit 0\n"


def files(inv: Inventory, facts: Facts) -> list[NodeFile]:
    shipped = contents(inv)
    out = [NodeFile(path, text, Phase.KEEPALIVED, mode=MODE) for path, text in shipped.items()]
    out.append(NodeFile(MANIFEST, render_manifest(sorted(shipped)) if shipped else None, Phase.KEEPALIVED,
                        mode=0o600))
    # shipped by an earlier deploy, no longer named: removed (a path now declared present is the node's)
    out += [NodeFile(path, None, Phase.KEEPALIVED, recorded=True)
            for path in facts.shipped_before if path not in inv.scripts]
    return out


def contents(inv: Inventory) -> dict[str, str]:
    """{node path: text} of every shipped script; a source file is read from inventories/."""
    out = {}
    for path, entry in inv.scripts.items():
        if entry.content is not None:
            out[path] = entry.content
        elif entry.source is not None:
            out[path] = _read_source(inv, path, entry.source)
    return out


def stand_ins(inv: Inventory) -> dict[str, str]:
    """{node path: text} as `inv check` lays the scripts out for keepalived -t: the shipped ones with
    their content, the declared-present ones as a stub (the node has the real one; deploy checks it)."""
    return {**{p: STUB for p, e in inv.scripts.items() if e.present}, **contents(inv)}


def _read_source(inv: Inventory, path: str, source: str) -> str:
    from fabfile.model.loading import InventoryError, inventory_dir   # (loading imports the model)
    where = f"{inv.source}: scripts[{path!r}].source"
    f = inventory_dir() / source
    try:
        text = Path(f).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InventoryError(f"{where}: {source} not found in {inventory_dir()} — "
                             "add the file, or fix the path (relative to inventories/)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InventoryError(f"{where}: cannot read {source} ({getattr(e, 'strerror', None) or e}) — "
                             "ship a readable UTF-8 text file") from None
    if not text.startswith(SHEBANG):
        raise InventoryError(f"{where}: {source} does not start with #! (keepalived runs only files the "
                             "kernel can execute) — begin it with an interpreter line, e.g. #!/bin/sh")
    return text


def is_shipped(f: NodeFile) -> bool:
    """A shipped script (or one lbtk shipped and now removes)."""
    return f.phase is Phase.KEEPALIVED and (f.mode == MODE or f.recorded)


def appeared_or_gone(changed: set[str], want: dict[str, NodeFile], live: dict) -> list[str]:
    """Shipped scripts this change creates or removes: keepalived checks a script's path (there,
    executable, secure) when it loads its config and disables one that fails for good, so these need
    keepalived to reload; a script whose content alone changes does not (keepalived runs the file at
    its path each time); one made executable again does."""
    return sorted(p for p in changed if p in want and is_shipped(want[p])
                  and (want[p].content is None or live.get(p) is None or live[p].mode != MODE))
