// A router namespace between this machine and a laptop: the client has no management link, and
// SSH reaches it through router r1 over its uplink path. The product's commands apply and revert
// over that routed SSH; with forwarding off in the router, SSH to the client fails.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { labExec, labSh, labStackConfig } from "../scripts/lab/lab";
import { readTopology } from "../scripts/lab/topology";
import { labFile } from "./harness/fixture";
import { run } from "./harness/scratch";
import { runProgram } from "./harness/program";
import { limits, snapshot } from "./harness/labtest";

const topology = readTopology(join(__dirname, "fixtures", "router.topology.yaml"));
// one connection per command, as the provider: the negative control cuts the routed SSH path
// One dial of at most 5 s, shortened explicitly (the provider: 11 of up to 15 s, about 3 min
// through a router that drops everything, test/harness/ssh.ts PROVIDER_TIMINGS): the negative
// control's probe must give up within the test's time
const f = labFile(topology, "r", { reuseSsh: false, sshTimings: { dialErrorLimit: 0, perDialTimeoutMs: 5000 } });

/** A command over SSH to the client, as the command provider runs it with the lab's stack config. */
function overSsh(command: string) {
  const client = (labStackConfig(f.lab).hosts as { name: string; ssh: object }[]).find((h) => h.name === "client")!;
  return f.ssh.run({ name: "probe", urn: "", connection: { ...client.ssh, privateKey: f.privateKey }, dependsOn: [], deleteBeforeReplace: false, inputs: {} }, command, "create");
}

describe("SSH through a router", () => {
  it("the client has no management link; its SSH address is on the uplink behind r1, and sshd sees this machine arrive there", async () => {
    const client = f.host("client");
    expect(client.mgmtAddress).toBe("198.51.100.34");
    expect(labExec(client, "ip link show mgmt").code).not.toBe(0);
    expect(labSh(client, "ip -4 route show 203.0.113.0/24")).toContain("via 198.51.100.33 dev uplink");
    const r = await overSsh("echo $SSH_CONNECTION");
    console.log(`SSH_CONNECTION on the client: ${r.stdout}`);
    expect(r.stdout).toMatch(/^203\.0\.113\.\d+ \d+ 198\.51\.100\.34 22$/);
  });

  it("the product applies and reverts over the routed SSH", async () => {
    const client = f.host("client");
    const before = snapshot(client);
    const steps = await f.sim.up((await runProgram(labStackConfig(f.lab), { privateKey: f.privateKey })).commands);
    expect(steps.map((s) => s.name)).toContain("client-limits");
    expect(limits(client)).toEqual({ subflows: 1, addAddrAccepted: 1 });
    await f.sim.destroy();
    expect(snapshot(client)).toBe(before);
  });

  it("negative control: with forwarding off in r1, SSH to the client fails; back on, it works", async () => {
    const forwarding = (v: number) => run(["ip", "netns", "exec", f.lab.routers[0].netns, "sysctl", "-qw", `net.ipv4.ip_forward=${v}`]);
    forwarding(0);
    try {
      expect((await overSsh("true")).code).not.toBe(0);
    } finally {
      forwarding(1);
    }
    expect((await overSsh("true")).code).toBe(0);
  });
});
