#!/bin/bash
# Install everything the toolkit and its tests need on a Debian 12 machine (run as root).
# Idempotent: a second run installs nothing new and takes about a second.
#   scripts/setup.sh           host packages + .venv with the pinned Python requirements
#   scripts/setup.sh --kernel  also qemu and Debian's kernels for the real-IPVS tier: the package
#                              linux-image-amd64 depends on is apt-get download'ed and dpkg -x'd into
#                              $LBTK_KERNEL_DIR/kernel (Debian 12's; default /var/tmp/lbtk-kernel) and
#                              kernel-trixie (Debian 13's), never into /boot; LBTK_KERNEL_RELEASES
#                              (default "bookworm trixie") names the releases whose kernels it fetches
set -euo pipefail
cd "$(dirname "$0")/.."
# prometheus: for its promtool, which checks and tests the alert rules (tests/unit/test_alert_rules.py),
# and with prometheus-alertmanager for the lab's monitoring node (lab.prometheus: fabfile/lab/monitor.py)
APT_PKGS="keepalived ipvsadm nginx-light iproute2 iptables debootstrap systemd-container
          openssh-client curl procps python3-venv tmux prometheus prometheus-alertmanager"
KERNEL_PKGS="qemu-system-x86 busybox-static kmod"
want="$APT_PKGS"
[ "${1:-}" = --kernel ] && want="$want $KERNEL_PKGS"
missing=$(for p in $want; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"; done)
if [ -n "$missing" ]; then
  echo "setup: apt-get install" $missing
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # keepalived and nginx run only inside lab nodes, and prometheus is here for its promtool: their
  # packages must not start host daemons
  own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; own_policy=1
  fi
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
  [ -n "$own_policy" ] && rm -f /usr/sbin/policy-rc.d
fi
# policy-rc.d kept the Prometheus server and Alertmanager from starting, not their units from being
# enabled for the next boot; and a host that had the packages before may run them: stopped and
# disabled, once (the lab starts its own, on the loopback, only while a lab asks for them)
for unit in prometheus prometheus-alertmanager; do
  if systemctl is-enabled -q $unit 2>/dev/null || systemctl is-active -q $unit 2>/dev/null; then
    echo "setup: $unit.service stopped and disabled (the lab runs its own: inv lab.up --env lab-monitoring)"
    systemctl stop $unit 2>/dev/null || true
    systemctl disable -q $unit 2>/dev/null || true
  fi
done
if [ "${1:-}" = --kernel ]; then
  # Debian's kernels, unpacked (not installed): the version linux-image-amd64 depends on, of each
  # release in LBTK_KERNEL_RELEASES. bookworm's (the host's own apt) in $KDIR/kernel as always; another
  # release's through an apt state of its own ($KDIR/apt-R: the host's mirror, that suite, the host's
  # sources and lists untouched) into $KDIR/kernel-R. The inventory's lab.kernel picks one.
  KDIR=${LBTK_KERNEL_DIR:-/var/tmp/lbtk-kernel}
  mkdir -p "$KDIR"; chmod 755 "$KDIR"
  kernels=
  for rel in ${LBTK_KERNEL_RELEASES:-bookworm trixie}; do
    if [ "$rel" = bookworm ]; then
      apt_opts=(); tree="$KDIR/kernel"
    else
      state="$KDIR/apt-$rel"; tree="$KDIR/kernel-$rel"
      read -r mirror keyring < <(python3 -c 'import sys; sys.path.insert(0, "."); from fabfile.lab.rootfs import apt_mirror; m, k = apt_mirror(); print(m, k or "/usr/share/keyrings/debian-archive-keyring.gpg")') || true
      [ -n "${mirror:-}" ] || { echo "setup: no Debian mirror in /etc/apt/sources.list(.d) for $rel's kernel" >&2; exit 1; }
      mkdir -p "$state/lists/partial" "$state/cache/archives/partial"
      echo "deb [signed-by=$keyring] $mirror $rel main" > "$state/sources.list"
      id _apt >/dev/null 2>&1 && chown -R _apt "$state/lists" "$state/cache"
      apt_opts=(-o "Dir::Etc::SourceList=$state/sources.list" -o Dir::Etc::SourceParts=/dev/null
                -o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache" -o APT::Architectures::=amd64)
    fi
    kpkg() { apt-cache "${apt_opts[@]}" depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'; }
    pkg=$(kpkg || true)
    if [ -z "$pkg" ]; then apt-get "${apt_opts[@]}" update -qq; pkg=$(kpkg || true); fi
    [ -n "$pkg" ] || { echo "setup: apt knows no linux-image-amd64 for $rel (check /etc/apt/sources.list)" >&2; exit 1; }
    kver=${pkg#linux-image-}
    mods=
    for d in "$tree/lib/modules/$kver" "$tree/usr/lib/modules/$kver"; do [ -f "$d/modules.dep" ] && mods=$d; done
    if [ ! -f "$tree/boot/vmlinuz-$kver" ] || [ -z "$mods" ]; then
      echo "setup: fetching $pkg ($rel; apt-get download, unpacked into $tree)"
      dl=$(mktemp -d "$KDIR/dl.XXXXXX"); chmod 755 "$dl"
      id _apt >/dev/null 2>&1 && chown _apt "$dl"
      (cd "$dl" && apt-get "${apt_opts[@]}" download -q "$pkg" >/dev/null) \
        || { apt-get "${apt_opts[@]}" update -qq; (cd "$dl" && apt-get "${apt_opts[@]}" download -q "$pkg" >/dev/null); }
      rm -rf "$tree.new"
      dpkg -x "$dl"/*.deb "$tree.new"
      # the package has no modules.dep (its postinst makes one): depmod where the modules are (/usr on trixie)
      if [ -d "$tree.new/lib/modules/$kver" ]; then depmod -b "$tree.new" "$kver"; else depmod -b "$tree.new/usr" "$kver"; fi
      rm -rf "$tree" "$dl"
      mv "$tree.new" "$tree"
    fi
    kernels="$kernels $kver"
  done
fi
# a secret file group or others may read is refused (as ssh refuses such a key), and git checks
# files out 0644: the committed demo secret gets the mode any secret file of the user's has
chmod 600 inventories/secrets/example.auth_pass
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
echo "setup: ok ($(.venv/bin/python --version), $(keepalived -v 2>&1 | head -1)$([ "${1:-}" = --kernel ] && echo ", kernels${kernels} under $KDIR"))"
