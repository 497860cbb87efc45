#!/bin/bash
# Capture real `keepalived -t -f FILE` results into tests/fixtures/keepalived_t/:
#   NAME.conf    the config tested (written here, from the base config below)
#   NAME.txt     keepalived's stderr (where -t writes its findings)
#   NAME.stdout  keepalived's stdout (empty in every case seen so far)
#   NAME.rc      the exit code
# Runs as root in a throwaway network namespace holding the interface the configs use (eth0,
# a veth: this host's kernel has no dummy driver). keepalived -t only parses: no packet is sent.
# The command runs with the fixture dir as cwd and a relative file name, so messages read
# "(NAME.conf: Line N) ..." whatever the checkout path.
#
# `keepalived_t.sh trixie` runs the same cases with Debian 13's keepalived (2.3.3) instead of this
# host's: chrooted into a throwaway overlay of the lab's trixie base ($LBTK_LAB_DIR/base-trixie,
# built by `inv lab.up --env lab-trixie`; only read), in the same namespace, into
# tests/fixtures/keepalived_t/trixie/.
set -euo pipefail
cd "$(dirname "$0")/../.."
RELEASE=${1:-}
OUT=tests/fixtures/keepalived_t${RELEASE:+/$RELEASE}
NS=lbtk-fx-kt
W=/var/tmp/lbtk-fx-kt
mkdir -p "$OUT"
[ "$(id -u)" = 0 ] || { echo "run as root (network namespace)"; exit 1; }
cleanup() {
  ip netns del $NS 2>/dev/null || true
  if [ -n "$RELEASE" ]; then
    mountpoint -q $W/root/proc && umount $W/root/proc || true
    mountpoint -q $W/root && umount $W/root || true
    rm -rf $W
  fi
}
if [ -n "$RELEASE" ]; then
  BASE=${LBTK_LAB_DIR:-/var/tmp/lbtk-lab}/base-$RELEASE
  [ -x $BASE/usr/sbin/keepalived ] || { echo "no lab $RELEASE base at $BASE: inv lab.up --env lab-$RELEASE"; exit 1; }
  keepalived_t() {   # keepalived_t DIR FILE: keepalived -t -f FILE with DIR as cwd, in the chroot
    cp "$1"/*.conf $W/root/fx/ 2>/dev/null || true
    ip netns exec $NS chroot $W/root sh -c 'cd /fx && exec keepalived -t -f "$0"' "$2"
  }
else
  command -v keepalived >/dev/null || { echo "keepalived not installed"; exit 1; }
  keepalived_t() { (cd "$1" && ip netns exec $NS keepalived -t -f "$2"); }
fi

cleanup
trap cleanup EXIT
if [ -n "$RELEASE" ]; then
  mkdir -p $W/upper $W/work $W/root
  mount -t overlay overlay -o lowerdir=$BASE,upperdir=$W/upper,workdir=$W/work $W/root
  mount -t proc proc $W/root/proc
  mkdir -p $W/root/fx
  echo "keepalived: $(chroot $W/root keepalived -v 2>&1 | head -1)"
fi
ip netns add $NS
ip -n $NS link set lo up
ip -n $NS link add eth0 type veth peer name fxpeer0
ip -n $NS link set eth0 up
ip -n $NS addr add 10.190.0.2/24 dev eth0

BASE='global_defs {
  router_id lb1
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority 100
  advert_int 1
  authentication {
    auth_type PASS
    auth_pass 12345678
  }
  unicast_src_ip 10.190.0.2
  unicast_peer {
    10.190.0.3
    10.190.0.4
  }
  virtual_ipaddress {
    10.190.0.100/24 dev eth0
  }
}
virtual_server 10.190.0.100 80 {
  delay_loop 6
  lb_algo rr
  lb_kind DR
  persistence_timeout 60
  persistence_granularity 255.255.255.0
  protocol TCP
  real_server 10.190.0.11 80 {
    weight 1
    TCP_CHECK {
      connect_timeout 3
      retry 3
      delay_before_retry 3
    }
  }
}'

# case NAME PYTHON-EXPR: the config is BASE transformed by a python expression on `s`
case_() {
  local name=$1 expr=$2
  S="$BASE" python3 -c "import os,sys; s=os.environ['S']+'\n'; sys.stdout.write($expr)" > "$OUT/$name.conf"
}
run() {
  local name=$1 conffile=${2:-$1.conf}
  set +e
  keepalived_t "$OUT" "$conffile" >"$OUT/$name.stdout" 2>"$OUT/$name.txt"
  echo $? > "$OUT/$name.rc"
  set -e
  printf '%-28s rc=%s  %s\n' "$name" "$(cat "$OUT/$name.rc")" "$(head -1 "$OUT/$name.txt")"
}

case_ clean                  's'
case_ nat_mask               "s.replace('persistence_granularity 255.255.255.0', 'nat_mask 255.255.255.0')"
case_ nb_get_retry           "s.replace('      retry 3', '      nb_get_retry 3')"
case_ auth_pass_long         "s.replace('auth_pass 12345678', 'auth_pass 1234567890')"
case_ nopreempt_master       "s.replace('state BACKUP', 'state MASTER\n  nopreempt')"
case_ missing_brace          "s.replace('    10.190.0.100/24 dev eth0\n  }\n}', '    10.190.0.100/24 dev eth0\n}')"
case_ script_no_security     "s.replace('global_defs {\n  router_id lb1\n}', 'global_defs {\n  router_id lb1\n}\nvrrp_script chk_nginx {\n  script \"/usr/bin/pgrep nginx\"\n  interval 2\n}').replace('  virtual_ipaddress {', '  track_script {\n    chk_nginx\n  }\n  virtual_ipaddress {')"
case_ script_security_no_user "s.replace('router_id lb1', 'router_id lb1\n  enable_script_security').replace('global_defs {\n  router_id lb1\n  enable_script_security\n}', 'global_defs {\n  router_id lb1\n  enable_script_security\n}\nvrrp_script chk_nginx {\n  script \"/usr/bin/pgrep nginx\"\n  interval 2\n}').replace('  virtual_ipaddress {', '  track_script {\n    chk_nginx\n  }\n  virtual_ipaddress {')"
case_ script_security_ok     "s.replace('router_id lb1', 'router_id lb1\n  enable_script_security\n  script_user root').replace('global_defs {\n  router_id lb1\n  enable_script_security\n  script_user root\n}', 'global_defs {\n  router_id lb1\n  enable_script_security\n  script_user root\n}\nvrrp_script chk_nginx {\n  script \"/usr/bin/pgrep nginx\"\n  interval 2\n}').replace('  virtual_ipaddress {', '  track_script {\n    chk_nginx\n  }\n  virtual_ipaddress {')"
case_ unicast_peer_one_line  "s.replace('    10.190.0.3\n    10.190.0.4\n', '    10.190.0.3 10.190.0.4\n')"
case_ dr_port_mismatch       "s.replace('real_server 10.190.0.11 80', 'real_server 10.190.0.11 8080')"
case_ missing_interface      "s.replace('interface eth0', 'interface eth9')"
case_ vip_dev_missing        "s.replace('10.190.0.100/24 dev eth0', '10.190.0.100/24 dev eth7')"
case_ vrid_out_of_range      "s.replace('virtual_router_id 51', 'virtual_router_id 300')"
case_ duplicate_instance     "s.replace('virtual_server', s[s.index('vrrp_instance'):s.index('virtual_server')] + 'virtual_server', 1)"
case_ missing_include        "'include /nonexistent/lbtk-extra.conf\n' + s"
# the one exit-4 case found: an unknown interface in linkbeat_interfaces is CONFIG_FATAL
case_ linkbeat_unknown_iface "'linkbeat_interfaces {\n  eth9\n}\n' + s"

for f in "$OUT"/*.conf; do run "$(basename "$f" .conf)"; done
# the config file itself missing (no NAME.conf on purpose)
run missing_file nonexistent.conf
