#!/bin/bash
# Capture keepalived's own view (its JSON dump, as the KEEPALIVED_VIEW fact reads it) and its
# journal's state changes from the running, deployed lab (inv lab.up && inv deploy --env lab),
# healthy and in a split brain (node2's auth_pass changed by hand), into tests/fixtures/keepalived_json/.
# The lab is redeployed at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=tests/fixtures/keepalived_json
mkdir -p $OUT
INV=.venv/bin/inv
fact() {  # fact NODE FACT-NAME OUTFILE: run one fact's command on a lab node, as observe would
  .venv/bin/python - "$1" "$2" > "$3" <<'PY'
import sys
from fabfile.infra import facts as F, remote
import fabfile.lab.hooks  # noqa: F401 (the lab's inventory section, fabfile.model.extensions)
from fabfile.model.context import load_env
e = load_env("lab")
fact = {"vrrp": F.KEEPALIVED_VIEW, "changes": F.STATE_CHANGES, "addrs": F.ADDRS}[sys.argv[2]]
c = remote.connect(e.inv, e.inv.node(sys.argv[1]))
print(remote.run(c, fact.command, check=False).stdout, end="")
PY
  echo "captured $3"
}
$INV deploy --env lab >/dev/null
# keepalived's counters run from its start (a reload keeps them): start from zero
.venv/bin/python - <<'PY'
from fabfile.infra import remote
import fabfile.lab.hooks  # noqa: F401 (the lab's inventory section, fabfile.model.extensions)
from fabfile.model.context import load_env
e = load_env("lab")
for n in ("node3", "node2", "node1"):
    remote.run(remote.connect(e.inv, e.inv.node(n)), "systemctl restart keepalived")
PY
sleep 6
for n in node1 node2; do fact $n vrrp $OUT/healthy_$n.json; done
fact node1 changes $OUT/journal_node1.txt
.venv/bin/python - <<'PY'
from fabfile.infra import remote
import fabfile.lab.hooks  # noqa: F401 (the lab's inventory section, fabfile.model.extensions)
from fabfile.model.context import load_env
e = load_env("lab")
c = remote.connect(e.inv, e.inv.node("node2"))
remote.run(c, "sed -i 's/auth_pass .*/auth_pass wrong123/' /etc/keepalived/keepalived.conf && systemctl reload keepalived")
PY
sleep 6
for n in node1 node2 node3; do fact $n vrrp $OUT/split_auth_$n.json; done
fact node2 changes $OUT/journal_split_node2.txt
$INV deploy --env lab >/dev/null
sleep 2
.venv/bin/python - <<'PY'
from fabfile.infra import remote
import fabfile.lab.hooks  # noqa: F401 (the lab's inventory section, fabfile.model.extensions)
from fabfile.model.context import load_env
e = load_env("lab")
c = remote.connect(e.inv, e.inv.node("node3"))
remote.run(c, "systemctl stop keepalived")
PY
fact node3 vrrp $OUT/not_running_node3.txt
$INV deploy --env lab >/dev/null
echo "lab redeployed"
# keepalived's dump carries the VRRP secret (auth_data): never in a fixture
sed -i 's/"auth_data":"[^"]*"/"auth_data":"********"/g' $OUT/*.json
