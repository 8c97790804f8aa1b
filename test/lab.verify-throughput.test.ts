// npm run verify -- --throughput on the lab's two laptops, their lan and wlan shaped with tbf as the
// aggregation benchmark shapes them (scripts/lab/bench.ts). Equal 20 Mbit/s paths: MPTCP
// aggregates (above the best single path, near the sum), exit 0. Unequal 5 and 40 Mbit/s paths,
// the slow lan (the path the connection starts on) not backup: MPTCP varies from run to run (1.03
// and 0.80 of the best path in two runs; the benchmark's iperf3 runs: 0.64-0.99), so the verdict is
// printed and asserted either way (below: lan and its fix named). A slow lan that drags for sure:
// 1 Mbit/s behind a 400 ms queue (MPTCP 0.08-0.17 of the 40 Mbit/s wlan alone): below the best single path, lan and its fix named,
// exit 1. Then the fix the verdict names applied through the provider (the client's lan endpoint
// with only backup): MPTCP at least matches the best single path on both shapes (the control).
// Nothing is left running on the laptops.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { labExec, labSh, labStackConfig } from "../scripts/lab/lab";
import { DEFAULT_TOPOLOGY, pathAddress } from "../scripts/lab/topology";
import { verifyMain } from "../scripts/verify";
import { inProcess } from "./harness/cli";
import { labFile } from "./harness/fixture";
import { runProgram } from "./harness/program";

const SECONDS = "4";
const dir = mkdtempSync(join(tmpdir(), "mptcp-verify-tput-"));
const f = labFile(DEFAULT_TOPOLOGY, "t");
let config: { hosts: any[]; links: any[] };
let addr: (host: string, path: string) => string;

function stackFile(name: string, cfg: { hosts: unknown[]; links: unknown[] }): string {
  const file = join(dir, `Pulumi.${name}.yaml`);
  writeFileSync(file, stringify({ config: { "mptcp:hosts": cfg.hosts, "mptcp:links": cfg.links } }));
  return file;
}

/** Both ends of each path shaped as the benchmark shapes them (tbf with a 50 ms queue), or with the queue given. */
function shape(lan: string, wlan: string, lanQueue = "50ms"): void {
  for (const h of ["server", "client"])
    for (const [path, rate, queue] of [
      ["lan", lan, lanQueue],
      ["wlan", wlan, "50ms"],
    ])
      labSh(f.host(h), `tc qdisc replace dev ${path} root tbf rate ${rate} burst 32kb latency ${queue}`);
}

/** The slow path that drags: 1 Mbit/s behind a 400 ms queue (a bloated uplink), the fast one 40 Mbit/s. */
const DRAG: [string, string, string] = ["1mbit", "40mbit", "400ms"];

async function throughput(file: string) {
  const args = [file, "--identity", f.lab.privateKeyFile, "--throughput", "--seconds", SECONDS];
  const r = await inProcess("verify", verifyMain, [...args, "--json"]);
  const link = JSON.parse(r.out).links[0];
  console.log(`exit ${r.code}: MPTCP ${link.mptcp?.mbit} Mbit/s (rx ${JSON.stringify(link.mptcp?.rx)}); ${link.paths.map((p: any) => `TCP ${p.name} ${p.mbit}`).join(", ")}; ${link.verdict.summary}`);
  return { code: r.code, link };
}

/** The table a person reads, printed for the record. */
async function table(file: string) {
  const r = await inProcess("verify", verifyMain, [file, "--identity", f.lab.privateKeyFile, "--throughput", "--seconds", SECONDS]);
  console.log(`$ npm run verify -- ${file} --throughput --seconds ${SECONDS}   (exit ${r.code})\n${r.out}`);
  return r;
}

const nothingRunning = () => {
  for (const h of ["server", "client"]) expect(labExec(f.host(h), "pgrep -a python3").stdout).toBe("");
};

beforeAll(async () => {
  config = labStackConfig(f.lab) as typeof config;
  addr = (host, path) => pathAddress(f.lab.topology, host, path);
  await f.sim.up((await runProgram(config, { privateKey: f.privateKey, stack: "lab" })).commands);
});

afterAll(async () => {
  await f.sim?.destroy().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

describe("npm run verify -- --throughput: MPTCP against each path alone", () => {
  it("usage: --seconds goes with --throughput, whole and from 1 to 300; --bytes does not", async () => {
    const file = stackFile("lab", config);
    for (const [args, why] of [
      [["--seconds", "3"], "--seconds goes with --throughput"],
      [["--throughput", "--seconds", "0"], "--seconds must be a whole number from 1 to 300"],
      [["--throughput", "--bytes", "65536"], "--bytes and --throughput"],
    ] as const) {
      const r = await inProcess("verify", verifyMain, [file, "--identity", f.lab.privateKeyFile, ...args]);
      expect(r.code).toBe(2);
      expect(r.err).toContain(why);
    }
  });

  it("equal 20 Mbit/s paths: aggregates, near the sum of the paths, exit 0", async () => {
    shape("20mbit", "20mbit");
    const file = stackFile("lab", config);
    const { code, link } = await throughput(file);
    expect(link.paths.map((p: any) => [p.name, p.clientAddress, p.serverAddress])).toEqual([
      ["lan", addr("client", "lan"), addr("server", "lan")],
      ["wlan", addr("client", "wlan"), addr("server", "wlan")],
    ]);
    // each plain TCP transfer stayed on its path: the server received it on that interface
    for (const p of link.paths) {
      expect(p.mbit).toBeGreaterThan(15);
      expect(p.mbit).toBeLessThan(20.5);
      expect(Object.keys(p.rx).filter((i) => p.rx[i] > 1)).toEqual([p.name]);
    }
    expect(link.mptcp.subflows).toBe(1);
    expect(link.verdict.verdict).toBe("aggregates");
    expect(link.verdict.ofSum).toBeGreaterThan(0.7);
    expect(code).toBe(0);
    expect(link.problems).toEqual([]);
    expect((await table(file)).out).toContain("aggregates: MPTCP");
    nothingRunning();
  });

  it("unequal 5 and 40 Mbit/s paths, lan not backup: the numbers, and what the verdict names", async () => {
    shape("5mbit", "40mbit");
    const file = stackFile("lab", config);
    const { code, link } = await throughput(file);
    const [lan, wlan] = link.paths;
    expect(lan.mbit).toBeLessThan(5.5);
    expect(wlan.mbit).toBeGreaterThan(30);
    expect(link.verdict.best.path).toBe("wlan");
    // both paths carry MPTCP's data: the slow one as much as it can
    expect(link.mptcp.rx.lan).toBeGreaterThan(3);
    if (link.verdict.verdict === "below the best single path") {
      expect(code).toBe(1);
      expect(link.verdict.holdsBack).toEqual({
        path: "lan",
        mbit: lan.mbit,
        fix: `mptcp:hosts[1].endpoints: add { interface: lan, address: ${addr("client", "lan")}, flags: [backup] } (client's subflows on lan, the first one included, then carry data only when no other path can)`,
      });
    } else {
      // the scheduler kept up this time: say so with the numbers (above)
      console.log(`unequal paths without backup: ${link.verdict.verdict} (${link.verdict.ofBest} of the best single path)`);
      expect(code).toBe(0);
    }
    nothingRunning();
  });

  it("a slow lan behind a deep queue (1 Mbit/s, 400 ms) and a 40 Mbit/s wlan, lan not backup: below the best single path, lan named with its fix, exit 1", async () => {
    shape(...DRAG);
    const file = stackFile("lab", config);
    const { code, link } = await throughput(file);
    expect(code).toBe(1);
    expect(link.verdict.verdict).toBe("below the best single path");
    expect(link.verdict.best.path).toBe("wlan");
    expect(link.verdict.ofBest).toBeLessThan(0.5);
    expect(link.verdict.holdsBack).toEqual({
      path: "lan",
      mbit: link.paths[0].mbit,
      fix: `mptcp:hosts[1].endpoints: add { interface: lan, address: ${addr("client", "lan")}, flags: [backup] } (client's subflows on lan, the first one included, then carry data only when no other path can)`,
    });
    const t = await table(file);
    expect(t.code).toBe(1);
    expect(t.out).toContain(`  fix            mptcp:hosts[1].endpoints: add { interface: lan, address: ${addr("client", "lan")}, flags: [backup] }`);
    nothingRunning();
  });

  it("the fix applied (the client's lan endpoint backup), on both unequal shapes: MPTCP at least matches the best single path, exit 0 (the control)", async () => {
    const fixed = structuredClone(config);
    const client = fixed.hosts.find((h: any) => h.name === "client");
    client.endpoints = [...(client.endpoints ?? []), { interface: "lan", address: addr("client", "lan"), flags: ["backup"] }];
    await f.sim.up((await runProgram(fixed, { privateKey: f.privateKey, stack: "lab" })).commands);
    const file = stackFile("lab-backup", fixed);
    for (const shaped of [DRAG, ["5mbit", "40mbit", "50ms"]] as [string, string, string][]) {
      shape(...shaped);
      const { code, link } = await throughput(file);
      expect(link.paths.find((p: any) => p.name === "lan").backup).toBe(true);
      expect(link.verdict.ofBest).toBeGreaterThanOrEqual(0.9);
      expect(link.verdict.holdsBack).toBeUndefined();
      // the slow path kept in reserve: (almost) nothing of MPTCP's on it
      expect(link.mptcp.rx.lan ?? 0).toBeLessThan(0.5);
      expect(code).toBe(0);
    }
    await table(file);
    nothingRunning();
  });
});
