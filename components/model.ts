// The validated model: stack config with defaults filled in, endpoint ids assigned, and the
// path-manager arithmetic (how many subflows a link will get) that validation and the lab
// tests share.
import { createHash } from "node:crypto";
import { isIP } from "node:net";
import type { EndpointFlag } from "./args";
import { ENDPOINT_FLAGS, HostConfig, KERNEL_DEFAULT_LIMITS, MptcpConfig, ServiceConfig, SYSCTL_KNOBS, SysctlConfig } from "./schema";

export interface Endpoint {
  /** Position in the host's config list (for error paths). */
  index: number;
  interface: string;
  address?: string;
  /** Flags, each once, in ENDPOINT_FLAGS order (the host scripts compare endpoints with flags sorted, so no order matters there). */
  flags: EndpointFlag[];
  id: number;
  port?: number;
}

export interface SysctlSetting {
  /** camelCase config key. */
  key: keyof SysctlConfig;
  /** Kernel knob under /proc/sys/net/mptcp. */
  knob: string;
  /** Value as written to /proc/sys. */
  value: string;
}

export interface Routing {
  interface: string;
  mode: "auto" | "source" | "none";
  table: number;
  priority: number;
  gateway?: string;
  /** Position in mptcp:hosts[].routing, when the config lists it. */
  index?: number;
}

export interface Service extends ServiceConfig {
  /** Position in mptcp:hosts[].services (for error paths). */
  index: number;
}

export interface HostModel {
  index: number;
  name: string;
  ssh: HostConfig["ssh"];
  sysctl: SysctlSetting[];
  /** Only the limits the config sets; unset ones stay as the host has them. */
  limits: { subflows?: number; addAddrAccepted?: number };
  endpoints: Endpoint[];
  /** Who makes the host's MPTCP endpoints: mptcp-pulumi (NetworkManager switched off for them) or networkmanager. */
  endpointOwner: HostConfig["endpointOwner"];
  /** Hooks and boot unit installed. */
  hooks: boolean;
  /** One entry per endpoint interface (defaults filled in), when hooks are on. */
  routing: Routing[];
  /** mptcp:hosts[].routing as written (for validation). */
  routingConfig: HostConfig["routing"];
  /** systemd units made MPTCP by our drop-in. */
  services: Service[];
  /** Seconds within which a risky apply must be confirmed, else it is undone on the host (0: off). */
  confirmTimeout: number;
  /** The Pulumi project/stack that manages the host, recorded on it (set by MptcpHost, not by the config). */
  stack?: string;
}

export interface Link {
  /** Position in mptcp:links (for error paths). */
  index: number;
  client: string;
  server: string;
  /** The server address the client dials: the link's address, else the server's ssh.host when it is an IP address without a zone. */
  address?: string;
  /** mptcp:links[].reaches, canonical: the announced addresses the client can reach (absent: all). */
  reaches?: string[];
}

/** A link's `reaches` as a Reachable (undefined when the config does not say). */
export const reachableOf = (link: Link): Reachable | undefined => (link.reaches ? (a: string) => link.reaches!.includes(canonicalAddress(a)) : undefined);

export interface Model {
  hosts: HostModel[];
  links: Link[];
}

function sysctlValue(value: boolean | number | string): string {
  if (typeof value === "boolean") return value ? "1" : "0";
  return String(value);
}

export function sysctlSettings(sysctl: SysctlConfig | undefined): SysctlSetting[] {
  if (!sysctl) return [];
  return (Object.keys(SYSCTL_KNOBS) as (keyof SysctlConfig)[]).filter((key) => sysctl[key] !== undefined).map((key) => ({ key, knob: SYSCTL_KNOBS[key], value: sysctlValue(sysctl[key]!) }));
}

/**
 * The form the kernel prints: IPv6 lowercased and compressed (2001:DB8:0::2 -> 2001:db8::2); a
 * zone (fe80::1%eth0, which only ssh.host may carry) is kept as written. Never throws: the URL
 * parser refuses a zone ("Invalid URL"), so it sees the address alone.
 */
export function canonicalAddress(address: string): string {
  if (isIP(address) !== 6) return address;
  const at = address.indexOf("%");
  const bare = at < 0 ? address : address.slice(0, at);
  try {
    return new URL(`http://[${bare}]`).hostname.slice(1, -1) + (at < 0 ? "" : address.slice(at));
  } catch {
    return address;
  }
}

/** A whole number in 0..n-1 from a text (the first 4 bytes of its SHA-256): the same on every run. */
function hashOf(text: string, n: number): number {
  return createHash("sha256").update(text).digest().readUInt32BE(0) % n;
}

/**
 * Numbers for the items that have none from the config, derived from their keys (never from their
 * place in a list): each key hashes to a number in [lo, hi]; one already taken (by the config, or
 * by a key earlier in sorted order) is passed over to the next free one, wrapping round. The keys
 * are distinct, so the result depends on the set of keys alone, and adding or removing one moves
 * another only when their numbers collide.
 */
export function numbersByKey(keys: string[], lo: number, hi: number, taken: Iterable<number>): Map<string, number> {
  const used = new Set([...taken].filter((n) => n >= lo && n <= hi));
  const span = hi - lo + 1;
  const out = new Map<string, number>();
  for (const key of [...new Set(keys)].sort()) {
    if (used.size >= span) throw new Error(`no number left in ${lo}..${hi} for ${key}`);
    let n = lo + hashOf(key, span);
    while (used.has(n)) n = n === hi ? lo : n + 1;
    used.add(n);
    out.set(key, n);
  }
  return out;
}

/** What identifies an endpoint on its host: its interface and its address (none: the interface's current one). Two endpoints of a host never share it (validation). */
export const endpointKey = (e: { interface: string; address?: string }): string => (e.address === undefined ? e.interface : `${e.interface} ${canonicalAddress(e.address)}`);

/** The highest endpoint id the kernel takes (its ids are 8 bits; 0 is the initial subflow's address). */
export const MAX_ENDPOINT_ID = 255;

/**
 * Gives every endpoint without an id one derived from its identity (endpointKey): a hash into
 * 1..255, passing over the ids the config sets and those of endpoints before it in sorted order of
 * identity. Reordering the list changes no id; an explicit id is never given to another endpoint.
 */
export function assignEndpointIds(endpoints: HostConfig["endpoints"]): Endpoint[] {
  const explicit = endpoints.map((e) => e.id).filter((id): id is number => id !== undefined);
  const derived = numbersByKey(endpoints.filter((e) => e.id === undefined).map(endpointKey), 1, MAX_ENDPOINT_ID, explicit);
  return endpoints.map((e, index) => {
    const id = e.id ?? derived.get(endpointKey(e))!;
    const flags = ENDPOINT_FLAGS.filter((f) => e.flags.includes(f));
    const address = e.address === undefined ? undefined : canonicalAddress(e.address);
    return { index, interface: e.interface, address, flags, id, port: e.port };
  });
}

/** One host's model; `index` is its position in mptcp:hosts (for error paths). */
export function buildHost(h: HostConfig, index: number): HostModel {
  return {
    index,
    name: h.name,
    ssh: h.ssh,
    sysctl: sysctlSettings(h.sysctl),
    limits: { ...(h.limits ?? {}) },
    endpoints: assignEndpointIds(h.endpoints),
    endpointOwner: h.endpointOwner,
    hooks: h.hooks,
    routing: h.hooks ? routingFor(h) : [],
    routingConfig: h.routing,
    services: h.services.map((s, i) => ({ ...s, index: i })),
    confirmTimeout: h.confirmTimeout,
  };
}

/** Endpoint interfaces in order of first appearance. */
export function endpointInterfaces(h: Pick<HostConfig, "endpoints">): string[] {
  return [...new Set(h.endpoints.map((e) => e.interface))];
}

/** Default routing tables: derived from the interface name into this range (a table id the config may also set, below the kernel's 253-255). */
export const DEFAULT_TABLES = { lo: 100, hi: 227 } as const;
/** A default rule priority: this plus the table. */
export const DEFAULT_PRIORITY_BASE = 1000;

/**
 * Routing for every endpoint interface: the config's entry, or auto. A table the entry leaves out
 * is derived from the interface's name (numbersByKey into DEFAULT_TABLES), passing over the
 * host's explicit tables and the tables whose default priority an explicit priority holds; a
 * priority left out is DEFAULT_PRIORITY_BASE + table. Neither depends on the order of any list.
 */
export function routingFor(h: HostConfig): Routing[] {
  const ifaces = endpointInterfaces(h);
  const entry = (iface: string) => h.routing.find((r) => r.interface === iface);
  const explicitTables = h.routing.flatMap((r) => (r.table !== undefined ? [r.table] : []));
  const explicitPriorities = h.routing.flatMap((r) => (r.priority !== undefined ? [r.priority - DEFAULT_PRIORITY_BASE] : []));
  const tables = numbersByKey(
    ifaces.filter((i) => entry(i)?.table === undefined),
    DEFAULT_TABLES.lo,
    DEFAULT_TABLES.hi,
    [...explicitTables, ...explicitPriorities],
  );
  return ifaces.map((iface) => {
    const index = h.routing.findIndex((r) => r.interface === iface);
    const r = index >= 0 ? h.routing[index] : undefined;
    const table = r?.table ?? tables.get(iface)!;
    return { interface: iface, mode: r?.mode ?? "auto", table, priority: r?.priority ?? DEFAULT_PRIORITY_BASE + table, gateway: r?.gateway, ...(index >= 0 ? { index } : {}) };
  });
}

export function buildModel(config: MptcpConfig): Model {
  const hosts = config.hosts.map(buildHost);
  return { hosts, links: config.links.map((l, index) => buildLink(l, index, hosts)) };
}

/** A link with the address its client dials filled in. */
export function buildLink(l: MptcpConfig["links"][number], index: number, hosts: HostModel[]): Link {
  const sshHost = hosts.find((h) => h.name === l.server)?.ssh.host;
  // a zoned ssh.host (fe80::1%eth0) names an interface of the machine running Pulumi, not one the client dials from
  const address = l.address ?? (sshHost !== undefined && isIP(sshHost) && !sshHost.includes("%") ? sshHost : undefined);
  return { index, client: l.client, server: l.server, ...(address !== undefined ? { address: canonicalAddress(address) } : {}), ...(l.reaches ? { reaches: l.reaches.map(canonicalAddress) } : {}) };
}

/** Limits in force on the host after apply, assuming kernel defaults where the config is silent. */
export function effectiveLimits(host: HostModel): { subflows: number; addAddrAccepted: number } {
  return {
    subflows: host.limits.subflows ?? KERNEL_DEFAULT_LIMITS.subflows,
    addAddrAccepted: host.limits.addAddrAccepted ?? KERNEL_DEFAULT_LIMITS.addAddrAccepted,
  };
}

const has = (e: Endpoint, f: EndpointFlag) => e.flags.includes(f);

/**
 * Whether the client has a route to an address (known from its routing table, or, in the lab, from
 * the topology). Absent: every address is taken to be reachable (the config alone cannot tell).
 */
export type Reachable = (address: string) => boolean;

/**
 * Server endpoints announced (ADD_ADDR) to a client, less the address the client dialled. With
 * `reachable`, also less the addresses the client has no route to: the kernel's connect to one
 * fails at once and does not count against add_addr_accepted (measured on 6.18 with two clients
 * on separate paths, test/lab.two-clients.test.ts).
 */
export function announcedEndpoints(server: HostModel, dialled?: string, reachable?: Reachable): Endpoint[] {
  return server.endpoints.filter((e) => has(e, "signal") && (dialled === undefined || e.address !== dialled) && (!reachable || e.address === undefined || reachable(e.address)));
}

/**
 * Additional subflows the client's kernel path manager tries to open on one connection, before
 * any limit other than add_addr_accepted applies (measured on 6.18 against MPJoin counters,
 * test/lab.predictions.test.ts):
 * - each `subflow` endpoint without fullmesh opens one subflow to the server's initial address;
 * - each accepted announcement opens one subflow (from the routed source address), or, when the
 *   client has fullmesh endpoints, one from each of them;
 * - fullmesh endpoints also open one subflow each to the initial address;
 * - but no subflow joins from the address the connection started on to the address it started
 *   to: the endpoint on `initialInterface` (the client interface the first subflow leaves
 *   through) opens one subflow fewer.
 * `initialInterface` unknown (undefined): taken to have no subflow endpoint (the upper bound).
 * `reachable`: see announcedEndpoints.
 */
export function subflowsWanted(client: HostModel, server: HostModel, dialled?: string, initialInterface?: string, reachable?: Reachable): number {
  const accepted = Math.min(announcedEndpoints(server, dialled, reachable).length, effectiveLimits(client).addAddrAccepted);
  const subflow = client.endpoints.filter((e) => has(e, "subflow"));
  const plain = subflow.filter((e) => !has(e, "fullmesh")).length;
  const fullmesh = subflow.filter((e) => has(e, "fullmesh")).length;
  const initial = subflow.some((e) => e.interface === initialInterface) ? 1 : 0;
  return plain + (fullmesh > 0 ? fullmesh * (1 + accepted) : accepted) - initial;
}

/**
 * The fewest subflows the client may want when the interface its first subflow leaves through is
 * not known: one of its subflow endpoints may be on it. Validation asks limits to cover this, so
 * it never rejects a config that works.
 */
export function subflowsWantedAtLeast(client: HostModel, server: HostModel, dialled?: string, reachable?: Reachable): number {
  const first = client.endpoints.find((e) => has(e, "subflow"));
  return subflowsWanted(client, server, dialled, first?.interface, reachable);
}

/** Subflows a connection from client to server ends up with (joins), after both hosts' limits. */
export function expectedJoins(client: HostModel, server: HostModel, dialled?: string, initialInterface?: string, reachable?: Reachable): number {
  return Math.min(subflowsWanted(client, server, dialled, initialInterface, reachable), effectiveLimits(client).subflows, effectiveLimits(server).subflows);
}

export interface LinkPrediction {
  /** The client host's name. */
  client: string;
  /** The server host's name. */
  server: string;
  /** The address the client dials (absent: not known from the config). */
  address?: string;
  /** Subflows that join the connection after the first (MPJoin handshakes; MPTCP_INFO's subflows). */
  joins: number;
  /** Subflows the connection has in all: the first plus the joins. */
  subflows: number;
}

/** What each link's connections should get, from the config alone (stack outputs, verify). */
export function predictLinks(model: Model): LinkPrediction[] {
  const byName = new Map(model.hosts.map((h) => [h.name, h]));
  return model.links.map((l) => {
    const joins = expectedJoins(byName.get(l.client)!, byName.get(l.server)!, l.address, undefined, reachableOf(l));
    return { client: l.client, server: l.server, ...(l.address !== undefined ? { address: l.address } : {}), joins, subflows: joins + 1 };
  });
}
