#!/bin/busybox sh
# /init of the hwkit lab's initramfs (runs as PID 1 in the guest).
#
# It loads the virtio/9p/overlay modules, mounts the host's root file system read-only
# over 9p with a tmpfs overlay on top (so the host's Python, virtualenv and checkout are
# at the same paths), mounts the run folder the host shares read-write at
# /run/hwkit-lab, and runs /run/hwkit-lab/guest.sh inside that root. Whatever happens,
# it powers the guest off at the end, which ends QEMU (-no-reboot).
/bin/busybox --install -s /bin
export PATH=/bin

fail() {
    echo "hwkit-lab: init failed: $*" > /dev/console
    poweroff -f
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "hwkit-lab: init started" > /dev/console

while read -r ko; do
    [ -n "$ko" ] || continue
    insmod "/lib/modules/$ko" || fail "insmod $ko"
done < /lib/modules/load-order

mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=262144 hostroot /host \
    || fail "cannot mount the host root (9p tag hostroot)"
mount -t tmpfs -o mode=0755 tmpfs /ovl || fail "tmpfs for the overlay"
mkdir -p /ovl/upper /ovl/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/ovl/upper,workdir=/ovl/work /newroot \
    || fail "overlay on the host root"

R=/newroot
mount -t proc proc $R/proc || fail "proc in the new root"
mount -t sysfs sysfs $R/sys || fail "sysfs in the new root"
mount -t devtmpfs devtmpfs $R/dev || fail "devtmpfs in the new root"
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts $R/dev/pts
mount -t tmpfs -o mode=1777 tmpfs $R/dev/shm
# /tmp stays the host's, under the overlay: a checkout or virtualenv there (CI clones
# often live in /tmp) is visible; what the guest writes there stays in the guest.
mount -t tmpfs -o mode=0755 tmpfs $R/run || fail "tmpfs /run"
mkdir -p $R/run/hwkit-lab
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 hwkitrun $R/run/hwkit-lab \
    || fail "cannot mount the run folder (9p tag hwkitrun)"
[ -f $R/run/hwkit-lab/guest.sh ] || fail "the host wrote no guest.sh into the run folder"

echo "hwkit-lab: root ready" > /dev/console
chroot $R /bin/sh /run/hwkit-lab/guest.sh
echo "hwkit-lab: guest.sh exited with status $?" > /dev/console
sync
poweroff -f
