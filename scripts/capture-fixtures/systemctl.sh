#!/bin/bash
# Capture real `systemctl is-active` / `systemctl is-enabled` outputs into tests/fixtures/systemctl/.
# This host's PID 1 is not systemd, so the captures come from a throwaway systemd-nspawn container
# booted (real systemd as its PID 1) from the lab's base rootfs ($LBTK_LAB_DIR/base, built by the
# lab: `inv lab.up`), through a private overlay: the base is only read. The container has a
# private network namespace (loopback only). Also captured: what systemctl says on this host.
# NAME.txt = stdout, NAME.stderr = stderr (if any), NAME.rc = exit code (if not 0).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=tests/fixtures/systemctl
BASE=${LBTK_LAB_DIR:-/var/tmp/lbtk-lab}/base
W=/var/tmp/lbtk-fx-nspawn
M=lbtk-fx-sd
mkdir -p $OUT
[ "$(id -u)" = 0 ] || { echo "run as root"; exit 1; }
[ -x $BASE/lib/systemd/systemd ] || { echo "no lab base rootfs at $BASE: build it first (inv lab.up)"; exit 1; }

cap() {   # cap NAME CMD...
  local f=$OUT/$1; shift
  set +e; "$@" > "$f.txt" 2> "$f.stderr"; local rc=$?; set -e
  [ -s "$f.stderr" ] || rm -f "$f.stderr"
  if [ $rc != 0 ]; then echo $rc > "$f.rc"; else rm -f "$f.rc"; fi
  echo "captured $f (rc=$rc)"
}

# 1. this host: systemd is not PID 1
cap host_no_systemd_is_active systemctl is-active keepalived nginx

# 2. a booted container
cleanup() {
  [ -f $W/nspawn.pid ] && kill -TERM "$(cat $W/nspawn.pid)" 2>/dev/null || true
  for _ in $(seq 200); do [ -f $W/nspawn.pid ] && kill -0 "$(cat $W/nspawn.pid)" 2>/dev/null || break; sleep 0.05; done
  mountpoint -q $W/root && umount $W/root || true
  for h in systemd unified; do [ -d /sys/fs/cgroup/$h/$M ] && find /sys/fs/cgroup/$h/$M -depth -type d -exec rmdir {} + 2>/dev/null || true; done
  rm -rf $W
}
cleanup
trap cleanup EXIT
mkdir -p $W/upper $W/work $W/root
mount -t overlay overlay -o lowerdir=$BASE,upperdir=$W/upper,workdir=$W/work $W/root
echo $M > $W/root/etc/hostname
chroot $W/root ssh-keygen -A >/dev/null    # as the lab does per node: sshd needs host keys
# units with known outcomes: one that fails, one that stays "activating", one enabled
cat > $W/root/etc/systemd/system/lbtk-fail.service <<'EOF'
[Unit]
Description=lbtk fixture: a unit that fails
[Service]
Type=oneshot
ExecStart=/bin/false
EOF
cat > $W/root/etc/systemd/system/lbtk-slow.service <<'EOF'
[Unit]
Description=lbtk fixture: a unit that stays activating
[Service]
Type=oneshot
ExecStart=/bin/sleep 300
EOF
cat > $W/root/etc/systemd/system/lbtk-vip-lo.service <<'EOF'
[Unit]
Description=lbtk fixture: an enabled oneshot that stays active
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
[Install]
WantedBy=multi-user.target
EOF
mkdir -p $W/root/etc/systemd/system/multi-user.target.wants
ln -sf /etc/systemd/system/lbtk-vip-lo.service $W/root/etc/systemd/system/multi-user.target.wants/

for h in systemd unified; do mkdir -p /sys/fs/cgroup/$h/$M; done   # a cgroup of its own
SYSTEMD_NSPAWN_API_VFS_WRITABLE=network setsid sh -c \
  'for h in systemd unified; do echo $$ > /sys/fs/cgroup/$h/'$M'/cgroup.procs; done; exec "$@"' sh \
  systemd-nspawn --quiet --boot --machine=$M --directory=$W/root --private-network \
    --register=no --keep-unit --console=passive </dev/null >$W/nspawn.log 2>&1 &
echo $! > $W/nspawn.pid
P=; S=
for _ in $(seq 400); do
  P=$(awk '{print $1}' /proc/$(cat $W/nspawn.pid)/task/*/children 2>/dev/null || true)
  [ -n "$P" ] && S=$(nsenter -t $P -a systemctl is-system-running 2>/dev/null || true)
  case $S in running|degraded) break;; esac; sleep 0.05
done
echo "container: $S"
c() { nsenter -t $P -a "$@"; }
c systemctl start nginx || true
c systemctl start keepalived || true       # no keepalived.conf: its condition fails, stays inactive
c systemctl start lbtk-fail || true
c systemctl start --no-block lbtk-slow
sleep 1

cap is_active   c systemctl is-active nginx keepalived ssh lbtk-vip-lo lbtk-fail lbtk-slow lbtk-nope
cap is_active_all_active c systemctl is-active nginx ssh systemd-journald
cap is_enabled  c systemctl is-enabled nginx keepalived ssh lbtk-vip-lo systemd-journald apt-daily.timer lbtk-fail
# a unit that does not exist: is-enabled stops there (units after it get no line)
cap is_enabled_missing c systemctl is-enabled nginx lbtk-nope ssh
c systemctl stop nginx
cap is_active_after_stop c systemctl is-active nginx
c systemctl --no-pager status keepalived | head -5 || true
