#!/bin/bash
# Boot Debian's installed kernel (linux-image-amd64: it has the ip_vs modules; this host's kernel
# has none) under QEMU with TCG, the host root read-only over 9p plus tmpfs overlays, and run
# one guest script in it. Adapted from /work/shared/reference/kernel-tier/{mkinitrd,run-plain}.sh
# for the INSTALLED package paths (/boot/vmlinuz-KVER, /lib/modules/KVER) instead of an
# extracted one.
#
#   scripts/capture-fixtures/kernel-tier.sh GUEST_SCRIPT
#
# The guest script runs as root inside the VM with $VK_OUT set to a directory shared with the
# host (WORK/out); its exit code is this script's exit code. Always -accel tcg (the /dev/kvm
# here hangs with a stock kernel) and always under `timeout`. Network: the VM has none
# (-net none); guest scripts make their own namespaces on 10.190.0.0/24 inside the VM.
set -euo pipefail
GUEST=$(realpath "$1")
WORK=${LBTK_FX_WORK:-/var/tmp/lbtk-fx-kernel}
OUT=$WORK/out
[ "$(id -u)" = 0 ] || { echo "run as root"; exit 1; }

# the newest installed Debian kernel that has its modules on this host
KVER=
for k in $(ls -1 /boot/vmlinuz-*-amd64 2>/dev/null | sed 's|/boot/vmlinuz-||' | sort -V); do
  [ -f /lib/modules/$k/kernel/net/netfilter/ipvs/ip_vs.ko ] && KVER=$k
done
[ -n "$KVER" ] || { echo "no /boot/vmlinuz-*-amd64 with ip_vs modules: apt-get install linux-image-amd64"; exit 1; }
MODS=/lib/modules/$KVER/kernel
echo "kernel: $KVER"

rm -rf "$OUT"; mkdir -p "$OUT" "$WORK"
D=$WORK/initrd
rm -rf "$D"; mkdir -p $D/{bin,proc,sys,dev,newroot,mods}
cp /bin/busybox $D/bin/busybox
file -L /bin/busybox | grep -q 'statically linked' || { echo "/bin/busybox is not static: apt-get install busybox-static"; exit 1; }
for m in drivers/virtio/virtio.ko drivers/virtio/virtio_ring.ko drivers/virtio/virtio_pci_legacy_dev.ko \
         drivers/virtio/virtio_pci_modern_dev.ko drivers/virtio/virtio_pci.ko fs/netfs/netfs.ko \
         fs/fscache/fscache.ko net/9p/9pnet.ko net/9p/9pnet_virtio.ko fs/9p/9p.ko fs/overlayfs/overlay.ko; do
  cp $MODS/$m $D/mods/
done
cat > $D/init <<'EOS'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p overlay; do
  insmod /mods/$m.ko || echo "insmod $m failed"
done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /newroot || { echo "9p root mount failed"; echo o > /proc/sysrq-trigger; }
mkdir -p /rw
mount -t tmpfs -o size=512m tmpfs /rw
for d in etc var tmp root usr; do            # copy-on-write layers over the read-only host root
  mkdir -p /rw/$d/u /rw/$d/w
  mount -t overlay overlay -o lowerdir=/newroot/$d,upperdir=/rw/$d/u,workdir=/rw/$d/w /newroot/$d
done
mount -t tmpfs tmpfs /newroot/run
mkdir -p /newroot/run/vkout
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 vkout /newroot/run/vkout
sed -n 's/.*vk_cmd=\([^ ]*\).*/\1/p' /proc/cmdline | base64 -d > /newroot/run/vk-cmd
for f in proc sys dev; do mount --move /$f /newroot/$f; done
exec switch_root /newroot /bin/sh -c '
  mount -t devpts devpts /dev/pts 2>/dev/null; mount -t tmpfs tmpfs /dev/shm 2>/dev/null
  hostname vk-guest; ip link set lo up; cd /tmp
  export VK_OUT=/run/vkout PATH=/usr/sbin:/usr/bin:/sbin:/bin
  /bin/bash /run/vk-cmd; echo "VK_EXIT_CODE=$?"
  sync; echo o > /proc/sysrq-trigger; while :; do :; done'
EOS
chmod +x $D/init
(cd $D && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) > $WORK/initrd.gz

CMD="bash $GUEST"
B64=$(printf '%s' "$CMD" | base64 -w0)
LOG=$WORK/console.log
set +e
timeout ${VK_TIMEOUT:-900} qemu-system-x86_64 -accel tcg,tb-size=256 -machine q35 -cpu max -smp 2 -m ${VK_MEM:-1G} \
  -display none -monitor none -no-reboot -serial stdio \
  -kernel /boot/vmlinuz-$KVER -initrd $WORK/initrd.gz \
  -append "console=ttyS0 quiet loglevel=1 panic=-1 vk_cmd=$B64" \
  -fsdev local,id=vkroot,path=/,security_model=none,readonly=on,multidevs=remap \
  -device virtio-9p-pci,fsdev=vkroot,mount_tag=hostroot \
  -fsdev local,id=vkout,path=$OUT,security_model=none \
  -device virtio-9p-pci,fsdev=vkout,mount_tag=vkout \
  -net none < /dev/null | tee $LOG
set -e
RC=$(sed -n 's/^VK_EXIT_CODE=\([0-9]*\).*/\1/p' $LOG | tail -1)
echo "guest exit code: ${RC:-none (timeout or crash)}"
exit ${RC:-255}
