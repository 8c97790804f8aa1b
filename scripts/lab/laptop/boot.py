# Boots one lab laptop: run by the lab as
#   ip netns exec NETNS unshare --pid --fork --mount --uts --ipc --cgroup --propagation private \
#     /usr/bin/python3 -I -S boot.py DISK NAME
# in the laptop's own cgroup. It makes the laptop's files private BEFORE anything of the laptop
# runs (a systemd that shared this machine's /tmp once wiped it), then execs systemd as PID 1.
# One process makes every mount with mount(2): as a shell script this was 29 `mount` processes
# per laptop, the largest part of a boot's CPU after systemd itself.
# What the laptop sees of this machine, and how:
#   /etc /var /usr/local   copy-on-write overlays, upper layers on the laptop's disk (and
#   /usr/lib/dhcpcd        /usr/lib/dhcpcd where dhcpcd is installed)
#   /root /home            the laptop's own directories on its disk
#   /etc/systemd/system    the laptop's own (empty at first: no unit this machine enables)
#   /tmp /var/tmp /run     fresh tmpfs, /dev a tmpfs with null, zero, full, random, urandom, tty, pts
#   /proc                  its own PID namespace's; /proc/sys read-only except /proc/sys/net
#   /sys                   the network namespace's sysfs, read-only; cgroups: its own subtree
#   /                      read-only, with everything else of this machine
import ctypes
import os
import socket
import sys

RDONLY, NOSUID, NODEV, NOEXEC, REMOUNT, BIND, MOVE = 1, 2, 4, 8, 32, 4096, 8192
libc = ctypes.CDLL(None, use_errno=True)


def mount(source, target, fstype=None, flags=0, data=None):
    enc = lambda s: None if s is None else s.encode()
    if libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)) != 0:
        err = ctypes.get_errno()
        sys.exit(f"boot: mount {source} on {target} ({fstype or ''} {data or ''} flags {flags}): {os.strerror(err)}")


def bind(path, target=None):
    mount(path, target or path, None, BIND)


def main(disk, name):
    # 1. the laptop's disk: overlays and its own directories
    # (/usr/lib/dhcpcd: dhcpcd reads hooks only from its hook directory there)
    for n, lower in (("etc", "/etc"), ("var", "/var"), ("usr-local", "/usr/local"), ("usr-lib-dhcpcd", "/usr/lib/dhcpcd")):
        if not os.path.isdir(lower):
            continue
        for part in ("upper", "work"):
            os.makedirs(f"{disk}/{n}/{part}", exist_ok=True)
        mount("overlay", lower, "overlay", 0, f"lowerdir={lower},upperdir={disk}/{n}/upper,workdir={disk}/{n}/work")
    bind(f"{disk}/root", "/root")
    bind(f"{disk}/home", "/home")
    for d in ("/etc/systemd/system", "/etc/systemd/system-generators"):
        os.makedirs(d, exist_ok=True)
    bind(f"{disk}/systemd-system", "/etc/systemd/system")
    bind(f"{disk}/generators", "/etc/systemd/system-generators")
    # everything from the disk is mounted: now hide this machine's /tmp (the disk may live there)
    mount("tmpfs", "/tmp", "tmpfs", NOSUID | NODEV, "mode=1777")
    mount("tmpfs", "/var/tmp", "tmpfs", NOSUID | NODEV, "mode=1777")
    mount("tmpfs", "/run", "tmpfs", NOSUID | NODEV, "mode=755")

    # 2. /proc of the new PID namespace; kernel settings read-only outside the network namespace
    proc = NOSUID | NODEV | NOEXEC
    mount("proc", "/proc", "proc", proc)
    bind("/proc/sys")
    bind("/proc/sys/net")
    mount(None, "/proc/sys", None, REMOUNT | BIND | RDONLY | proc)
    if os.path.exists("/proc/sysrq-trigger"):
        bind("/proc/sysrq-trigger")
        mount(None, "/proc/sysrq-trigger", None, REMOUNT | BIND | RDONLY | proc)

    # 3. a private /dev with harmless nodes only
    os.mkdir("/run/dev")
    mount("tmpfs", "/run/dev", "tmpfs", NOSUID, "mode=755")
    for n in ("null", "zero", "full", "random", "urandom", "tty"):
        open(f"/run/dev/{n}", "w").close()
        bind(f"/dev/{n}", f"/run/dev/{n}")
    os.mkdir("/run/dev/pts")
    os.mkdir("/run/dev/shm")
    mount("devpts", "/run/dev/pts", "devpts", 0, "newinstance,ptmxmode=0666,mode=620")
    os.symlink("pts/ptmx", "/run/dev/ptmx")
    mount("tmpfs", "/run/dev/shm", "tmpfs", NOSUID | NODEV, "mode=1777")
    mount("/run/dev", "/dev", None, MOVE)
    os.rmdir("/run/dev")

    # 4. cgroups: the laptop's own subtree (cgroup namespace); then /sys read-only
    mount("tmpfs", "/sys/fs/cgroup", "tmpfs", NOSUID | NODEV | NOEXEC, "mode=755")
    os.mkdir("/sys/fs/cgroup/systemd")
    os.mkdir("/sys/fs/cgroup/unified")
    mount("cgroup", "/sys/fs/cgroup/systemd", "cgroup", NOSUID | NODEV | NOEXEC, "none,name=systemd")
    mount("cgroup2", "/sys/fs/cgroup/unified", "cgroup2", NOSUID | NODEV | NOEXEC)
    mount(None, "/sys", None, REMOUNT | RDONLY | NOSUID | NODEV | NOEXEC)

    # 5. this machine's root filesystem read-only, then systemd
    mount(None, "/", None, REMOUNT | BIND | RDONLY)
    socket.sethostname(name)
    sys.stdout.flush()
    os.execve("/lib/systemd/systemd", ["/lib/systemd/systemd", "--system"], {"container": "mptcp-lab", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
