#!/bin/bash
# Capture real ipvsadm outputs into tests/fixtures/ipvsadm/.
#  1. on this host (kernel without IPVS): what ipvsadm says when IPVS is missing
#  2. in the kernel-tier VM (Debian kernel with IPVS): guest-ipvsadm.sh (also a director's and a
#     real server's `ip -j addr` and sysctls, into tests/fixtures/{ip_addr,sysctl}/guest_*)
#  3. the shared captures from /work/shared/fixtures/ipvsadm (same kernel tier, earlier run)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/../.."
DEST=tests/fixtures/ipvsadm
mkdir -p $DEST
if [ ! -e /proc/net/ip_vs ] && ! modprobe -q ip_vs 2>/dev/null; then
  set +e; ipvsadm -L -n > $DEST/host_no_ipvs_L_n.txt 2> $DEST/host_no_ipvs_L_n.stderr
  echo $? > $DEST/host_no_ipvs_L_n.rc; set -e
fi
bash "$HERE/kernel-tier.sh" "$HERE/guest-ipvsadm.sh"
G=/var/tmp/lbtk-fx-kernel/out
cp $G/*.* $DEST/
for t in ip_addr sysctl; do mkdir -p tests/fixtures/$t; cp $G/$t/* tests/fixtures/$t/; done
SHARED=/work/shared/fixtures/ipvsadm
[ -d $SHARED ] && for f in $SHARED/*.txt; do cp "$f" "$DEST/shared_$(basename "$f")"; chmod 644 "$DEST/shared_$(basename "$f")"; done
ls -la $DEST
