#!/bin/bash
# Install everything the toolkit and its tests need on a Debian 12 machine (run as root).
# Idempotent: a second run installs nothing new and takes about a second.
#   scripts/setup.sh           host packages + .venv with the pinned Python requirements
#   scripts/setup.sh --kernel  also qemu and Debian's kernel for the real-IPVS tier: the package
#                              linux-image-amd64 depends on is apt-get download'ed and dpkg -x'd into
#                              $LBTK_KERNEL_DIR/kernel (default /var/tmp/lbtk-kernel), never into /boot
set -euo pipefail
cd "$(dirname "$0")/.."
APT_PKGS="keepalived ipvsadm nginx-light iproute2 iptables debootstrap systemd-container
          openssh-client curl procps python3-venv tmux"
KERNEL_PKGS="qemu-system-x86 busybox-static kmod"
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
if [ "${1:-}" = --kernel ]; then
  # Debian's kernel, unpacked (not installed): the version linux-image-amd64 depends on.
  KDIR=${LBTK_KERNEL_DIR:-/var/tmp/lbtk-kernel}
  kpkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'; }
  pkg=$(kpkg)
  if [ -z "$pkg" ]; then apt-get update -qq; pkg=$(kpkg); fi
  [ -n "$pkg" ] || { echo "setup: apt knows no linux-image-amd64 (check /etc/apt/sources.list)" >&2; exit 1; }
  kver=${pkg#linux-image-}
  if [ ! -f "$KDIR/kernel/boot/vmlinuz-$kver" ] || [ ! -f "$KDIR/kernel/lib/modules/$kver/modules.dep" ]; then
    echo "setup: fetching $pkg (apt-get download, unpacked into $KDIR/kernel)"
    mkdir -p "$KDIR"; chmod 755 "$KDIR"
    dl=$(mktemp -d "$KDIR/dl.XXXXXX"); chmod 755 "$dl"
    id _apt >/dev/null 2>&1 && chown _apt "$dl"
    (cd "$dl" && apt-get download -q "$pkg" >/dev/null) || { apt-get update -qq; (cd "$dl" && apt-get download -q "$pkg" >/dev/null); }
    rm -rf "$KDIR/kernel.new"
    dpkg -x "$dl"/*.deb "$KDIR/kernel.new"
    depmod -b "$KDIR/kernel.new" "$kver"
    rm -rf "$KDIR/kernel" "$dl"
    mv "$KDIR/kernel.new" "$KDIR/kernel"
  fi
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
echo "setup: ok ($(.venv/bin/python --version), $(keepalived -v 2>&1 | head -1)$([ "${1:-}" = --kernel ] && echo ", kernel $kver under $KDIR"))"
