#!/bin/sh
# Boots one lab laptop: run by the lab as
#   ip netns exec NETNS unshare --pid --fork --mount --uts --ipc --cgroup --propagation private \
#     sh boot.sh DISK NAME
# in the laptop's own cgroup. It makes the laptop's files private BEFORE anything of the laptop
# runs (a systemd that shared this machine's /tmp once wiped it), then execs systemd as PID 1.
# What the laptop sees of this machine, and how:
#   /etc /var /usr/local   copy-on-write overlays, upper layers on the laptop's disk
#   /root /home            the laptop's own directories on its disk
#   /etc/systemd/system    the laptop's own (empty at first: no unit this machine enables)
#   /tmp /var/tmp /run     fresh tmpfs, /dev a tmpfs with null, zero, full, random, urandom, tty, pts
#   /proc                  its own PID namespace's; /proc/sys read-only except /proc/sys/net
#   /sys                   the network namespace's sysfs, read-only; cgroups: its own subtree
#   /                      read-only, with everything else of this machine
set -eu
d=$1
name=$2

# 1. the laptop's disk: overlays and its own directories
for m in etc:/etc var:/var usr-local:/usr/local; do
  n=${m%%:*}
  mkdir -p "$d/$n/upper" "$d/$n/work"
  mount -t overlay overlay -o "lowerdir=${m#*:},upperdir=$d/$n/upper,workdir=$d/$n/work" "${m#*:}"
done
mount --bind "$d/root" /root
mount --bind "$d/home" /home
mkdir -p /etc/systemd/system /etc/systemd/system-generators
mount --bind "$d/systemd-system" /etc/systemd/system
mount --bind "$d/generators" /etc/systemd/system-generators
# everything from the disk is mounted: now hide this machine's /tmp (the disk may live there)
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /var/tmp
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /run

# 2. /proc of the new PID namespace; kernel settings read-only outside the network namespace
mount -t proc -o nosuid,nodev,noexec proc /proc
mount --bind /proc/sys /proc/sys
mount --bind /proc/sys/net /proc/sys/net
mount -o remount,bind,ro /proc/sys
if [ -e /proc/sysrq-trigger ]; then
  mount --bind /proc/sysrq-trigger /proc/sysrq-trigger
  mount -o remount,bind,ro /proc/sysrq-trigger
fi

# 3. a private /dev with harmless nodes only
mkdir /run/dev
mount -t tmpfs -o mode=755,nosuid tmpfs /run/dev
for n in null zero full random urandom tty; do
  : > "/run/dev/$n"
  mount --bind "/dev/$n" "/run/dev/$n"
done
mkdir /run/dev/pts /run/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts /run/dev/pts
ln -s pts/ptmx /run/dev/ptmx
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /run/dev/shm
mount --move /run/dev /dev
rmdir /run/dev

# 4. cgroups: the laptop's own subtree (cgroup namespace); then /sys read-only
mount -t tmpfs -o mode=755,nosuid,nodev,noexec tmpfs /sys/fs/cgroup
mkdir /sys/fs/cgroup/systemd /sys/fs/cgroup/unified
mount -t cgroup -o none,name=systemd,nosuid,nodev,noexec cgroup /sys/fs/cgroup/systemd
mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup/unified
mount -o remount,ro,nosuid,nodev,noexec /sys

# 5. this machine's root filesystem read-only, then systemd
mount -o remount,bind,ro /
hostname "$name"
exec env -i container=mptcp-lab PATH=/usr/sbin:/usr/bin:/sbin:/bin /lib/systemd/systemd --system
