// Validation of the whole stack config: field checks (zod) plus the cross-host rules that
// decide whether MPTCP can work at all. Every error names its config path and the fix;
// all errors are reported together. Nothing here touches a host.
import { isIP } from "node:net";
import { z } from "zod";
import { buildHost, buildLink, buildModel, announcedEndpoints, canonicalAddress, reachableOf, effectiveLimits, HostModel, Link, Model, subflowsWanted, subflowsWantedAtLeast } from "./model";
import { configSchema, hostSchema, KERNEL_DEFAULT_LIMITS, linkSchema, MAX_ENDPOINTS } from "./schema";

export interface ConfigError {
  /** Config path, e.g. `mptcp:hosts[1].endpoints[0].flags`. */
  path: string;
  /** What is wrong and how to fix it. */
  message: string;
}

export type ValidationResult = { ok: true; model: Model } | { ok: false; errors: ConfigError[] };

export class ConfigValidationError extends Error {
  constructor(
    readonly errors: ConfigError[],
    where?: string,
  ) {
    super(formatErrors(errors, where));
    this.name = "ConfigValidationError";
  }
}

/** The errors as one message; `where` names what was validated (default: the stack config). */
export function formatErrors(errors: ConfigError[], where = "the mptcp stack config"): string {
  const n = errors.length;
  return `${n} error${n === 1 ? "" : "s"} in ${where}:\n` + errors.map((e) => `  ${e.path}: ${e.message}`).join("\n");
}

/**
 * The errors with their config paths (`mptcp:hosts[1].limits`), in the paths and in the messages
 * that name another entry, rewritten by `rename` (for a component's args: `args.hosts[1].limits`).
 */
export function renamePaths(errors: ConfigError[], rename: (text: string) => string): ConfigError[] {
  return errors.map((e) => ({ path: rename(e.path), message: rename(e.message) }));
}

/** `["hosts", 1, "limits"]` -> `mptcp:hosts[1].limits` */
export function configPath(segments: readonly PropertyKey[]): string {
  let out = "mptcp:";
  segments.forEach((s, i) => {
    if (typeof s === "number") out += `[${s}]`;
    // a key that is not a plain name (an empty or odd unknown key) is quoted: mptcp:links[0][""]
    else if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(String(s))) out += `[${JSON.stringify(String(s))}]`;
    else out += i === 0 ? String(s) : `.${String(s)}`;
  });
  return out;
}

function zodErrors(error: z.ZodError): ConfigError[] {
  return error.issues.flatMap((issue): ConfigError[] => {
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => ({
        path: configPath([...issue.path, key]),
        message: "unknown key: remove it, or check its spelling against the configuration reference in README.md",
      }));
    }
    if (issue.code === "invalid_type" && issue.input === undefined) {
      return [{ path: configPath(issue.path), message: `is required: add it (expected ${issue.expected})` }];
    }
    if (issue.code === "invalid_type" && /^Invalid input/.test(issue.message)) {
      return [{ path: configPath(issue.path), message: `must be ${article(issue.expected)} ${issue.expected}` }];
    }
    if (issue.code === "too_big" && issue.origin === "array") {
      return [{ path: configPath(issue.path), message: `has more than ${issue.maximum} entries: remove some` }];
    }
    return [{ path: configPath(issue.path), message: issue.message }];
  });
}

function article(word: string): string {
  return /^[aeiou]/.test(word) ? "an" : "a";
}

const familyOf = (address: string) => (isIP(address) === 6 ? "IPv6" : "IPv4");

/**
 * The data-path addresses the config states for a host: its endpoints' addresses. The SSH
 * address is left out: management often runs on its own network (IPv4 management, IPv6 paths).
 */
function knownAddresses(host: HostModel): string[] {
  return host.endpoints.map((e) => e.address).filter((a): a is string => a !== undefined);
}

/** What the rules leave alone. */
export interface Unchecked {
  /** Names of hosts that failed their field checks: links naming them are left alone. */
  failedHosts?: ReadonlySet<string>;
  /** Links (by index) whose addresses are not known yet (a preview of a component whose inputs come from other resources): their limits, families and reaches are not checked. */
  links?: ReadonlySet<number>;
  /** Hosts (by index) whose SSH host or port is not known yet: their target is not compared with the others'. */
  targets?: ReadonlySet<number>;
}

/** Where a rule reports a problem: the config path's segments and the message. */
type Report = (segments: PropertyKey[], message: string) => void;

/** A link both of whose hosts exist and differ, met for the first time. */
interface Linked {
  link: Link;
  client: HostModel;
  server: HostModel;
}

/** The hosts met so far by SSH target and by name (the first of each). */
interface SeenHosts {
  targets: Map<string, HostModel>;
  byName: Map<string, HostModel>;
}

/** The rules that look across fields and hosts, over hosts that passed the field checks. */
export function crossHostErrors(model: Model, unchecked: Unchecked = {}): ConfigError[] {
  const errors: ConfigError[] = [];
  const err: Report = (segments, message) => errors.push({ path: configPath(segments), message });
  // per host, in the config's order: its SSH target and name against the hosts before it, then its endpoints
  const seen: SeenHosts = { targets: new Map(), byName: new Map() };
  for (const host of model.hosts) {
    checkTarget(host, seen, err, unchecked.targets?.has(host.index) ?? false);
    checkEndpoints(host, err);
  }
  for (const host of model.hosts) {
    checkRouting(host, err);
    checkServices(host, err);
  }
  const linked = checkLinks(model.links, seen.byName, unchecked.failedHosts ?? new Set(), err);
  checkClientSignals(model.hosts, linked, err);
  for (const l of linked) {
    if (unchecked.links?.has(l.link.index)) continue;
    checkLinkLimits(l, err);
    checkFamilies(l.client, l.server, err);
    checkFamilies(l.server, l.client, err);
  }
  return errors;
}

/** One entry per SSH target and per name (against the hosts before this one), and a host key or the explicit choice to skip it. */
function checkTarget(host: HostModel, seen: SeenHosts, err: Report, targetUnknown: boolean): void {
  const h = ["hosts", host.index];
  const target = `${isIP(host.ssh.host) ? canonicalAddress(host.ssh.host) : host.ssh.host.toLowerCase().replace(/\.$/, "")}:${host.ssh.port}`;
  const same = targetUnknown ? undefined : seen.targets.get(target);
  if (targetUnknown) {
    // compared once known
  } else if (same) {
    err(
      [...h, "ssh", "host"],
      `${host.ssh.host} port ${host.ssh.port} is also the SSH target of mptcp:hosts[${same.index}] ("${same.name}"): two entries for one machine would undo each other's changes; merge them into one entry`,
    );
  } else {
    seen.targets.set(target, host);
  }
  if (seen.byName.has(host.name)) {
    err([...h, "name"], `duplicate host name "${host.name}" (also mptcp:hosts[${seen.byName.get(host.name)!.index}]): give every host its own name`);
  } else {
    seen.byName.set(host.name, host);
  }
  if (!host.ssh.hostKey && !host.ssh.insecureIgnoreHostKey) {
    err(
      [...h, "ssh", "hostKey"],
      "is required: set it to the host's public key (ssh-keyscan -t ed25519 HOST, without the host column), or set ssh.insecureIgnoreHostKey: true to skip the check (unsafe)",
    );
  }
}

/** A host's endpoints: how many, flags the kernel takes together, ports, and ids and addresses each used once. */
function checkEndpoints(host: HostModel, err: Report): void {
  const h = ["hosts", host.index];
  if (host.endpoints.length > MAX_ENDPOINTS) {
    err([...h, "endpoints"], `has ${host.endpoints.length} endpoints; the kernel takes at most ${MAX_ENDPOINTS} per host: remove some`);
  }
  const ids = new Map<number, number>();
  const addresses = new Map<string, number>();
  const implicitIfaces = new Map<string, number>();
  for (const ep of host.endpoints) {
    const e = [...h, "endpoints", ep.index];
    const flags = new Set(ep.flags);
    if (flags.has("signal") && flags.has("fullmesh")) {
      err([...e, "flags"], "signal and fullmesh cannot be combined (the kernel rejects it): use fullmesh only with subflow");
    }
    if (ep.port !== undefined && !flags.has("signal")) {
      err([...e, "port"], "a port is only announced by a signal endpoint: add signal to flags or remove port");
    }
    if (ep.port !== undefined && flags.has("subflow")) {
      err([...e, "port"], "a port cannot be set on a subflow endpoint (the kernel rejects it): remove port or the subflow flag");
    }
    if (ids.has(ep.id)) {
      err([...e, "id"], `duplicate endpoint id ${ep.id} (also mptcp:hosts[${host.index}].endpoints[${ids.get(ep.id)}]): give each endpoint its own id or leave ids out`);
    } else {
      ids.set(ep.id, ep.index);
    }
    if (ep.address !== undefined) {
      if (addresses.has(ep.address)) {
        err([...e, "address"], `duplicate endpoint address ${ep.address} (also mptcp:hosts[${host.index}].endpoints[${addresses.get(ep.address)}]): merge the two endpoints into one`);
      } else {
        addresses.set(ep.address, ep.index);
      }
    } else if (implicitIfaces.has(ep.interface)) {
      err(
        [...e, "address"],
        `both this endpoint and mptcp:hosts[${host.index}].endpoints[${implicitIfaces.get(ep.interface)}] would take ${ep.interface}'s current address: set address on one of them`,
      );
    } else {
      implicitIfaces.set(ep.interface, ep.index);
    }
  }
}

/** Links name two different known hosts, once each (links naming a host that failed its field checks are left alone); the links that pass, in order. */
function checkLinks(links: readonly Link[], byName: ReadonlyMap<string, HostModel>, failedHosts: ReadonlySet<string>, err: Report): Linked[] {
  const seenLinks = new Map<string, number>();
  const linked: Linked[] = [];
  links.forEach((link, index) => {
    const l = ["links", index];
    if (!link.client || !link.server || failedHosts.has(link.client) || failedHosts.has(link.server)) return;
    const client = byName.get(link.client);
    const server = byName.get(link.server);
    if (!client) err([...l, "client"], `names unknown host "${link.client}": use one of ${[...byName.keys()].join(", ")}`);
    if (!server) err([...l, "server"], `names unknown host "${link.server}": use one of ${[...byName.keys()].join(", ")}`);
    if (!client || !server) return;
    if (client === server) {
      err([...l, "server"], `a host cannot be its own peer: name another host than "${link.client}"`);
      return;
    }
    const key = `${link.client}\0${link.server}`;
    if (seenLinks.has(key)) {
      err(l, `duplicate link ${link.client} -> ${link.server} (also mptcp:links[${seenLinks.get(key)}]): remove one`);
      return;
    }
    seenLinks.set(key, index);
    linked.push({ link, client, server });
  });
  return linked;
}

/** A signal endpoint on a host that only ever dials makes its peers try to dial it. */
function checkClientSignals(hosts: readonly HostModel[], linked: readonly Linked[], err: Report): void {
  const clients = new Set(linked.map((l) => l.client.name));
  const servers = new Set(linked.map((l) => l.server.name));
  for (const host of hosts) {
    if (!clients.has(host.name) || servers.has(host.name)) continue;
    for (const ep of host.endpoints.filter((e) => e.flags.includes("signal"))) {
      err(
        ["hosts", host.index, "endpoints", ep.index, "flags"],
        `"${host.name}" is only ever a client (mptcp:links), so announcing this address makes its servers try to dial it: use subflow instead of signal on a client`,
      );
    }
  }
}

/** A link's reaches are addresses the server announces; the client accepts every announcement; both ends' subflows limits cover the joins. */
function checkLinkLimits({ link, client, server }: Linked, err: Report): void {
  const reachable = reachableOf(link);
  const signalled = new Set(announcedEndpoints(server, link.address).flatMap((e) => (e.address ? [e.address] : [])));
  link.reaches?.forEach((a, i) => {
    if (!signalled.has(a))
      err(
        ["links", link.index, "reaches", i],
        `${a} is not an address "${server.name}" announces to "${client.name}" (its signal endpoints with an address, less the one dialled: ${[...signalled].join(", ") || "none"}): remove it`,
      );
  });
  const announced = announcedEndpoints(server, link.address, reachable).length;
  const accepted = effectiveLimits(client).addAddrAccepted;
  if (announced > accepted) {
    const unset = client.limits.addAddrAccepted === undefined ? ` (unset: the kernel default is ${KERNEL_DEFAULT_LIMITS.addAddrAccepted})` : "";
    err(
      ["hosts", client.index, "limits", "addAddrAccepted"],
      `is ${accepted}${unset} but server "${server.name}" signals ${announced} address${announced === 1 ? "" : "es"}${reachable ? ` it reaches (mptcp:links[${link.index}].reaches)` : ""}: announcements past the limit are ignored and no subflow joins to them. Set addAddrAccepted to at least ${announced}`,
    );
  }
  // Which client interface the first subflow leaves through is not in the config, and the
  // endpoint on it opens one subflow fewer. A limit below the most the client may want can
  // silently drop a path, so limits must cover that; the message gives both numbers.
  const wanted = subflowsWanted(client, server, link.address, undefined, reachable);
  const fewest = subflowsWantedAtLeast(client, server, link.address, reachable);
  const clientLimit = effectiveLimits(client).subflows;
  if (wanted > clientLimit) {
    const unless = fewest < wanted ? ` (${fewest} when the connection starts on an interface that has one of its subflow endpoints: that one opens no subflow to the address it dialled)` : "";
    err(
      ["hosts", client.index, "limits", "subflows"],
      `is ${clientLimit}${client.limits.subflows === undefined ? " (unset: kernel default)" : ""} but its endpoints and "${server.name}"'s announcements want ${wanted} additional subflows per connection${unless}: set subflows to at least ${wanted}`,
    );
  }
  const joins = Math.min(wanted, clientLimit);
  const serverLimit = effectiveLimits(server).subflows;
  if (joins > serverLimit) {
    err(
      ["hosts", server.index, "limits", "subflows"],
      `is ${serverLimit}${server.limits.subflows === undefined ? " (unset: kernel default)" : ""} but client "${client.name}" opens ${joins} additional subflows per connection and joins past the limit are refused: set subflows to at least ${joins}`,
    );
  }
}

function checkRouting(host: HostModel, err: Report): void {
  const h = ["hosts", host.index];
  if (host.endpointOwner === "networkmanager" && host.endpoints.length > 0) {
    err(
      [...h, "endpoints"],
      "endpointOwner is networkmanager, so NetworkManager makes this host's endpoints and would delete or re-flag these: remove endpoints, or set endpointOwner: mptcp-pulumi (the default)",
    );
  }
  if (!host.hooks) {
    if (host.routingConfig.length > 0) {
      err([...h, "routing"], "routing needs hooks: true (rules and routes are lost whenever the interface goes down): set hooks: true or remove routing");
    }
    return;
  }
  const ifaces = new Set(host.endpoints.map((e) => e.interface));
  host.routingConfig.forEach((r, i) => {
    if (!ifaces.has(r.interface)) err([...h, "routing", i, "interface"], `${r.interface} has no endpoint on this host: routing applies to endpoint interfaces (${[...ifaces].join(", ") || "none"})`);
    if (host.routingConfig.findIndex((x) => x.interface === r.interface) !== i) err([...h, "routing", i, "interface"], `${r.interface} is listed twice: keep one entry`);
  });
  const tables = new Map<number, string>();
  const priorities = new Map<number, string>();
  for (const r of host.routing) {
    // An interface the config does not list gets defaults: the error goes on the routing list.
    const listed = r.index !== undefined;
    const at = (key: string) => (listed ? [...h, "routing", r.index!, key] : [...h, "routing"]);
    const whose = listed ? "" : `${r.interface}'s default `;
    const fix = (key: string) => (listed ? `give each interface its own ${key}` : `list ${r.interface} under routing with its own table and priority`);
    if (tables.has(r.table)) err(at("table"), `${whose}table ${r.table} is also used by ${tables.get(r.table)}: ${fix("table")}`);
    if (priorities.has(r.priority)) err(at("priority"), `${whose}priority ${r.priority} is also used by ${priorities.get(r.priority)}: ${fix("priority")}`);
    tables.set(r.table, r.interface);
    priorities.set(r.priority, r.interface);
  }
}

function checkServices(host: HostModel, err: Report): void {
  const seen = new Map<string, number>();
  for (const s of host.services) {
    const at = ["hosts", host.index, "services", s.index];
    const socket = s.unit.endsWith(".socket");
    if (s.mode === "socket" && !socket)
      err([...at, "unit"], `mode socket sets SocketProtocol=mptcp in a socket unit, but ${s.unit} is not one: name its .socket unit, or use mode preload (or godebug for a Go program)`);
    if (s.mode !== "socket" && socket) err([...at, "mode"], `${s.unit} is a socket unit: use mode socket, or name the .service it starts for mode ${s.mode}`);
    if (seen.has(s.unit)) err([...at, "unit"], `${s.unit} is also listed at mptcp:hosts[${host.index}].services[${seen.get(s.unit)}]: keep one entry`);
    else seen.set(s.unit, s.index);
  }
}

function checkFamilies(host: HostModel, peer: HostModel, err: Report): void {
  const peerFamilies = new Set(knownAddresses(peer).map(familyOf));
  if (peerFamilies.size === 0) return;
  for (const ep of host.endpoints) {
    if (ep.address === undefined || peerFamilies.has(familyOf(ep.address))) continue;
    err(
      ["hosts", host.index, "endpoints", ep.index, "address"],
      `is ${familyOf(ep.address)} but peer "${peer.name}" has only ${[...peerFamilies].join("/")} addresses: a subflow cannot cross families. Use an address of the peer's family`,
    );
  }
}

/**
 * Validates raw stack config values (`mptcp:hosts`, `mptcp:links`) into a model, reporting every
 * error at once: hosts and links that pass their field checks still go through the cross-host
 * rules, which leave alone links to hosts that failed them.
 */
export function validateConfig(raw: { hosts: unknown; links?: unknown }, unchecked: Pick<Unchecked, "links" | "targets"> = {}): ValidationResult {
  const input: Record<string, unknown> = { hosts: raw.hosts };
  if (raw.links !== undefined) input.links = raw.links;
  const parsed = configSchema.safeParse(input, { reportInput: true });
  if (parsed.success) {
    const model = buildModel(parsed.data);
    const errors = crossHostErrors(model, unchecked);
    return errors.length ? { ok: false, errors } : { ok: true, model };
  }
  const errors = zodErrors(parsed.error);
  if (!Array.isArray(raw.hosts) || (raw.links !== undefined && !Array.isArray(raw.links))) return { ok: false, errors };
  const hosts: HostModel[] = [];
  const failed = new Set<string>();
  raw.hosts.forEach((h, i) => {
    const r = hostSchema.safeParse(h);
    if (r.success) hosts.push(buildHost(r.data, i));
    else if (h && typeof (h as { name?: unknown }).name === "string") failed.add((h as { name: string }).name);
  });
  const links = ((raw.links ?? []) as unknown[]).map((l, i) => buildLink(linkSchema.safeParse(l).data ?? { client: "", server: "" }, i, hosts));
  errors.push(...crossHostErrors({ hosts, links }, { ...unchecked, failedHosts: failed }));
  return { ok: false, errors };
}

/** Like validateConfig, but throws ConfigValidationError listing every problem. */
export function requireValidConfig(raw: { hosts: unknown; links?: unknown }): Model {
  const result = validateConfig(raw);
  if (!result.ok) throw new ConfigValidationError(result.errors);
  return result.model;
}
