"""The toolkit's `inv verify --no-http` as pyinfra does it: read each node's state (one command an
operation, every node at once), then check it on the controller (python.call on each operation's
output), failing the node with what was found. The same reads and checks as
bench/ansible/verify.yml (wanted.problems).

    cd bench/pyinfra && ../.venv-pyinfra/bin/pyinfra -y --parallel N INVENTORY.py verify.py

Inventory: as for deploy.py.
"""
from pyinfra import host, inventory
from pyinfra.operations import python, server

import wanted

addresses = server.shell(name="Addresses", commands=["ip -j addr"])
# is-active exits non-zero when one is not active: the check below names it
active = server.shell(name="Units", commands=[f"systemctl is-active {' '.join(wanted.UNITS)}"], _ignore_errors=True)
arp = server.shell(name="ARP sysctls",
                   commands=["sysctl -n " + " ".join(n for n, _ in wanted.sysctls(host.data.lbtk_interface))])
ipvs = server.shell(name="IPVS table (this lab's kernel may have no IPVS)", commands=[wanted.IPVS_TABLE])
vrrp = server.shell(name="Keepalived's own view of its VRRP instances", commands=[wanted.KEEPALIVED_JSON])


def check() -> None:
    master = host.name in wanted.top_priority_hosts({h.name: int(h.data.lbtk_priority) for h in inventory})
    found = wanted.problems(ip_json=addresses.stdout, active=active.stdout_lines, sysctl=arp.stdout_lines,
                            ipvs=ipvs.stdout, vrrp_json=vrrp.stdout, vip=host.data.lbtk_vip,
                            interface=host.data.lbtk_interface,
                            real_servers=[h.data.ssh_hostname for h in inventory], master=master)
    if found:
        raise AssertionError(f"{host.name}: " + "; ".join(found))


python.call(name="What the node holds, what keepalived says", function=check)
