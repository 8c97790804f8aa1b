// One laptop: its private disk (systemd configuration, masked units, /etc, sshd, the login user,
// the network manager's files: NetworkManager profiles, networkd .network files, DHCP), booting
// and stopping it (systemd as PID 1 in its own namespaces and cgroups), running commands in it
// (nsenter: labExec, labSh, labSpawn, labAddUser) and waiting for its links, leases and
// NetworkManager.
import { spawn } from "node:child_process";
import { chmodSync, chownSync, closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { namespaces, netnsPids } from "./network";
import { run, runSync, tryRun } from "./spawner";
import type { LabHost, LabState } from "./state";
import { PathEnd, pathEnds, subnetsOf, Topology } from "./topology";
import { waitFor } from "./wait";

const LAPTOP_FILES = join(__dirname, "laptop");
/** The login user every laptop has besides root (passwordless sudo, the lab's key). */
export const LAB_USER = "admin";
export const CGROUP_V1 = "/sys/fs/cgroup/systemd";
export const CGROUP_V2 = "/sys/fs/cgroup/unified";

/**
 * Units a laptop never starts (masked in its own /etc/systemd/system), and why: they would reach
 * this machine's devices or kernel-wide settings, or run jobs nobody tests. README lists them.
 */
export const MASKED_UNITS: Record<string, string> = {
  "devices belong to this machine":
    "systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket systemd-udev-trigger.service systemd-udev-settle.service kmod-static-nodes.service systemd-hwdb-update.service",
  "kernel-wide settings (modules, binfmt, entropy, clock, pstore, audit)":
    "systemd-modules-load.service systemd-binfmt.service proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount systemd-random-seed.service systemd-timesyncd.service systemd-pstore.service systemd-journald-audit.socket",
  "disks and kernel filesystems":
    "systemd-repart.service systemd-remount-fs.service dev-hugepages.mount dev-mqueue.mount sys-fs-fuse-connections.mount sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount",
  "consoles, seats and logins (sshd runs without PAM)": "getty.target console-getty.service systemd-logind.service systemd-ask-password-console.path systemd-ask-password-wall.path",
  "first boot and TPM": "systemd-firstboot.service systemd-pcrphase.service systemd-pcrphase-sysinit.service",
  "networking other than the topology asks for (ifupdown by default; NetworkManager, dhcpcd or networkd where it asks: NETWORKD_UNITS are not masked there)":
    "systemd-networkd.service systemd-networkd.socket systemd-resolved.service",
  "periodic jobs (apt, man-db, tmpfiles cleaning) that would run during tests": "timers.target",
  "Debian's sshd (the lab's own sshd unit replaces it)": "ssh.service ssh.socket",
  "boot bookkeeping nobody tests (utmp records, sysusers.d users, the journal moved to disk: it stays in /run)":
    "systemd-update-utmp.service systemd-update-utmp-runlevel.service systemd-sysusers.service systemd-journal-flush.service",
};

/** A process that is gone or a zombie no longer runs (PID 1 here may reap late). */
export function processAlive(pid: number): boolean {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    return !/^State:\s+Z/m.test(status);
  } catch {
    return false;
  }
}

/** Whether a TCP connection to host:port opens within 200 ms. */
export function portOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port, timeout: 200 });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
    s.once("timeout", () => {
      s.destroy();
      resolve(false);
    });
  });
}

const symlink = (target: string, path: string) => {
  rmSync(path, { force: true });
  symlinkSync(target, path);
};

/** Units MASKED_UNITS masks that a `network: networkd` laptop runs. */
const NETWORKD_UNITS = ["systemd-networkd.service", "systemd-networkd.socket"];

/**
 * A laptop set up as Ubuntu Server is: systemd-networkd configures its path interfaces from
 * .network files (IPv4 only, a static address and a gateway on each path, the first path's route
 * preferred), networkd-dispatcher runs hooks on their state changes, and the management link is
 * networkd's to ignore (no .network file matches it). The lab leaves those paths unconfigured.
 * networkd's wait-online unit stays masked: nothing in the lab waits for network-online.target.
 */
function networkdDisk(h: LabHost, topology: Topology, sys: string, etc: string): void {
  for (const dir of [join(sys, "sockets.target.wants"), join(etc, "systemd", "network")]) mkdirSync(dir, { recursive: true });
  // what `systemctl enable systemd-networkd networkd-dispatcher` does
  symlink("/lib/systemd/system/systemd-networkd.service", join(sys, "multi-user.target.wants", "systemd-networkd.service"));
  symlink("/lib/systemd/system/systemd-networkd.socket", join(sys, "sockets.target.wants", "systemd-networkd.socket"));
  symlink("/lib/systemd/system/systemd-networkd.service", join(sys, "dbus-org.freedesktop.network1.service"));
  symlink("/lib/systemd/system/networkd-dispatcher.service", join(sys, "multi-user.target.wants", "networkd-dispatcher.service"));
  symlink("/dev/null", join(sys, "systemd-networkd-wait-online.service"));
  pathEnds(topology)
    .filter((e) => e.host === h.name)
    .forEach((e, i) => {
      const v4 = e.addresses.find((a) => !a.address.includes(":"));
      if (!v4) return;
      writeFileSync(join(etc, "systemd", "network", `10-lab-${e.path}.network`), networkdFile(e.path, v4, 100 * (i + 1)));
    });
}

/** A path's .network file: its address, a gateway (the peer) at `metric`, no IPv6. */
export function networkdFile(iface: string, a: { address: string; prefix: number; peerAddress: string }, metric: number): string {
  return [
    "# mptcp-pulumi lab: a static path, as on Ubuntu Server",
    "[Match]",
    `Name=${iface}`,
    "",
    "[Network]",
    `Address=${a.address}/${a.prefix}`,
    "LinkLocalAddressing=no",
    "IPv6AcceptRA=no",
    "",
    "[Route]",
    `Gateway=${a.peerAddress}`,
    `Metric=${metric}`,
    "",
  ].join("\n");
}

/**
 * The laptop's disk on its first boot: its own systemd configuration (masks, the lab's sshd unit,
 * networking.service where ifupdown is installed, sysctl for net.* only, every generator masked),
 * its /etc (hostname, machine-id, empty fstab, loopback-only interfaces, sshd config and host key,
 * sudo for the lab user) and root's authorized key.
 */
export function prepareDisk(h: LabHost, authorizedKey: string, topology: Topology): void {
  const d = join(h.dir, "disk");
  const sys = join(d, "systemd-system");
  const etc = join(d, "etc", "upper");
  for (const dir of [
    join(sys, "multi-user.target.wants"),
    join(sys, "systemd-sysctl.service.d"),
    join(d, "generators"),
    join(etc, "ssh", "mptcp-lab"),
    join(etc, "network"),
    join(etc, "sudoers.d"),
    join(etc, "sysctl.d"),
    join(d, "root", ".ssh"),
    join(d, "home"),
  ]) {
    mkdirSync(dir, { recursive: true });
  }
  for (const unit of Object.values(MASKED_UNITS).flatMap((u) => u.split(" "))) if (h.network !== "networkd" || !NETWORKD_UNITS.includes(unit)) symlink("/dev/null", join(sys, unit));
  for (const dir of ["/lib/systemd/system-generators", "/usr/lib/systemd/system-generators"]) {
    if (existsSync(dir)) for (const g of readdirSync(dir)) symlink("/dev/null", join(d, "generators", g));
  }
  writeFileSync(join(sys, "systemd-sysctl.service.d", "net-only.conf"), readFileSync(join(LAPTOP_FILES, "sysctl-net-only.conf")));
  writeFileSync(join(sys, "mptcp-lab-sshd.service"), readFileSync(join(LAPTOP_FILES, "mptcp-lab-sshd.service")));
  symlink("../mptcp-lab-sshd.service", join(sys, "multi-user.target.wants", "mptcp-lab-sshd.service"));
  if (h.network === "networkmanager") {
    // what `systemctl enable NetworkManager` does: the unit, its D-Bus names, the dispatcher's
    symlink("/lib/systemd/system/NetworkManager.service", join(sys, "multi-user.target.wants", "NetworkManager.service"));
    symlink("/lib/systemd/system/NetworkManager.service", join(sys, "dbus-org.freedesktop.NetworkManager.service"));
    symlink("/lib/systemd/system/NetworkManager-dispatcher.service", join(sys, "dbus-org.freedesktop.nm-dispatcher.service"));
    mkdirSync(join(etc, "NetworkManager", "conf.d"), { recursive: true });
    writeFileSync(join(etc, "NetworkManager", "conf.d", "90-mptcp-lab.conf"), readFileSync(join(LAPTOP_FILES, "NetworkManager.conf")));
    const profiles = join(etc, "NetworkManager", "system-connections");
    mkdirSync(profiles, { recursive: true, mode: 0o700 });
    pathEnds(topology)
      .filter((e) => e.host === h.name)
      .forEach((end, i) => {
        writeFileSync(join(profiles, `${end.path}.nmconnection`), nmProfile(end, i === 0 ? 100 : 600), { mode: 0o600 });
      });
  } else if (h.network === "networkd") {
    networkdDisk(h, topology, sys, etc);
  } else if (existsSync("/lib/systemd/system/networking.service")) {
    symlink("/lib/systemd/system/networking.service", join(sys, "multi-user.target.wants", "networking.service"));
  }
  // mptcpd's unit (DynamicUser, CAP_NET_ADMIN only) works in the laptop's network namespace: it
  // changes that namespace's MPTCP limits and endpoints, nothing of this machine
  if (h.mptcpd) symlink("/lib/systemd/system/mptcp.service", join(sys, "multi-user.target.wants", "mptcp.service"));
  symlink("/lib/systemd/system/multi-user.target", join(sys, "default.target"));
  writeFileSync(join(etc, "hostname"), `${h.name}\n`);
  writeFileSync(join(etc, "hosts"), `${readFileSync("/etc/hosts", "utf8").trimEnd()}\n127.0.1.1 ${h.name}\n`);
  writeFileSync(join(etc, "machine-id"), `${crypto.randomUUID().replace(/-/g, "")}\n`);
  writeFileSync(join(etc, "fstab"), "");
  // The lab addresses paths itself and nothing re-adds an address after a flap: keep IPv6
  // addresses over `ip link set down` as IPv4 does (a real laptop's network manager re-adds them).
  writeFileSync(join(etc, "sysctl.d", "50-mptcp-lab.conf"), "net.ipv6.conf.all.keep_addr_on_down = 1\n");
  writeFileSync(join(etc, "network", "interfaces"), "auto lo\niface lo inet loopback\n");
  writeFileSync(join(etc, "sudoers.d", "mptcp-lab-user"), `${LAB_USER} ALL=(ALL) NOPASSWD: ALL\n`, { mode: 0o440 });
  run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", join(etc, "ssh", "mptcp-lab", "ssh_host_ed25519_key")]);
  h.hostKey = readFileSync(join(etc, "ssh", "mptcp-lab", "ssh_host_ed25519_key.pub"), "utf8")
    .trim()
    .split(" ")
    .slice(0, 2)
    .join(" ");
  writeFileSync(
    join(etc, "ssh", "mptcp-lab", "sshd_config"),
    [
      `ListenAddress ${h.mgmtAddress}`,
      "Port 22",
      "HostKey /etc/ssh/mptcp-lab/ssh_host_ed25519_key",
      "UsePAM no",
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "AcceptEnv LANG LC_*",
      // as Ubuntu's and Debian's own sshd_config: remote.CopyToRemote copies over SFTP
      "Subsystem sftp /usr/lib/openssh/sftp-server",
      "MaxStartups 30:30:100",
      "",
    ].join("\n"),
  );
  writeFileSync(join(d, "root", ".ssh", "authorized_keys"), authorizedKey, { mode: 0o600 });
  chmodSync(join(d, "root"), 0o700);
  chmodSync(join(d, "root", ".ssh"), 0o700);
  addLabUser(d, etc, authorizedKey);
}

/**
 * DHCP in the lab (topology `network: dhcpcd`): a dhcpcd laptop's systemd starts dhcpcd
 * (laptop/dhcpcd.service), and each of its peers runs isc-dhcp-server's dhcpd as a unit of its own
 * on the paths they share, leasing the topology's address (with the peer as router). All their
 * files are on the laptops' disks: the config in /etc/dhcp, the leases in /var/lib/mptcp-lab-dhcpd.
 * A test moves a lease by editing the range in /etc/dhcp/mptcp-lab-dhcpd.conf and restarting
 * mptcp-lab-dhcpd.service.
 */
export function prepareDhcp(state: LabState): void {
  const served = pathEnds(state.topology).filter((e) => state.hosts.find((h) => h.name === e.host)?.network === "dhcpcd");
  for (const h of state.hosts) {
    const sys = join(h.dir, "disk", "systemd-system");
    if (h.network === "dhcpcd") {
      writeFileSync(join(sys, "dhcpcd.service"), readFileSync(join(LAPTOP_FILES, "dhcpcd.service")));
      // never DHCP, IPv4LL or router solicitations on the link to this machine
      writeFileSync(
        join(h.dir, "disk", "etc", "upper", "dhcpcd.conf"),
        `${readFileSync("/etc/dhcpcd.conf", "utf8").trimEnd()}\n\n# mptcp-pulumi lab: the management link is not the laptop's\ndenyinterfaces mgmt\n`,
      );
      symlink("../dhcpcd.service", join(sys, "multi-user.target.wants", "dhcpcd.service"));
    }
    const mine = served.filter((e) => e.peer === h.name);
    if (mine.length === 0) continue;
    const subnets = mine.map((e) => {
      const net = subnetsOf(state.topology.paths.find((p) => p.name === e.path && p.between.includes(h.name))!)[0].split("/")[0];
      const mask = [24, 16, 8, 0].map((s) => ((0xffffffff << (32 - e.prefix)) >>> s) & 255).join(".");
      return `# ${e.path}: ${e.host}\nsubnet ${net} netmask ${mask} {\n  range ${e.address} ${e.address};\n  option routers ${e.peerAddress};\n}\n`;
    });
    mkdirSync(join(h.dir, "disk", "etc", "upper", "dhcp"), { recursive: true });
    writeFileSync(
      join(h.dir, "disk", "etc", "upper", "dhcp", "mptcp-lab-dhcpd.conf"),
      `# The lab's DHCP server (scripts/lab/laptops.ts prepareDhcp): the topology's address for each dhcpcd laptop.\nauthoritative;\nddns-update-style none;\ndefault-lease-time 600;\nmax-lease-time 7200;\n\n${subnets.join("\n")}`,
    );
    writeFileSync(
      join(sys, "mptcp-lab-dhcpd.service"),
      [
        "[Unit]",
        "Description=DHCP server for the dhcpcd laptops on this laptop's paths (mptcp-pulumi lab)",
        "After=network.target",
        "",
        "[Service]",
        "StateDirectory=mptcp-lab-dhcpd",
        "RuntimeDirectory=mptcp-lab-dhcpd",
        "ExecStartPre=/usr/bin/touch /var/lib/mptcp-lab-dhcpd/dhcpd.leases",
        `ExecStart=/usr/sbin/dhcpd -4 -f -q -cf /etc/dhcp/mptcp-lab-dhcpd.conf -lf /var/lib/mptcp-lab-dhcpd/dhcpd.leases -pf /run/mptcp-lab-dhcpd/dhcpd.pid ${[...new Set(mine.map((e) => e.path))].join(" ")}`,
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
      ].join("\n"),
    );
    symlink("../mptcp-lab-dhcpd.service", join(sys, "multi-user.target.wants", "mptcp-lab-dhcpd.service"));
  }
}

/** A dhcpcd laptop: waits until dhcpcd holds the topology's address on each of its paths. */
export async function waitLeases(state: LabState, h: LabHost): Promise<void> {
  if (h.network !== "dhcpcd") return;
  const want = pathEnds(state.topology).filter((e) => e.host === h.name);
  let have = "";
  await waitFor(`the DHCP leases of ${h.name} (${want.map((e) => `${e.path} ${e.address}`).join(", ")})`, 30_000, () => {
    have = labExec(h, "ip -4 -o addr show scope global -tentative").stdout;
    return want.every((e) => new RegExp(`^\\d+: ${e.path}\\s+inet ${e.address.replace(/\./g, "\\.")}/${e.prefix} `, "m").test(have));
  }).catch((e: Error) => {
    throw new Error(`${e.message}; it has: ${have.trim() || "no address"} (its console: ${join(h.dir, "console.log")})`);
  });
}

/**
 * The login user with passwordless sudo, in the laptop's /etc and /home, written as `useradd -m
 * -s /bin/sh -U` then `usermod -p '*'` write it (passwd, group, shadow, gshadow; a home from
 * /etc/skel), with the lab's key. Written here, not by useradd at boot: the two started 14
 * processes per laptop (their CPU cost: docs/performance.md, "Tools and the harness").
 */
function addLabUser(d: string, etc: string, authorizedKey: string): void {
  const lines = (f: string) => readFileSync(f, "utf8").split("\n").filter(Boolean);
  if (lines("/etc/passwd").some((l) => l.startsWith(`${LAB_USER}:`))) return;
  // useradd's choice: one above the highest id in UID_MIN..UID_MAX (1000..60000), the group the same number when free
  const ids = (f: string) =>
    lines(f)
      .map((l) => Number(l.split(":")[2]))
      .filter((n) => n >= 1000 && n < 60000);
  const uid = Math.max(999, ...ids("/etc/passwd")) + 1;
  const gid = ids("/etc/group").includes(uid) ? Math.max(999, ...ids("/etc/group")) + 1 : uid;
  const day = Math.floor(Date.now() / 86_400_000);
  for (const [file, line] of [
    ["passwd", `${LAB_USER}:x:${uid}:${gid}::/home/${LAB_USER}:/bin/sh`],
    ["group", `${LAB_USER}:x:${gid}:`],
    ["shadow", `${LAB_USER}:*:${day}:0:99999:7:::`],
    ["gshadow", `${LAB_USER}:!::`],
  ]) {
    const st = statSync(join("/etc", file));
    const target = join(etc, file);
    writeFileSync(target, `${readFileSync(join("/etc", file), "utf8").trimEnd()}\n${line}\n`, { mode: st.mode & 0o7777 });
    chmodSync(target, st.mode & 0o7777);
    chownSync(target, st.uid, st.gid);
  }
  const home = join(d, "home", LAB_USER);
  mkdirSync(join(home, ".ssh"), { recursive: true });
  if (existsSync("/etc/skel")) for (const f of readdirSync("/etc/skel")) if (statSync(join("/etc/skel", f)).isFile()) copyFileSync(join("/etc/skel", f), join(home, f));
  writeFileSync(join(home, ".ssh", "authorized_keys"), authorizedKey, { mode: 0o600 });
  chmodSync(join(home, ".ssh"), 0o700);
  for (const f of [home, ...readdirSync(home).map((n) => join(home, n)), join(home, ".ssh", "authorized_keys")]) chownSync(f, uid, gid);
}

const cgroups = (h: LabHost) => [CGROUP_V1, CGROUP_V2].map((root) => join(root, "mptcp-lab", h.netns));

/** Boots the laptop: systemd as PID 1 in its own namespaces and cgroup; waits for its sshd. */
export async function bootHost(h: LabHost, timeoutMs: number): Promise<void> {
  const [v1, v2] = cgroups(h);
  mkdirSync(v1, { recursive: true });
  mkdirSync(v2, { recursive: true });
  const consoleLog = join(h.dir, "console.log");
  const log = openSync(consoleLog, "a");
  const launcher = spawn(
    "sh",
    [
      "-c",
      'echo $$ > "$1/cgroup.procs" && echo $$ > "$2/cgroup.procs" && exec ip netns exec "$3" unshare --pid --fork --mount --uts --ipc --cgroup --propagation private /usr/bin/python3 -I -S "$4" "$5" "$6"',
      "boot",
      v1,
      v2,
      h.netns,
      join(LAPTOP_FILES, "boot.py"),
      join(h.dir, "disk"),
      h.name,
    ],
    { detached: true, stdio: ["ignore", log, log] },
  );
  closeSync(log);
  launcher.unref();
  const consoleText = () => (existsSync(consoleLog) ? readFileSync(consoleLog, "utf8").trim().split("\n").slice(-5).join("\n") : "");
  await waitFor(`the init of ${h.name}`, timeoutMs, () => {
    if (!processAlive(launcher.pid!)) throw new Error(`${h.name} did not boot: ${consoleText()}`);
    const children = readFileSync(`/proc/${launcher.pid}/task/${launcher.pid}/children`, "utf8").trim();
    if (children) h.pid = Number(children.split(" ")[0]);
    return !!children;
  });
  await waitFor(`sshd of ${h.name} on ${h.mgmtAddress}:22 (console: ${consoleLog})`, timeoutMs, async () => {
    if (!processAlive(h.pid)) throw new Error(`${h.name}'s systemd exited: ${consoleText()}`);
    return portOpen(h.mgmtAddress, 22);
  });
}

/** Kills `pids` and waits until they have exited. */
export async function killAll(pids: number[]): Promise<void> {
  for (const pid of pids)
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone */
    }
  await waitFor(`processes ${pids.join(" ")} to exit`, 30_000, () => pids.every((p) => !processAlive(p)));
}

/** Removes a cgroup subtree once its processes are gone (the kernel frees them a moment later). */
export async function removeCgroup(root: string): Promise<void> {
  if (!existsSync(root)) return;
  await waitFor(`${root} to empty`, 5000, () => {
    const dirs = runSync("find", [root, "-depth", "-type", "d"]).stdout.split("\n").filter(Boolean);
    for (const dir of dirs)
      try {
        rmdirSync(dir);
      } catch {
        /* still busy */
      }
    return !existsSync(root);
  });
  try {
    rmdirSync(join(root, ".."));
  } catch {
    /* other laptops still have theirs */
  }
}

/** Stops a laptop: kills its init (and so its PID namespace) and deletes its network namespace and cgroup; its disk stays. */
export async function stopHost(h: LabHost): Promise<void> {
  await killAll([h.pid, ...netnsPids(h.netns)].filter((p) => p > 0));
  for (const cg of cgroups(h)) await removeCgroup(cg);
  // Deleting one end of a veth deletes both at once; a deleted namespace frees its ends later.
  if (tryRun("ip", ["link", "show", "dev", h.mgmtLink])) run("ip", ["link", "del", h.mgmtLink]);
  if (namespaces().includes(h.netns)) run("ip", ["netns", "del", h.netns]);
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** nsenter into a laptop as root: its mount, network, UTS, IPC and PID namespaces (no SSH). */
const enter = (h: LabHost) => ["-t", String(h.pid), "-m", "-n", "-u", "-i", "-p", "--"];

/** Runs a shell script as root on a laptop, without SSH. The laptop sees none of this machine's /tmp: pass files as text. */
export function labExec(h: LabHost, script: string, input?: string): ExecResult {
  return runSync("nsenter", [...enter(h), "sh", "-c", script], input);
}

/**
 * A login user `name` on a running laptop, as LAB_USER is: passwordless sudo and the lab's key
 * (root's authorized_keys), made inside the laptop (useradd; its /etc, /var and /home are the
 * laptop's own). For a stack config whose ssh.user is neither root nor LAB_USER. Idempotent.
 */
export function labAddUser(h: LabHost, name: string): void {
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(name) || name === "root") throw new Error(`${name}: not a login name the lab makes (lowercase letters, digits, _ and -; not root)`);
  labSh(
    h,
    `set -eu
u='${name}'
id -u "$u" >/dev/null 2>&1 || useradd -m -s /bin/sh -U "$u"
usermod -p '*' "$u"
printf '%s ALL=(ALL) NOPASSWD: ALL\n' "$u" > "/etc/sudoers.d/mptcp-lab-$u"
chmod 440 "/etc/sudoers.d/mptcp-lab-$u"
home=$(getent passwd "$u" | cut -d: -f6)
install -d -m 700 -o "$u" -g "$u" "$home/.ssh"
install -m 600 -o "$u" -g "$u" /root/.ssh/authorized_keys "$home/.ssh/authorized_keys"`,
    `add the login user ${name}`,
  );
}

/**
 * Lines of `ip mptcp endpoint show` without the kernel's implicit endpoints: those it creates for
 * subflows' local addresses (traffic makes them, not a config; iproute2 < 6.5 prints "rawflags 10").
 */
export const configuredEndpoints = (lines: string[]): string[] => lines.filter((l) => !l.includes(" implicit") && !l.includes(" rawflags "));

/** Like labExec, but throws on a non-zero exit, naming the script (or `what`, for a long one). */
export function labSh(h: LabHost, script: string, what = script): string {
  const r = labExec(h, script);
  if (r.code !== 0) throw new Error(`on ${h.name}: ${what}\nexit ${r.code}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/**
 * A laptop's interfaces that are not ready yet: without carrier, or with IPv6 on and without the
 * multicast route the kernel adds once the link is ready. `ip link set up` returns before the
 * kernel's link watcher has run for the pair, so a lab handed over at once could be observed with
 * routes that appear a moment later (a snapshot taken then missed them on a fast machine).
 */
export function linksNotReady(h: LabHost): string[] {
  const [links = "", mroutes = "", v6 = ""] = labSh(
    h,
    "ip -o link show; echo @; ip -6 route show table local type multicast 2>/dev/null || :; echo @; grep -H . /proc/sys/net/ipv6/conf/*/disable_ipv6 2>/dev/null || :",
    "the readiness of its links",
  ).split("@\n");
  const withRoute = new Set([...mroutes.matchAll(/ dev (\S+)/g)].map((m) => m[1]));
  const v6on = new Set([...v6.matchAll(/\/conf\/([^/]+)\/disable_ipv6:0$/gm)].map((m) => m[1]));
  return [...links.matchAll(/^\d+: ([^:@\s]+)\S*: <([^>]*)>/gm)]
    .filter(([, name, flags]) => name !== "lo" && (!flags.split(",").includes("LOWER_UP") || (v6on.has(name) && !withRoute.has(name))))
    .map(([, name]) => name);
}

/**
 * A NetworkManager laptop's profile for one path, as a desktop install makes one: static
 * addresses with the peer as gateway (a default route per path, as on a laptop with cable and
 * Wi-Fi: `metric` 100 for the laptop's first path, Wi-Fi's 600 for the others), and
 * connection.mptcp-flags left at its default, so NetworkManager manages MPTCP endpoints and
 * rp_filter as it does on a real laptop.
 */
export function nmProfile(end: PathEnd, metric: number): string {
  const family = (v6: boolean) => end.addresses.filter((a) => a.address.includes(":") === v6);
  const section = (name: string, v6: boolean) => {
    const addrs = family(v6);
    if (addrs.length === 0) return [`[${name}]`, "method=disabled", ""];
    return [
      `[${name}]`,
      "method=manual",
      ...addrs.map((a, i) => `address${i + 1}=${a.address}/${a.prefix}${i === 0 ? `,${a.peerAddress}` : ""}`),
      `route-metric=${metric}`,
      ...(v6 ? ["addr-gen-mode=eui64"] : []),
      "",
    ];
  };
  return [
    "[connection]",
    `id=${end.path}`,
    `uuid=${crypto.randomUUID()}`,
    "type=ethernet",
    `interface-name=${end.path}`,
    "autoconnect=true",
    "",
    "[ethernet]",
    "",
    ...section("ipv4", false),
    ...section("ipv6", true),
  ].join("\n");
}

/** Waits until a NetworkManager laptop's NetworkManager has activated its profiles (nm-online -s). */
export async function waitNetworkManager(h: LabHost, timeoutMs: number): Promise<void> {
  if (h.network !== "networkmanager") return;
  await waitFor(`NetworkManager of ${h.name} to activate its profiles`, timeoutMs, () => labExec(h, "nm-online -s -q -t 1").code === 0 && linksNotReady(h).length === 0);
}

/** Waits until every interface of `h` is ready (linksNotReady), naming those that are not on a timeout. */
export async function waitLinksReady(h: LabHost, timeoutMs: number): Promise<void> {
  let late: string[] = [];
  await waitFor(`the links of ${h.name} to be ready`, timeoutMs, () => {
    late = linksNotReady(h);
    return late.length === 0;
  }).catch((e: Error) => {
    throw new Error(`${e.message}: ${late.join(", ")} without carrier or without the IPv6 multicast route`);
  });
}

/** Starts a background process on a laptop; returns it for waiting and killing. */
export function labSpawn(h: LabHost, args: string[]) {
  return spawn("nsenter", [...enter(h), ...args], { stdio: ["pipe", "pipe", "pipe"] });
}
