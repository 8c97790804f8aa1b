// npm run lab -- bench: aggregation benchmark. A lab of its own (the default two laptops,
// both paths shaped with tbf), MPTCP configured by the project's own rendered apply scripts,
// then iperf3 runs: single-path TCP over lan, and MPTCP (mptcpize run iperf3) over both paths.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { renderHost } from "../../components/render";
import { requireValidConfig } from "../../components/validate";
import { dialAddress, LabHost, labDown, labExec, labSpawn, labStackConfig, labUp } from "./lab";
import { DEFAULT_TOPOLOGY } from "./topology";

export interface BenchOptions {
  rate: string;
  runs: number;
  seconds: number;
}

const median = (xs: number[]) => {
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
  let ready = false;
  for (let i = 0; i < 100 && !ready; i++) {
    ready = labExec(server, "ss -Hltn 'sport = :5299' | grep -q LISTEN").code === 0;
    if (!ready) await new Promise((r) => setTimeout(r, 20));
  }
  if (!ready) throw new Error("iperf3 server did not start");
  const r = labExec(client, wrap(["iperf3", "-c", address, "-p", "5299", "-t", String(seconds), "-J"]).join(" "));
  await exited;
  if (r.code !== 0) throw new Error(`iperf3 failed: ${r.stderr || r.stdout.slice(0, 500)}`);
  return JSON.parse(r.stdout).end.sum_received.bits_per_second / 1e6;
}

export async function runBench(opts: BenchOptions): Promise<void> {
  if (!Number.isInteger(opts.runs) || opts.runs < 1) throw new Error("--runs must be a whole number >= 1");
  if (!(opts.seconds >= 1)) throw new Error("--seconds must be >= 1");
  const perLink = rateMbit(opts.rate);
  const topology = { ...DEFAULT_TOPOLOGY, paths: DEFAULT_TOPOLOGY.paths.map((p) => ({ ...p, rate: opts.rate })) };
  const lab = await labUp({ dir: mkdtempSync(join(tmpdir(), "mptcp-bench-")), id: "bench", topology });
  try {
    const model = requireValidConfig(labStackConfig(lab));
    for (const h of model.hosts) {
      const laptop = lab.hosts.find((x) => x.name === h.name)!;
      for (const s of renderHost(h)) {
        const r = labExec(laptop, s.apply);
        if (r.code !== 0) throw new Error(`${h.name} ${s.concern}: ${r.stderr}`);
      }
    }
    const server = lab.hosts.find((h) => h.role === "server")!;
    const client = lab.hosts.find((h) => h.role === "client")!;
    const address = dialAddress(topology, client.name, server.name)!;
    const tcp: number[] = [];
    const mptcp: number[] = [];
    console.log(`bench: 2 paths of ${opts.rate} (tbf), ${opts.runs} runs x ${opts.seconds} s each, iperf3 client -> server ${address}`);
    for (let i = 0; i < opts.runs; i++) {
      tcp.push(await iperf(server, client, address, opts.seconds, false));
      mptcp.push(await iperf(server, client, address, opts.seconds, true));
      console.log(`  run ${i + 1}: TCP ${tcp[i].toFixed(2)} Mbit/s, MPTCP ${mptcp[i].toFixed(2)} Mbit/s`);
    }
    const t = median(tcp);
    const m = median(mptcp);
    console.log(`median single-path TCP goodput: ${t.toFixed(2)} Mbit/s`);
    console.log(`median MPTCP goodput:           ${m.toFixed(2)} Mbit/s`);
    console.log(`MPTCP / single-path:            ${(m / t).toFixed(2)}`);
    console.log(`MPTCP / sum of link rates:      ${(m / (2 * perLink)).toFixed(2)} (sum ${2 * perLink} Mbit/s)`);
  } finally {
    await labDown(lab.dir, lab.id);
  }
}
