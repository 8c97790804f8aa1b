// A non-root SSH user: everything runs through `sudo -n`; without a NOPASSWD rule the apply fails
// with a clear message and changes nothing. Every laptop has the lab's login user (LAB_USER) with
// such a rule, in its own /etc; the first test takes the rule away.
import { beforeAll, describe, expect, it } from "vitest";
import { LAB_USER, labSh, labStackConfig } from "../scripts/lab/lab";
import { DEFAULT_TOPOLOGY } from "../scripts/lab/topology";
import { labFile } from "./harness/fixture";
import { runProgram, StackConfig } from "./harness/program";
import { CommandProviderSim } from "./harness/provider";
import { hostState, limits, snapshot, unstaged } from "./harness/labtest";

const f = labFile(DEFAULT_TOPOLOGY, "s");
let config: StackConfig;

beforeAll(async () => {
  const cfg = labStackConfig(f.lab) as { hosts: any[]; links: unknown };
  cfg.hosts[1].ssh.user = LAB_USER;
  config = cfg;
});

describe("a non-root SSH user", () => {
  it("without a NOPASSWD sudo rule: a clear error, nothing changed", async () => {
    labSh(f.lab.hosts[1], "mv /etc/sudoers.d/mptcp-lab-user /root/sudo-rule");
    const before = snapshot(f.lab.hosts[1]);
    const sim = new CommandProviderSim(f.ssh.run);
    const err = await sim.up((await runProgram(config, { privateKey: f.privateKey })).commands).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toContain(`mptcp-pulumi[client]: error: user ${LAB_USER} cannot run sudo without a password: add a NOPASSWD sudoers rule`);
    // nothing changed but the scripts the copy delivered to the user's home, which destroy removes
    expect(hostState(f.lab.hosts[1])).toBe(unstaged(before));
    await sim.destroy();
    expect(snapshot(f.lab.hosts[1])).toBe(before);
  });

  it("with a NOPASSWD sudo rule: applies through sudo -n and destroy restores", async () => {
    const host = f.lab.hosts[1];
    labSh(host, "mv /root/sudo-rule /etc/sudoers.d/mptcp-lab-user");
    const before = snapshot(host);
    const sim = new CommandProviderSim(f.ssh.run);
    const steps = await sim.up((await runProgram(config, { privateKey: f.privateKey })).commands);
    const client = steps.filter((s) => s.name.startsWith("client-"));
    console.log(`sudo: ${client.map((s) => s.name).join(", ")} applied as ${LAB_USER}; limits now ${JSON.stringify(limits(host))}`);
    expect(client.length).toBeGreaterThan(0);
    expect(limits(host)).toEqual((config.hosts as { limits: object }[])[1].limits);
    await sim.destroy();
    expect(snapshot(host)).toBe(before);
  });
});
