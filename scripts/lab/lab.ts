// The lab: test laptops on one Linux machine. Every laptop is a network namespace in which
// systemd boots as PID 1 of its own PID, mount, UTS, IPC and cgroup namespaces, with a private
// copy-on-write disk (laptop/boot.py says what it sees of this machine, and how), its own sshd
// started by systemd on a management link from this machine, and a login user with passwordless
// sudo. Paths between laptops are veth pairs (IPv4, IPv6 or both), optionally shaped with tbf.
//
// This file holds the orchestration (labUp, labDown, labReboot) and the checks before a lab
// starts; the parts live beside it: network.ts (namespaces, management links, paths, routers),
// laptops.ts (a laptop's disk, boot and stop, commands in it), state.ts (a lab's record, slots,
// status, stack config). Everything other files use is exported from here.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bootHost, CGROUP_V1, CGROUP_V2, killAll, prepareDhcp, prepareDisk, removeCgroup, stopHost, waitLeases, waitLinksReady, waitNetworkManager } from "./laptops";
import { buildNet, createRouters, mgmtAddresses, namespaces, netnsPids, selfConfigured, SLOT_SIZE } from "./network";
import { run, runSync, tryRun } from "./spawner";
import { claimSlots, LabState, labIsUp, readLabState, releaseSlots } from "./state";
import { sshPath, Topology } from "./topology";

export type { ExecResult } from "./laptops";
export { LAB_USER, MASKED_UNITS, processAlive, portOpen, networkdFile, labExec, labAddUser, configuredEndpoints, labSh, linksNotReady, nmProfile, labSpawn } from "./laptops";
export { SLOT_SIZE, SLOTS, namespaces, mgmtAddresses } from "./network";
export type { LabHost, LabRouter, LabState } from "./state";
export { STACK_MARK, claimSlots, readLabState, labIsUp, labStatus, dialAddress, labStackConfig, writeStackFile, removeStackFile } from "./state";

export interface LabOptions {
  /** Folder for keys, disks and state (git-ignored). */
  dir: string;
  /** Short name: namespaces are mptcp-<id>-<host>. */
  id: string;
  /** The first management slot (0..7); default: the first free run of slots on this machine. */
  slot?: number;
  topology: Topology;
  /** Told each phase and how long it took. */
  progress?: (message: string) => void;
}

export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new Error("the lab needs root (network namespaces, veth links, mounts): run it as root, e.g. sudo npm run lab -- up");
  }
}

/** Tools the lab runs, and the Debian package of each. */
const LAB_TOOLS: [string, string][] = [
  ["/usr/sbin/sshd", "openssh-server"],
  ["ssh-keygen", "openssh-client"],
  ["ip", "iproute2"],
  ["tc", "iproute2"],
  ["nsenter", "util-linux"],
  ["unshare", "util-linux"],
  ["/lib/systemd/systemd", "systemd"],
  ["sudo", "sudo"],
  ["/usr/bin/python3", "python3"],
];

function requireTools(topology: Topology): void {
  const uses = (n: string) => topology.hosts.some((h) => h.network === n);
  const tools: [string, string][] = [
    ...LAB_TOOLS,
    ...(uses("networkmanager") ? [["/usr/sbin/NetworkManager", "network-manager"] as [string, string]] : []),
    ...(topology.hosts.some((h) => h.mptcpd) ? [["/usr/libexec/mptcpd", "mptcpd"] as [string, string]] : []),
    ...(uses("dhcpcd")
      ? ([
          ["/usr/sbin/dhcpcd", "dhcpcd-base"],
          ["/usr/sbin/dhcpd", "isc-dhcp-server"],
        ] as [string, string][])
      : []),
    ...(uses("networkd") ? [["/usr/bin/networkd-dispatcher", "networkd-dispatcher"] as [string, string]] : []),
  ];
  // one shell checks them all: it prints each tool it cannot find
  const absent = new Set(runSync("sh", ["-c", 'for t; do command -v "$t" > /dev/null || echo "$t"; done', "sh", ...tools.map(([t]) => t)]).stdout.split("\n"));
  const missing = tools.filter(([tool]) => absent.has(tool));
  if (missing.length) {
    throw new Error(`the lab needs ${missing.map(([t]) => t).join(", ")}: apt-get install -y ${[...new Set(missing.map(([, p]) => p))].join(" ")}`);
  }
  if (!existsSync(join(CGROUP_V1, "cgroup.procs")) || !existsSync(join(CGROUP_V2, "cgroup.procs"))) {
    throw new Error(`the lab boots systemd laptops on the hybrid cgroup layout (${CGROUP_V1} and ${CGROUP_V2}); this machine has another layout, which the lab does not support yet`);
  }
}

/** inotify instances one laptop holds (systemd, dbus-daemon, NetworkManager; measured: docs/performance.md, "Tools and the harness"). */
const inotifyOf = (h: Topology["hosts"][number]) => (h.network === "networkmanager" ? 6 : 4);

/**
 * Every laptop's processes run as this machine's root, and the kernel counts inotify instances
 * per user across the machine: a lab that would pass fs.inotify.max_user_instances makes systemd
 * fail to start. Checked before anything is built; the lab does not change the limit itself.
 */
function requireInotify(topology: Topology): void {
  const max = Number(readFileSync("/proc/sys/fs/inotify/max_user_instances", "utf8"));
  const used = Number(runSync("sh", ["-c", "find /proc/[0-9]*/fd -lname 'anon_inode:inotify' 2>/dev/null | wc -l"]).stdout.trim());
  const problem = inotifyShortfall(topology, used, max);
  if (problem) throw new Error(problem);
}

/** Why a lab of this topology would not fit in the inotify limit (undefined when it fits). */
export function inotifyShortfall(topology: Topology, used: number, max: number): string | undefined {
  const lab = topology.hosts.reduce((n, h) => n + inotifyOf(h), 0);
  if (used + lab <= max) return undefined;
  const want = 2 ** Math.ceil(Math.log2(2 * (used + lab)));
  return `${topology.hosts.length} laptops need about ${lab} inotify instances (4 each, 6 with NetworkManager) and ${used} are in use, but fs.inotify.max_user_instances is ${max}: raise it first (sysctl -w fs.inotify.max_user_instances=${want}; put it in /etc/sysctl.d to keep it), or use fewer laptops`;
}

/**
 * How long a laptop may take to boot (and NetworkManager to activate its profiles): systemd boots
 * in about a second, but many laptops share two cores, and so do the lab files running beside
 * (a throughput test saturating its paths): NetworkManager once took over 22 s then. A deadline,
 * not a speed check (docs/performance.md, "Lab proofs under load").
 */
const bootTimeout = (laptops: number) => 60_000 + 1_000 * laptops;

/** Brings the lab up; safe to call when it is already up (returns the running lab). */
export async function labUp(opts: LabOptions): Promise<LabState> {
  requireRoot();
  requireTools(opts.topology);
  const existing = readLabState(opts.dir);
  if (existing) {
    if (labIsUp(opts.dir, opts.topology)) return existing;
    await labDown(opts.dir, opts.id);
  }
  requireInotify(opts.topology);
  const created = !existsSync(opts.dir);
  mkdirSync(opts.dir, { recursive: true });
  let slots: number[];
  try {
    slots = claimSlots(Math.ceil((opts.topology.hosts.length + (opts.topology.routers?.length ?? 0)) / SLOT_SIZE), opts.dir, opts.slot);
  } catch (e) {
    if (created) rmSync(opts.dir, { recursive: true, force: true });
    throw e;
  }
  const privateKeyFile = join(opts.dir, "id_ed25519");
  run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `mptcp-lab-${opts.id}`, "-f", privateKeyFile]);
  const state: LabState = {
    id: opts.id,
    slots,
    dir: opts.dir,
    topology: opts.topology,
    privateKeyFile,
    knownHostsFile: join(opts.dir, "known_hosts"),
    hosts: opts.topology.hosts.map((t, i) => {
      const m = mgmtAddresses(slots[0], i);
      const via = sshPath(opts.topology, t.name);
      return {
        name: t.name,
        role: t.role,
        network: t.network ?? "ifupdown",
        ...(t.mptcpd ? { mptcpd: true } : {}),
        netns: `mptcp-${opts.id}-${t.name}`,
        mgmtLink: via ? "" : `mpl${slots[0]}-${i}-${opts.id}`.slice(0, 15),
        mgmtAddress: via ? via.address : m.host,
        rootAddress: via ? "" : m.root,
        pid: 0,
        hostKey: "",
        dir: join(opts.dir, "hosts", t.name),
      };
    }),
    routers: (opts.topology.routers ?? []).map((r, k) => {
      const i = opts.topology.hosts.length + k;
      const m = mgmtAddresses(slots[0], i);
      return { name: r.name, netns: `mptcp-${opts.id}-${r.name}`, mgmtLink: `mpl${slots[0]}-${i}-${opts.id}`.slice(0, 15), mgmtAddress: m.host, rootAddress: m.root };
    }),
  };
  const save = () => writeFileSync(join(opts.dir, "state.json"), JSON.stringify(state, null, 2));
  let t = performance.now();
  const phase = (what: string) => {
    opts.progress?.(`${what} in ${((performance.now() - t) / 1000).toFixed(2)} s`);
    t = performance.now();
  };
  try {
    save();
    const key = readFileSync(`${privateKeyFile}.pub`, "utf8");
    for (const h of state.hosts) {
      mkdirSync(h.dir, { recursive: true });
      prepareDisk(h, key, state.topology);
    }
    prepareDhcp(state);
    buildNet(state, [...state.hosts, ...state.routers], undefined, selfConfigured(state.hosts));
    createRouters(state);
    phase(`${state.hosts.length} disks, network namespaces${state.routers.length ? `, ${state.routers.length} routers` : ""} and ${state.topology.paths.length} paths`);
    await Promise.all(state.hosts.map((h) => bootHost(h, bootTimeout(state.hosts.length))));
    for (const h of state.hosts) await waitLeases(state, h);
    // a NetworkManager laptop's paths come up when it activates its profiles: their peers' too
    for (const h of state.hosts) await waitNetworkManager(h, bootTimeout(state.hosts.length));
    for (const h of state.hosts) await waitLinksReady(h, 5_000);
    phase(`${state.hosts.length} laptops booted (systemd, sshd answering, links ready)`);
  } catch (e) {
    save();
    const cleanup = await labDown(opts.dir, opts.id).then(
      () => "",
      (d: Error) => `; then taking the lab down failed too (run down again): ${d.message}`,
    );
    throw new Error(`${(e as Error).message}${cleanup}`);
  }
  writeFileSync(state.knownHostsFile, state.hosts.map((h) => `${h.mgmtAddress} ${h.hostKey}`).join("\n") + "\n");
  save();
  return state;
}

/** Takes the lab down: laptops (processes, namespaces, mounts, cgroups), links, slots and files. */
export async function labDown(dir: string, id: string): Promise<void> {
  requireRoot();
  const state = readLabState(dir);
  if (state) await Promise.all(state.hosts.map((h) => stopHost(h)));
  for (const r of state?.routers ?? []) {
    if (tryRun("ip", ["link", "show", "dev", r.mgmtLink])) run("ip", ["link", "del", r.mgmtLink]);
    if (namespaces().includes(r.netns)) run("ip", ["netns", "del", r.netns]);
  }
  // Sweep anything of this lab id that a crashed up left without state.
  for (const ns of namespaces().filter((n) => n.startsWith(`mptcp-${id}-`))) {
    await killAll(netnsPids(ns));
    if (namespaces().includes(ns)) run("ip", ["netns", "del", ns]);
  }
  for (const root of [CGROUP_V1, CGROUP_V2]) {
    const labs = join(root, "mptcp-lab");
    if (existsSync(labs)) for (const cg of readdirSync(labs).filter((n) => n.startsWith(`mptcp-${id}-`))) await removeCgroup(join(labs, cg));
  }
  if (state) releaseSlots(state.slots, dir);
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Reboots laptops: their kernel state (network namespaces) and processes are lost, their disks
 * stay, and systemd boots them again, all at once. A path's veth pair dies with either end, so a
 * laptop whose peer reboots alone sees a new interface (like a re-plugged NIC) that nothing on it
 * configures; reboot the peers together to avoid that. Laptops rebooted with `selfConfigured`
 * bring their path interfaces up themselves at boot (ifupdown), as real laptops do; the lab only
 * plugs the cables in.
 */
export async function labReboot(state: LabState, names: string[], opts: { selfConfigured?: boolean } = {}): Promise<void> {
  const hosts = names.map((n) => state.hosts.find((x) => x.name === n)!);
  await Promise.all(hosts.map((h) => stopHost(h)));
  buildNet(state, hosts, new Set(names), opts.selfConfigured ? new Set(names) : selfConfigured(hosts));
  await Promise.all(hosts.map((h) => bootHost(h, bootTimeout(hosts.length))));
  for (const h of hosts) await waitLeases(state, h);
  // self-configured laptops bring their paths up when their own ifupdown gets to it
  for (const h of hosts) await waitNetworkManager(h, bootTimeout(hosts.length));
  if (!opts.selfConfigured) for (const h of hosts) await waitLinksReady(h, 5_000);
  writeFileSync(join(state.dir, "state.json"), JSON.stringify(state, null, 2));
}
