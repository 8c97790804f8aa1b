// The lab's network: network namespaces, management links (their addresses, in slots of
// 203.0.113.0/24), the veth pairs of the topology's paths, and routers. Namespaces and links are
// built as a plan of ip and tc commands run in batch (NetPlan), a few processes for a whole lab.
import type { LabHost, LabRouter, LabState } from "./state";
import { run, runSync } from "./spawner";
import { pathEnds, sshPath, subnetsOf } from "./topology";

/** Laptops per slot: a slot is a /27 of 203.0.113.0/24, one /31 management link per laptop. */
export const SLOT_SIZE = 16;
export const SLOTS = 8;

export function namespaces(): string[] {
  return run("ip", ["netns", "list"])
    .split("\n")
    .map((l) => l.split(" ")[0])
    .filter(Boolean);
}

/** The /31 management link of the i-th laptop of a lab whose first slot is `slot`. */
export function mgmtAddresses(slot: number, i: number): { root: string; host: string } {
  const base = slot * 2 * SLOT_SIZE + 2 * i;
  if (base + 1 > 255) throw new Error(`laptop ${i} does not fit in the management range from slot ${slot}`);
  return { root: `203.0.113.${base}`, host: `203.0.113.${base + 1}` };
}

/**
 * ip and tc commands to run as a few processes: `root` in this machine's namespace (one `ip
 * -batch`), then each namespace's `ip` and `tc` commands (one `ip -n NS -batch` and one `tc -n NS
 * -batch` each). A lab of two laptops took 32 ip processes to build this way one by one.
 */
interface NetPlan {
  root: string[];
  ip: Map<string, string[]>;
  tc: Map<string, string[]>;
}

const netPlan = (): NetPlan => ({ root: [], ip: new Map(), tc: new Map() });
const inNs = (m: Map<string, string[]>, ns: string, line: string): void => {
  const lines = m.get(ns);
  if (lines) lines.push(line);
  else m.set(ns, [line]);
};

function runNetPlan(p: NetPlan): void {
  const batch = (cmd: string, args: string[], lines: string[]) => {
    if (lines.length) run(cmd, [...args, "-batch", "-"], lines.join("\n") + "\n");
  };
  batch("ip", [], p.root);
  for (const [ns, lines] of p.ip) batch("ip", ["-n", ns], lines);
  for (const [ns, lines] of p.tc) batch("tc", ["-n", ns], lines);
}

/** A laptop's or router's network namespace: loopback and its management link (if any). */
function planNetns(p: NetPlan, h: LabHost | LabRouter): void {
  p.root.push(`netns add ${h.netns}`);
  inNs(p.ip, h.netns, "link set lo up");
  if (!h.mgmtLink) return;
  p.root.push(`link add ${h.mgmtLink} type veth peer name mgmt netns ${h.netns}`, `addr add ${h.rootAddress}/31 dev ${h.mgmtLink}`, `link set ${h.mgmtLink} up`);
  inNs(p.ip, h.netns, `addr add ${h.mgmtAddress}/31 dev mgmt`);
  inNs(p.ip, h.netns, "link set mgmt up");
}

/**
 * Every path (veth pair) that touches one of `only` (default: all), and the configuration of its
 * ends (addresses, up, tbf), except on the laptops in `unconfigured`, which configure their own
 * interfaces at boot (ifupdown).
 */
function planPaths(p: NetPlan, state: LabState, only?: Set<string>, unconfigured = new Set<string>()): void {
  const ns = (name: string) => [...state.hosts, ...state.routers].find((h) => h.name === name)!.netns;
  for (const path of state.topology.paths) {
    const [a, b] = path.between;
    if (only && !only.has(a) && !only.has(b)) continue;
    p.root.push(`link add ${path.name} netns ${ns(a)} type veth peer name ${path.name} netns ${ns(b)}`);
  }
  for (const end of pathEnds(state.topology)) {
    if (only && !only.has(end.host) && !only.has(end.peer)) continue;
    const n = ns(end.host);
    const rate = state.topology.paths.find((x) => x.name === end.path)!.rate;
    if (rate) inNs(p.tc, n, `qdisc replace dev ${end.path} root tbf rate ${rate} burst 32kb latency 50ms`);
    if (unconfigured.has(end.host)) continue;
    for (const a of end.addresses) inNs(p.ip, n, `addr add ${a.address}/${a.prefix} dev ${end.path}${a.address.includes(":") ? " nodad" : ""}`);
    inNs(p.ip, n, `link set ${end.path} up`);
    // SSH through a router: replies to this machine leave over the path to the router
    const ssh = sshPath(state.topology, end.host);
    if (ssh && ssh.path === end.path) inNs(p.ip, n, `route replace 203.0.113.0/24 via ${ssh.peerAddress} dev ${end.path}`);
  }
}

/**
 * Builds the network namespaces of `boxes` (laptops and routers, with their management links) and
 * the paths that touch `only` (planPaths), in one plan: one `ip -batch` here, then one `ip` and one
 * `tc` per namespace.
 */
export function buildNet(state: LabState, boxes: (LabHost | LabRouter)[], only?: Set<string>, unconfigured?: Set<string>): void {
  const p = netPlan();
  for (const b of boxes) planNetns(p, b);
  planPaths(p, state, only, unconfigured);
  runNetPlan(p);
}

/**
 * The laptops that address their paths themselves whenever they boot, whatever the caller asks:
 * NetworkManager from its profiles, dhcpcd from its leases (the lab leaves their paths unaddressed
 * and down), systemd-networkd from its .network files.
 */
export const selfConfigured = (hosts: LabHost[]) => new Set(hosts.filter((h) => h.network !== "ifupdown").map((h) => h.name));

/** Routers: namespaces with forwarding on; this machine reaches the SSH paths behind them through them. */
export function createRouters(state: LabState): void {
  for (const r of state.routers) run("ip", ["netns", "exec", r.netns, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  for (const h of state.hosts) {
    const ssh = sshPath(state.topology, h.name);
    if (!ssh) continue;
    const r = state.routers.find((x) => x.name === ssh.peer)!;
    const path = state.topology.paths.find((p) => p.name === ssh.path && p.between.includes(h.name))!;
    const v4 = subnetsOf(path).find((x) => !x.includes(":"))!;
    const added = runSync("ip", ["route", "add", v4, "via", r.mgmtAddress, "dev", r.mgmtLink]);
    if (added.code !== 0)
      throw new Error(`cannot route ${v4} through router ${r.name}: ${added.stderr.trim()} (another running lab may route the same subnet: give this lab's SSH path another subnet)`);
  }
}

/** The processes in a network namespace (none when it is gone). */
export function netnsPids(netns: string): number[] {
  if (!namespaces().includes(netns)) return [];
  return run("ip", ["netns", "pids", netns]).split("\n").filter(Boolean).map(Number);
}
