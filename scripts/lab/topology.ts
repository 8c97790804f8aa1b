// The lab topology file: which laptops exist and which paths (veth pairs) join them. A path has
// an IPv4 subnet inside 198.51.100.0/24, an IPv6 /64 inside 2001:db8::/32, or one of each
// (dual-stack); the first host of `between` gets the subnet's first address, the second the next.
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { parse } from "yaml";
import { z } from "zod";
// Only the modules it needs: the components barrel would load Pulumi (about a second) at every lab command.
import { canonicalAddress } from "../../components/model";
import { HOST_NAME_RE, INTERFACE_RE } from "../../components/schema";
import { ConfigError, formatErrors } from "../../components/validate";

const RATE_RE = /^[1-9][0-9]{0,5}(kbit|mbit|gbit)$/;
const V4_RE = /^198\.51\.100\.([0-9]{1,3})\/(2[4-9]|30)$/;
/** Laptops in one lab: the management range holds 128 /31 links. */
export const MAX_HOSTS = 128;
const SUBNET_HELP = "must be a subnet inside 198.51.100.0/24 with prefix /24 to /30 (e.g. 198.51.100.16/28), or an IPv6 /64 inside 2001:db8::/32 (e.g. 2001:db8:1::/64)";

const subnetSchema = z.string().refine((s) => V4_RE.test(s) || v6Subnet(s) !== undefined, { error: SUBNET_HELP });

export const topologySchema = z.strictObject({
  hosts: z
    .array(
      z.strictObject({
        name: z.string().regex(HOST_NAME_RE, { error: "must be lowercase letters, digits and dashes" }).max(12, { error: "must be at most 12 characters" }),
        /** server accepts MPTCP connections; client opens them. */
        role: z.enum(["server", "client"]),
        /**
         * What brings the laptop's interfaces up at boot and runs interface hooks: ifupdown (default),
         * NetworkManager, dhcpcd (as on a fresh Debian 13: dhcpcd leases the laptop its path
         * addresses from a DHCP server the lab runs on each peer), or systemd-networkd with
         * networkd-dispatcher (IPv4 paths only).
         */
        network: z.enum(["ifupdown", "networkmanager", "dhcpcd", "networkd"]).optional(),
        /** mptcpd (the Multipath TCP daemon, Debian's mptcp.service) enabled at boot, as `systemctl enable` leaves it. */
        mptcpd: z.boolean().optional(),
        /** SSH reaches the laptop through this router, over the (IPv4) path between them, instead of a management link. */
        ssh: z.strictObject({ via: z.string() }).optional(),
      }),
    )
    .min(2, { error: "needs at least two hosts" })
    .max(MAX_HOSTS, { error: `at most ${MAX_HOSTS} hosts` }),
  /** Router namespaces (IP forwarding on, a link to this machine): paths may join them and laptops. */
  routers: z
    .array(z.strictObject({ name: z.string().regex(HOST_NAME_RE, { error: "must be lowercase letters, digits and dashes" }).max(12, { error: "must be at most 12 characters" }) }))
    .max(8)
    .optional(),
  paths: z
    .array(
      z.strictObject({
        /** Interface name on both ends. */
        name: z.string().regex(INTERFACE_RE, { error: "must be an interface name" }),
        /** One subnet, or an IPv4 and an IPv6 one (dual-stack). */
        subnet: z.union([subnetSchema, z.array(subnetSchema).min(1).max(2)]),
        /** The two hosts this path joins. */
        between: z.tuple([z.string(), z.string()]),
        /** Optional tbf rate on both ends, e.g. 20mbit. */
        rate: z.string().regex(RATE_RE, { error: "must be a tc rate like 20mbit" }).optional(),
      }),
    )
    .min(1, { error: "needs at least one path" }),
});

export type Topology = z.infer<typeof topologySchema>;

export interface EndAddress {
  address: string;
  prefix: number;
  peerAddress: string;
}

export interface PathEnd extends EndAddress {
  path: string;
  host: string;
  peer: string;
  /** Every address of this end: IPv4 first on a dual-stack path. `address` is the first. */
  addresses: EndAddress[];
}

/** The first four groups of an IPv6 /64 inside 2001:db8::/32, or undefined. */
function v6Subnet(subnet: string): number[] | undefined {
  const [net, prefix] = subnet.split("/");
  if (prefix !== "64" || isIP(net) !== 6) return undefined;
  const [head, tail = ""] = net.split("::");
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill("0"), ...t].map((g) => parseInt(g, 16));
  if (groups[0] !== 0x2001 || groups[1] !== 0xdb8 || groups.slice(4).some((g) => g !== 0)) return undefined;
  return groups.slice(0, 4);
}

/** A path's subnets, one or two. */
export const subnetsOf = (p: Topology["paths"][number]): string[] => (Array.isArray(p.subnet) ? p.subnet : [p.subnet]);

/** The k-th host address of a subnet (k = 1, 2, ...) and the prefix. */
function hostAddress(subnet: string, k: number): { address: string; prefix: number } {
  const v4 = V4_RE.exec(subnet);
  if (v4) return { address: `198.51.100.${Number(v4[1]) + k}`, prefix: Number(v4[2]) };
  const g = v6Subnet(subnet)!;
  return { address: canonicalAddress(`${g.map((x) => x.toString(16)).join(":")}::${k.toString(16)}`), prefix: 64 };
}

export function validateTopology(raw: unknown): Topology {
  const parsed = topologySchema.safeParse(raw);
  const errors: ConfigError[] = [];
  const at = (segments: (string | number)[]) =>
    "topology:" +
    segments
      .map((s) => (typeof s === "number" ? `[${s}]` : `.${s}`))
      .join("")
      .replace(/^\./, "");
  if (!parsed.success) {
    for (const issue of parsed.error.issues) errors.push({ path: at(issue.path as (string | number)[]), message: issue.message });
    throw new Error(formatErrors(errors, "the lab topology"));
  }
  const topo = parsed.data;
  const names = new Set<string>();
  topo.hosts.forEach((h, i) => {
    if (names.has(h.name)) errors.push({ path: at(["hosts", i, "name"]), message: `duplicate host "${h.name}"` });
    names.add(h.name);
  });
  const routers = new Set<string>();
  (topo.routers ?? []).forEach((r, i) => {
    if (names.has(r.name)) errors.push({ path: at(["routers", i, "name"]), message: `"${r.name}" is already a host or router name` });
    names.add(r.name);
    routers.add(r.name);
  });
  topo.hosts.forEach((h, i) => {
    if (!h.ssh) return;
    const path = topo.paths.find((p) => p.between.includes(h.name) && p.between.includes(h.ssh!.via));
    if (!routers.has(h.ssh.via)) errors.push({ path: at(["hosts", i, "ssh", "via"]), message: `unknown router "${h.ssh.via}"` });
    else if (!path || !subnetsOf(path).some((x) => V4_RE.test(x)))
      errors.push({ path: at(["hosts", i, "ssh", "via"]), message: `no IPv4 path joins ${h.name} and ${h.ssh.via}: add one for SSH to arrive on` });
  });
  const ranges: [number, number, number][] = [];
  const v6 = new Map<string, number>();
  const ifaces = new Set<string>();
  topo.paths.forEach((p, i) => {
    const subnets = subnetsOf(p);
    const where = Array.isArray(p.subnet) ? (k: number) => ["paths", i, "subnet", k] : () => ["paths", i, "subnet"];
    if (subnets.filter((x) => V4_RE.test(x)).length > 1 || subnets.filter((x) => !V4_RE.test(x)).length > 1) {
      errors.push({ path: at(["paths", i, "subnet"]), message: "a path has at most one IPv4 and one IPv6 subnet" });
    }
    subnets.forEach((subnet, k) => {
      const m = V4_RE.exec(subnet);
      if (!m) {
        const key = v6Subnet(subnet)!.join(":");
        if (v6.has(key)) errors.push({ path: at(where(k)), message: `overlaps the subnet of topology:paths[${v6.get(key)}]` });
        v6.set(key, i);
        return;
      }
      const base = Number(m[1]);
      const size = 2 ** (32 - Number(m[2]));
      if (base % size !== 0) errors.push({ path: at(where(k)), message: `${subnet} is not a network address (use 198.51.100.${base - (base % size)}/${m[2]})` });
      ranges.forEach(([b, sz, j]) => {
        if (base < b + sz && b < base + size) errors.push({ path: at(where(k)), message: `overlaps the subnet of topology:paths[${j}]` });
      });
      ranges.push([base, size, i]);
    });
    p.between.forEach((h, k) => {
      if (!names.has(h)) errors.push({ path: at(["paths", i, "between", k]), message: `unknown host or router "${h}"` });
      const key = `${h}/${p.name}`;
      if (ifaces.has(key)) errors.push({ path: at(["paths", i, "name"]), message: `host "${h}" already has an interface ${p.name}` });
      ifaces.add(key);
    });
    if (p.between[0] === p.between[1]) errors.push({ path: at(["paths", i, "between"]), message: "a path joins two different hosts" });
  });
  // a dhcpcd laptop's paths are served by its peers' DHCP servers (isc-dhcp-server: IPv4 only)
  topo.hosts.forEach((h, i) => {
    if (h.network !== "dhcpcd") return;
    if (h.ssh) errors.push({ path: at(["hosts", i, "ssh"]), message: "a dhcpcd laptop is reached over its management link (dhcpcd configures its paths)" });
    topo.paths.forEach((p, j) => {
      if (!p.between.includes(h.name)) return;
      const peer = p.between.find((x) => x !== h.name)!;
      if (subnetsOf(p).some((x) => !V4_RE.test(x)))
        errors.push({ path: at(["paths", j, "subnet"]), message: `${h.name} runs dhcpcd, which the lab serves over IPv4 only: give this path one IPv4 subnet` });
      if (routers.has(peer) || topo.hosts.find((x) => x.name === peer)?.network === "dhcpcd")
        errors.push({ path: at(["paths", j, "between"]), message: `${h.name} runs dhcpcd: its peer must be a laptop without dhcpcd (it runs the DHCP server)` });
    });
  });
  if (errors.length) throw new Error(formatErrors(errors, "the lab topology"));
  return topo;
}

export function readTopology(file: string): Topology {
  return validateTopology(parse(readFileSync(file, "utf8")));
}

/** The IPv4 path a laptop's SSH arrives on through its router (topology.hosts[].ssh.via). */
export function sshPath(topo: Topology, host: string): PathEnd | undefined {
  const via = topo.hosts.find((h) => h.name === host)?.ssh?.via;
  return via === undefined ? undefined : pathEnds(topo).find((e) => e.host === host && e.peer === via && !e.address.includes(":"));
}

/** Whether `client` reaches a server's path end: a laptop routes only over the paths it is on. */
export const reaches = (end: PathEnd, client: string): boolean => end.peer === client;

/** Both ends of every path, with their addresses (IPv4 first on a dual-stack path). */
export function pathEnds(topo: Topology): PathEnd[] {
  return topo.paths.flatMap((p) => {
    const subnets = [...subnetsOf(p)].sort((a, b) => Number(!V4_RE.test(a)) - Number(!V4_RE.test(b)));
    return p.between.map((host, k) => {
      const addresses = subnets.map((s) => ({ ...hostAddress(s, 1 + k), peerAddress: hostAddress(s, 2 - k).address }));
      return { path: p.name, host, peer: p.between[1 - k], ...addresses[0], addresses };
    });
  });
}

/** The address of `host` on `path` (its first, IPv4 on a dual-stack path); throws when the host is not on it. */
export function pathAddress(topo: Topology, host: string, path: string): string {
  const end = pathEnds(topo).find((e) => e.host === host && e.path === path);
  if (!end) throw new Error(`${host} is not on path ${path}`);
  return end.address;
}

/** Whether a lab of server/client pairs can have n laptops (pairsTopology). */
export const isPairsCount = (n: number) => Number.isInteger(n) && n >= 2 && n <= MAX_HOSTS && n % 2 === 0;

/**
 * N laptops (N even, 2..128) as N/2 server/client pairs s01/c01, s02/c02, ...: each pair joined by
 * lanNN (an IPv4 /30; 64 of them fill 198.51.100.0/24) and wlanNN (an IPv6 /64). The scale
 * benchmark's labs; scripts/lab/topologies/64-laptops.yaml is pairsTopology(64).
 */
export function pairsTopology(n: number): Topology {
  if (!isPairsCount(n)) throw new Error(`a lab of pairs has an even number of laptops, 2 to ${MAX_HOSTS} (got ${n})`);
  const nn = (i: number) => String(i + 1).padStart(2, "0");
  const pairs = Array.from({ length: n / 2 }, (_, i) => i);
  return validateTopology({
    hosts: pairs.flatMap((i) => [
      { name: `s${nn(i)}`, role: "server" },
      { name: `c${nn(i)}`, role: "client" },
    ]),
    paths: pairs.flatMap((i) => [
      { name: `lan${nn(i)}`, subnet: `198.51.100.${4 * i}/30`, between: [`s${nn(i)}`, `c${nn(i)}`] },
      { name: `wlan${nn(i)}`, subnet: `2001:db8:${(i + 1).toString(16)}::/64`, between: [`s${nn(i)}`, `c${nn(i)}`] },
    ]),
  });
}

export const DEFAULT_TOPOLOGY: Topology = {
  hosts: [
    { name: "server", role: "server" },
    { name: "client", role: "client" },
  ],
  paths: [
    // shaped like real links: on an unshaped veth the first subflow is never full, so the
    // scheduler leaves the other paths idle and no path-level check means anything
    { name: "lan", subnet: "198.51.100.0/28", between: ["server", "client"], rate: "100mbit" },
    { name: "wlan", subnet: "198.51.100.16/28", between: ["server", "client"], rate: "100mbit" },
  ],
};
