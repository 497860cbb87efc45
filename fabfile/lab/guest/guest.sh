#!/bin/bash
# lbtk kernel tier: the guest's main program (runs as root on Debian's kernel, host root read-only).
# $1 = the repository (visible over 9p). Settings come from the share: /run/lbtk-share/guest.env.
# Loads IPVS and what the lab nodes need, puts eth0 on a bridge, boots the lab's systemd nodes
# with the project's own nspawn code (fabfile.lab), publishes their host keys, then idles until
# the host stops the VM.
set -u
REPO=$1
SHARE=/run/lbtk-share
. $SHARE/guest.env                     # GUEST_BRIDGE GUEST_ADDR HOSTNAME MODULES
stage() { echo "$(cut -d' ' -f1 /proc/uptime) $*" >> $SHARE/stages; }
fail() { stage "FAILED $*"; exit 1; }
stage "userspace up (kernel $(uname -r))"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin PYTHONDONTWRITEBYTECODE=1
hostname "$HOSTNAME"
mountpoint -q /sys/fs/cgroup || mount -t cgroup2 cgroup2 /sys/fs/cgroup || fail "cgroup2 mount"
mkdir -p /run/netns /run/systemd
ip link set lo up
modprobe -a $MODULES || fail "modprobe -a $MODULES"
[ -e /proc/net/ip_vs ] || fail "no /proc/net/ip_vs after modprobe ip_vs"
stage "modules loaded: $MODULES"
for i in $(seq 1 50); do [ -e /sys/class/net/eth0 ] && break; sleep 0.1; done
[ -e /sys/class/net/eth0 ] || fail "no eth0 (virtio-net)"
ip link add "$GUEST_BRIDGE" type bridge || fail "bridge $GUEST_BRIDGE"
if [ -z "${GUEST_ADDR6:-}" ]; then      # IPv4-only tier: no IPv6 chatter on the bridge
  echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6 2>/dev/null
  for l in eth0 "$GUEST_BRIDGE"; do echo 1 > /proc/sys/net/ipv6/conf/$l/disable_ipv6 2>/dev/null; done
else                                    # dual-stack: IPv6 on, no router advertisements taken
  for l in default eth0 "$GUEST_BRIDGE"; do echo 0 > /proc/sys/net/ipv6/conf/$l/accept_ra 2>/dev/null; done
fi
ip link set eth0 master "$GUEST_BRIDGE" up || fail "eth0 on $GUEST_BRIDGE"
ip addr add "$GUEST_ADDR" dev "$GUEST_BRIDGE" && ip link set "$GUEST_BRIDGE" up || fail "addressing $GUEST_BRIDGE"
[ -z "${GUEST_ADDR6:-}" ] || ip addr add "$GUEST_ADDR6" dev "$GUEST_BRIDGE" nodad || fail "addressing $GUEST_BRIDGE (IPv6)"
stage "network up: eth0 on $GUEST_BRIDGE ($GUEST_ADDR)"
# what runs in the VM, every 15 s, for whoever debugs a slow boot from the host (share/ps.txt)
( while :; do ps -eo pid,stat,etime,time,args --sort=-time 2>/dev/null | head -40 > $SHARE/.ps.tmp \
    && mv $SHARE/.ps.tmp $SHARE/ps.txt; sleep 15; done ) &
cd "$REPO" || fail "no $REPO in the guest"
python3 -m fabfile.lab.guest.nodes "$SHARE" || fail "lab nodes did not come up (see guest.log)"
stage "READY"
while [ ! -e $SHARE/stop ]; do sleep 1; done
stage "stopping"
python3 -m fabfile.lab.guest.nodes "$SHARE" --down
stage "STOPPED"
