// How scripts reach a host (components/stage.ts): one copy per host, commands that check and run
// their script there, and what that leaves in Pulumi's state.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readStackConfig } from "../components";
import { runnerSha, runnerText, stagedName } from "../components/stage";
import { RecordedResource, runProgram } from "./harness/program";
import { storedArchive } from "./harness/provider";

const ROOT = join(__dirname, "..");
const dev = () => structuredClone(readStackConfig(join(ROOT, "Pulumi.dev.yaml"))) as { hosts: any[]; links: any[] };
/** An ed25519 private key's size (what `pulumi config set --secret mptcp:sshPrivateKey` holds). */
const KEY = `-----BEGIN OPENSSH PRIVATE KEY-----\n${"A".repeat(70)}\n`.repeat(5) + "-----END OPENSSH PRIVATE KEY-----\n";

/** The dev stack with its client set up as the issue measured it: sysctl, limits, two endpoints, hooks with routing (and a service, unless `services` is false). */
function fullyConfigured(services = true) {
  const c = dev();
  c.hosts[0].limits.subflows = 3;
  Object.assign(c.hosts[1], {
    sysctl: { enabled: true, addAddrTimeout: 60, checksumEnabled: false },
    limits: { subflows: 3, addAddrAccepted: 1 },
    endpoints: [
      { interface: "eth0", flags: ["subflow"] },
      { interface: "wlan0", flags: ["subflow", "backup"] },
    ],
    hooks: true,
    routing: [{ interface: "wlan0", mode: "source", gateway: "10.22.18.1" }],
    services: services ? [{ unit: "iperf3.service" }] : [],
  });
  return c;
}

/**
 * Bytes of the inputs a host's resources register (what the engine keeps, and keeps again as
 * outputs), a copy's source as the engine stores an archive: its signature, hash and local path.
 */
async function inputBytes(resources: RecordedResource[], host: string): Promise<number> {
  let n = 0;
  for (const r of resources.filter((x) => x.custom && x.name.startsWith(`${host}-`))) {
    const source = r.inputs.source ? storedArchive("0".repeat(64), await r.inputs.source.path) : undefined;
    n += Buffer.byteLength(JSON.stringify(source ? { ...r.inputs, source } : r.inputs));
  }
  return n;
}

const scratch: string[] = [];
afterAll(() => {
  for (const d of scratch) rmSync(d, { recursive: true, force: true });
});

describe("scripts reach a host once, through its copy", () => {
  it("a fully configured host registers at most 16 KB of inputs, its private key included; its scripts as inputs were over 190 KB", async () => {
    const { resources, commands } = await runProgram(fullyConfigured(false), { privateKey: KEY });
    const client = commands.filter((c) => c.name.startsWith("client-"));
    expect(client.map((c) => c.name)).toEqual(expect.arrayContaining(["client-scripts", "client-sysctl", "client-limits", "client-networkmanager", "client-endpoints", "client-hooks"]));
    const bytes = await inputBytes(resources, "client");
    // control: the same measure of the scripts themselves, which every command carried before
    // (its create and delete, each a wrapped script: the apply carries its revert)
    const scripts = client.reduce((n, c) => n + Buffer.byteLength((c.create ?? "") + (c.delete ?? "")), 0);
    const withService = await inputBytes((await runProgram(fullyConfigured(true), { privateKey: KEY })).resources, "client");
    const keyless = await inputBytes((await runProgram(fullyConfigured(false))).resources, "client");
    console.log(
      `fully configured host: ${(bytes / 1024).toFixed(1)} KB of registered inputs (${(keyless / 1024).toFixed(1)} KB without a private key, ${(withService / 1024).toFixed(1)} KB with a service too); its scripts ${(scripts / 1024).toFixed(1)} KB`,
    );
    expect(bytes).toBeLessThanOrEqual(16 * 1024);
    expect(scripts).toBeGreaterThan(190 * 1024);
  });

  it("each command runs a script of its own host's copy, and the copy holds exactly those scripts", async () => {
    const { commands } = await runProgram(fullyConfigured());
    for (const host of ["server", "client"]) {
      const copy = commands.find((c) => c.name === `${host}-scripts`)!;
      // the local directory ENTRY lands in ~/.mptcp-pulumi/ENTRY
      expect(copy.copy!.remotePath).toBe(".mptcp-pulumi");
      expect(copy.copy!.dir).toMatch(new RegExp(`/mptcp\\.test\\.${host}$`));
      expect(copy.triggers).toEqual([copy.connection.host, copy.connection.port, copy.connection.user]);
      const named = commands
        .filter((c) => c.name.startsWith(`${host}-`) && !c.copy && c.inputs.create !== undefined)
        .flatMap((c) => [c.inputs.create, c.inputs.delete])
        .map((t) => `${runnerSha(t)}.sh`);
      expect(new Set(named)).toEqual(new Set(readdirSync(copy.copy!.dir)));
      // what a test runs as the command's script is that file
      for (const c of commands.filter((x) => x.name.startsWith(`${host}-`) && !x.copy && x.inputs.create !== undefined)) {
        expect(c.create).toContain(readFileSync(join(copy.copy!.dir, `${runnerSha(c.inputs.create)}.sh`), "utf8"));
      }
    }
  });

  it("a changed setting changes that command's registered create in the line that names it, and the host's copy; no other command", async () => {
    const before = await runProgram(fullyConfigured());
    const c = fullyConfigured();
    c.hosts[0].limits.addAddrAccepted = 1;
    const after = await runProgram(c);
    const changed = after.commands.filter((x) => JSON.stringify(x.inputs) !== JSON.stringify(before.commands.find((y) => y.name === x.name)?.inputs)).map((x) => x.name);
    expect(changed.sort()).toEqual(["server-limits", "server-scripts"]);
    const lines = (t: string) => new Set(t.split("\n"));
    const was = lines(before.commands.find((x) => x.name === "server-limits")!.inputs.create);
    const now = after.commands
      .find((x) => x.name === "server-limits")!
      .inputs.create.split("\n")
      .filter((l: string) => !was.has(l));
    // the runner's data line, and the hash of the new script
    expect(now).toHaveLength(2);
    expect(now.find((l: string) => l.startsWith("h="))).toMatch(/^h=[0-9a-f]{64} f=/);
    expect(now.find((l: string) => l.startsWith("# "))).toBe("# ADD_ADDR_ACCEPTED=1");
    // the delete (the revert) carries no limit: it did not change
    expect(after.commands.find((x) => x.name === "server-limits")!.inputs.delete).toBe(before.commands.find((x) => x.name === "server-limits")!.inputs.delete);
  });

  it("the dev stack's first preview registers a few kilobytes", async () => {
    const { resources } = await runProgram(dev(), { preview: true });
    const bytes =
      (await inputBytes(resources, "server")) + (await inputBytes(resources, "client")) + resources.filter((r) => !r.custom).reduce((n, r) => n + Buffer.byteLength(JSON.stringify(r.inputs)), 0);
    console.log(`dev stack preview: ${resources.length} resources, ${(bytes / 1024).toFixed(1)} KB of inputs`);
    expect(bytes).toBeLessThan(16 * 1024);
    // the golden file: every resource as the engine receives it (what `pulumi preview --diff` shows)
    const shown = resources.map((r) => ({ type: r.type, name: r.name, inputs: r.inputs }));
    await expect(JSON.stringify(shown, null, 2) + "\n").toMatchFileSnapshot(join(ROOT, "test", "golden", "dev", "registered-inputs.json.golden"));
  });
});

describe("the runner: checks the copied script's hash, then runs it", () => {
  const home = mkdtempSync(join(tmpdir(), "mptcp-stage-home-"));
  scratch.push(home);
  // an absolute path: sudo gives the script root's HOME
  const script = `# mptcp-pulumi: host server, test apply\necho ran > ${home}/ran\n`;
  const remote = ".mptcp-pulumi/mptcp.test.server";
  const file = join(home, remote, stagedName(script));
  const run = (user: string) => {
    rmSync(join(home, "ran"), { force: true });
    const text = runnerText(script, { user, host: "server", remote, copy: "server-scripts", about: ["# mptcp-pulumi: host server, test apply"] });
    const r = spawnSync("sh", ["-c", text], { env: { PATH: process.env.PATH, HOME: home }, encoding: "utf8" });
    let ran = false;
    try {
      ran = readFileSync(join(home, "ran"), "utf8") === "ran\n";
    } catch {}
    return { code: r.status, stderr: r.stderr, ran };
  };

  it("runs the script when it is there as copied, as root and through sudo -n for another user", () => {
    mkdirSync(join(home, remote), { recursive: true });
    writeFileSync(file, script);
    expect(run("root")).toEqual({ code: 0, stderr: "", ran: true });
    // this machine runs the tests as root, so sudo -n succeeds
    expect(execFileSync("id", ["-u"], { encoding: "utf8" }).trim()).toBe("0");
    expect(run("admin")).toEqual({ code: 0, stderr: "", ran: true });
  });

  it("a missing or changed script: exits 1 naming the file and the fix, and runs nothing", () => {
    // changed but still harmless: were it run, it would write the marker
    writeFileSync(file, `${script}# changed\n`);
    for (const user of ["root", "admin"]) {
      const r = run(user);
      expect(r.code).toBe(1);
      expect(r.ran).toBe(false);
      expect(r.stderr).toMatch(
        new RegExp(`^mptcp-pulumi\\[server\\]: error: ${home}/\\.mptcp-pulumi/mptcp\\.test\\.server/[0-9a-f]{64}\\.sh missing or changed: pulumi up --replace '\\*\\*::server-scripts'\n$`),
      );
    }
    rmSync(file);
    expect(run("root")).toMatchObject({ code: 1, ran: false });
  });
});
