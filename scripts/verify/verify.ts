// Verification that MPTCP works on every link of a stack, over SSH: a one-shot MPTCP listener on
// the server (wildcard address, a free port), a transfer from the client to the address it dials,
// and per link: joins and subflows observed against the config's prediction, the addresses each
// join went from and to against the endpoints the config declares, bytes per interface on both
// hosts, and whether every path predicted to carry data did. Leaves nothing running and
// writes no file (the transfer program travels as `python3 -c` text).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { announcedEndpoints, canonicalAddress, effectiveLimits, expectedJoins, HostModel, Link, Model, Reachable, reachableOf, subflowsWanted } from "../../components/model";
import { shq } from "../../components/shell";
import { Session, UnreachableError } from "./ssh";
import { exitOf } from "../ssh-exec";

export const XFER = readFileSync(join(__dirname, "xfer.py"), "utf8");
/** A path carried data when it moved at least this share of the payload. */
export const CARRIED_SHARE = 0.05;
export const DEFAULT_BYTES = 4 << 20;
/** Seconds a transfer's listener and client may run on the host (timeout(1)). */
const TRANSFER_LIMIT = 120;

/** One end's view of its connection's subflows (MPTCP_SUBFLOW_ADDRS): [local, remote] address pairs. */
export interface SubflowAddresses {
  /** The connection's own addresses: the first subflow's. */
  initial?: [string, string] | null;
  /** Every other subflow; null when the kernel cannot tell (plain TCP, a kernel before 5.17). */
  joined?: [string, string][] | null;
}

export interface TransferReport extends SubflowAddresses {
  sha256: string;
  bytes: number;
  /** mptcpi_subflows on the client; null: the connection fell back to plain TCP. */
  subflows: number | null;
  seconds: number;
  server: { sha256: string; bytes: number; subflows: number | null } & SubflowAddresses;
}

export interface TransferOptions {
  bytes?: number;
  /** Spread the bytes over this many seconds. */
  pace?: number;
  /** Runs while the transfer is in flight (e.g. a link flap). */
  during?: () => Promise<void>;
  /** Wait (3 s at most) for this many additional subflows before sending, so a fast path does not finish before the joins. */
  subflows?: number;
  /** After the last byte, keep the connection open (this many seconds at most) until it has `subflows`: a path may join late. */
  linger?: number;
}

const need = (s: Session) =>
  `command -v python3 >/dev/null || { echo "${s.host.name}: python3 is not installed: the verification transfer needs it (Debian/Ubuntu: apt-get install python3; python3-minimal lacks its json and ctypes)" >&2; exit 127; }`;

/** One MPTCP transfer client -> server at `address`; the listener is gone when it returns. */
export async function transfer(client: Session, server: Session, address: string, opts: TransferOptions = {}): Promise<TransferReport> {
  return runTransfer(client, server, address, (port) => `client ${shq(address)} ${port} ${opts.bytes ?? DEFAULT_BYTES} ${opts.pace ?? 0} ${opts.subflows ?? 0} ${opts.linger ?? 0}`, opts.during);
}

/**
 * One transfer from xfer.py's client side to a one-shot listener on the server (MPTCP: a plain
 * TCP client is answered too, as a fallback): `clientArgs(port)` are the client's arguments
 * after `python3 -c XFER`; `limit` the seconds either may run. The listener is gone when it returns.
 */
export async function runTransfer(
  client: Session,
  server: Session,
  address: string,
  clientArgs: (port: number) => string,
  during?: () => Promise<void>,
  limit = TRANSFER_LIMIT,
): Promise<TransferReport> {
  const family = address.includes(":") ? "6" : "4";
  // the listener and the client say nothing until the transfer ends: silent up to their own limit
  const silence = { silence: limit + 30 };
  const ch = await server.start(`${need(server)}; exec timeout ${limit} python3 -c ${shq(XFER)} server ${family} 0 30`, silence);
  let out = "";
  let err = "";
  ch.stderr.on("data", (d: Buffer) => (err += d));
  const closed = new Promise<number>((resolve) =>
    ch.on("close", (code?: number | null, signal?: string) => {
      const exit = exitOf(code, signal);
      if (exit.missing) err = `${exit.missing}\n${err}`;
      resolve(exit.code);
    }),
  );
  const [port, pid] = await new Promise<[number, number]>((resolve, reject) => {
    ch.on("data", (d: Buffer) => {
      out += d;
      const m = /^listening (\d+) (\d+)$/m.exec(out);
      if (m) resolve([Number(m[1]), Number(m[2])]);
    });
    void closed.then((code) => reject(new Error(`${server.host.name}: the MPTCP listener exited ${code} before listening: ${err.trim()}`)));
  });
  const run = client.exec(`${need(client)}; exec timeout ${limit} python3 -c ${shq(XFER)} ${clientArgs(port)}`, silence);
  if (during) await during();
  const r = await run;
  if (r.code !== 0) {
    // the listener waits for a connection that will not come: end it now
    await server.exec(`kill ${pid} 2>/dev/null; true`).catch(() => undefined);
    await closed;
    throw new Error(`${client.host.name}: the transfer to ${address} port ${port} failed (exit ${r.code}): ${r.stderr.trim().split("\n").pop()}`);
  }
  await closed;
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

export interface Observation {
  /** MPTcpExt counters of /proc/net/netstat. */
  counters: Record<string, number>;
  rx: Record<string, number>;
  tx: Record<string, number>;
}

/** The host's MPTCP counters and bytes per interface, in one command. */
export async function observe(s: Session): Promise<Observation> {
  // the interface names (the glob's words) after --: an interface named -e or --help is a file, not an option (issue 26, item 12)
  const r = await s.exec(`cat /proc/net/netstat; cd /sys/class/net && grep -H -e . -- */statistics/rx_bytes */statistics/tx_bytes`);
  if (r.code !== 0) throw new Error(`${s.host.name}: cannot read counters: ${r.stderr.trim()}`);
  const lines = r.stdout.split("\n");
  const counters: Record<string, number> = {};
  for (let i = 0; i + 1 < lines.length; i++) {
    if (!lines[i].startsWith("MPTcpExt:") || !lines[i + 1].startsWith("MPTcpExt:")) continue;
    const names = lines[i].split(/\s+/).slice(1);
    const values = lines[i + 1].split(/\s+/).slice(1);
    names.forEach((n, j) => {
      counters[n] = Number(values[j]);
    });
    break;
  }
  const rx: Record<string, number> = {};
  const tx: Record<string, number> = {};
  for (const m of r.stdout.matchAll(/^([^/\s]+)\/statistics\/([rt]x)_bytes:(\d+)$/gm)) (m[2] === "rx" ? rx : tx)[m[1]] = Number(m[3]);
  return { counters, rx, tx };
}

const delta = (after: Record<string, number>, before: Record<string, number>) =>
  Object.fromEntries(
    Object.keys(after)
      .filter((k) => k !== "lo")
      .map((k) => [k, after[k] - (before[k] ?? 0)]),
  );

export interface PathPrediction {
  /** Server interfaces that should receive data: the dialled address's, and each announced (not backup) address a join goes to. */
  server: string[];
  /** Client interfaces that should send data: the route to the dialled address, subflow endpoints (not backup), routes to announced addresses. */
  client: string[];
}

/** A join the config predicts: a client `subflow` endpoint's, or one to an address the server announces. */
export interface PredictedJoin {
  /** The config entry that makes it, e.g. mptcp:hosts[1].endpoints[0] (subflow) or mptcp:hosts[0].endpoints[0] (signal). */
  at: string;
  /** What makes it: a client endpoint with `subflow`, or the server announcing (`signal`). */
  by: "subflow" | "signal";
  /** Client side: this address (the endpoint's), else any address on fromInterface (the endpoint's, or the one the client routes `to` through); neither: any. */
  fromAddress?: string;
  fromInterface?: string;
  /** Server side: this address (the dialled or announced one), else any address on toInterface (a signal endpoint without address). */
  toAddress?: string;
  toInterface?: string;
}

/** A subflow that joined the connection (not the first), as the client and/or the server saw it. */
export interface ObservedJoin {
  client: string;
  clientInterface?: string;
  server: string;
  serverInterface?: string;
  seenBy: ("client" | "server")[];
  /** The predicted join it matches (its `at`); absent: no declared endpoint makes it (a mismatch). */
  predictedBy?: string;
}

/** A live endpoint (`ip -j mptcp endpoint show`), to name the one behind an unexpected join. */
export interface LiveEndpoint {
  address: string;
  id: number;
  flags: string[];
  dev?: string;
}

export interface LinkReport {
  /** mptcp:links[i] */
  at: string;
  client: string;
  server: string;
  address?: string;
  ok: boolean;
  /** Every way observation and prediction differ (empty when ok). */
  problems: string[];
  transfer?: TransferReport;
  joins?: { observed: number; predicted: number };
  subflows?: { client: number | null; server: number | null; predicted: number };
  /** Bytes moved per interface during the transfer: received by the server, sent by the client. */
  bytes?: { server: Record<string, number>; client: Record<string, number> };
  paths?: { predicted?: PathPrediction; carried: PathPrediction; note?: string };
  /** Which addresses each join went from and to, against the joins the config's endpoints predict; note: why absent or not checked. */
  joinAddresses?: { observed: ObservedJoin[]; predicted: PredictedJoin[]; note?: string };
}

/** The interface a host routes packets to each address through, in one command (one SSH round trip). */
async function routeDevs(s: Session, to: string[]): Promise<Map<string, string>> {
  const r = await s.exec(to.map((a) => `ip -o route get ${shq(a)} 2>/dev/null || echo`).join("; "));
  const lines = r.stdout.split("\n");
  return new Map(
    to.flatMap((a, i) => {
      const dev = /\bdev (\S+)/.exec(lines[i] ?? "")?.[1];
      return dev ? [[a, dev] as [string, string]] : [];
    }),
  );
}

/** A host's addresses (address -> interface) and MPTCP endpoints, in one command. */
export async function hostState(s: Session): Promise<{ addrs: Map<string, string>; endpoints: LiveEndpoint[] }> {
  const r = await s.exec(`ip -o addr show | awk '{ split($4, a, "/"); print $2, a[1] }'; echo; ip -j mptcp endpoint show 2>/dev/null || true`);
  const [addrText, epText = ""] = r.stdout.split("\n\n");
  const addrs = new Map(
    addrText.split("\n").flatMap((l) => {
      const [iface, address] = l.split(" ");
      return iface && address ? [[canonicalAddress(address), iface] as [string, string]] : [];
    }),
  );
  return { addrs, endpoints: parseEndpoints(epText) };
}

// Internal. Exported for testing.
/** `ip -j mptcp endpoint show` output as endpoints; [] when it is not JSON (an iproute2 without -j for endpoints). */
export function parseEndpoints(text: string): LiveEndpoint[] {
  let rows: Record<string, unknown>[];
  try {
    rows = JSON.parse(text.trim() || "[]");
  } catch {
    return [];
  }
  if (!Array.isArray(rows)) return [];
  return rows.flatMap((r) =>
    typeof r.address === "string" && typeof r.id === "number"
      ? [
          {
            address: canonicalAddress(r.address),
            id: r.id,
            flags: ["signal", "subflow", "backup", "fullmesh", "laminar", "implicit"].filter((f) => r[f] === true),
            ...(typeof r.dev === "string" ? { dev: r.dev } : {}),
          },
        ]
      : [],
  );
}

/**
 * The joins the config's endpoints make on a connection from client to server at `dialled`, as
 * subflowsWanted counts them (kernel 6.18): each client `subflow` endpoint to the dialled address;
 * each announced address from the interface the client routes it through, or, when the client has
 * fullmesh endpoints, from each of them. Every announced address the client reaches is listed,
 * even past add_addr_accepted (which ones the kernel accepts is its choice; the count is checked
 * apart). `routes`: the client's interface to each address.
 */
export function predictJoins(c: HostModel, s: HostModel, dialled: string, routes: Map<string, string>, reachable?: Reachable): PredictedJoin[] {
  const subflow = c.endpoints.filter((e) => e.flags.includes("subflow"));
  const mesh = subflow.filter((e) => e.flags.includes("fullmesh"));
  const from = (e: (typeof subflow)[number]) => ({
    at: `mptcp:hosts[${c.index}].endpoints[${e.index}]`,
    by: "subflow" as const,
    fromInterface: e.interface,
    ...(e.address ? { fromAddress: e.address } : {}),
  });
  const out: PredictedJoin[] = subflow.map((e) => ({ ...from(e), toAddress: dialled }));
  for (const a of announcedEndpoints(s, dialled, reachable)) {
    const to = a.address ? { toAddress: a.address } : { toInterface: a.interface };
    if (mesh.length) out.push(...mesh.map((e) => ({ ...from(e), ...to })));
    else {
      const dev = a.address ? routes.get(a.address) : undefined;
      out.push({ at: `mptcp:hosts[${s.index}].endpoints[${a.index}]`, by: "signal", ...(dev ? { fromInterface: dev } : {}), ...to });
    }
  }
  return out;
}

const toMatches = (p: PredictedJoin, j: ObservedJoin) => (p.toAddress ? j.server === p.toAddress : p.toInterface ? j.serverInterface === p.toInterface : true);
const fromMatches = (p: PredictedJoin, j: ObservedJoin) => (p.fromAddress ? j.client === p.fromAddress : p.fromInterface ? j.clientInterface === p.fromInterface : true);
const where = (address: string, iface?: string) => `${address}${iface ? ` (${iface})` : ""}`;
const describeJoin = (p: PredictedJoin) => `from ${p.fromAddress ?? p.fromInterface ?? "any address"} to ${p.toAddress ?? `${p.toInterface}'s address`} (${p.at}, ${p.by})`;
const describeEndpoint = (e: LiveEndpoint) => `endpoint id ${e.id} ${e.address} ${e.flags.join(" ")}${e.dev ? ` dev ${e.dev}` : ""}`;
export const ENDPOINT_HINT = "another manager such as NetworkManager may own endpoints: npm run check";

export interface JoinCheck {
  /** mptcp:links[i] */
  at: string;
  client: HostModel;
  server: HostModel;
  /** The address the client dials: client endpoints join to it, so a join there is the client's doing. */
  dialled: string;
  predicted: PredictedJoin[];
  /** Predicted joins each of which some observed join must match (the limits leave none out); the others only admit joins. */
  required: PredictedJoin[];
  /** Each end's view of the connection's subflows (xfer.py: local, remote). */
  clientView: SubflowAddresses;
  serverView: SubflowAddresses;
  /** address -> interface on each host. */
  clientAddrs: Map<string, string>;
  serverAddrs: Map<string, string>;
  /** The hosts' live endpoints, to name the one behind an unexpected join. */
  clientEndpoints?: LiveEndpoint[];
  serverEndpoints?: LiveEndpoint[];
}

/**
 * Each join against the predicted ones: one from an address no declared client endpoint makes, or
 * to an address the server's config does not announce, is a problem naming the host, the
 * address and interface, what was predicted and the config path to fix; so is a required join
 * (to an announced address) that did not happen. The client's and the server's views are merged
 * (a join either saw counts).
 */
export function checkJoins(x: JoinCheck): { observed: ObservedJoin[]; problems: string[]; note?: string } {
  const { client: c, server: s } = x;
  const cj = x.clientView.joined;
  const sj = x.serverView.joined;
  if (!cj && !sj) return { observed: [], problems: [], note: "the subflows' addresses could not be read (plain TCP, or a kernel before 5.17): joins checked by count only" };
  const counts = new Map<string, { client: string; server: string; n: { client: number; server: number } }>();
  const add = (side: "client" | "server", clientAddr: string, serverAddr: string) => {
    const [ca, sa] = [canonicalAddress(clientAddr), canonicalAddress(serverAddr)];
    const k = `${ca} ${sa}`;
    const e = counts.get(k) ?? { client: ca, server: sa, n: { client: 0, server: 0 } };
    e.n[side]++;
    counts.set(k, e);
  };
  for (const [local, remote] of cj ?? []) add("client", local, remote);
  for (const [local, remote] of sj ?? []) add("server", remote, local);
  const observed: ObservedJoin[] = [];
  for (const e of counts.values()) {
    for (let i = 0; i < Math.max(e.n.client, e.n.server); i++) {
      const j: ObservedJoin = {
        client: e.client,
        ...(x.clientAddrs.has(e.client) ? { clientInterface: x.clientAddrs.get(e.client) } : {}),
        server: e.server,
        ...(x.serverAddrs.has(e.server) ? { serverInterface: x.serverAddrs.get(e.server) } : {}),
        seenBy: (["client", "server"] as const).filter((side) => e.n[side] > i),
      };
      const p = x.predicted.find((q) => toMatches(q, j) && fromMatches(q, j));
      observed.push(p ? { ...j, predictedBy: p.at } : j);
    }
  }
  const predicted = x.predicted.length ? x.predicted.map(describeJoin).join("; ") : "no join";
  const problems: string[] = [];
  for (const j of observed.filter((o) => !o.predictedBy)) {
    const head = `${c.name}: a subflow joined from ${where(j.client, j.clientInterface)} to ${s.name} ${where(j.server, j.serverInterface)}, which the config does not predict (predicted: ${predicted})`;
    if (j.server === x.dialled || x.predicted.some((p) => toMatches(p, j))) {
      const live = x.clientEndpoints?.find((e) => e.address === j.client);
      problems.push(
        `${head}; fix mptcp:hosts[${c.index}].endpoints: it declares no subflow endpoint ${j.clientInterface ? `on ${j.clientInterface}` : `with ${j.client}`}${live ? `, but ${c.name} has ${describeEndpoint(live)}` : ""} (${ENDPOINT_HINT})`,
      );
    } else {
      const live = x.serverEndpoints?.find((e) => e.address === j.server);
      problems.push(`${head}; fix mptcp:hosts[${s.index}].endpoints: it announces no ${j.server}${live ? `, but ${s.name} has ${describeEndpoint(live)}` : ""} (${ENDPOINT_HINT})`);
    }
  }
  for (const p of x.required) {
    if (observed.some((j) => toMatches(p, j))) continue;
    problems.push(`${s.name}: no subflow joined to ${p.toAddress ?? `${p.toInterface}'s address`}, which ${p.at} announces (signal): is that endpoint still on ${s.name}? (${ENDPOINT_HINT})`);
  }
  return { observed, problems };
}

/** Which interfaces should carry data, from the config and the hosts' live addresses and routes; undefined when the limits leave the choice to the kernel. */
function predictPaths(serverAddrs: Map<string, string>, c: HostModel, s: HostModel, address: string, routes: Map<string, string>): { paths?: PathPrediction; note?: string } {
  const initial = routes.get(address);
  const reachable = (a: string) => routes.has(a);
  const wanted = subflowsWanted(c, s, address, initial, reachable);
  if (expectedJoins(c, s, address, initial, reachable) < wanted) return { note: `the limits admit fewer subflows than the endpoints want (${wanted}): which paths carry data is up to the kernel` };
  const accepted = announcedEndpoints(s, address, reachable).slice(0, effectiveLimits(c).addAddrAccepted);
  const joinsTo = accepted.filter((e) => !e.flags.includes("backup"));
  const dialIface = serverAddrs.get(address);
  if (!dialIface) return { note: `${s.name} has no interface with ${address}` };
  // a subflow from an address the client marks backup is a backup subflow too: it carries data only when the others fail
  const backup = new Set(c.endpoints.filter((e) => e.flags.includes("backup")).map((e) => e.interface));
  const clientIfaces = [initial, ...c.endpoints.filter((e) => e.flags.includes("subflow") && !e.flags.includes("backup")).map((e) => e.interface)];
  // fullmesh endpoints open the subflows to announced addresses, each from its own interface (the
  // endpoint's dev binds them): one leaves through the interface the client routes the announced
  // address to only if a fullmesh endpoint is on it. One from another interface goes out there
  // whatever the destination, and which server interface then receives it depends on the network
  // (on a link the server shares it answers ARP for all its addresses): not predicted.
  const mesh = c.endpoints.filter((e) => e.flags.includes("fullmesh") && e.flags.includes("subflow"));
  const fullmesh = mesh.filter((e) => !e.flags.includes("backup")).map((e) => e.interface);
  const server_ = [dialIface];
  for (const e of joinsTo) {
    const from = e.address ? routes.get(e.address) : undefined;
    if (from !== undefined && backup.has(from)) continue;
    if (mesh.length > 0 && (from === undefined || !fullmesh.includes(from))) continue;
    clientIfaces.push(from);
    server_.push(e.interface);
  }
  return { paths: { server: [...new Set(server_)].sort(), client: [...new Set(clientIfaces.filter((x): x is string => !!x))].sort() } };
}

/** Verifies one link: a transfer, then observation against prediction. A host that stops answering (UnreachableError) fails the link, naming it. */
export async function verifyLink(model: Model, link: Link, sessions: Map<string, Session>, opts: TransferOptions = {}): Promise<LinkReport> {
  try {
    return await verifyLinkOnce(model, link, sessions, opts);
  } catch (e) {
    if (!(e instanceof UnreachableError)) throw e;
    return { at: `mptcp:links[${link.index}]`, client: link.client, server: link.server, ...(link.address ? { address: link.address } : {}), ok: false, problems: [e.message] };
  }
}

/** A link's hosts and their sessions, or why the link cannot be measured (no address it dials, a host unreachable or lost). */
export function linkEnds(model: Model, link: Link, sessions: Map<string, Session>): { c: HostModel; s: HostModel; client: Session; server: Session; address: string } | { problem: string } {
  const at = `mptcp:links[${link.index}]`;
  if (!link.address) return { problem: `${at}.address: not set, and ${link.server}'s ssh.host is not an IP address (or names a zone, %IFACE): set the address ${link.client} dials` };
  const c = model.hosts.find((h) => h.name === link.client)!;
  const s = model.hosts.find((h) => h.name === link.server)!;
  const client = sessions.get(c.name);
  const server = sessions.get(s.name);
  if (!client || !server) return { problem: `${!client ? c.name : s.name} cannot be reached` };
  for (const x of [client, server]) if (x.lost) return { problem: x.lost };
  return { c, s, client, server, address: link.address };
}

async function verifyLinkOnce(model: Model, link: Link, sessions: Map<string, Session>, opts: TransferOptions): Promise<LinkReport> {
  const at = `mptcp:links[${link.index}]`;
  const base = { at, client: link.client, server: link.server, ...(link.address ? { address: link.address } : {}) };
  const fail = (problem: string): LinkReport => ({ ...base, ok: false, problems: [problem] });
  const ends = linkEnds(model, link, sessions);
  if ("problem" in ends) return fail(ends.problem);
  const { c, s, client, server, address } = ends;
  const bytes = opts.bytes ?? DEFAULT_BYTES;
  // the client's routes to the dialled and the announced addresses; the interface the first subflow
  // leaves through has an endpoint that opens no subflow to the dialled address, and an announced
  // address the client has no route to opens none at all
  const announced = announcedEndpoints(s, address);
  const [routes, cs, ss] = await Promise.all([routeDevs(client, [address, ...announced.flatMap((e) => (e.address ? [e.address] : []))]), hostState(client), hostState(server)]);
  const predictedJoins = expectedJoins(c, s, address, routes.get(address), (a) => routes.has(a));
  const declared = reachableOf(link);
  const reachProblems = !declared
    ? []
    : announced.flatMap((e) => {
        if (!e.address || declared(e.address) === routes.has(e.address)) return [];
        return [routes.has(e.address) ? `${at}.reaches leaves out ${e.address}, but ${c.name} has a route to it` : `${at}.reaches lists ${e.address}, but ${c.name} has no route to it`];
      });
  const paths = predictPaths(ss.addrs, c, s, address, routes);
  const reachable = (a: string) => routes.has(a);
  const predicted = predictJoins(c, s, address, routes, reachable);
  // every announced address gets a join when the limits cut none (as predictPaths assumes)
  const signalled = announcedEndpoints(s, address, reachable);
  const required: PredictedJoin[] =
    paths.paths && signalled.length <= effectiveLimits(c).addAddrAccepted
      ? signalled.map((a) => ({ at: `mptcp:hosts[${s.index}].endpoints[${a.index}]`, by: "signal", ...(a.address ? { toAddress: a.address } : { toInterface: a.interface }) }))
      : [];
  const [sb, cb] = await Promise.all([observe(server), observe(client)]);
  let t: TransferReport;
  try {
    t = await transfer(client, server, address, { subflows: predictedJoins, ...opts, bytes });
  } catch (e) {
    return fail((e as Error).message);
  }
  const [sa, ca] = await Promise.all([observe(server), observe(client)]);
  const joins = (sa.counters.MPJoinAckRx ?? 0) - (sb.counters.MPJoinAckRx ?? 0);
  const rx = delta(sa.rx, sb.rx);
  const tx = delta(ca.tx, cb.tx);
  const carried = (d: Record<string, number>) =>
    Object.keys(d)
      .filter((k) => d[k] >= bytes * CARRIED_SHARE)
      .sort();
  const carriedPaths = { server: carried(rx), client: carried(tx) };
  const problems: string[] = [...reachProblems];
  if (t.server.sha256 !== t.sha256 || t.server.bytes !== t.bytes) problems.push(`the server received ${t.server.bytes} B with another checksum than the ${t.bytes} B sent`);
  if (t.subflows === null || t.server.subflows === null)
    problems.push("the connection fell back to plain TCP: MPTCP is off on one of the hosts (net.mptcp.enabled) or something on the path strips MPTCP options");
  if (joins !== predictedJoins) problems.push(`${joins} subflow${joins === 1 ? "" : "s"} joined, ${predictedJoins} predicted`);
  for (const [who, n] of [
    ["client", t.subflows],
    ["server", t.server.subflows],
  ] as const) {
    if (n !== null && n !== predictedJoins) problems.push(`the ${who} reports ${n} additional subflows, ${predictedJoins} predicted`);
  }
  if (paths.paths) {
    for (const side of ["server", "client"] as const) {
      const missing = paths.paths[side].filter((i) => !carriedPaths[side].includes(i));
      if (missing.length) problems.push(`${side === "server" ? s.name : c.name}: ${missing.join(", ")} carried no data (predicted to)`);
    }
  }
  const joinCheck = checkJoins({
    at,
    client: c,
    server: s,
    dialled: address,
    predicted,
    required,
    clientView: t,
    serverView: t.server,
    clientAddrs: cs.addrs,
    serverAddrs: ss.addrs,
    clientEndpoints: cs.endpoints,
    serverEndpoints: ss.endpoints,
  });
  problems.push(...joinCheck.problems);
  return {
    ...base,
    ok: problems.length === 0,
    problems,
    transfer: t,
    joins: { observed: joins, predicted: predictedJoins },
    subflows: { client: t.subflows, server: t.server.subflows, predicted: predictedJoins },
    bytes: { server: rx, client: tx },
    paths: { ...(paths.paths ? { predicted: paths.paths } : {}), carried: carriedPaths, ...(paths.note ? { note: paths.note } : {}) },
    joinAddresses: { observed: joinCheck.observed, predicted, ...(joinCheck.note ? { note: joinCheck.note } : {}) },
  };
}

/** Every link of the model, one after another (the counters are per host). */
export async function verifyLinks(model: Model, sessions: Map<string, Session>, opts: TransferOptions = {}): Promise<LinkReport[]> {
  const out: LinkReport[] = [];
  for (const link of model.links) out.push(await verifyLink(model, link, sessions, opts));
  return out;
}

const mb = (n: number) => `${(n / 1e6).toFixed(2)} MB`;
const perIface = (d: Record<string, number>) =>
  Object.entries(d)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${mb(n)}`)
    .join(", ") || "none";

/** The reports as a table for people. */
export function formatReports(reports: LinkReport[]): string {
  const out: string[] = [];
  for (const r of reports) {
    out.push(`${r.at}: ${r.client} -> ${r.server}${r.address ? ` (dials ${r.address})` : ""}: ${r.ok ? "ok" : "MISMATCH"}`);
    if (r.transfer) {
      const t = r.transfer;
      out.push(`  transfer   ${t.bytes} B in ${t.seconds} s, checksum ${t.sha256 === t.server.sha256 ? "identical" : "DIFFERENT"}`);
      out.push(`  joins      ${r.joins!.observed} (predicted ${r.joins!.predicted})`);
      out.push(`  subflows   client ${r.subflows!.client ?? "none (plain TCP)"}, server ${r.subflows!.server ?? "none (plain TCP)"} (predicted ${r.subflows!.predicted})`);
      out.push(`  ${r.server} rx  ${perIface(r.bytes!.server)}`);
      out.push(`  ${r.client} tx  ${perIface(r.bytes!.client)}`);
      const p = r.paths!;
      out.push(p.predicted ? `  paths      predicted ${r.server}: ${p.predicted.server.join(", ")}; ${r.client}: ${p.predicted.client.join(", ")}` : `  paths      not predicted: ${p.note}`);
      const ja = r.joinAddresses;
      for (const j of ja?.observed ?? [])
        out.push(
          `  join       ${r.client} ${where(j.client, j.clientInterface)} -> ${r.server} ${where(j.server, j.serverInterface)}: ${j.predictedBy ? `predicted (${j.predictedBy})` : "NOT PREDICTED"}`,
        );
      if (ja?.note) out.push(`  join       addresses not checked: ${ja.note}`);
    }
    for (const problem of r.problems) out.push(`  problem    ${problem}`);
  }
  return out.join("\n");
}
