#!/bin/bash
# Runs INSIDE the kernel-tier VM (see kernel-tier.sh): builds IPVS tables with ipvsadm directly
# (and one with keepalived), makes traffic between the VM's own namespaces, and saves ipvsadm's
# outputs as fixtures into $VK_OUT (copied to tests/fixtures/ipvsadm/ by ipvsadm.sh).
#
# Topology, all inside the VM on 10.190.0.0/24 (no route anywhere else):
#   bridge fx-br0, 10.190.0.0/25:  fx-cl 10.190.0.10 (client), fx-dir 10.190.0.2 (director,
#       VIP 10.190.0.100), fx-rs1..3 10.190.0.11..13 (DR real servers: VIP on lo, arp_ignore),
#       fx-ka 10.190.0.3 (a keepalived-managed director, VIP 10.190.0.101)
#   veth fx-dir eth1 10.190.0.129/25 <-> fx-nat 10.190.0.130/25 (NAT real server, default
#       route via the director)
set -u
OUT=${VK_OUT:?}
W=/tmp/fx
VIP=10.190.0.100
VIP6=fd00:190::100
PY=/usr/bin/python3
rm -rf $W; mkdir -p $W
log() { echo "[guest] $*"; }
# fx NAME NS CMD...: run CMD in namespace NS, save stdout as fixture NAME.txt (stderr too if any).
# NAME without a directory is an ipvsadm fixture; ip_addr/NAME and sysctl/NAME go there.
fx() {
  local name=$1 ns=$2; shift 2
  mkdir -p "$(dirname "$OUT/$name")" "$(dirname "$W/$name")"
  ip netns exec "$ns" "$@" > "$OUT/$name.txt" 2> "$W/$name.err"
  local rc=$?
  [ $rc = 0 ] || echo $rc > "$OUT/$name.rc"
  [ -s "$W/$name.err" ] && cp "$W/$name.err" "$OUT/$name.stderr"
  log "captured $name (rc=$rc, $(wc -l < "$OUT/$name.txt") lines)"
}
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

log "kernel $(uname -r)"
for m in ip_vs ip_vs_rr ip_vs_wrr ip_vs_wlc ip_vs_sh bridge veth; do modprobe $m || log "modprobe $m failed"; done

ip link add fx-br0 type bridge; ip link set fx-br0 up
for e in cl:10 dir:2 rs1:11 rs2:12 rs3:13 ka:3; do
  n=${e%%:*}; s=${e##*:}
  ip netns add fx-$n
  ip link add fx-$n type veth peer name eth0 netns fx-$n
  ip link set fx-$n master fx-br0 up
  ip -n fx-$n link set lo up
  ip -n fx-$n addr add 10.190.0.$s/25 dev eth0
  ip -n fx-$n addr add fd00:190::$s/64 dev eth0 nodad
  ip -n fx-$n link set eth0 up
done
ip netns add fx-nat
ip -n fx-dir link add eth1 type veth peer name eth0 netns fx-nat
ip -n fx-dir addr add 10.190.0.129/25 dev eth1; ip -n fx-dir link set eth1 up
ip -n fx-nat addr add 10.190.0.130/25 dev eth0; ip -n fx-nat link set eth0 up; ip -n fx-nat link set lo up
ip -n fx-nat route add default via 10.190.0.129
nsx fx-dir sysctl -q -w net.ipv4.ip_forward=1
ip -n fx-dir addr add $VIP/32 dev eth0
ip -n fx-dir addr add $VIP6/128 dev eth0 nodad

# --- empty captures, before any rule (IPVS state is per network namespace)
fx L_n_empty         fx-dir ipvsadm -L -n
fx S_n_empty         fx-dir ipvsadm -S -n
fx L_n_c_empty       fx-dir ipvsadm -L -n -c
fx L_n_stats_empty   fx-dir ipvsadm -L -n --stats
fx L_daemon_none     fx-dir ipvsadm -L --daemon

# --- real servers: nginx on several ports, VIP on lo
for r in rs1 rs2 rs3; do
  ip -n fx-$r addr add $VIP/32 dev lo
  nsx fx-$r sysctl -q -w net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
      net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2
  mkdir -p $W/$r/www $W/$r/tmp
  echo "hello from $r" > $W/$r/www/index.html
  cat > $W/$r/nginx.conf <<EOF
worker_processes 1;
pid $W/$r/nginx.pid;
error_log $W/$r/error.log;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $W/$r/tmp;
  server { listen 80; listen 81; listen 82; listen 83; listen 85; listen 443; root $W/$r/www; }
}
EOF
  nsx fx-$r nginx -e $W/$r/error.log -c $W/$r/nginx.conf
done
mkdir -p $W/nat/www $W/nat/tmp; echo "hello from nat" > $W/nat/www/index.html
cat > $W/nat/nginx.conf <<EOF
worker_processes 1;
pid $W/nat/nginx.pid;
error_log $W/nat/error.log;
events { worker_connections 64; }
http { access_log off; client_body_temp_path $W/nat/tmp; server { listen 8080; root $W/nat/www; } }
EOF
nsx fx-nat nginx -e $W/nat/error.log -c $W/nat/nginx.conf
# bulk sender for big byte counters: every connection gets $BULK bytes of zeros
BULK=160000000
nsx fx-nat $PY -c "
import socket
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', 9000)); s.listen(4)
buf=bytes(1<<20)
while True:
    c,_=s.accept(); n=$BULK
    while n > 0:
        k=c.send(buf[:min(n, len(buf))]); n-=k
    c.close()
" &

# --- the rules
I="nsx fx-dir ipvsadm"
$I -A -t $VIP:80 -s rr
$I -a -t $VIP:80 -r 10.190.0.11:80 -g -w 1
$I -a -t $VIP:80 -r 10.190.0.12:80 -g -w 1
$I -A -t $VIP:82 -s wrr
$I -a -t $VIP:82 -r 10.190.0.11:82 -g -w 3
$I -a -t $VIP:82 -r 10.190.0.12:82 -g -w 2
$I -a -t $VIP:82 -r 10.190.0.13:82 -g -w 1
$I -A -t $VIP:443 -s rr -p 60 -M 255.255.255.0
$I -a -t $VIP:443 -r 10.190.0.11:443 -g -w 1
$I -a -t $VIP:443 -r 10.190.0.12:443 -g -w 1
$I -A -t $VIP:444 -s rr -p
$I -a -t $VIP:444 -r 10.190.0.13:444 -g -w 1
$I -A -t $VIP:8080 -s wlc
$I -a -t $VIP:8080 -r 10.190.0.130:8080 -m -w 1
$I -a -t $VIP:8080 -r 10.190.0.131:8080 -m -w 0
$I -A -t $VIP:9000 -s rr
$I -a -t $VIP:9000 -r 10.190.0.130:9000 -m -w 1
$I -A -u $VIP:53 -s rr
$I -a -u $VIP:53 -r 10.190.0.11:53 -g -w 1
$I -a -u $VIP:53 -r 10.190.0.12:53 -g -w 1
$I -A -u $VIP:514 -s rr -o
$I -a -u $VIP:514 -r 10.190.0.13:514 -g -w 1
$I -A -f 1 -s rr -p 300
$I -a -f 1 -r 10.190.0.11:0 -g -w 1
$I -a -f 1 -r 10.190.0.12:0 -g -w 1
$I -A -t $VIP:83 -s rr
$I -a -t $VIP:83 -r 10.190.0.13:83 -i -w 1
$I -A -t $VIP:84 -s rr
$I -a -t $VIP:84 -r 10.190.0.2:84 -m -w 1
$I -A -t $VIP:85 -s sh -b sh-fallback,sh-port
$I -a -t $VIP:85 -r 10.190.0.11:85 -g -w 1
$I -a -t $VIP:85 -r 10.190.0.12:85 -g -w 1
$I -A -t [$VIP6]:80 -s rr
$I -a -t [$VIP6]:80 -r [fd00:190::11]:80 -g -w 1
$I -a -t [$VIP6]:80 -r [fd00:190::12]:80 -g -w 1
$I -A -f 2 -6 -s rr
$I -a -f 2 -6 -r fd00:190::13 -g -w 1
nsx fx-dir iptables -t mangle -A PREROUTING -d $VIP/32 -p tcp --dport 81 -j MARK --set-mark 1 || log "iptables mark failed"

fx L_n_rules_only    fx-dir ipvsadm -L -n

# --- traffic, client -> VIP only
log "traffic"
CURL="nsx fx-cl curl -s --max-time 5"
for i in $(seq 1 12); do $CURL http://$VIP:82/ >/dev/null; done
for i in 1 2 3 4 5 6; do $CURL http://$VIP:443/ >/dev/null; done
for i in 1 2 3 4; do $CURL http://$VIP:81/ >/dev/null; done
for i in 1 2 3 4; do $CURL http://$VIP:8080/ >/dev/null; done
for i in 1 2; do $CURL http://$VIP:85/ >/dev/null; done
# many short connections to port 80
nsx fx-cl $PY -c "
import http.client
for i in range(300):
    c=http.client.HTTPConnection('$VIP', 80, timeout=5); c.request('GET', '/'); c.getresponse().read(); c.close()
print('300 requests done')"
# UDP datagrams from 5 source ports (nobody answers: the director still creates entries)
nsx fx-cl $PY -c "
import socket
for i in range(5):
    s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b'x'*40, ('$VIP', 53)); s.close()"
# one bulk transfer through the NAT service: OutBytes > 100 million, where ipvsadm
# (without --exact) switches to K units
nsx fx-cl $PY -c "
import socket
s=socket.create_connection(('$VIP', 9000), timeout=60); n=0
while True:
    b=s.recv(1<<20)
    if not b: break
    n+=len(b)
print('bulk bytes', n)"
# a connection held open during the captures (ActiveConn 1, ESTABLISHED in -c)
nsx fx-cl $PY -c "
import socket,time
s=socket.create_connection(('$VIP',80)); s.send(b'GET / HTTP/1.1\r\n'); time.sleep(0.3)
s.send(b'Host: fx\r\n'); time.sleep(60)" &
HOLD=$!
sleep 3   # the rate/stats estimator runs every 2 s

fx L_n               fx-dir ipvsadm -L -n
# the director's and a DR real server's addresses and sysctls, as a verify run would see them
fx ip_addr/guest_director fx-dir ip -j addr
fx ip_addr/guest_director_eth0_v4 fx-dir ip -j -4 addr show dev eth0
fx ip_addr/guest_realserver_lo fx-rs1 ip -j addr show dev lo
fx sysctl/guest_realserver_arp fx-rs1 sysctl net.ipv4.conf.all.arp_ignore net.ipv4.conf.all.arp_announce \
    net.ipv4.conf.eth0.arp_ignore net.ipv4.conf.eth0.arp_announce net.ipv4.conf.lo.arp_ignore net.ipv4.conf.lo.arp_announce
fx sysctl/guest_director_vs fx-dir sysctl net.ipv4.ip_forward net.ipv4.vs.conntrack net.ipv4.vs.sync_threshold \
    net.ipv4.vs.expire_nodest_conn
fx L_n_stats         fx-dir ipvsadm -L -n --stats
fx L_n_stats_exact   fx-dir ipvsadm -L -n --stats --exact
fx L_n_rate          fx-dir ipvsadm -L -n --rate
fx L_n_c             fx-dir ipvsadm -L -n -c
fx S_n               fx-dir ipvsadm -S -n
fx L_n_one_service   fx-dir ipvsadm -L -n -t $VIP:82
fx L_n_thresholds    fx-dir ipvsadm -L -n --thresholds
fx L_n_persistent_conn fx-dir ipvsadm -L -n --persistent-conn
kill $HOLD 2>/dev/null; wait $HOLD 2>/dev/null

# --- sync daemons: master and backup both in fx-dir, non-default settings on the backup
nsx fx-dir ipvsadm --start-daemon master --mcast-interface eth0 --syncid 5
nsx fx-dir ipvsadm --start-daemon backup --mcast-interface eth0 --syncid 5 --sync-maxlen 1400 \
    --mcast-group 224.0.0.82 --mcast-port 8850 --mcast-ttl 2
fx L_daemon_master_backup fx-dir ipvsadm -L --daemon
nsx fx-dir ipvsadm --stop-daemon backup
fx L_daemon_master   fx-dir ipvsadm -L --daemon
nsx fx-dir ipvsadm --stop-daemon master

# --- a keepalived-managed director: persistence_granularity, fwmark, lvs_sync_daemon
mkdir -p $W/ka
cat > $W/ka/keepalived.conf <<EOF
global_defs {
  router_id fx_ka
  lvs_sync_daemon eth0 FX_VI id 9 maxlen 1000 port 8851 ttl 3 group 224.0.0.83
}
vrrp_instance FX_VI {
  state MASTER
  interface eth0
  virtual_router_id 61
  priority 150
  advert_int 1
  virtual_ipaddress {
    10.190.0.101/25 dev eth0
  }
}
virtual_server 10.190.0.101 80 {
  delay_loop 60
  lb_algo wrr
  lb_kind DR
  persistence_timeout 60
  persistence_granularity 255.255.255.0
  protocol TCP
  real_server 10.190.0.11 80 {
    weight 3
  }
  real_server 10.190.0.12 80 {
    weight 2
  }
}
virtual_server fwmark 7 {
  delay_loop 60
  lb_algo rr
  lb_kind DR
  real_server 10.190.0.11 80 {
    weight 1
  }
}
EOF
nsx fx-ka keepalived -n -l -D -f $W/ka/keepalived.conf -p $W/ka/k.pid -r $W/ka/v.pid -c $W/ka/c.pid > $W/ka/log 2>&1 &
for i in $(seq 1 100); do
  [ "$(nsx fx-ka ipvsadm -L --daemon 2>/dev/null | grep -c 'sync daemon')" -ge 1 ] && \
  [ "$(nsx fx-ka ipvsadm -L -n | grep -c -- '->')" -ge 4 ] && break
  sleep 0.2
done
sleep 1
fx ka_L_n            fx-ka ipvsadm -L -n
fx ka_S_n            fx-ka ipvsadm -S -n
fx ka_L_daemon       fx-ka ipvsadm -L --daemon
# keepalived starts the sync daemon as backup (VRRP starts in BACKUP) and flips it to master
# when the instance becomes MASTER (about 3 s later here)
for i in $(seq 1 50); do
  nsx fx-ka ipvsadm -L --daemon 2>/dev/null | grep -q '^master' && break
  sleep 0.2
done
fx ka_L_daemon_after_master fx-ka ipvsadm -L --daemon
log "keepalived log:"; head -30 $W/ka/log
kill "$(cat $W/ka/k.pid)" 2>/dev/null

# --- cleanup
for r in rs1 rs2 rs3 nat; do nsx fx-$r nginx -c $W/$r/nginx.conf -s stop 2>/dev/null; done
sleep 1
for n in cl dir rs1 rs2 rs3 ka nat; do ip netns del fx-$n; done
ip link del fx-br0
log "done"
exit 0
