#!/bin/bash
# Capture real `ip -j addr` and `sysctl KEY...` outputs into tests/fixtures/{ip_addr,sysctl}/,
# in a throwaway network namespace on this host (veth only: this host's kernel has no dummy
# driver; the kernel-tier VM captures add a director and a real server, see guest-ipvsadm.sh).
# No packet leaves the namespace. For each capture: NAME.txt = stdout, NAME.stderr = stderr
# (only when not empty), NAME.rc = exit code (only when not 0).
set -euo pipefail
cd "$(dirname "$0")/../.."
IPD=tests/fixtures/ip_addr
SYD=tests/fixtures/sysctl
NS=lbtk-fx-ip
mkdir -p $IPD $SYD
[ "$(id -u)" = 0 ] || { echo "run as root (network namespace)"; exit 1; }

cap() {   # cap FILE-WITHOUT-EXT CMD...
  local f=$1; shift
  set +e; "$@" > "$f.txt" 2> "$f.stderr"; local rc=$?; set -e
  [ -s "$f.stderr" ] || rm -f "$f.stderr"
  if [ $rc != 0 ]; then echo $rc > "$f.rc"; else rm -f "$f.rc"; fi
  echo "captured $f (rc=$rc)"
}

ip netns del $NS 2>/dev/null || true
trap 'ip netns del $NS 2>/dev/null || true' EXIT
ip netns add $NS
n() { ip -n $NS "$@"; }
n link set lo up
n addr add 10.190.0.100/32 dev lo                           # DR real server: VIP on lo
n link add eth0 type veth peer name fxpeer0
n link set eth0 up; n link set fxpeer0 up
n addr add 10.190.0.2/24 dev eth0
n addr add 10.190.0.100/24 dev eth0                         # keepalived-style VIP: secondary
n addr add 10.190.0.101/24 dev eth0 label eth0:vip          # a labelled secondary
n addr add 10.190.0.50/24 dev eth0 valid_lft 600 preferred_lft 300   # finite lifetime: "dynamic"
n addr add fd00:190::2/64 dev eth0 nodad
n link add eth1 type veth peer name fxpeer1                 # down, no address
n link add eth2 type veth peer name fxpeer2                 # up, peer down: LOWERLAYERDOWN
n link set eth2 up
n addr add 10.190.0.130/25 dev eth2

cap $IPD/netns_all            ip -n $NS -j addr
cap $IPD/netns_eth0_v4        ip -n $NS -j -4 addr show dev eth0
cap $IPD/netns_lo             ip -n $NS -j addr show dev lo
cap $IPD/netns_missing_dev    ip -n $NS -j addr show dev eth9
cap $IPD/netns_eth1_down_v4   ip -n $NS -j -4 addr show dev eth1

KEYS="net.ipv4.conf.all.arp_ignore net.ipv4.conf.all.arp_announce net.ipv4.conf.eth0.arp_ignore
      net.ipv4.conf.eth0.arp_announce net.ipv4.conf.lo.arp_ignore net.ipv4.conf.lo.arp_announce
      net.ipv4.conf.all.rp_filter net.ipv4.ip_nonlocal_bind"
x() { ip netns exec $NS "$@"; }
cap $SYD/arp_defaults         x sysctl $KEYS
x sysctl -q -w net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
    net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2 \
    net.ipv4.conf.lo.arp_ignore=1 net.ipv4.conf.lo.arp_announce=2 net.ipv4.ip_nonlocal_bind=1
cap $SYD/arp_set              x sysctl $KEYS
# an interface that does not exist, and a key that exists nowhere: error lines on stderr
cap $SYD/with_missing         x sysctl net.ipv4.conf.all.arp_ignore net.ipv4.conf.eth9.arp_ignore \
                                  net.ipv4.conf.lo.arp_announce net.ipv4.vs.conntrack
# the same with stderr merged into stdout (what a pty or `2>&1` gives)
cap $SYD/with_missing_merged  sh -c "ip netns exec $NS sysctl net.ipv4.conf.all.arp_ignore \
                                  net.ipv4.conf.eth9.arp_ignore net.ipv4.conf.lo.arp_announce net.ipv4.vs.conntrack 2>&1"
# a value with a tab inside
cap $SYD/port_range           x sysctl net.ipv4.ip_local_port_range net.ipv4.ip_forward
ls -la $IPD $SYD
