// A non-root SSH user: everything runs through `sudo -n`; without a NOPASSWD rule the apply fails
// with a clear message and changes nothing. The user exists only in one laptop's private /etc.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { labSh, labStackConfig, LabState } from "../scripts/lab/lab";
import { DEFAULT_TOPOLOGY } from "../scripts/lab/topology";
import { startLab, stopLab } from "./harness/fixture";
import { runProgram, StackConfig } from "./harness/program";
import { CommandProviderSim } from "./harness/provider";
import { SshRunner } from "./harness/ssh";
import { limits, snapshot } from "./harness/labtest";

let lab: LabState;
let ssh: SshRunner;
let privateKey: string;
let config: StackConfig;

beforeAll(async () => {
  ({ lab, ssh, privateKey } = await startLab(DEFAULT_TOPOLOGY, 6, "s"));
  // a login user with no password (not locked) and no home on this machine
  labSh(lab.hosts[1], "useradd -M -d /nonexistent -s /bin/sh admin && usermod -p '*' admin");
  const cfg = labStackConfig(lab) as { hosts: any[]; links: unknown };
  cfg.hosts[1].ssh.user = "admin";
  config = cfg;
});

afterAll(() => stopLab({ lab, ssh }));

describe("a non-root SSH user", () => {
  it("without a NOPASSWD sudo rule: a clear error, nothing changed", async () => {
    const before = snapshot(lab.hosts[1]);
    const sim = new CommandProviderSim(ssh.run);
    const err = await sim.up((await runProgram(config, { privateKey })).commands).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/mptcp-pulumi\[client\]: error: user admin cannot run sudo without a password: add a NOPASSWD sudoers rule/);
    expect(snapshot(lab.hosts[1])).toBe(before);
    await sim.destroy();
  });

  it("with a NOPASSWD sudo rule: applies through sudo -n and destroy restores", async () => {
    const host = lab.hosts[1];
    labSh(host, "echo 'admin ALL=(root) NOPASSWD: ALL' > /etc/sudoers.d/admin && chmod 440 /etc/sudoers.d/admin");
    const before = snapshot(host);
    const sim = new CommandProviderSim(ssh.run);
    const steps = await sim.up((await runProgram(config, { privateKey })).commands);
    const client = steps.filter((s) => s.name.startsWith("client-"));
    console.log(`sudo: ${client.map((s) => s.name).join(", ")} applied as admin; limits now ${JSON.stringify(limits(host))}`);
    expect(client.length).toBeGreaterThan(0);
    expect(limits(host)).toEqual((config.hosts as { limits: object }[])[1].limits);
    await sim.destroy();
    expect(snapshot(host)).toBe(before);
  });
});
