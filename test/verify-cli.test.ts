// npm run verify against a lab's stack file and key, as a user runs it: it fails before the stack
// is applied (negative control), passes after, prints JSON for machines, reaches hosts as a
// non-root user through sudo, exits 2 when a host cannot be reached or presents another host key,
// and leaves no process or file behind on the laptops.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { predictLinks, requireValidConfig } from "../components";
import { LAB_USER, LabState, labSh, labStackConfig } from "../scripts/lab/lab";
import { DEFAULT_TOPOLOGY } from "../scripts/lab/topology";
import { startLab, stopLab } from "./harness/fixture";
import { runProgram } from "./harness/program";
import { CommandProviderSim } from "./harness/provider";
import { SshRunner } from "./harness/ssh";

const ROOT = join(__dirname, "..");
const dir = mkdtempSync(join(tmpdir(), "mptcp-verify-"));
let lab: LabState;
let ssh: SshRunner;
let sim: CommandProviderSim;
let privateKey: string;
let config: { hosts: any[]; links: any[] };

function stackFile(name: string, cfg: object): string {
  const file = join(dir, `Pulumi.${name}.yaml`);
  writeFileSync(file, stringify({ config: { "mptcp:hosts": (cfg as any).hosts, "mptcp:links": (cfg as any).links } }));
  return file;
}

function cli(tool: "verify" | "check", file: string, ...args: string[]) {
  const r = spawnSync(join(ROOT, "node_modules", ".bin", "tsx"), [join(ROOT, "scripts", `${tool}.ts`), file, "--identity", lab.privateKeyFile, ...args], { encoding: "utf8", cwd: ROOT, env: { ...process.env, SSH_AUTH_SOCK: "" } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Processes and files a tool could leave on a laptop. */
const traces = () => lab.hosts.map((h) => labSh(h, "ps -e -o args= | grep -v -e '^ps ' -e '^grep ' | grep -e python3 -e xfer || true; find /tmp /var/tmp /root /home /run -xdev | sort")).join("\n");

beforeAll(async () => {
  ({ lab, ssh, sim, privateKey } = await startLab(DEFAULT_TOPOLOGY, "y"));
  config = labStackConfig(lab) as typeof config;
});

afterAll(async () => {
  await stopLab({ lab, ssh });
  rmSync(dir, { recursive: true, force: true });
});

describe("npm run verify", () => {
  it("before the stack is applied (negative control): exit 1, the missing join and the idle path named", () => {
    const r = cli("verify", stackFile("lab", config));
    console.log(r.out);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/mptcp:links\[0\]: client -> server \(dials [0-9.]+\): MISMATCH/);
    expect(r.out).toContain("problem    0 subflows joined, 1 predicted");
    expect(r.out).toMatch(/problem    server: wlan carried no data \(predicted to\)/);
  });

  it("after up: exit 0; --json reports the predicted joins on every link; nothing left running or written", async () => {
    await sim.up((await runProgram(config, { privateKey })).commands);
    const before = traces();
    const table = cli("verify", stackFile("lab", config));
    console.log(table.out);
    expect(table.code).toBe(0);
    expect(table.out).toMatch(/: ok\n/);
    const json = cli("verify", stackFile("lab", config), "--json");
    expect(json.code).toBe(0);
    const report = JSON.parse(json.out);
    const predicted = predictLinks(requireValidConfig(config));
    expect(report.ok).toBe(true);
    expect(report.links.map((l: any) => ({ client: l.client, server: l.server, address: l.address, joins: l.joins.observed, subflows: l.subflows.client + 1 }))).toEqual(predicted);
    expect(traces()).toBe(before);
  });

  it("a non-root ssh.user: the reads and the transfer run through sudo -n", () => {
    const cfg = structuredClone(config);
    for (const h of cfg.hosts) h.ssh.user = LAB_USER;
    const r = cli("verify", stackFile("admin", cfg));
    expect(r.code).toBe(0);
  });

  it("a host that cannot be reached, or presents another host key: exit 2 naming the host and its config path", () => {
    const refused = structuredClone(config);
    refused.hosts[1].ssh.port = 2;
    const r1 = cli("verify", stackFile("refused", refused));
    expect(r1.code).toBe(2);
    expect(r1.out).toMatch(new RegExp(`unreachable: ${refused.hosts[1].name} \\(root@[0-9.]+:2, mptcp:hosts\\[1\\]\\.ssh\\): .*ECONNREFUSED`));
    const spoofed = structuredClone(config);
    spoofed.hosts[1].ssh.hostKey = config.hosts[0].ssh.hostKey;
    const r2 = cli("verify", stackFile("spoofed", spoofed));
    expect(r2.code).toBe(2);
    expect(r2.out).toContain(`unreachable: ${spoofed.hosts[1].name} (root@${spoofed.hosts[1].ssh.host}:22, mptcp:hosts[1].ssh): the host key does not match ssh.hostKey`);
  });

  it("an invalid stack file: exit 2 with the config path, no connection made", () => {
    const bad = structuredClone(config);
    bad.hosts[1].limits.addAddrAccepted = 0;
    const r = cli("verify", stackFile("bad", bad));
    expect(r.code).toBe(2);
    expect(r.err).toContain("mptcp:hosts[1].limits.addAddrAccepted");
  });
});
