"""`inv import`: read a running cluster's keepalived configs (over SSH, or from files) and write
the inventory that runs it (fabfile/core/conf_import.py does the mapping).

Over SSH each node is read in ONE round trip (facts.config_tree: /etc/keepalived and
/etc/default/keepalived as one tar, plus its addresses, sysctls, units and packages), through a
throw-away inventory that holds only how to reach the hosts (user, sudo, bastion). Nothing is
written anywhere until every node is read and the import is accepted: a refusal writes nothing.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from fabfile.core import conf_import as ci
from fabfile.errors import LbtkError, UsageError
from fabfile.infra import facts as F
from fabfile.infra import remote
from fabfile.infra.observe import observe
from fabfile.model import secrets as secrets_mod
from fabfile.model.context import Env
from fabfile.model.schema import NGINX_SITE, NGINX_SITES, SSH, Defaults, Gateway, Inventory, Node
from fabfile.parsers import ParseError
from fabfile.parsers.keepalived_conf import MemoryFiles, parse_file

MAIN_CONF = "/etc/keepalived/keepalived.conf"
DAEMON_OPTIONS = "/etc/default/keepalived"
IMPORT_FACTS = (F.config_tree(), F.ADDRS, F.SYSCTLS, F.SERVICES, F.INSTALLED, F.NGINX_DEFAULTS)


class ImportError_(LbtkError):
    """The import cannot go on (a node unreadable, a config keepalived would refuse ...): one line."""


@dataclass
class Sources:
    """Where the configs came from, for the inventory's comments and the report."""
    configs: list[ci.NodeConfig]
    origin: dict[str, str]            # node -> "host:/etc/keepalived/keepalived.conf" or the file's path
    notes: list[str]                  # what the nodes show that the first deploy changes
    remove_sites: list[str] = field(default_factory=list)   # nginx sites claiming default_server
    ssh: dict = field(default_factory=dict)        # how the import reached the nodes: defaults.ssh


def from_files(paths: list[str], addresses: list[str]) -> Sources:
    """--file PATH (one per node, in order) and --address IP (one per file, or none)."""
    if addresses and len(addresses) != len(paths):
        raise UsageError(f"--address: give one per --file ({len(paths)}), or none "
                         "(each file's unicast_src_ip / mcast_src_ip names its node)")
    configs, origin = [], {}
    for k, path in enumerate(paths):
        p = Path(path)
        try:
            files = {str(q): q.read_text() for q in [p, *sorted(p.parent.rglob("*"))] if q.is_file()} \
                if p.parent != Path("/") else {str(p): p.read_text()}
        except OSError as e:
            raise UsageError(f"--file {path}: {e.strerror or e}") from None
        if str(p) not in files:
            raise UsageError(f"--file {path}: no such file")
        conf = _parse(str(p), files)
        name = _name_for(conf, k, taken={c.name for c in configs}, fallback=f"node{k + 1}")
        primary, per_iface = _address_flag(addresses[k]) if addresses else (None, {})
        configs.append(ci.NodeConfig(name, conf, address=primary, file=path, addresses=per_iface,
                                     text=files[str(p)]))
        origin[name] = path
    return Sources(configs, origin, [])


def _address_flag(text: str) -> tuple[str | None, dict[str, str]]:
    """One --address: `IP` (the node's address on its VRRP interface), or `IFACE=IP[,IFACE=IP...]`
    for a node whose instances run on several interfaces."""
    primary, per_iface = None, {}
    for item in (w.strip() for w in text.split(",") if w.strip()):
        iface, eq, ip = item.rpartition("=")
        if not ci.valid_address(ip):
            raise UsageError(f"--address {text}: {ip!r} is not an address (IP, or IFACE=IP,IFACE=IP)")
        if eq:
            per_iface[iface] = ip
        elif primary is None:
            primary = ip
        else:
            raise UsageError(f"--address {text}: two plain addresses; name the interface of the second (IFACE=IP)")
    return primary, per_iface


def _parse(main: str, files: dict[str, str]):
    try:
        return parse_file(main, MemoryFiles(files))
    except ParseError as e:
        raise ImportError_(str(e)) from None


def _name_for(conf, k: int, taken: set[str], fallback: str) -> str:
    """A node's name: its router_id when that is a usable, unused name; else `fallback`."""
    gd = conf.find("global_defs")
    rid = next((s.args[0] for g in gd for s in g.find("router_id") + g.find("lvs_id") if s.args), None)
    name = ci.node_name(rid) if rid else fallback
    return name if name not in taken else fallback


def transient_env(cluster: str, hosts: list[str], user: str | None, become: bool, gateway: str | None,
                  key_filename: str | None, known_hosts: str | None, port: int | None) -> Env:
    """An Env for reaching the hosts only: no VRRP, no services (never validated as an inventory,
    never written)."""
    ssh = SSH(user=user, become="sudo" if become else None, port=port, key_filename=key_filename,
              known_hosts=known_hosts, gateway=Gateway(host=gateway) if gateway else None)
    nodes = [Node.model_construct(name=ci.node_name(h), host=h, address=None, address6=None, priority=1,
                                  state=None, interface=None, interfaces={}, prefixlen=24, prefixlen6=64, mac=None,
                                  ssh=None, lab=None) for h in hosts]
    inv = Inventory.model_construct(cluster=cluster, nodes=nodes, defaults=Defaults(ssh=ssh), lab=None)
    return Env(inv, Path(os.devnull), {}, cluster)


def from_nodes(env: Env) -> Sources:
    """Every host of the transient env, one round trip each; a node that cannot be read fails the
    import (nothing is written)."""
    with remote.nodes(env) as group:
        states = observe(group, IMPORT_FACTS)
    configs, origin, notes = [], {}, []
    for node in env.inv.nodes:
        st = states[node.name]
        if not st.reachable:
            raise ImportError_(f"{node.host}: {st.error} — nothing was written")
        files = {p: b.decode(errors="replace") for p, b in st.config_tree.items()}
        if MAIN_CONF not in files:
            raise ImportError_(f"{node.host}: no {MAIN_CONF} — is keepalived configured there?")
        conf = _parse(MAIN_CONF, files)
        name = _name_for(conf, len(configs), taken={c.name for c in configs}, fallback=node.name)
        configs.append(ci.NodeConfig(name, conf, host=node.host, file=f"{node.host}:{MAIN_CONF}",
                                     text=files[MAIN_CONF]))
        origin[name] = f"{node.host}:{MAIN_CONF}"
        if st.active.get("keepalived") != "active":
            notes.append(f"{name}: keepalived is {st.active.get('keepalived', 'not installed')}: the first deploy "
                         "starts it")
        if not st.has("nginx") and not st.has("nginx-light"):
            notes.append(f"{name}: nginx is not installed: the first deploy installs it and lbtk's site")
    sites = sorted({d.file.rsplit("/", 1)[-1] for st in states.values() for d in st.nginx_defaults
                    if d.file.startswith(NGINX_SITES + "/") and not d.file.endswith("/" + NGINX_SITE)})
    ssh = env.inv.defaults.ssh.model_dump(exclude_none=True, exclude_defaults=True)
    return Sources(configs, origin, notes, remove_sites=sites, ssh=ssh)


def run_import(sources: Sources, name: str, out: Path, partial: bool) -> tuple[ci.Imported, Inventory, Path | None]:
    """The mapping, the model's validation, then (only if all holds) the writes: the inventory at
    `out`, the secret at inventories/secrets/NAME.auth_pass (0600, never printed)."""
    from fabfile.model.loading import inventory_dir
    secret_rel = f"secrets/{name}.auth_pass"
    imported = ci.import_configs(sources.configs, name, secret_rel, partial=partial)
    imported.notes = sources.notes + imported.notes
    if sources.ssh:     # deploy reaches the nodes the way the import did
        defaults = imported.inventory.setdefault("defaults", {})
        defaults["ssh"] = sources.ssh
        imported.inventory = {k: imported.inventory[k] for k in
                              ["cluster", "defaults", *[k for k in imported.inventory if k not in ("cluster", "defaults")]]}
    if sources.remove_sites:
        # lbtk's site is the nodes' default_server; nginx -t refuses two
        imported.inventory["nginx"] = {"remove_sites": sources.remove_sites}
        imported.notes.append(f"nginx: {', '.join(sources.remove_sites)} claim(s) default_server: the first deploy "
                              "removes them for lbtk's site (nginx.remove_sites)")
    try:
        inv = Inventory.model_validate(imported.inventory)
    except ValueError as e:
        raise ImportError_(f"the imported inventory does not hold: {' '.join(str(e).split())[:300]}") from None
    if out.exists():
        raise UsageError(f"{out}: exists — import never overwrites an inventory (choose another --env or --out)")
    secret_path = None
    if imported.secrets:
        secret_path = inventory_dir() / secret_rel
        secret_path.parent.mkdir(parents=True, exist_ok=True)
        if secret_path.exists():
            raise UsageError(f"{secret_path}: exists — import never overwrites a secret")
        fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(next(iter(imported.secrets.values())) + "\n")
        secrets_mod.current().add(next(iter(imported.secrets.values())))
    imported.meaning = meaning_changes(sources, inv, imported)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_yaml(imported, sources))
    return imported, inv, secret_path


def meaning_changes(sources: Sources, inv: Inventory, imported: ci.Imported) -> list[str]:
    """The adoption guarantee, checked before anything is written: each node's keepalived.conf as
    lbtk will render it, read as keepalived reads it, against the node's own (conf_meaning
    .behaviour: instances, VIPs, virtual and real servers, weights, checkers). One line per node:
    the same, or each difference."""
    from fabfile.core.conf_meaning import behaviour, diff, meaning_of
    from fabfile.core.render import ASSUMED, render_node
    from fabfile.core.render.keepalived import CONF
    from fabfile.parsers.keepalived_conf import parse_conf
    password = next(iter(imported.secrets.values()), None)
    secrets = {vi.name: password for vi in inv.vrrp_instances if vi.authentication and password}
    out = []
    for cfg in sources.configs:
        text = next(f.content for f in render_node(inv, cfg.name, secrets, ASSUMED) if f.path == CONF)
        changes = diff(behaviour(meaning_of(cfg.conf)), behaviour(meaning_of(parse_conf(text))))
        out.append(f"{cfg.name}: keepalived.conf keeps its meaning (instances, VIPs, virtual and real servers)"
                   if not changes else f"{cfg.name}: keepalived.conf changes meaning: " + "; ".join(changes))
    return out


def render_yaml(imported: ci.Imported, sources: Sources) -> str:
    import yaml
    head = ["# Imported by `inv import` from:"]
    head += [f"#   {node}: {where}" for node, where in sources.origin.items()]
    if imported.unsupported:
        head.append("# Left out (--partial): a deploy of this inventory removes them:")
        head += [f"#   {f.line()}" for f in imported.unsupported]
    body = yaml.safe_dump(imported.inventory, sort_keys=False, default_flow_style=None, width=110)
    return "\n".join(head) + "\n" + body
