"""The toolkit's deploy as pyinfra's docs have one written: operations that compare the node's state
with the wanted one and act only on a difference (files.put, files.directory, files.file,
systemd.service), and reactions to what changed through `_if` (what Ansible's handlers do in
bench/ansible/deploy.yml, in the same order: the same actions as fabfile/core/plan.py).

    cd bench/pyinfra && ../.venv-pyinfra/bin/pyinfra -y --parallel N INVENTORY.py deploy.py \\
        --data lbtk_rendered=DIR

DIR is what `inv render --live --out DIR` wrote (DIR/NODE/<absolute path>): byte for byte the files
`inv deploy` ships. The inventory (bench/pyinfra_side.py writes it) gives each host ssh_hostname and
lbtk_priority, and all of them the SSH data (root, the lab's key and known_hosts, strict host key
checking), lbtk_vip and lbtk_interface. Root logs in, so no operation needs _sudo.
"""
from functools import cache
from pathlib import Path

from pyinfra import host, inventory
from pyinfra.api.util import get_file_sha1
from pyinfra.facts.files import File, Sha1File
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

import wanted

SRC = Path(host.data.lbtk_rendered) / host.name


def put(path: str):
    """One rendered file to its place, owned by root with the toolkit's mode (uploaded only when the
    node's copy differs in content, owner or mode)."""
    return files.put(name=f"Put {path}", src=str(SRC / path.lstrip("/")), dest=path,
                     user="root", group="root", mode=wanted.SHIPPED[path])


@cache      # asked by the staging and by the move: once a run (this file runs once for each host)
def live_conf_differs() -> bool:
    """The node's keepalived.conf is not the rendered one (content, owner or mode): files.put's own
    comparison, asked before anything is staged."""
    live = host.get_fact(File, path=wanted.KA_CONF)
    if not live or (live["user"], live["group"], live["mode"]) != ("root", "root", wanted.SHIPPED[wanted.KA_CONF]):
        return True
    return host.get_fact(Sha1File, path=wanted.KA_CONF) != get_file_sha1(str(SRC / wanted.KA_CONF.lstrip("/")))


server.shell(name="Packages present (checked, never installed)", commands=[wanted.packages_check()])

for directory in host.loop(wanted.DIRECTORIES):
    files.directory(name=f"Directory {directory}", path=directory, user="root", group="root", mode=755)

# phase arp: LVS-DR real server (ARP sysctls, the VIP on lo)
sysctls = put("/etc/sysctl.d/60-lbtk-lvs.conf")
vip_lo_unit = put("/etc/systemd/system/lbtk-vip-lo.service")

# phase nginx: the site, the page naming the node, no Debian default site
site = put("/etc/nginx/sites-enabled/lbtk.conf")
page = put("/var/www/lbtk/index.html")
# Debian's default site is a symlink: files.file refuses "not a file" unless forced (lbtk removes it too)
no_default_site = files.file(name="No Debian default site", path=wanted.ABSENT[0], present=False, force=True,
                             force_backup=False)

# phase lvs: keepalived's start options (VRRP-only without IPVS), the fwmark rules
ka_defaults = put("/etc/default/keepalived")
fwmark_rules = put("/etc/lbtk/fwmark.rules")
fwmark_unit = put("/etc/systemd/system/lbtk-fwmark.service")

# phase keepalived: staged, checked by the node's keepalived, then moved over the live file
staged = files.put(name="Stage keepalived.conf", src=str(SRC / wanted.KA_CONF.lstrip("/")),
                   dest=wanted.STAGED_KA_CONF, user="root", group="root", mode=wanted.SHIPPED[wanted.KA_CONF],
                   _if=live_conf_differs)
ka_conf = server.shell(name="keepalived -t, then keepalived.conf in place",
                       commands=[f"keepalived -t -f {wanted.STAGED_KA_CONF}",
                                 f"mv -f {wanted.STAGED_KA_CONF} {wanted.KA_CONF}"],
                       _if=live_conf_differs)

# the reactions, in the order deploy.yml's handlers run
systemd.daemon_reload(name="systemd daemon-reload", _if=any_changed(vip_lo_unit, fwmark_unit))
# sysctl -p FILE: `sysctl --system` fails inside containers (the lab's nodes)
server.shell(name="Load the sysctls", commands=["sysctl -q -p /etc/sysctl.d/60-lbtk-lvs.conf"], _if=sysctls.did_change)
systemd.service(name="Restart lbtk-vip-lo", service="lbtk-vip-lo", restarted=True, _if=vip_lo_unit.did_change)
systemd.service(name="Restart lbtk-fwmark", service="lbtk-fwmark", restarted=True,
                _if=any_changed(fwmark_rules, fwmark_unit))
server.shell(name="Check the nginx config", commands=["nginx -t -q"], _if=any_changed(site, no_default_site))
# running=True (the default) starts nginx when it is not running (a fresh node), else reloads it
systemd.service(name="Reload nginx", service="nginx", reloaded=True, _if=any_changed(site, page, no_default_site))
# keepalived reads DAEMON_ARGS only at start
ka_restarted = systemd.service(name="Restart keepalived", service="keepalived", restarted=True,
                               _if=ka_defaults.did_change)
# not right after a restart: it has just read the new keepalived.conf, and a SIGHUP to a keepalived
# still starting up could end it
systemd.service(name="Reload keepalived", service="keepalived", reloaded=True,
                _if=[ka_conf.did_change, ka_restarted.did_not_change])

units = [systemd.service(name=f"{unit} enabled at boot and running", service=unit, running=True, enabled=True)
         for unit in host.loop(wanted.UNITS)]

# like the toolkit's deploy: when keepalived changed, done only once VRRP has settled (the VIP on the
# highest priority node, on no other), retried as deploy.yml's until (80 x 0.25 s)
master = host.name in wanted.top_priority_hosts({h.name: int(h.data.lbtk_priority) for h in inventory})
server.shell(name="Wait for VRRP",
             commands=[wanted.vrrp_settled(host.data.lbtk_vip, host.data.lbtk_interface, master)],
             _if=any_changed(ka_conf, ka_defaults, *units), _retries=80, _retry_delay=0.25)
