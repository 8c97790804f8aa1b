// npm run verify -- --throughput: per link, a saturating MPTCP transfer (as verify's, timed instead
// of sized), then a plain TCP transfer on each path alone (the client's address on that path bound,
// to the server's address on it), back to back, and a verdict: MPTCP's rate against the best
// single path and against the sum of the paths. Below the best single path, it names the path
// that holds it back and the config change that keeps it in reserve (the backup flag).
import { announcedEndpoints, canonicalAddress, expectedJoins, HostModel, Link, Model } from "../../components/model";
import { shq } from "../../components/shell";
import { Session, UnreachableError } from "./ssh";
import { hostState, linkEnds, observe, runTransfer, TransferReport } from "./verify";

export const DEFAULT_SECONDS = 5;
/** MPTCP within this share of the best single path matches it: the benchmark's runs with the slow path as backup measured 0.96-1.02 of it (docs/performance.md). */
export const TOLERANCE = 0.1;

/** One path between the link's hosts: the client's address on it and the server's. */
export interface ThroughputPath {
  /** The client interface the path leaves through (its name in the report). */
  name: string;
  clientAddress: string;
  serverAddress: string;
  /** The server interface with serverAddress. */
  serverInterface?: string;
  /** What puts the path in the MPTCP connection: the dialled address, an announcement, a client subflow endpoint. */
  via: string;
  /** The config keeps it in reserve (a backup flag on the client's endpoint on it, or on the server's announcement of it). */
  backup: boolean;
  /** The config change that would: absent when it is backup already. */
  fix?: string;
  /** Plain TCP on this path alone: goodput (bytes the server read over the seconds until it had them all). */
  mbit?: number;
  /** Megabits per second the server received on each interface during that transfer (headers included). */
  rx?: Record<string, number>;
  error?: string;
}

export interface Verdict {
  verdict: "aggregates" | "matches the best single path" | "below the best single path" | "not measured";
  ok: boolean;
  best?: { path: string; mbit: number };
  /** Sum of the paths' single-path rates. */
  sum?: number;
  /** MPTCP's rate over the best single path's, and over the sum. */
  ofBest?: number;
  ofSum?: number;
  /** The path that holds MPTCP back, and what to change. */
  holdsBack?: { path: string; mbit: number; fix?: string };
  summary: string;
}

export interface ThroughputReport {
  /** mptcp:links[i] */
  at: string;
  client: string;
  server: string;
  address?: string;
  ok: boolean;
  seconds: number;
  mptcp?: { mbit: number; subflows: number | null; joinsPredicted: number; seconds: number; bytes: number; rx: Record<string, number> };
  paths: ThroughputPath[];
  verdict: Verdict;
  problems: string[];
}

const r2 = (n: number) => Math.round(n * 100) / 100;

/**
 * The verdict on MPTCP's rate against the single paths' (Mbit/s): below the best single path by
 * more than TOLERANCE, it names the slowest path that is not backup and is slower than the best
 * by more than TOLERANCE (what drags the connection: MPTCP sends on it too, and the fast path's
 * data waits in the receive queue for what the slow one lost), with its fix; no such path, none
 * named (the paths may share a bottleneck). Above the best single path by more than TOLERANCE it
 * aggregates.
 */
export function throughputVerdict(mptcp: number | undefined, paths: Pick<ThroughputPath, "name" | "mbit" | "backup" | "fix">[]): Verdict {
  const measured = paths.filter((p): p is typeof p & { mbit: number } => p.mbit !== undefined);
  if (mptcp === undefined || measured.length === 0) return { verdict: "not measured", ok: false, summary: "not measured: a transfer failed" };
  const best = measured.reduce((a, b) => (b.mbit > a.mbit ? b : a));
  const sum = measured.reduce((n, p) => n + p.mbit, 0);
  const base = { best: { path: best.name, mbit: r2(best.mbit) }, sum: r2(sum), ofBest: r2(mptcp / best.mbit), ofSum: r2(mptcp / sum) };
  const rates = `MPTCP ${mptcp.toFixed(2)} Mbit/s: ${base.ofBest.toFixed(2)} of the best single path (${best.name}, ${best.mbit.toFixed(2)} Mbit/s), ${base.ofSum.toFixed(2)} of the sum of the paths (${sum.toFixed(2)} Mbit/s)`;
  if (mptcp >= best.mbit * (1 + TOLERANCE)) return { verdict: "aggregates", ok: true, ...base, summary: `aggregates: ${rates}` };
  if (mptcp >= best.mbit * (1 - TOLERANCE)) {
    const why = measured.length === 1 ? "one path: nothing to aggregate" : "the other paths add little (slow, backup, or sharing the best path's bottleneck)";
    return { verdict: "matches the best single path", ok: true, ...base, summary: `matches the best single path, ${why}: ${rates}` };
  }
  const slow = measured.filter((p) => p !== best && !p.backup && p.mbit < best.mbit * (1 - TOLERANCE)).sort((a, b) => a.mbit - b.mbit)[0];
  if (!slow)
    return {
      verdict: "below the best single path",
      ok: false,
      ...base,
      summary: `below the best single path: ${rates}; no path is much slower than ${best.name} or not backup already: the paths may share a bottleneck, or MPTCP loses elsewhere`,
    };
  return {
    verdict: "below the best single path",
    ok: false,
    ...base,
    holdsBack: { path: slow.name, mbit: r2(slow.mbit), ...(slow.fix ? { fix: slow.fix } : {}) },
    summary: `below the best single path: ${rates}; ${slow.name} (${slow.mbit.toFixed(2)} Mbit/s) holds it back: MPTCP sends on it too, and what it loses there holds up the data of the faster path`,
  };
}

/** The route to each address from the client (interface and source address), one SSH round trip. */
async function routes(s: Session, to: string[]): Promise<Map<string, { dev: string; src?: string }>> {
  const r = await s.exec(to.map((a) => `ip -o route get ${shq(a)} 2>/dev/null || echo`).join("; "));
  const lines = r.stdout.split("\n");
  return new Map(
    to.flatMap((a, i) => {
      const dev = /\bdev (\S+)/.exec(lines[i] ?? "")?.[1];
      const src = /\bsrc (\S+)/.exec(lines[i] ?? "")?.[1];
      return dev ? [[a, { dev, ...(src ? { src: canonicalAddress(src) } : {}) }] as [string, { dev: string; src?: string }]] : [];
    }),
  );
}

/**
 * The config change that keeps a path in reserve: the backup flag on the client's endpoint on its
 * interface, else on the server's announcement of its address, else a client endpoint with only
 * backup on it (for the path the connection starts on: the kernel marks the first subflow backup
 * too). Backup already: no fix.
 */
export function backupFix(c: HostModel, s: HostModel, dialled: string, p: { name: string; clientAddress: string; serverAddress: string; serverInterface?: string }): { backup: boolean; fix?: string } {
  const mine = c.endpoints.find((e) => e.interface === p.name || (e.address !== undefined && canonicalAddress(e.address) === p.clientAddress));
  if (mine) {
    if (mine.flags.includes("backup")) return { backup: true };
    return { backup: false, fix: `mptcp:hosts[${c.index}].endpoints[${mine.index}].flags: add backup (${c.name}'s endpoint on ${p.name}: then it carries data only when no other path can)` };
  }
  const announced = announcedEndpoints(s, dialled).find(
    (e) => (e.address !== undefined && canonicalAddress(e.address) === p.serverAddress) || (e.address === undefined && e.interface === p.serverInterface),
  );
  if (announced) {
    if (announced.flags.includes("backup")) return { backup: true };
    return {
      backup: false,
      fix: `mptcp:hosts[${s.index}].endpoints[${announced.index}].flags: add backup (${s.name} announces ${p.serverAddress} as a backup path: ${c.name} then sends on it only when no other path can)`,
    };
  }
  return {
    backup: false,
    fix: `mptcp:hosts[${c.index}].endpoints: add { interface: ${p.name}, address: ${p.clientAddress}, flags: [backup] } (${c.name}'s subflows on ${p.name}, the first one included, then carry data only when no other path can)`,
  };
}

const mbitOf = (bytes: number, seconds: number) => (bytes * 8) / 1e6 / seconds;

/** Megabits per second received per interface between two readings: not lo, none below 0.1 (an SSH session's own traffic). */
function rxRates(after: Record<string, number>, before: Record<string, number>, seconds: number): Record<string, number> {
  return Object.fromEntries(
    Object.keys(after)
      .filter((k) => k !== "lo")
      .map((k) => [k, r2(mbitOf(after[k] - (before[k] ?? 0), seconds))] as [string, number])
      .filter(([, v]) => v >= 0.1),
  );
}

/** One timed transfer and what the server received per interface meanwhile. */
async function timed(client: Session, server: Session, to: string, seconds: number, args: string): Promise<{ t: TransferReport; rx: Record<string, number> }> {
  const before = await observe(server);
  const t = await runTransfer(client, server, to, (port) => `timed ${shq(to)} ${port} ${seconds} ${args}`, undefined, seconds + 90);
  const after = await observe(server);
  return { t, rx: rxRates(after.rx, before.rx, t.seconds) };
}

/** One link's throughput: MPTCP, then each path alone, then the verdict. A host that stops answering fails the link, naming it. */
export async function throughputLink(model: Model, link: Link, sessions: Map<string, Session>, seconds: number): Promise<ThroughputReport> {
  const at = `mptcp:links[${link.index}]`;
  const base = { at, client: link.client, server: link.server, ...(link.address ? { address: link.address } : {}), seconds };
  const fail = (problem: string): ThroughputReport => ({ ...base, ok: false, paths: [], verdict: throughputVerdict(undefined, []), problems: [problem] });
  try {
    const ends = linkEnds(model, link, sessions);
    if ("problem" in ends) return fail(ends.problem);
    const { c, s, client, server, address } = ends;
    const dialled = canonicalAddress(address);
    const [ss, cs] = await Promise.all([hostState(server), hostState(client)]);
    const v6 = dialled.includes(":");
    // an announced endpoint without an address announces its interface's (of the dialled family)
    const serverAddressOn = (iface: string) => [...ss.addrs].find(([a, i]) => i === iface && a.includes(":") === v6 && !a.startsWith("fe80:"))?.[0];
    const clientAddressOn = (iface: string) => [...cs.addrs].find(([a, i]) => i === iface && a.includes(":") === v6 && !a.startsWith("fe80:"))?.[0];
    const targets: { address: string; via: string }[] = [{ address: dialled, via: `the dialled address (${at})` }];
    for (const e of announcedEndpoints(s, dialled)) {
      const a = e.address !== undefined ? canonicalAddress(e.address) : serverAddressOn(e.interface);
      if (a && a.includes(":") === v6 && !targets.some((t) => t.address === a)) targets.push({ address: a, via: `announced (mptcp:hosts[${s.index}].endpoints[${e.index}])` });
    }
    const routed = await routes(
      client,
      targets.map((t) => t.address),
    );
    const found: Omit<ThroughputPath, "backup">[] = [];
    for (const t of targets) {
      const r = routed.get(t.address);
      const src = r?.src ?? (r ? clientAddressOn(r.dev) : undefined);
      if (!r || !src || found.some((p) => p.name === r.dev)) continue;
      found.push({ name: r.dev, clientAddress: src, serverAddress: t.address, ...(ss.addrs.has(t.address) ? { serverInterface: ss.addrs.get(t.address) } : {}), via: t.via });
    }
    // a client subflow endpoint on another interface joins to the dialled address from there
    for (const e of c.endpoints.filter((x) => x.flags.includes("subflow"))) {
      const src = e.address !== undefined ? canonicalAddress(e.address) : clientAddressOn(e.interface);
      if (!src || src.includes(":") !== v6 || found.some((p) => p.name === e.interface)) continue;
      found.push({
        name: e.interface,
        clientAddress: src,
        serverAddress: dialled,
        ...(ss.addrs.has(dialled) ? { serverInterface: ss.addrs.get(dialled) } : {}),
        via: `subflow (mptcp:hosts[${c.index}].endpoints[${e.index}])`,
      });
    }
    const paths: ThroughputPath[] = found.map((p) => ({ ...p, ...backupFix(c, s, dialled, p) }));
    const devs = new Map([...routed].map(([a, r]) => [a, r.dev]));
    const joinsPredicted = expectedJoins(c, s, dialled, devs.get(dialled), (a) => devs.has(a));
    const problems: string[] = [];
    const check = (what: string, t: TransferReport) => {
      if (t.server.sha256 !== t.sha256 || t.server.bytes !== t.bytes) problems.push(`${what}: the server received ${t.server.bytes} B with another checksum than the ${t.bytes} B sent`);
    };
    let mptcp: ThroughputReport["mptcp"];
    try {
      const m = await timed(client, server, dialled, seconds, `${joinsPredicted} mptcp`);
      check("MPTCP", m.t);
      mptcp = { mbit: r2(mbitOf(m.t.server.bytes, m.t.seconds)), subflows: m.t.subflows, joinsPredicted, seconds: m.t.seconds, bytes: m.t.server.bytes, rx: m.rx };
      if (m.t.subflows === null) problems.push("the MPTCP connection fell back to plain TCP: MPTCP is off on one of the hosts (net.mptcp.enabled) or something on the path strips MPTCP options");
    } catch (e) {
      if (e instanceof UnreachableError) throw e;
      problems.push(`MPTCP: ${(e as Error).message}`);
    }
    for (const p of paths) {
      try {
        const r = await timed(client, server, p.serverAddress, seconds, `0 tcp ${shq(p.clientAddress)}`);
        check(`TCP on ${p.name}`, r.t);
        p.mbit = r2(mbitOf(r.t.server.bytes, r.t.seconds));
        p.rx = r.rx;
        // the bound source and its route keep the connection on the path: the server's counters say whether they did
        const most = Object.entries(r.rx).sort((a, b) => b[1] - a[1])[0]?.[0];
        if (p.serverInterface && most !== p.serverInterface) problems.push(`TCP on ${p.name}: ${s.name} received it on ${most ?? "no interface"}, not ${p.serverInterface}`);
      } catch (e) {
        if (e instanceof UnreachableError) throw e;
        p.error = (e as Error).message;
        problems.push(`TCP on ${p.name}: ${p.error}`);
      }
    }
    const verdict = throughputVerdict(mptcp?.mbit, paths);
    return { ...base, ok: verdict.ok && problems.length === 0, ...(mptcp ? { mptcp } : {}), paths, verdict, problems };
  } catch (e) {
    if (!(e instanceof UnreachableError)) throw e;
    return fail(e.message);
  }
}

/** Every link's throughput, one after another (each transfer has the paths to itself). */
export async function throughputLinks(model: Model, sessions: Map<string, Session>, seconds: number): Promise<ThroughputReport[]> {
  const out: ThroughputReport[] = [];
  for (const link of model.links) out.push(await throughputLink(model, link, sessions, seconds));
  return out;
}

const perIface = (rx: Record<string, number>) =>
  Object.entries(rx)
    .map(([k, v]) => `${k} ${v.toFixed(2)}`)
    .join(", ") || "none";

/** The reports as a table for people. */
export function formatThroughput(reports: ThroughputReport[]): string {
  const out: string[] = [];
  for (const r of reports) {
    out.push(`${r.at}: ${r.client} -> ${r.server}${r.address ? ` (dials ${r.address})` : ""}, ${r.seconds} s per transfer: ${r.verdict.verdict}`);
    if (r.mptcp)
      out.push(
        `  MPTCP          ${r.mptcp.mbit.toFixed(2)} Mbit/s (${r.mptcp.bytes} B in ${r.mptcp.seconds} s; subflows ${r.mptcp.subflows ?? "none (plain TCP)"}, predicted ${r.mptcp.joinsPredicted}; ${r.server} rx Mbit/s: ${perIface(r.mptcp.rx)})`,
      );
    for (const p of r.paths)
      out.push(
        `  TCP on ${p.name.padEnd(7)} ${p.mbit === undefined ? "failed" : `${p.mbit.toFixed(2)} Mbit/s`} (${r.client} ${p.clientAddress} -> ${r.server} ${p.serverAddress}${p.serverInterface ? ` (${p.serverInterface})` : ""}, ${p.via}${p.backup ? ", backup" : ""})`,
      );
    out.push(`  verdict        ${r.verdict.summary}`);
    if (r.verdict.holdsBack?.fix) out.push(`  fix            ${r.verdict.holdsBack.fix}`);
    for (const problem of r.problems) out.push(`  problem        ${problem}`);
  }
  return out.join("\n");
}
