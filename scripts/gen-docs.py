"""Write the inventory reference from the schema: docs/inventory.md and docs/inventory.schema.json.

    .venv/bin/python scripts/gen-docs.py           # rewrite both files
    .venv/bin/python scripts/gen-docs.py --check   # exit 1 when either differs from the schema

The schema (fabfile/model/schema.py, and the lab's sections in fabfile/lab/schema.py, which the
product knows only as the models registered in fabfile.model.extensions) is the one place a key and
its description are defined; these files are views of it, and tests/unit/test_docs.py fails when
they drift. Output depends only on the schema, the
keepalived.conf template and the committed inventories (no dates, no machine paths), so two runs
write the same bytes.
"""
from __future__ import annotations

import json
import re
import sys
import types
import typing
from pathlib import Path

import annotated_types as at
import yaml
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import fabfile.lab.hooks  # noqa: E402,F401  (registers the lab's sections, as `inv` and the tests do)
from fabfile.model.extensions import ExtensionSection  # noqa: E402
from fabfile.model.schema import Inventory  # noqa: E402

MARKDOWN = ROOT / "docs" / "inventory.md"
JSON_SCHEMA = ROOT / "docs" / "inventory.schema.json"
TEMPLATE = ROOT / "fabfile" / "core" / "render" / "keepalived.conf.j2"
CHECKER_LINES = ROOT / "fabfile" / "core" / "render" / "checkers.py"
INVENTORIES = ROOT / "inventories"
GOOD = ROOT / "tests" / "inventories" / "good"
# where examples are looked up first: the production-shaped inventories, then every other one by name
EXAMPLE_FIRST = ("prod.example.yaml", "example.yaml")
REGENERATE = ".venv/bin/python scripts/gen-docs.py"

# Sections whose keys keepalived.conf reads under the same name (a key named like a keyword of the
# template is that keyword). A field may name its keepalived form itself with
# Field(json_schema_extra={"keepalived": "..."}); that wins over everything here.
KEEPALIVED_SECTIONS = {"GlobalDefs", "VrrpScript", "VrrpInstance", "VrrpSyncGroup", "Authentication",
                       "VirtualServer", "RealServer", "TcpCheck", "HttpGet", "VrrpTrackProcess", "TrackFileDef",
                       "Url", "SslGet", "MiscCheck", "DnsCheck", "SmtpCheck", "SmtpHost", "UdpCheck", "PingCheck",
                       "FileCheck"}
# Keys keepalived knows by another name or shape ((section, key) -> keepalived's form).
KEEPALIVED_FORMS = {
    ("Inventory", "global_defs"): "global_defs",
    ("Inventory", "vrrp_scripts"): "vrrp_script NAME",
    ("Inventory", "vrrp_instances"): "vrrp_instance NAME",
    ("Inventory", "vrrp_sync_groups"): "vrrp_sync_group NAME",
    ("Inventory", "vrrp_track_processes"): "vrrp_track_process NAME",
    ("Inventory", "track_files"): "track_file NAME (vrrp_track_file)",
    **{("VrrpInstance", f): f for f in ("track_interface", "track_script", "track_process", "track_file")},
    ("TrackFileDef", "init_file"): "init_file",
    ("InitFile", "value"): "init_file VALUE",
    ("InitFile", "overwrite"): "init_file ... overwrite",
    **{(cls, key): f"{field} {{ {form} }}" for cls, field in (("TrackInterface", "track_interface"),
                                                            ("TrackScript", "track_script"),
                                                            ("TrackProcess", "track_process"),
                                                            ("TrackFile", "track_file"))
       for key, form in (("name", "NAME"), ("weight", "NAME weight N"))},
    ("Inventory", "virtual_servers"): "virtual_server",
    ("Inventory", "sync_daemon"): "lvs_sync_daemon",
    ("Defaults", "interface"): "interface",
    ("Node", "address"): "unicast_src_ip, unicast_peer",
    ("Node", "address6"): "unicast_src_ip, unicast_peer (IPv6 instances)",
    ("Node", "priority"): "priority",
    ("Node", "state"): "state",
    ("Node", "interface"): "interface",
    ("VrrpInstance", "name"): "vrrp_instance NAME",
    ("VrrpInstance", "vrrp_version"): "version",
    ("VrrpInstance", "unicast"): "unicast_src_ip, unicast_peer",
    ("VrrpInstance", "virtual_ipaddress"): "virtual_ipaddress (2nd on: virtual_ipaddress_excluded)",
    ("Authentication", "auth_pass_env"): "auth_pass",
    ("Authentication", "auth_pass_file"): "auth_pass",
    ("VrrpSyncGroup", "name"): "vrrp_sync_group NAME",
    ("VirtualServer", "vip"): "virtual_server VIP PORT",
    ("VirtualServer", "port"): "virtual_server VIP PORT",
    ("VirtualServer", "fwmark"): "virtual_server fwmark N",
    ("VirtualServer", "real_servers"): "real_server",
    ("RealServer", "node"): "real_server ADDRESS",
    ("RealServer", "address"): "real_server ADDRESS",
    ("RealServer", "port"): "real_server ADDRESS PORT",
    ("HttpGet", "path"): "url { path }",
    ("HttpGet", "digest"): "url { digest }",
    ("HttpGet", "status_code"): "url { status_code }",
    ("HttpGet", "url"): "url",
    ("SslGet", "path"): "url { path }",
    ("SslGet", "digest"): "url { digest }",
    ("SslGet", "status_code"): "url { status_code }",
    ("SslGet", "url"): "url",
    ("SmtpCheck", "host"): "one SMTP_CHECK per host",
    ("FileCheck", "reverse"): "weight N reverse",
    ("SyncDaemon", "interface"): "lvs_sync_daemon IFACE",
    ("SyncDaemon", "syncid"): "lvs_sync_daemon ... id N",
    ("SyncDaemon", "vrrp_instance"): "lvs_sync_daemon IFACE INSTANCE",
    ("Logging", "facility"): "--log-facility",
    ("Logging", "detail"): "--log-detail",
}


# ---------------------------------------------------------------- the schema as a tree of sections

def _strip_annotated(tp):
    """(the bare type, the metadata Annotated carried around it)."""
    if typing.get_origin(tp) is typing.Annotated:
        bare, *meta = typing.get_args(tp)
        return bare, meta
    return tp, []


def _union_members(tp) -> list:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return list(typing.get_args(tp))
    return [tp]


def _extension_model(field: FieldInfo) -> type[BaseModel] | None:
    """The model an extension section (the lab's `lab:`, typed Any in the schema) is validated by:
    the one registered in fabfile.model.extensions, so the reference and the editors' JSON Schema
    document it as `inv` checks it."""
    for m in field.metadata:
        if isinstance(m, ExtensionSection):
            model = m.model()
            if model is None:
                sys.exit(f"scripts/gen-docs.py: no model is registered for the `{m.which}` extension section "
                         "(fabfile.model.extensions) — fabfile/lab/hooks.py registers the lab's")
            return model
    return None


def field_model(field: FieldInfo) -> type[BaseModel] | None:
    """The model a field holds: its own type's, else its extension section's."""
    return _model_of(field.annotation) or _extension_model(field)


def _model_of(tp) -> type[BaseModel] | None:
    """The model a type holds (directly, optional, in a list or as a dict's values), else None."""
    tp, _ = _strip_annotated(tp)
    for member in _union_members(tp):
        member, _ = _strip_annotated(member)
        if isinstance(member, type) and issubclass(member, BaseModel):
            return member
        if typing.get_origin(member) in (list, dict):
            inner = _model_of(typing.get_args(member)[-1])
            if inner is not None:
                return inner
    return None


def _child_path(path: str, name: str, tp) -> str:
    """The path of a nested section: nodes[], vrrp_scripts.NAME, defaults.ssh."""
    key = f"{path}.{name}" if path else name
    for member in _union_members(_strip_annotated(tp)[0]):
        origin = typing.get_origin(_strip_annotated(member)[0])
        if origin is list:
            return key + "[]"
        if origin is dict:
            return key + ".NAME"
    return key


def sections() -> list[tuple[type[BaseModel], list[str]]]:
    """Every model reachable from Inventory, depth first in field order, with each path it sits at."""
    order: list[type[BaseModel]] = []
    paths: dict[type[BaseModel], list[str]] = {}

    def walk(model: type[BaseModel], path: str) -> None:
        if model in paths:
            paths[model].append(path)
            return
        order.append(model)
        paths[model] = [path]
        for name, field in model.model_fields.items():
            child = field_model(field)
            if child is not None:
                walk(child, _child_path(path, name, field.annotation))

    walk(Inventory, "")
    return [(m, paths[m]) for m in order]


# ---------------------------------------------------------------- one row per key

def _constraints(meta: list) -> list[str]:
    out = []
    for m in meta:
        for attr, word in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            value = getattr(m, attr, None)
            if isinstance(m, (at.Ge, at.Gt, at.Le, at.Lt, at.Interval)) and value is not None:
                out.append(f"{word} {value}")
        if isinstance(m, at.MinLen):
            out.append(f"at least {m.min_length}")
        if isinstance(m, at.MaxLen):
            out.append(f"at most {m.max_length}")
        pattern = getattr(m, "pattern", None)
        if isinstance(pattern, str):
            out.append(f"pattern {pattern}")
    return out


def type_text(tp, meta: list = ()) -> str:
    """A reader's form of a field's type: `int (≥ 1, ≤ 255)`, `list of [Node](#node)`, `one of rr, wrr`."""
    tp, inner_meta = _strip_annotated(tp)
    members = [m for m in _union_members(tp) if m is not type(None)]
    parts = []
    for member in members:
        member, member_meta = _strip_annotated(member)
        origin = typing.get_origin(member)
        if origin is typing.Literal:
            parts.append("one of " + ", ".join(str(a) for a in typing.get_args(member)))
        elif origin is list:
            parts.append("list of " + type_text(typing.get_args(member)[0]))
        elif origin is dict:
            parts.append("map of NAME to " + type_text(typing.get_args(member)[1]))
        elif isinstance(member, type) and issubclass(member, BaseModel):
            parts.append(f"[{member.__name__}](#{member.__name__.lower()})")
        else:
            parts.append(getattr(member, "__name__", str(member)) + _bracketed(_constraints(member_meta)))
    return " or ".join(parts) + _bracketed(_constraints(list(inner_meta) + list(meta)))


def field_type_text(field: FieldInfo) -> str:
    extension = _extension_model(field)
    if extension is not None:
        return f"[{extension.__name__}](#{extension.__name__.lower()})"
    return type_text(field.annotation, field.metadata)


def _bracketed(items: list[str]) -> str:
    return f" ({', '.join(items)})" if items else ""


def _keepalived_words() -> set[str]:
    """The keywords keepalived.conf.j2 and the macro files beside it (keepalived_*.j2) write: words
    outside Jinja2 expressions and comments, and the quoted names its loops write (`for k in
    ("fall", "rise", ...)`)."""
    text = "\n".join(p.read_text() for p in sorted(TEMPLATE.parent.glob("keepalived*.j2")))
    words = set(re.findall(r'\(\s*"(\w+)"', text)) | set(re.findall(r',\s*"(\w+)"', text))
    for line in text.splitlines():
        if line.lstrip().startswith(("#", "{%")):
            continue
        words |= set(re.findall(r"[A-Za-z_]\w*", re.sub(r"\{\{.*?\}\}", " ", line)))
    # the checker blocks' keywords are written by fabfile/core/render/checkers.py, named there in quotes
    return words | set(re.findall(r'"([A-Za-z_]\w*)"', CHECKER_LINES.read_text()))


def keepalived_name(model: type[BaseModel], name: str, field: FieldInfo, words: set[str]) -> str:
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    if "keepalived" in extra:
        return str(extra["keepalived"])
    if (model.__name__, name) in KEEPALIVED_FORMS:
        return KEEPALIVED_FORMS[(model.__name__, name)]
    if model.__name__ in KEEPALIVED_SECTIONS and name in words:
        return name
    return ""


def default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, BaseModel):
        return "`{}`"      # the section with each of its keys at its default
    return _code(_yaml_value(value))


def _yaml_value(value) -> str:
    """A value as an inventory writes it (YAML flow style, one line)."""
    if value is None:
        return "null"
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6, allow_unicode=True)
    return text.removesuffix("...\n").strip()


def description_of(field: FieldInfo) -> str:
    """Field(description=...), or the field's docstring where the model sets use_attribute_docstrings
    (pydantic copies it into description); comments beside a field are not read."""
    return " ".join((field.description or "").split())


# ---------------------------------------------------------------- examples from the inventories

def _inventories() -> list[tuple[str, dict]]:
    files = sorted(INVENTORIES.glob("*.yaml"), key=lambda p: (p.name not in EXAMPLE_FIRST,
                                                              EXAMPLE_FIRST.index(p.name)
                                                              if p.name in EXAMPLE_FIRST else 0, p.name))
    # then the reviewed golden cases of the test suite (each keyword's showcase), where the
    # committed inventories have no example of a key
    files += sorted(GOOD.glob("*.yaml"))
    return [(p.name, yaml.safe_load(p.read_text()) or {}) for p in files]


def _values_at(data, steps: list[str], trail: tuple = ()):
    """(trail, value) for every value at a section path's steps (`nodes[]` walks a list, `.NAME` a
    dict's values); the trail holds the keys it took, `[]` for a list element."""
    if not steps:
        yield trail, data
        return
    step, rest = steps[0], steps[1:]
    if step == "NAME":
        if isinstance(data, dict):
            for key, value in data.items():
                yield from _values_at(value, rest, trail + (key,))
        return
    key, is_list = step.removesuffix("[]"), step.endswith("[]")
    if not isinstance(data, dict) or data.get(key) is None:
        return
    if is_list:
        for value in data[key] if isinstance(data[key], list) else []:
            yield from _values_at(value, rest, trail + (key, "[]"))
    else:
        yield from _values_at(data[key], rest, trail + (key,))


def _steps(path: str) -> list[str]:
    return [s for s in path.split(".") if s] if path else []


def _wrapped(trail: tuple, value):
    """The value inside the keys that lead to it, as it sits in an inventory."""
    for key in reversed(trail):
        value = [value] if key == "[]" else {key: value}
    return value


def example_section(paths: list[str], inventories) -> tuple[str, str] | None:
    """The first instance of a section in the committed inventories: (file, YAML as written there)."""
    for file, data in inventories:
        for path in paths:
            for trail, value in _values_at(data, _steps(path)):
                if isinstance(value, dict) and value:
                    return file, yaml.safe_dump(_wrapped(trail, value), sort_keys=False, default_flow_style=None,
                                                width=100, allow_unicode=True).rstrip()
    return None


def example_value(paths: list[str], name: str, field: FieldInfo, inventories) -> str:
    if field.examples:
        return f"{name}: {_yaml_value(field.examples[0])}"
    if field_model(field) is not None:
        return ""     # a section: its own example block shows it
    for _, data in inventories:
        for path in paths:
            for _, section in _values_at(data, _steps(path)):
                if isinstance(section, dict) and name in section:
                    return f"{name}: {_yaml_value(section[name])}"
    return ""


# ---------------------------------------------------------------- the two files

def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _code(text: str) -> str:
    return f"`{_cell(text)}`" if text else ""


def _heading(model: type[BaseModel], paths: list[str]) -> str:
    where = ", ".join(f"`{p}`" for p in paths) if paths != [""] else "the top level"
    return f'<a id="{model.__name__.lower()}"></a>\n## {model.__name__}: {where}'


def _intro(model: type[BaseModel]) -> str:
    doc = model.__doc__ or ""
    if model is Inventory or doc.strip() == (BaseModel.__doc__ or "").strip() or doc.startswith("Usage docs"):
        return ""
    return " ".join(doc.split("\n\n")[0].split())


def markdown() -> str:
    words = _keepalived_words()
    inventories = _inventories()
    out = [
        "# Inventory reference",
        "",
        "Generated from `fabfile/model/schema.py` and the lab's `fabfile/lab/schema.py` by",
        f"`{REGENERATE}`: do not edit by hand (`tests/unit/test_docs.py` fails",
        "when this file and the schema differ).",
        "",
        "An inventory is `inventories/NAME.yaml`, read by every task's `--env NAME`. Keys are",
        "keepalived.conf's own names where keepalived has one (the *keepalived* column; empty: a key",
        "of the toolkit). *default*: what applies when the key is left out; *unset*: the key may be left",
        "out, and its description says what then happens (keepalived's own default, where keepalived",
        "decides). Durations are in seconds. Values keep their YAML type: a number is written as a",
        "number, a flag as true or false (`yes`, `on`, `0x10`, `010` and `1e3` are text here). Unknown",
        "keys are refused, each mistake one line naming the field and the fix.",
        "Examples are taken from the committed inventories, then from the test suite's reviewed cases (tests/inventories/good/). For an editor, point the YAML language",
        "server at [inventory.schema.json](inventory.schema.json):",
        "`# yaml-language-server: $schema=../docs/inventory.schema.json` on an inventory's first line.",
        "",
    ]
    for model, paths in sections():
        out += [_heading(model, paths), ""]
        intro = _intro(model)
        if intro:
            out += [intro, ""]
        out += ["| key | keepalived | type | default | description | example |",
                "|---|---|---|---|---|---|"]
        for name, field in model.model_fields.items():
            out.append("| " + " | ".join([
                f"`{name}`", _code(keepalived_name(model, name, field, words)),
                _cell(field_type_text(field)), default_text(field),
                _cell(description_of(field)), _code(example_value(paths, name, field, inventories)),
            ]) + " |")
        found = example_section(paths, inventories) if model is not Inventory else None
        if found is not None:
            file, block = found
            out += ["", f"From `inventories/{file}`:", "", "```yaml", block, "```"]
        out.append("")
    return "\n".join(out)


class _Schema(GenerateJsonSchema):
    def handle_invalid_for_json_schema(self, schema, error_info):
        return {}     # an extension section's validator: filled in by _with_extensions


def _with_extensions(schema: dict) -> dict:
    """Each extension section (the lab's) in the JSON Schema as its registered model's schema."""
    defs = schema.setdefault("$defs", {})
    for model, _ in sections():
        target = schema if model is Inventory else defs.get(model.__name__)
        for name, field in model.model_fields.items():
            extension = _extension_model(field)
            if extension is None or target is None:
                continue
            own = extension.model_json_schema(ref_template="#/$defs/{model}", schema_generator=_Schema)
            defs.update(own.pop("$defs", {}))
            defs[extension.__name__] = own
            target["properties"][name] = {"anyOf": [{"$ref": f"#/$defs/{extension.__name__}"},
                                                    {"type": "null"}], "default": None,
                                          **({"description": field.description} if field.description else {})}
    schema["$defs"] = dict(sorted(defs.items()))
    return schema


def json_schema() -> str:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
              **_with_extensions(Inventory.model_json_schema(mode="validation", schema_generator=_Schema))}
    schema["description"] = "An lbtk inventory (inventories/NAME.yaml); generated by scripts/gen-docs.py."
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def stale_keepalived_forms() -> list[str]:
    """KEEPALIVED_FORMS entries that name no field of the schema any more."""
    fields = {(m.__name__, n) for m, _ in sections() for n in m.model_fields}
    return [f"{s}.{n}" for s, n in KEEPALIVED_FORMS if (s, n) not in fields]


def render() -> dict[Path, str]:
    return {MARKDOWN: markdown(), JSON_SCHEMA: json_schema()}


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = [p for p, text in render().items() if not p.exists() or p.read_text() != text]
    for path, text in render().items():
        if path in stale and not check:
            path.write_text(text)
    for key in stale_keepalived_forms():
        print(f"warning: scripts/gen-docs.py KEEPALIVED_FORMS names {key}, which the schema no longer has",
              file=sys.stderr)
    if check and stale:
        print(f"out of date: {', '.join(str(p.relative_to(ROOT)) for p in stale)} — run: {REGENERATE}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
