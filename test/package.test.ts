// The package as another project gets it: `npm pack`, the tarball installed into a project of its
// own, imported and type-checked there, and run under the SDK's mocks: its components register
// their resources, and nothing of this repository's stack program runs.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HOST_TYPE, NETWORK_TYPE } from "../components/render";
import { ROOT } from "./harness/cli";

const dir = mkdtempSync(join(tmpdir(), "mptcp-package-"));
const consumer = join(dir, "consumer");
const TSC = join(ROOT, "node_modules", ".bin", "tsc");

function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", env, timeout: 120_000 });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}`, stdout: r.stdout };
}

/** A consumer's tsconfig: CommonJS with classic node resolution (`types`), or node16 (`exports`). */
function tsconfig(resolution: "node" | "node16"): void {
  const module = resolution === "node" ? "commonjs" : "node16";
  writeFileSync(
    join(consumer, "tsconfig.json"),
    JSON.stringify({ compilerOptions: { target: "ES2022", module, moduleResolution: resolution, strict: true, skipLibCheck: true, outDir: "out" }, include: ["*.ts"] }),
  );
}

/** A program of the consumer's: MptcpHost with an SSH address and an endpoint address from another resource's output (a partial host: only what it sets). */
const PROGRAM = `import * as pulumi from "@pulumi/pulumi";
import { EndpointFlag, MptcpHost, MptcpHostArgs, MptcpNetwork } from "mptcp-pulumi";

/** Stands in for a cloud VM: its address is known once it exists. */
class Vm extends pulumi.CustomResource {
  declare readonly publicIp: pulumi.Output<string>;
  constructor(name: string) {
    super("cloud:index:Vm", name, { publicIp: undefined });
  }
}
const address = new Vm("vm").publicIp;
const args: MptcpHostArgs = {
  ssh: { host: address, insecureIgnoreHostKey: true, privateKey: "KEY-MARKER" },
  limits: { subflows: LIMIT },
  endpoints: [{ interface: "wlan0", address, flags: [EndpointFlag.Signal, "backup"] }],
};
export const applied = new MptcpHost("server", args).applied;
export const links = new MptcpNetwork("net", {
  hosts: [
    { name: "a", ssh: { host: "198.51.100.8", insecureIgnoreHostKey: true }, limits: { addAddrAccepted: 1 } },
    { name: "b", ssh: { host: "198.51.100.9", insecureIgnoreHostKey: true }, endpoints: [{ interface: "eth1", address: "198.51.100.19", flags: ["signal"] }] },
  ],
  links: [{ client: "a", server: "b" }],
}).links;
`;

/** Runs the compiled program under mocks (the Vm's publicIp: 198.51.100.7) and prints what it registered and its outputs. */
const RUNNER = `const pulumi = require("@pulumi/pulumi");
const seen = [];
pulumi.runtime.setMocks({
  newResource: (a) => { seen.push({ type: a.type, name: a.name, keyed: JSON.stringify(a.inputs.connection ?? null).includes("KEY-MARKER"), secret: JSON.stringify(a.inputs.connection ?? null).includes("4dabf18193072939515e22adb298388d") }); return { id: a.name + "-id", state: a.type === "cloud:index:Vm" ? { publicIp: "198.51.100.7" } : { ...a.inputs, stdout: "@applied limits add_addr_accepted 0 subflows 2" } }; },
  call: () => { throw new Error("no calls"); },
}, "consumer", "dev", false).then(async () => {
  const program = require(process.argv[2]);
  await require("@pulumi/pulumi/runtime/settings").waitForRPCs();
  const links = await new Promise((r) => program.links.apply((v) => { r(v); return v; }));
  const applied = await new Promise((r) => program.applied.apply((v) => { r(v); return v; }));
  console.log(JSON.stringify({ seen, links, applied }));
});
`;

beforeAll(() => {
  // npm pack runs `prepare` (the build) as it would before a publish
  const pack = sh("npm", ["pack", "--pack-destination", dir], ROOT);
  expect(pack.code, pack.out).toBe(0);
  const tarball = readdirSync(dir).find((f) => f.endsWith(".tgz"))!;
  mkdirSync(consumer);
  writeFileSync(join(consumer, "package.json"), JSON.stringify({ name: "consumer", version: "0.0.0", private: true }));
  const install = sh("npm", ["install", join(dir, tarball), "--prefer-offline", "--no-audit", "--no-fund"], consumer);
  expect(install.code, install.out).toBe(0);
  writeFileSync(join(consumer, "run.js"), RUNNER);
}, 300_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the package, installed from its npm pack tarball into another project", () => {
  for (const resolution of ["node", "node16"] as const) {
    it(`type-checks a program that passes outputs for ssh.host and an endpoint address and sets only some fields (moduleResolution ${resolution}); a wrong type is refused (control)`, () => {
      tsconfig(resolution);
      writeFileSync(join(consumer, "index.ts"), PROGRAM.replace("LIMIT", "2"));
      const ok = sh(TSC, ["-p", ".", "--noEmit"], consumer);
      expect(ok.code, ok.out).toBe(0);
      writeFileSync(join(consumer, "index.ts"), PROGRAM.replace("LIMIT", '"2"'));
      const bad = sh(TSC, ["-p", ".", "--noEmit"], consumer);
      expect(bad.code).not.toBe(0);
      expect(bad.out).toMatch(/index\.ts\(\d+,\d+\): error TS2322: Type 'string' is not assignable to type 'number'/);
    });
  }

  it("runs under the SDK's mocks: the components register their commands, the private key only in connections; the stack program does not run", () => {
    tsconfig("node");
    writeFileSync(join(consumer, "index.ts"), PROGRAM.replace("LIMIT", "2"));
    const build = sh(TSC, ["-p", "."], consumer);
    expect(build.code, build.out).toBe(0);
    const stage = join(dir, "stage");
    const run = sh(process.execPath, ["run.js", "./out/index.js"], consumer, { ...process.env, MPTCP_PULUMI_STAGE_DIR: stage });
    expect(run.code, run.out).toBe(0);
    const { seen, links, applied } = JSON.parse(run.stdout.trim().split("\n").pop()!);
    const types = seen.map((r: { type: string; name: string }) => `${r.type} ${r.name}`);
    expect(types).toContain(`${HOST_TYPE} server`);
    expect(types).toContain(`${NETWORK_TYPE} net`);
    for (const n of ["server-scripts", "server-anchor", "server-limits", "server-networkmanager", "server-endpoints", "server-endpoints-confirm", "a-limits", "b-endpoints"])
      expect(
        types.some((t: string) => t.endsWith(` ${n}`)),
        n,
      ).toBe(true);
    // the key, passed as a plain string, reaches only the server's connections, each one a secret (the SDK's secret signature)
    const keyed = seen.filter((r: { keyed: boolean }) => r.keyed);
    expect(keyed.length).toBeGreaterThan(0);
    expect(keyed.every((r: { name: string; secret: boolean }) => r.name.startsWith("server-") && r.secret)).toBe(true);
    // nothing of this repository's stack program: no network of its, no stack config read
    expect(types).not.toContain(`${NETWORK_TYPE} mptcp`);
    expect(run.out).not.toMatch(/mptcp:hosts/);
    expect(links).toEqual([{ client: "a", server: "b", address: "198.51.100.9", joins: 1, subflows: 2 }]);
    expect(applied).toEqual({ limits: { subflows: 2, addAddrAccepted: 0 } });
  });

  it("a bad arg fails naming its path and the fix, and registers no command (control: the same runner does register them above)", () => {
    tsconfig("node");
    writeFileSync(join(consumer, "index.ts"), PROGRAM.replace("LIMIT", "9"));
    const build = sh(TSC, ["-p", "."], consumer);
    expect(build.code, build.out).toBe(0);
    const run = sh(process.execPath, ["run.js", "./out/index.js"], consumer, { ...process.env, MPTCP_PULUMI_STAGE_DIR: join(dir, "stage") });
    expect(run.code).not.toBe(0);
    expect(run.out).toContain(`1 error in MptcpHost "server"'s args:\n  args.limits.subflows: must be at most 8 (the kernel's maximum)`);
    expect(run.out).not.toContain("command:remote");
  });
});
