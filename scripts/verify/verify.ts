// Verification that MPTCP works on every link of a stack, over SSH: a one-shot MPTCP listener on
// the server (wildcard address, a free port), a transfer from the client to the address it dials,
// and per link: joins and subflows observed against the config's prediction, bytes per interface
// on both hosts, and whether every path predicted to carry data did. Leaves nothing running and
// writes no file (the transfer program travels as `python3 -c` text).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { announcedEndpoints, effectiveLimits, expectedJoins, HostModel, Link, Model, reachableOf, subflowsWanted } from "../../components/model";
import { shq } from "../../components/shell";
import { Session } from "./ssh";

export const XFER = readFileSync(join(__dirname, "xfer.py"), "utf8");
/** A path carried data when it moved at least this share of the payload. */
export const CARRIED_SHARE = 0.05;
export const DEFAULT_BYTES = 4 << 20;

export interface TransferReport {
  sha256: string;
  bytes: number;
  /** mptcpi_subflows on the client; null: the connection fell back to plain TCP. */
  subflows: number | null;
  seconds: number;
  server: { sha256: string; bytes: number; subflows: number | null };
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

const need = (s: Session) => `command -v python3 >/dev/null || { echo "${s.host.name}: python3 is not installed: the verification transfer needs it (Debian/Ubuntu: apt-get install python3-minimal)" >&2; exit 127; }`;

/** One MPTCP transfer client -> server at `address`; the listener is gone when it returns. */
export async function transfer(client: Session, server: Session, address: string, opts: TransferOptions = {}): Promise<TransferReport> {
  const family = address.includes(":") ? "6" : "4";
  const ch = await server.start(`${need(server)}; exec timeout 120 python3 -c ${shq(XFER)} server ${family} 0 30`);
  let out = "";
  let err = "";
  ch.stderr.on("data", (d: Buffer) => (err += d));
  const closed = new Promise<number>((resolve) => ch.on("close", (code: number | null) => resolve(code ?? -1)));
  const [port, pid] = await new Promise<[number, number]>((resolve, reject) => {
    ch.on("data", (d: Buffer) => {
      out += d;
      const m = /^listening (\d+) (\d+)$/m.exec(out);
      if (m) resolve([Number(m[1]), Number(m[2])]);
    });
    closed.then((code) => reject(new Error(`${server.host.name}: the MPTCP listener exited ${code} before listening: ${err.trim()}`)));
  });
  const bytes = opts.bytes ?? DEFAULT_BYTES;
  const run = client.exec(`${need(client)}; exec timeout 120 python3 -c ${shq(XFER)} client ${shq(address)} ${port} ${bytes} ${opts.pace ?? 0} ${opts.subflows ?? 0} ${opts.linger ?? 0}`);
  if (opts.during) await opts.during();
  const r = await run;
  if (r.code !== 0) {
    // the listener waits for a connection that will not come: end it now
    await server.exec(`kill ${pid} 2>/dev/null; true`).catch(() => undefined);
    await closed;
    throw new Error(`${client.host.name}: the MPTCP transfer to ${address} port ${port} failed (exit ${r.code}): ${r.stderr.trim().split("\n").pop()}`);
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
  const r = await s.exec("cat /proc/net/netstat; cd /sys/class/net && grep -H . */statistics/rx_bytes */statistics/tx_bytes");
  if (r.code !== 0) throw new Error(`${s.host.name}: cannot read counters: ${r.stderr.trim()}`);
  const lines = r.stdout.split("\n");
  const counters: Record<string, number> = {};
  for (let i = 0; i + 1 < lines.length; i++) {
    if (!lines[i].startsWith("MPTcpExt:") || !lines[i + 1].startsWith("MPTcpExt:")) continue;
    const names = lines[i].split(/\s+/).slice(1);
    const values = lines[i + 1].split(/\s+/).slice(1);
    names.forEach((n, j) => (counters[n] = Number(values[j])));
    break;
  }
  const rx: Record<string, number> = {};
  const tx: Record<string, number> = {};
  for (const m of r.stdout.matchAll(/^([^/\s]+)\/statistics\/([rt]x)_bytes:(\d+)$/gm)) (m[2] === "rx" ? rx : tx)[m[1]] = Number(m[3]);
  return { counters, rx, tx };
}

const delta = (after: Record<string, number>, before: Record<string, number>) =>
  Object.fromEntries(Object.keys(after).filter((k) => k !== "lo").map((k) => [k, after[k] - (before[k] ?? 0)]));

export interface PathPrediction {
  /** Server interfaces that should receive data: the dialled address's, and each announced (not backup) address a join goes to. */
  server: string[];
  /** Client interfaces that should send data: the route to the dialled address, subflow endpoints (not backup), routes to announced addresses. */
  client: string[];
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
}

/** The interface a host routes packets to each address through, in one command (one SSH round trip). */
async function routeDevs(s: Session, to: string[]): Promise<Map<string, string>> {
  const r = await s.exec(to.map((a) => `ip -o route get ${shq(a)} 2>/dev/null || echo`).join("; "));
  const lines = r.stdout.split("\n");
  return new Map(to.flatMap((a, i) => {
    const dev = /\bdev (\S+)/.exec(lines[i] ?? "")?.[1];
    return dev ? [[a, dev] as [string, string]] : [];
  }));
}

/** Which interfaces should carry data, from the config and the hosts' live addresses and routes; undefined when the limits leave the choice to the kernel. */
async function predictPaths(server: Session, c: HostModel, s: HostModel, address: string, routes: Map<string, string>): Promise<{ paths?: PathPrediction; note?: string }> {
  const initial = routes.get(address);
  const reachable = (a: string) => routes.has(a);
  const wanted = subflowsWanted(c, s, address, initial, reachable);
  if (expectedJoins(c, s, address, initial, reachable) < wanted) return { note: `the limits admit fewer subflows than the endpoints want (${wanted}): which paths carry data is up to the kernel` };
  const accepted = announcedEndpoints(s, address, reachable).slice(0, effectiveLimits(c).addAddrAccepted);
  const joinsTo = accepted.filter((e) => !e.flags.includes("backup"));
  const addrs = await server.exec(`ip -o addr show | awk '{ split($4, a, "/"); print $2, a[1] }'`);
  const dialIface = addrs.stdout.split("\n").map((l) => l.split(" ")).find((w) => w[1] === address)?.[0];
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

/** Verifies one link: a transfer, then observation against prediction. */
export async function verifyLink(model: Model, link: Link, sessions: Map<string, Session>, opts: TransferOptions = {}): Promise<LinkReport> {
  const at = `mptcp:links[${link.index}]`;
  const base = { at, client: link.client, server: link.server, ...(link.address ? { address: link.address } : {}) };
  const fail = (problem: string): LinkReport => ({ ...base, ok: false, problems: [problem] });
  if (!link.address) return fail(`${at}.address: not set, and ${link.server}'s ssh.host is not an IP address: set the address ${link.client} dials`);
  const c = model.hosts.find((h) => h.name === link.client)!;
  const s = model.hosts.find((h) => h.name === link.server)!;
  const client = sessions.get(c.name);
  const server = sessions.get(s.name);
  if (!client || !server) return fail(`${!client ? c.name : s.name} cannot be reached`);
  const bytes = opts.bytes ?? DEFAULT_BYTES;
  // the client's routes to the dialled and the announced addresses; the interface the first subflow
  // leaves through has an endpoint that opens no subflow to the dialled address, and an announced
  // address the client has no route to opens none at all
  const announced = announcedEndpoints(s, link.address);
  const routes = await routeDevs(client, [link.address, ...announced.flatMap((e) => (e.address ? [e.address] : []))]);
  const predictedJoins = expectedJoins(c, s, link.address, routes.get(link.address), (a) => routes.has(a));
  const declared = reachableOf(link);
  const reachProblems = !declared
    ? []
    : announced.flatMap((e) => {
        if (!e.address || declared(e.address) === routes.has(e.address)) return [];
        return [routes.has(e.address) ? `${at}.reaches leaves out ${e.address}, but ${c.name} has a route to it` : `${at}.reaches lists ${e.address}, but ${c.name} has no route to it`];
      });
  const paths = await predictPaths(server, c, s, link.address, routes);
  const [sb, cb] = await Promise.all([observe(server), observe(client)]);
  let t: TransferReport;
  try {
    t = await transfer(client, server, link.address, { subflows: predictedJoins, ...opts, bytes });
  } catch (e) {
    return fail((e as Error).message);
  }
  const [sa, ca] = await Promise.all([observe(server), observe(client)]);
  const joins = (sa.counters.MPJoinAckRx ?? 0) - (sb.counters.MPJoinAckRx ?? 0);
  const rx = delta(sa.rx, sb.rx);
  const tx = delta(ca.tx, cb.tx);
  const carried = (d: Record<string, number>) => Object.keys(d).filter((k) => d[k] >= bytes * CARRIED_SHARE).sort();
  const carriedPaths = { server: carried(rx), client: carried(tx) };
  const problems: string[] = [...reachProblems];
  if (t.server.sha256 !== t.sha256 || t.server.bytes !== t.bytes) problems.push(`the server received ${t.server.bytes} B with another checksum than the ${t.bytes} B sent`);
  if (t.subflows === null || t.server.subflows === null) problems.push("the connection fell back to plain TCP: MPTCP is off on one of the hosts (net.mptcp.enabled) or something on the path strips MPTCP options");
  if (joins !== predictedJoins) problems.push(`${joins} subflow${joins === 1 ? "" : "s"} joined, ${predictedJoins} predicted`);
  for (const [who, n] of [["client", t.subflows], ["server", t.server.subflows]] as const) {
    if (n !== null && n !== predictedJoins) problems.push(`the ${who} reports ${n} additional subflows, ${predictedJoins} predicted`);
  }
  if (paths.paths) {
    for (const side of ["server", "client"] as const) {
      const missing = paths.paths[side].filter((i) => !carriedPaths[side].includes(i));
      if (missing.length) problems.push(`${side === "server" ? s.name : c.name}: ${missing.join(", ")} carried no data (predicted to)`);
    }
  }
  return {
    ...base,
    ok: problems.length === 0,
    problems,
    transfer: t,
    joins: { observed: joins, predicted: predictedJoins },
    subflows: { client: t.subflows, server: t.server.subflows, predicted: predictedJoins },
    bytes: { server: rx, client: tx },
    paths: { ...(paths.paths ? { predicted: paths.paths } : {}), carried: carriedPaths, ...(paths.note ? { note: paths.note } : {}) },
  };
}

/** Every link of the model, one after another (the counters are per host). */
export async function verifyLinks(model: Model, sessions: Map<string, Session>, opts: TransferOptions = {}): Promise<LinkReport[]> {
  const out: LinkReport[] = [];
  for (const link of model.links) out.push(await verifyLink(model, link, sessions, opts));
  return out;
}

const mb = (n: number) => `${(n / 1e6).toFixed(2)} MB`;
const perIface = (d: Record<string, number>) => Object.entries(d).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${mb(n)}`).join(", ") || "none";

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
    }
    for (const problem of r.problems) out.push(`  problem    ${problem}`);
  }
  return out.join("\n");
}
