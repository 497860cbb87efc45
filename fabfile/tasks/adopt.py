"""`inv import`: adopt a running cluster (or its config files) as an inventory."""
from __future__ import annotations

import sys
from pathlib import Path


from fabfile import output
from fabfile.model.secrets import mask
from fabfile.tasks.common import UsageError, number, one_line_errors, task


@task(name="import", iterable=["file", "address"],
      help={"env": "the new inventory's name: writes inventories/NAME.yaml (and secrets/NAME.auth_pass)",
            "hosts": "the nodes to read, comma-separated (addresses, DNS names or ssh_config aliases)",
            "user": "SSH login user (unset: ssh_config's, else yours)",
            "become": "run as root through sudo (a login that is not root)",
            "gateway": "a bastion every connection goes through",
            "key_filename": "private key to log in with", "known_hosts": "known_hosts file(s) to check host keys",
            "port": "SSH port", "file": "a node's keepalived.conf instead of SSH (repeat, one per node)",
            "address": "with --file: the node's own address when its file does not name it (repeat, in order)",
            "out": "write the inventory here instead of inventories/NAME.yaml",
            "partial": "write the inventory without what lbtk cannot express, and list it"})
@one_line_errors
def import_(c, env, hosts=None, user=None, become=False, gateway=None, key_filename=None, known_hosts=None,
            port=None, file=None, address=None, out=None, partial=False):
    """Adopt a running cluster: read each node's keepalived config and write the inventory that runs it."""
    from fabfile.core.conf_import import ImportRefused
    from fabfile.model.loading import ENV_NAME, inventory_dir
    from fabfile.ops import adopt
    if not ENV_NAME.fullmatch(env):
        raise UsageError(f"--env {env!r}: not an inventory name (a letter or digit, then letters, digits, '.', '_', '-')")
    if bool(hosts) == bool(file):
        raise UsageError("give --hosts H1,H2,... (read the nodes over SSH) or --file PATH per node, not both")
    target = Path(out) if out else inventory_dir() / f"{env}.yaml"
    if file:
        sources = adopt.from_files(list(file), list(address or []))
    else:
        names = [h.strip() for h in hosts.split(",") if h.strip()]
        e = adopt.transient_env(env, names, user, become, gateway, key_filename, known_hosts,
                                number(port, "port", None, int, 1))
        sources = adopt.from_nodes(e)
    try:
        imported, inv, secret = adopt.run_import(sources, env, target, partial)
    except ImportRefused as e:
        for f in e.findings:     # one line per item, on stderr like the refusal itself
            print(mask(f"error: {f.line()}"), file=sys.stderr, flush=True)
        raise UsageError(f"import refused: {len(e.findings)} item(s) above — nothing was written"
                         + ("" if any("agree" in f.why for f in e.findings) else " (--partial writes the rest)"))
    output.say(f"wrote {target} ({len(inv.nodes)} node(s), {len(inv.vrrp_instances)} vrrp_instance(s), "
               f"{len(inv.virtual_servers)} virtual_server(s))")
    if secret is not None:
        output.say(f"wrote {secret} (0600, not shown)")
    for f in imported.unsupported:
        output.say(f"left out: {f.line()}")
    for n in imported.notes:
        output.say(f"first deploy: {n}")
    for line in imported.meaning:
        output.say(f"meaning: {line}")
    output.say(f"next: inv deploy --check --env {env}")
