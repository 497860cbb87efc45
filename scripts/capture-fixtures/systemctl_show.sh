#!/bin/bash
# Capture real `systemctl show -p Id,LoadState,ActiveState,SubState,UnitFileState UNIT...` outputs
# (the units fact, fabfile/infra/facts.py) from Debian 12 (systemd 252) and Debian 13 (systemd 257) lab
# nodes into tests/fixtures/systemctl/show_*.txt and tests/fixtures/systemctl/trixie/show_*.txt:
# a fresh node (before any deploy), a deployed one, keepalived stopped, disabled and enabled again
# with --no-reload (what a deploy does: UnitFileState must follow at once), a unit that fails and
# one that does not exist, a wants/ symlink removed by hand; and what it says where systemd is not
# PID 1 (this host). Also prints, for the report: systemctl show against is-active + is-enabled x5
# (wall ms of 20 calls on the node), `enable` of a unit with and without an init.d script
# (systemd-sysv-install), and whether `journalctl -g` and `journalctl | grep -E` give the same lines.
# Uses the mixed lab (m1, m2 on bookworm, m3 on trixie): brings it up, deploys, captures, brings it
# down. Root; hold the lab lock: flock /tmp/lbtk-lab.lock scripts/capture-fixtures/systemctl_show.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
ENV=lab-mixed
OUT=tests/fixtures/systemctl
inv() { $PY -m invoke "$@"; }
# cap NODE FILE SHELL: run SHELL on NODE, FILE.txt = stdout (.stderr / .rc if any)
cap() {
  $PY - "$@" <<'PY'
import sys
from pathlib import Path
from fabfile.infra import remote
import fabfile.lab.hooks  # noqa: F401 (the lab's inventory section, fabfile.model.extensions)
from fabfile.model.context import load_env
e = load_env("lab-mixed")
node, base, cmd = sys.argv[1:]
r = remote.run(remote.connect(e.inv, e.inv.node(node)), cmd, check=False)
Path(base + ".txt").write_text(r.stdout)
for suffix, text in ((".stderr", r.stderr), (".rc", f"{r.exited}\n" if r.exited else "")):
    p = Path(base + suffix)
    p.write_text(text) if text else p.unlink(missing_ok=True)
print(f"captured {base}.txt (rc={r.exited})")
PY
}
on() {  # on NODE SHELL: run, print stdout
  $PY - "$@" <<'PY'
import sys
from fabfile.infra import remote
import fabfile.lab.hooks  # noqa: F401 (the lab's inventory section, fabfile.model.extensions)
from fabfile.model.context import load_env
e = load_env("lab-mixed")
r = remote.run(remote.connect(e.inv, e.inv.node(sys.argv[1])), sys.argv[2], check=False)
print(r.stdout, end=""); print(r.stderr, end="", file=sys.stderr)
PY
}
SHOW=$($PY -c 'from fabfile.infra import facts as F; print(F.SERVICES.command)')
show() { echo "systemctl show -p Id,LoadState,ActiveState,SubState,UnitFileState $*"; }

# 1. this host: systemd is not PID 1
set +e; $SHOW > $OUT/show_host_no_systemd.txt 2> $OUT/show_host_no_systemd.stderr; rc=$?; set -e
[ $rc = 0 ] && rm -f $OUT/show_host_no_systemd.rc || echo $rc > $OUT/show_host_no_systemd.rc

inv lab.down --env $ENV >/dev/null 2>&1 || true
inv lab.up --env $ENV >/dev/null
trap 'inv lab.down --env $ENV >/dev/null 2>&1 || true' EXIT
mkdir -p $OUT/trixie
FAIL_UNIT='[Unit]\nDescription=lbtk fixture: a unit that fails\n[Service]\nType=oneshot\nExecStart=/bin/false\n'
for pair in m2:$OUT m3:$OUT/trixie; do
  n=${pair%%:*}; d=${pair#*:}
  cap $n $d/show_fresh "$SHOW"
done
inv deploy --env $ENV >/dev/null
sleep 4
for pair in m2:$OUT m3:$OUT/trixie; do
  n=${pair%%:*}; d=${pair#*:}
  cap $n $d/show_deployed "$SHOW"
  on $n "systemctl disable --no-reload keepalived 2>/dev/null"
  cap $n $d/show_disabled_no_reload "$SHOW"
  echo "$n is-enabled after disable --no-reload: $(on $n 'systemctl is-enabled keepalived')"
  on $n "systemctl enable --no-reload keepalived 2>/dev/null"
  cap $n $d/show_enabled_no_reload "$SHOW"
  on $n "systemctl stop keepalived"
  cap $n $d/show_stopped "$SHOW"
  on $n "systemctl start keepalived"
  on $n "printf '$FAIL_UNIT' > /etc/systemd/system/lbtk-fail.service && systemctl daemon-reload && \
         systemctl start lbtk-fail; true"
  cap $n $d/show_failed_missing "$(show keepalived lbtk-fail lbtk-nope nginx)"
  on $n "rm -f /etc/systemd/system/lbtk-fail.service && systemctl reset-failed lbtk-fail; systemctl daemon-reload"
  # the enablement symlink removed behind systemd's back (no systemctl): is UnitFileState cached?
  on $n "rm -f /etc/systemd/system/multi-user.target.wants/keepalived.service"
  cap $n $d/show_hand_removed "$(show keepalived)"
  echo "$n is-enabled after the symlink was removed by hand: $(on $n 'systemctl is-enabled keepalived')"
  on $n "systemctl enable --no-reload keepalived 2>/dev/null"
done

echo "== cost on the node (wall ms of 20 calls; the machine is shared)"
for n in m2 m3; do
  on $n "s=\$(date +%s%N); for i in \$(seq 20); do $SHOW >/dev/null; done; e=\$(date +%s%N); \
         echo \"$n systemctl show (5 units): \$(( (e-s)/20000000 )) ms a call\"; \
         s=\$(date +%s%N); for i in \$(seq 20); do systemctl is-active keepalived nginx lbtk-vip-lo lbtk-fwmark rsyslog \
         >/dev/null; for u in keepalived nginx lbtk-vip-lo lbtk-fwmark rsyslog; do systemctl is-enabled \$u >/dev/null 2>&1; \
         done; done; e=\$(date +%s%N); echo \"$n is-active + 5 is-enabled: \$(( (e-s)/20000000 )) ms a read\"; \
         for u in keepalived lbtk-vip-lo; do systemctl disable --no-reload \$u 2>/dev/null; \
         s=\$(date +%s%N); systemctl enable --no-reload \$u 2>/dev/null; e=\$(date +%s%N); \
         echo \"$n enable --no-reload \$u: \$(( (e-s)/1000000 )) ms (init.d script: \$([ -e /etc/init.d/\$u ] && echo yes || echo no))\"; done"
done

echo "== journalctl -g against journalctl | grep -E"
CH=$($PY -c 'from fabfile.infra import facts as F; print(F.STATE_CHANGES.command)')
for n in m1 m2 m3; do
  a=$(on $n "$CH")
  b=$(on $n "journalctl -u keepalived --since -600s -o short-unix --no-pager -q 2>/dev/null | grep -E 'Entering (MASTER|BACKUP|FAULT) STATE'; true")
  [ "$a" = "$b" ] && echo "$n: same $(printf '%s\n' "$a" | grep -c .) line(s)" || { echo "$n: DIFFER"; diff <(echo "$a") <(echo "$b") || true; }
done
