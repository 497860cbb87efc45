#!/bin/bash
# Capture, from real Debian 13 (trixie) nodes, the output of every fact a deploy and a verify read,
# each by the fact's own command (fabfile/infra/facts.py) as observe runs it, into
# tests/fixtures/<parser>/trixie/: keepalived's JSON dump (healthy, a split brain by a wrong
# secret on t2, keepalived stopped), its journal's state changes, ip -j addr, the sysctls,
# dpkg-query (systemctl: systemctl_show.sh).
# Needs the deployed trixie lab: inv lab.up --env lab-trixie && inv deploy --env lab-trixie.
# The lab is redeployed at the end. keepalived -t's cases: keepalived_t.sh trixie.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
ENV=lab-trixie
inv() { $PY -m invoke "$@"; }
on() {  # on NODE SHELL: run a command on a node of the trixie lab
  $PY - "$1" "$2" <<'PY'
import sys
from fabfile.infra import remote
import fabfile.lab.hooks  # noqa: F401 (the lab's inventory section, fabfile.model.extensions)
from fabfile.model.context import load_env
e = load_env("lab-trixie")
remote.run(remote.connect(e.inv, e.inv.node(sys.argv[1])), sys.argv[2])
PY
}
fact() {  # fact NODE FACT OUTFILE: one fact's command on a node, stdout (and .stderr/.rc if any)
  $PY - "$1" "$2" "$3" <<'PY'
import sys
from pathlib import Path
from fabfile.infra import facts as F, remote
import fabfile.lab.hooks  # noqa: F401 (the lab's inventory section, fabfile.model.extensions)
from fabfile.model.context import load_env
e = load_env("lab-trixie")
node, name, out = sys.argv[1:]
fact = {f.name: f for f in F.ALL}[name]
r = remote.run(remote.connect(e.inv, e.inv.node(node)), fact.command, check=False)
Path(out).write_text(r.stdout)
base = out.rsplit(".", 1)[0]
for suffix, text in ((".stderr", r.stderr), (".rc", f"{r.exited}\n" if r.exited else "")):
    p = Path(base + suffix)
    p.write_text(text) if text else p.unlink(missing_ok=True)
print(f"captured {out}")
PY
}
J=tests/fixtures/keepalived_json/trixie
inv deploy --env $ENV >/dev/null
# keepalived's counters run from its start (a reload keeps them): start from zero
for n in t3 t2 t1; do on $n "systemctl restart keepalived"; done
sleep 6
fact t1 vrrp $J/healthy_t1.json
fact t2 vrrp $J/healthy_t2.json
fact t1 changes $J/journal_t1.txt
fact t1 addrs tests/fixtures/ip_addr/trixie/master_t1.txt
fact t2 addrs tests/fixtures/ip_addr/trixie/backup_t2.txt
fact t1 sysctl tests/fixtures/sysctl/trixie/director_t1.txt
# systemctl is-active / is-enabled (tests/fixtures/systemctl/trixie/is_*): the units fact that replaced
# them (one `systemctl show`) is captured on both releases by systemctl_show.sh
fact t1 packages tests/fixtures/dpkg/trixie/installed_t1.txt
# a split brain: t2's secret changed by hand
on t2 "sed -i 's/auth_pass .*/auth_pass wrong123/' /etc/keepalived/keepalived.conf && systemctl reload keepalived"
sleep 6
for n in t1 t2 t3; do fact $n vrrp $J/split_auth_$n.json; done
fact t2 changes $J/journal_split_t2.txt
inv deploy --env $ENV >/dev/null
sleep 2
on t3 "systemctl stop keepalived && systemctl disable --now lbtk-fwmark"
fact t3 vrrp $J/not_running_t3.txt
on t3 "rm -f /etc/systemd/system/lbtk-fwmark.service && systemctl daemon-reload"
inv deploy --env $ENV >/dev/null
echo "lab redeployed"
# keepalived's dump carries the VRRP secret (auth_data): never in a fixture
sed -i 's/"auth_data":"[^"]*"/"auth_data":"********"/g' $J/*.json
