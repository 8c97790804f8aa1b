// npm run lab -- bench: aggregation benchmark. A lab of its own (the default two laptops,
// both paths shaped with tbf), MPTCP configured by the project's own rendered apply scripts,
// then iperf3 runs: single-path TCP over lan, and MPTCP (mptcpize run iperf3) over both paths
// with the packets tbf dropped on each, first on equal paths, then on unequal ones (once more
// with the slower path as backup), all with the laptops' congestion control (--cc, else the
// kernel's default); then a failover run (the server's wlan down and up mid-transfer) that
// reports bytes lost, the seconds from link up until wlan carries data again, and, with --plot,
// writes the goodput per path over time as an SVG (vega-lite).
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { renderHost } from "../../components/render";
import { requireValidConfig } from "../../components/validate";
import { configuredEndpoints, dialAddress, LabHost, labDown, labExec, labSh, labSpawn, labStackConfig, labUp } from "./lab";
import { DEFAULT_TOPOLOGY, pathEnds } from "./topology";
import { XFER } from "../verify/verify";
import { preparePlotDir, writeSvg } from "./plot";
import { sleep, waitFor } from "./wait";

export interface BenchOptions {
  rate: string;
  runs: number;
  seconds: number;
  /** lan and wlan rates of the unequal-paths runs. */
  unequal: [string, string];
  /** Where to write failover.svg (nothing written when absent). */
  plot?: string;
  /** The laptops' congestion control for every run (else the kernel's default). */
  cc?: string;
}

/**
 * Refuses a congestion control the laptops cannot take: a network namespace other than this
 * machine's may set only those in net.ipv4.tcp_allowed_congestion_control (the kernel answers
 * EPERM for the others).
 */
function requireAllowedCc(cc: string): void {
  const allowed = readFileSync("/proc/sys/net/ipv4/tcp_allowed_congestion_control", "utf8").trim().split(/\s+/);
  if (!allowed.includes(cc)) throw new Error(`--cc ${cc}: the laptops may only use ${allowed.join(", ")} (net.ipv4.tcp_allowed_congestion_control on this machine)`);
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function rateMbit(rate: string): number {
  const m = /^(\d+)(kbit|mbit|gbit)$/.exec(rate);
  if (!m) throw new Error(`--rate must look like 20mbit (got ${rate})`);
  return Number(m[1]) * { kbit: 1e-3, mbit: 1, gbit: 1e3 }[m[2] as "kbit" | "mbit" | "gbit"];
}

async function iperf(server: LabHost, client: LabHost, address: string, seconds: number, mptcp: boolean): Promise<number> {
  const wrap = (args: string[]) => (mptcp ? ["mptcpize", "run", ...args] : args);
  const srv = labSpawn(server, wrap(["iperf3", "-s", "-1", "-p", "5299"]));
  const exited = new Promise((r) => srv.on("close", r));
  await waitFor("the iperf3 server to listen", 2000, () => labExec(server, "ss -Hltn 'sport = :5299' | grep -q LISTEN").code === 0);
  const r = labExec(client, wrap(["iperf3", "-c", address, "-p", "5299", "-t", String(seconds), "-J"]).join(" "));
  await exited;
  if (r.code !== 0) throw new Error(`iperf3 failed: ${r.stderr || r.stdout.slice(0, 500)}`);
  return JSON.parse(r.stdout).end.sum_received.bits_per_second / 1e6;
}

/** Shapes both ends of a path (the lab's own tbf settings). */
function shape(hosts: LabHost[], path: string, rate: string): void {
  for (const h of hosts) labSh(h, `tc qdisc replace dev ${path} root tbf rate ${rate} burst 32kb latency 50ms`);
}

const PATHS = ["lan", "wlan"];

/** Packets the client's tbf has dropped so far on each path (its egress: the sender's losses). */
function tbfDrops(client: LabHost): number[] {
  const out = labExec(client, PATHS.map((p) => `tc -s qdisc show dev ${p}`).join("; ")).stdout;
  const drops = [...out.matchAll(/dropped (\d+)/g)].map((m) => Number(m[1]));
  if (drops.length !== PATHS.length) throw new Error(`${client.name}: expected a tbf qdisc on each of ${PATHS.join(", ")}, got:\n${out}`);
  return drops;
}

/**
 * TCP over one path and MPTCP over both, `runs` times; prints each run (with what each path
 * carried and the packets tbf dropped on it during the MPTCP run: on unequal paths a loss on the
 * slow one holds up in-order delivery) and the medians.
 */
async function compare(server: LabHost, client: LabHost, address: string, opts: BenchOptions, sum: number, label: string, tcp1: { path: string; address: string }): Promise<void> {
  const tcp: number[] = [];
  const mptcp: number[] = [];
  console.log(`bench: ${label}, ${opts.runs} runs x ${opts.seconds} s each, iperf3 client -> server ${address}`);
  for (let i = 0; i < opts.runs; i++) {
    tcp.push(await iperf(server, client, tcp1.address, opts.seconds, false));
    const [drops0, rx0] = [tbfDrops(client), rxBytes(server)];
    mptcp.push(await iperf(server, client, address, opts.seconds, true));
    const [drops1, rx1] = [tbfDrops(client), rxBytes(server)];
    // what each path carried (the server's received bytes over the run's seconds: headers and
    // retransmissions count) and lost
    const paths = PATHS.map((p, j) => `${p} ${(((rx1[j] - rx0[j]) * 8) / 1e6 / opts.seconds).toFixed(1)} Mbit/s, ${drops1[j] - drops0[j]} drops`).join("; ");
    console.log(`  run ${i + 1}: TCP ${tcp[i].toFixed(2)} Mbit/s, MPTCP ${mptcp[i].toFixed(2)} Mbit/s (${paths})`);
  }
  const t = median(tcp);
  const m = median(mptcp);
  console.log(`median single-path TCP goodput (${tcp1.path}): ${t.toFixed(2)} Mbit/s`);
  console.log(`median MPTCP goodput:                  ${m.toFixed(2)} Mbit/s`);
  console.log(`MPTCP / single-path:                   ${(m / t).toFixed(2)}`);
  console.log(`MPTCP / sum of link rates:             ${(m / sum).toFixed(2)} (sum ${sum} Mbit/s)`);
}

/** Bytes the laptop has received so far on each path. */
function rxBytes(h: LabHost): number[] {
  const out = labExec(h, PATHS.map((p) => `cat /sys/class/net/${p}/statistics/rx_bytes`).join("; "))
    .stdout.trim()
    .split("\n");
  return out.map(Number);
}

/**
 * One MPTCP transfer of `bytes` (unpaced), the server's wlan down at 2 s and up at 4 s; the
 * server's lan and wlan receive counters sampled every 100 ms. Returns the samples (Mbit/s per
 * path per window), the bytes lost (sent by the client, not received by the server), whether the
 * checksums match, and the seconds from wlan up until a window in which wlan carried at least a
 * tenth of its rate.
 */
async function failover(server: LabHost, client: LabHost, address: string, bytes: number, wlanMbit: number) {
  const samples: { t: number; path: string; mbit: number }[] = [];
  const marks = { down: 0, up: 0 };
  let stop = false;
  const t0 = performance.now();
  const sampler = (async () => {
    let last = rxBytes(server);
    let lastT = 0;
    while (!stop) {
      await sleep(100);
      const now = rxBytes(server);
      const t = (performance.now() - t0) / 1000;
      PATHS.forEach((p, i) => {
        samples.push({ t: Number(t.toFixed(2)), path: p, mbit: ((now[i] - last[i]) * 8) / 1e6 / (t - lastT) });
      });
      last = now;
      lastT = t;
    }
  })();
  // the verification's own transfer program: random bytes, checksummed at both ends
  const srv = labSpawn(server, ["python3", "-c", XFER, "server", "4", "0", "30"]);
  let srvOut = "";
  srv.stdout.on("data", (d) => (srvOut += d));
  const port = await new Promise<string>((resolve, reject) => {
    srv.stdout.on("data", () => {
      const m = /^listening (\d+) /m.exec(srvOut);
      if (m) resolve(m[1]);
    });
    srv.on("close", (c) => reject(new Error(`the MPTCP listener exited ${c}`)));
  });
  const cli = labSpawn(client, ["python3", "-c", XFER, "client", address, port, String(Math.round(bytes)), "0", "1"]);
  let out = "";
  cli.stdout.on("data", (d) => (out += d));
  const done = new Promise<number>((r) => cli.on("close", (c) => r(c ?? -1)));
  await sleep(2000);
  labExec(server, "ip link set wlan down");
  marks.down = (performance.now() - t0) / 1000;
  await sleep(2000);
  labExec(server, "ip link set wlan up");
  marks.up = (performance.now() - t0) / 1000;
  if ((await done) !== 0) throw new Error("the failover transfer failed");
  stop = true;
  await sampler;
  const r = JSON.parse(out.trim().split("\n").pop()!) as { sha256: string; bytes: number; server: { sha256: string; bytes: number } };
  const back = samples.find((s) => s.path === "wlan" && s.t > marks.up && s.mbit >= wlanMbit / 10);
  return { samples, marks, sent: r.bytes, lost: r.bytes - r.server.bytes, intact: r.sha256 === r.server.sha256, recovery: back ? back.t - marks.up : undefined };
}

/** The failover run's goodput per path over time, as an SVG. */
async function plotFailover(file: string, f: Awaited<ReturnType<typeof failover>>): Promise<void> {
  await writeSvg(file, {
    title: `MPTCP failover: server wlan down at ${f.marks.down.toFixed(1)} s, up at ${f.marks.up.toFixed(1)} s (lab, tbf-shaped paths)`,
    width: 640,
    height: 260,
    layer: [
      {
        data: { values: f.samples },
        mark: { type: "line", interpolate: "step-after" },
        encoding: {
          x: { field: "t", type: "quantitative", title: "seconds" },
          y: { field: "mbit", type: "quantitative", title: "Mbit/s received (100 ms windows)" },
          color: { field: "path", type: "nominal", title: "path" },
        },
      },
      {
        data: {
          values: [
            { t: f.marks.down, what: "wlan down" },
            { t: f.marks.up, what: "wlan up" },
          ],
        },
        mark: { type: "rule", strokeDash: [4, 4] },
        encoding: { x: { field: "t", type: "quantitative" } },
      },
    ],
  });
}

/** A benchmark's --runs: a whole number of runs, at least one. */
export function requireRuns(runs: number): void {
  if (!Number.isInteger(runs) || runs < 1) throw new Error("--runs must be a whole number >= 1");
}

export async function runBench(opts: BenchOptions): Promise<void> {
  requireRuns(opts.runs);
  if (!(opts.seconds >= 1)) throw new Error("--seconds must be >= 1");
  const perLink = rateMbit(opts.rate);
  const topology = { ...DEFAULT_TOPOLOGY, paths: DEFAULT_TOPOLOGY.paths.map((p) => ({ ...p, rate: opts.rate })) };
  opts.unequal.forEach(rateMbit);
  if (opts.cc !== undefined) requireAllowedCc(opts.cc);
  preparePlotDir(opts.plot);
  const lab = await labUp({ dir: mkdtempSync(join(tmpdir(), "mptcp-bench-")), id: "bench", topology });
  try {
    // no rollback: nothing confirms these applies, and a rollback would undo them mid-benchmark
    const cfg = labStackConfig(lab) as { hosts: { name: string; confirmTimeout?: number; endpoints?: unknown[] }[]; links: unknown };
    for (const h of cfg.hosts) h.confirmTimeout = 0;
    const model = requireValidConfig(cfg);
    for (const h of model.hosts) {
      for (const s of renderHost(h)) labSh(lab.hosts.find((x) => x.name === h.name)!, s.apply, `${s.concern} apply`);
    }
    // TCP and MPTCP alike (iperf3 takes the namespace's default); the name is one of the allowed ones
    if (opts.cc !== undefined) {
      for (const laptop of lab.hosts) labSh(laptop, `sysctl -qw net.ipv4.tcp_congestion_control=${opts.cc}`);
    }
    const server = lab.hosts.find((h) => h.role === "server")!;
    const client = lab.hosts.find((h) => h.role === "client")!;
    const cc = labExec(client, "sysctl -n net.ipv4.tcp_congestion_control").stdout.trim();
    console.log(`bench: congestion control ${cc}${opts.cc === undefined ? " (the kernel's default; --cc to choose)" : ""}`);
    const address = dialAddress(topology, client.name, server.name)!;
    const serverEnd = (path: string) => ({ path, address: pathEnds(topology).find((e) => e.host === server.name && e.path === path)!.address });
    await compare(server, client, address, opts, 2 * perLink, `2 paths of ${opts.rate} (tbf)`, serverEnd("lan"));
    const [lanRate, wlanRate] = opts.unequal;
    shape([server, client], "lan", lanRate);
    shape([server, client], "wlan", wlanRate);
    // single-path TCP over the faster path: what MPTCP has to beat
    const faster = rateMbit(wlanRate) >= rateMbit(lanRate) ? "wlan" : "lan";
    await compare(server, client, address, opts, rateMbit(lanRate) + rateMbit(wlanRate), `unequal paths: lan ${lanRate}, wlan ${wlanRate} (tbf)`, serverEnd(faster));
    // the same with the slower path kept in reserve: the client's endpoint on it flagged backup,
    // through this project's config (its endpoints apply), then put back as the config had it (its
    // endpoints apply again, or the revert where it had none)
    const slower = faster === "wlan" ? "lan" : "wlan";
    const slowAddress = pathEnds(topology).find((e) => e.host === client.name && e.path === slower)!.address;
    const withBackup = structuredClone(cfg);
    const c = withBackup.hosts.find((h) => h.name === client.name)!;
    c.endpoints = [...(c.endpoints ?? []), { interface: slower, address: slowAddress, flags: ["backup"] }];
    const endpointsOf = (hosts: typeof model.hosts) => renderHost(hosts.find((h) => h.name === client.name)!).find((x) => x.concern === "endpoints");
    const endpoints = endpointsOf(requireValidConfig(withBackup).hosts)!;
    const original = endpointsOf(model.hosts);
    // what the revert restores: the table as configured (implicit endpoints are the kernel's)
    const table = () => configuredEndpoints(labSh(client, "ip mptcp endpoint show").split("\n")).join("\n");
    const before = table();
    labSh(client, endpoints.apply, "endpoints apply");
    await compare(server, client, address, opts, rateMbit(lanRate) + rateMbit(wlanRate), `unequal paths, ${slower} as backup (the client's ${slower} endpoint flagged backup)`, serverEnd(faster));
    labSh(client, original ? original.apply : endpoints.revert, "endpoints put back");
    if (table() !== before) throw new Error(`${client.name}: putting the endpoints back left ${table()} (before: ${before})`);
    shape([server, client], "lan", opts.rate);
    shape([server, client], "wlan", opts.rate);
    // about 8 s at the sum of the two rates
    const f = await failover(server, client, address, (8 * 2 * perLink * 1e6) / 8, perLink);
    console.log(`failover (2 paths of ${opts.rate}, one MPTCP transfer of ${f.sent} B): wlan down at ${f.marks.down.toFixed(2)} s, up at ${f.marks.up.toFixed(2)} s`);
    console.log(`  bytes lost: ${f.lost} (checksum ${f.intact ? "identical" : "DIFFERENT"})`);
    console.log(`  wlan carrying data again (>= 10% of its rate in a 100 ms window): ${f.recovery === undefined ? "not within the run" : `${f.recovery.toFixed(2)} s after link up`}`);
    if (opts.plot) await plotFailover(join(opts.plot, "failover.svg"), f);
  } finally {
    await labDown(lab.dir, lab.id);
  }
}
