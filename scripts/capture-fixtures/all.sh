#!/bin/bash
# Re-capture every parser fixture from the real tools (root; about 1 minute):
#   keepalived_t.sh   keepalived -t on small configs, in a network namespace
#   ip_addr_sysctl.sh ip -j addr and sysctl, in a network namespace
#   systemctl.sh      systemctl is-active/is-enabled, in a booted systemd-nspawn container
#   (systemctl_show.sh, the units fact on bookworm and trixie, needs the mixed lab: run it apart)
#                     (needs the lab's base rootfs: inv lab.up builds it)
#   os_release.sh     /etc/os-release of each release's base rootfs (needs the bases)
#   ipvsadm.sh        ipvsadm (+ a director's ip/sysctl) in the kernel-tier VM (qemu TCG)
# Then run: .venv/bin/python -m pytest tests/unit/test_parsers.py
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
for s in keepalived_t ip_addr_sysctl systemctl os_release ipvsadm; do
  echo "== $s"; bash "$HERE/$s.sh"
done
