// The validated model: stack config with defaults filled in, endpoint ids assigned, and the
// path-manager arithmetic (how many subflows a link will get) that validation and the lab
// tests share.
import { isIP } from "node:net";
import {
  EndpointFlag,
  ENDPOINT_FLAGS,
  HostConfig,
  KERNEL_DEFAULT_LIMITS,
  MptcpConfig,
  ServiceConfig,
  SYSCTL_KNOBS,
  SysctlConfig,
} from "./schema";

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
  return (Object.keys(SYSCTL_KNOBS) as (keyof SysctlConfig)[])
    .filter((key) => sysctl[key] !== undefined)
    .map((key) => ({ key, knob: SYSCTL_KNOBS[key], value: sysctlValue(sysctl[key]!) }));
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

/** Gives every endpoint without an id the lowest id no other endpoint of the host uses. */
export function assignEndpointIds(endpoints: HostConfig["endpoints"]): Endpoint[] {
  const used = new Set(endpoints.map((e) => e.id).filter((id): id is number => id !== undefined));
  let next = 1;
  return endpoints.map((e, index) => {
    let id = e.id;
    if (id === undefined) {
      while (used.has(next)) next++;
      id = next;
      used.add(id);
    }
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

/** Routing for every endpoint interface: the config's entry, or auto with default table and priority. */
export function routingFor(h: HostConfig): Routing[] {
  return endpointInterfaces(h).map((iface, i) => {
    const index = h.routing.findIndex((r) => r.interface === iface);
    const r = index >= 0 ? h.routing[index] : undefined;
    const table = r?.table ?? 100 + i;
    return { interface: iface, mode: r?.mode ?? "auto", table, priority: r?.priority ?? 1000 + table, gateway: r?.gateway, ...(index >= 0 ? { index } : {}) };
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
  client: string;
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
