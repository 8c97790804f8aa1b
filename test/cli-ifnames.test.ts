// npm run verify and npm run check on laptops with interfaces named like options (issue 26, item
// 12): a veth pair named "-e" and "--help" on every laptop. verify read its
// byte counters with `grep -H . */statistics/...`, which handed the names to grep as options
// (--help printed grep's usage instead of the counters); it now passes them after `--`. After
// pulumi up, verify still matches every link and check still finds every host in step. Negative
// control: the old command form on the same laptop prints no counter at all.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { labExec, labSh, labStackConfig } from "../scripts/lab/lab";
import { DEFAULT_TOPOLOGY, readTopology, Topology } from "../scripts/lab/topology";
import { checkMain } from "../scripts/check";
import { verifyMain } from "../scripts/verify";
import { labFile } from "./harness/fixture";
import { runProgram } from "./harness/program";
import { inProcess } from "./harness/cli";

const NAMES = ["-e", "--help"];
const dir = mkdtempSync(join(tmpdir(), "mptcp-ifnames-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function suite(what: string, topology: Topology, prefix: string) {
  const f = labFile(topology, prefix);
  let file: string;

  beforeAll(async () => {
    const config = labStackConfig(f.lab);
    // the stack's name is the file's (Pulumi.lab.yaml), as the apply's: a folder per lab
    mkdirSync(join(dir, prefix));
    file = join(dir, prefix, "Pulumi.lab.yaml");
    writeFileSync(file, stringify({ config: { "mptcp:hosts": config.hosts, "mptcp:links": config.links } }));
    await f.sim.up((await runProgram(config, { privateKey: f.privateKey, stack: "lab" })).commands);
    for (const h of f.lab.hosts) {
      // a veth pair inside the laptop (this kernel has no dummy module): `ip link add name NAME`
      // takes a name that starts with a dash as the name, since it follows "name"
      labSh(h, `ip link add name '${NAMES[0]}' type veth peer name '${NAMES[1]}' && ip link set dev '${NAMES[0]}' up && ip link set dev '${NAMES[1]}' up`);
    }
  });

  const cli = (tool: "verify" | "check", ...args: string[]) => inProcess(tool, tool === "verify" ? verifyMain : checkMain, [file, "--identity", f.lab.privateKeyFile, ...args]);

  describe(`interfaces named like options (issue 26, item 12), ${what}`, () => {
    it("every laptop has them", () => {
      for (const h of f.lab.hosts) expect(labSh(h, "ls /sys/class/net").split("\n")).toEqual(expect.arrayContaining(NAMES));
    });

    it("negative control: the old counter read (grep -H . */statistics/...) prints grep's usage, no counter", () => {
      for (const h of f.lab.hosts) {
        const r = labExec(h, "cd /sys/class/net && grep -H . */statistics/rx_bytes */statistics/tx_bytes");
        expect(r.stdout + r.stderr).toMatch(/Usage: grep/);
        expect(r.stdout).not.toMatch(/^lo\/statistics\/rx_bytes:\d+$/m);
      }
    });

    it("the new one (grep -H -e . -- ...) reads every interface's counters, theirs included", () => {
      for (const h of f.lab.hosts) {
        const out = labSh(h, "cd /sys/class/net && grep -H -e . -- */statistics/rx_bytes */statistics/tx_bytes");
        for (const name of [...NAMES, "lo"]) expect(out).toMatch(new RegExp(`^${name.replace(/-/g, "\\-")}/statistics/tx_bytes:\\d+$`, "m"));
      }
    });

    it("npm run verify: every link as predicted, exit 0", async () => {
      const r = await cli("verify", "--json");
      expect(r.code, r.out + r.err).toBe(0);
      const report = JSON.parse(r.out);
      expect(report.ok).toBe(true);
      // the counters of the dash-named interfaces were read (the pair's own IPv6 chatter, no transfer)
      for (const l of report.links) for (const name of NAMES) expect(l.bytes.client[name], `${l.at} ${name}`).toBeLessThan(10_000);
    });

    it("npm run check: every host in step, exit 0", async () => {
      const r = await cli("check", "--json");
      expect(r.code, r.out + r.err).toBe(0);
      const report = JSON.parse(r.out);
      expect(report.hosts.map((h: { status: string }) => h.status)).toEqual(f.lab.hosts.map(() => "in step"));
      console.log(report.hosts.map((h: { host: string; stack: string[] }) => `${h.host}: ${h.stack.join(" / ")}`).join("\n"));
    });
  });
}

suite("ifupdown laptops", DEFAULT_TOPOLOGY, "q");
// NetworkManager sees the pair too: check asks nmcli about its devices
suite("NetworkManager laptops", readTopology(join(__dirname, "fixtures", "networkmanager.topology.yaml")), "k");
