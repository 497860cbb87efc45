"""The hook through which the product reaches the local lab without importing it.

The lab (fabfile/lab/) is an extension: an inventory may carry a `lab:` section, and each node its
own `lab:`, whose schema, meaning and tools are the lab's. No module of model/, infra/, core/, ops/
or views/ imports fabfile.lab (tests/unit/test_layers.py); they ask here instead:

- `section_model(which)`: the pydantic model of an inventory's `lab:` section ("inventory") or of a
  node's ("node"); the fields `Inventory.lab` and `Node.lab` are validated by it (`ExtensionSection`);
- `cross_problems(inv)`: the section's rules that span the inventory (a node's lab: needs the lab);
- `generated(env, inventory_dir)`: an inventory made from its name alone (`--env lab-30`);
- `before_connect(inv, env)`: called before a socket opens to one of `inv`'s nodes; raises one line
  when it must not (a lab's addresses are reached only through its own bridge);
- `traffic_client(inv)`: where real client requests through a VIP start (`TrafficClient`), or None;
- `os_swap(inv, env)`: how `inv os-upgrade` swaps a node's OS when not by apt (`OsSwap`), or None;
- `claims(inv)`: is the inventory the lab's (its gaps, e.g. a kernel without IPVS, are allowed)?

`register(hooks)` fills the registry once; fabfile/lab/hooks.py does that when it is imported (the
task layer imports it, and tests/conftest.py for the tests). Without it, every hook answers
"nothing" and an inventory with a `lab:` section is refused in one line.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from pydantic_core import core_schema

if TYPE_CHECKING:
    from pydantic import BaseModel

    from fabfile.model.fields import FieldProblem
    from fabfile.model.schema import Inventory


@dataclass(frozen=True)
class TrafficClient:
    """Where client requests through a VIP start: `prefix` runs a command there (e.g. `ip netns exec
    NS`), `name` names it in tables, `ready()` says whether it exists now, `missing` is the one line
    that says why not and the fix."""
    name: str
    prefix: tuple[str, ...]
    ready: Callable[[], bool]
    missing: str


@dataclass(frozen=True)
class OsSwap:
    """A node's OS swapped another way than apt + reboot. `how` names it in one word or two;
    `step(node, release)` is the plan's text for it; `run(node, release, say)` does it."""
    how: str
    step: Callable[[str, str], str]
    run: Callable[[str, str, Callable[[str], None]], None]


@dataclass(frozen=True)
class Hooks:
    section: type[BaseModel]                              # an inventory's `lab:`
    node_section: type[BaseModel]                         # a node's own `lab:`
    cross_problems: Callable[[Inventory], Iterable[FieldProblem]]
    generated: Callable[[str, Path], tuple[dict, str] | None]     # (data, what it was made from)
    before_connect: Callable[[Inventory, str | None], None]
    traffic_client: Callable[[Inventory], TrafficClient | None]
    os_swap: Callable[[Inventory, str], OsSwap | None]


# Written once, at import of the module that registers (before any inventory loads), read only after.
_hooks: list[Hooks] = []


def register(hooks: Hooks) -> None:
    _hooks[:] = [hooks]


def registered() -> Hooks | None:
    return _hooks[0] if _hooks else None


def claims(inv: Inventory) -> bool:
    """Is `inv` the extension's own (it carries its section: the lab's `lab:`)? Such an inventory
    runs on the extension's machines, whose announced gaps are allowed (a lab kernel without IPVS:
    keepalived VRRP-only). Any other inventory is production's and gets no such allowance."""
    return registered() is not None and inv.lab is not None


def section_model(which: str) -> type[BaseModel] | None:
    h = registered()
    if h is None:
        return None
    return h.section if which == "inventory" else h.node_section


def cross_problems(inv: Inventory) -> Iterable[FieldProblem]:
    h = registered()
    return h.cross_problems(inv) if h is not None else ()


def generated(env: str, inventory_dir: Path) -> tuple[dict, str] | None:
    h = registered()
    return h.generated(env, inventory_dir) if h is not None else None


def before_connect(inv: Inventory, env: str | None = None) -> None:
    h = registered()
    if h is not None:
        h.before_connect(inv, env)


def traffic_client(inv: Inventory) -> TrafficClient | None:
    h = registered()
    return h.traffic_client(inv) if h is not None else None


def os_swap(inv: Inventory, env: str) -> OsSwap | None:
    h = registered()
    return h.os_swap(inv, env) if h is not None else None


@dataclass(frozen=True)
class ExtensionSection:
    """Field metadata, `Annotated[Any, ExtensionSection("inventory")]`: the field's value is
    validated by the registered section model (errors keep their path, lab.bridge ...). No model
    registered: the section is refused, one line."""
    which: str        # "inventory" or "node"

    def model(self) -> type[BaseModel] | None:
        return section_model(self.which)

    def _validate(self, value: Any) -> Any:
        if value is None:
            return None
        model = self.model()
        if model is None:
            from fabfile.model.fields import FieldProblem
            raise FieldProblem((), "a section of the local lab, which this program has not loaded",
                               "run it through `inv` (the task layer loads the lab), or drop the section")
        return model.model_validate(value)

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(self._validate)
