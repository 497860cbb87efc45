#!/bin/bash
# Install everything the toolkit and its tests need on a Debian 12 machine (run as root).
# Idempotent: a second run installs nothing new and takes about a second.
#   scripts/setup.sh           host packages + .venv with the pinned Python requirements
#   scripts/setup.sh --kernel  also Debian's kernel and qemu, for the real-IPVS tier
set -euo pipefail
cd "$(dirname "$0")/.."
APT_PKGS="keepalived ipvsadm nginx-light iproute2 iptables debootstrap systemd-container
          openssh-client curl procps python3-venv"
KERNEL_PKGS="qemu-system-x86 linux-image-amd64 busybox-static kmod"
want="$APT_PKGS"
[ "${1:-}" = --kernel ] && want="$want $KERNEL_PKGS"
missing=$(for p in $want; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"; done)
if [ -n "$missing" ]; then
  echo "setup: apt-get install" $missing
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # keepalived and nginx run only inside lab nodes: their packages must not start host daemons
  own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; own_policy=1
  fi
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
  [ -n "$own_policy" ] && rm -f /usr/sbin/policy-rc.d
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
echo "setup: ok ($(.venv/bin/python --version), $(keepalived -v 2>&1 | head -1))"
