// A revert that cannot restore fails, saying what it cannot restore and how to recover; it never
// claims success. Control: with the saved originals in place, the same reverts restore exactly.
import { beforeAll, describe, expect, it } from "vitest";
import { STATE_DIR } from "../components";
import { labSh, labStackConfig } from "../scripts/lab/lab";
import { DEFAULT_TOPOLOGY } from "../scripts/lab/topology";
import { labFile } from "./harness/fixture";
import { runProgram, StackConfig } from "./harness/program";
import { snapshot } from "./harness/labtest";

const f = labFile(DEFAULT_TOPOLOGY, "v");
let config: StackConfig;
const pre = new Map<string, string>();

beforeAll(async () => {
  const cfg = labStackConfig(f.lab) as { hosts: any[]; links: unknown };
  Object.assign(cfg.hosts[1], { hooks: true, endpoints: [{ interface: "wlan", flags: [] }] });
  for (const h of cfg.hosts) h.services = [{ unit: "iperf3.service" }];
  config = cfg;
  for (const h of f.lab.hosts) pre.set(h.name, snapshot(h));
  await f.sim.up((await runProgram(config, { privateKey: f.privateKey })).commands);
});

/** The host's commands that run a script of ours (not the scripts' copy or its cleanup), last first. */
const commandsOf = (host: string) => [...f.sim.state.values()].filter((c) => c.name.startsWith(`${host}-`) && !c.copy && c.create !== undefined).reverse();

describe("reverts never claim what they cannot do", () => {
  it(`with ${STATE_DIR} removed by hand, every revert fails naming what it cannot restore and how to recover`, async () => {
    const client = f.host("client");
    labSh(client, `rm -rf ${STATE_DIR}`);
    // a confirmation's delete restores nothing (it stops a pending rollback): it succeeds either way
    for (const c of commandsOf("client").filter((x) => x.name.endsWith("-confirm"))) {
      const r = await f.ssh.run(c, c.delete!, "delete");
      expect(r.code, c.name).toBe(0);
      expect(r.stdout).toMatch(/no rollback pending/);
    }
    // the anchor's delete reverts only what this entry still has on record here: nothing
    const reverts = commandsOf("client").filter((x) => !x.name.endsWith("-confirm") && !x.name.endsWith("-anchor"));
    expect(reverts.map((c) => c.name)).toEqual(["client-services", "client-hooks", "client-endpoints", "client-networkmanager", "client-limits", "client-sysctl"]);
    for (const c of reverts) {
      const r = await f.ssh.run(c, c.delete!, "delete");
      console.log(`${c.name} revert: exit ${r.code}: ${r.stderr.split(": ").slice(1, 3).join(": ")}`);
      expect(r.code, c.name).toBe(1);
      expect(r.stderr).toMatch(
        /mptcp-pulumi\[client\]: error: cannot restore (service drop-ins|interface hooks|endpoint table|NetworkManager settings|ip mptcp limits|net\.mptcp settings): \/var\/lib\/mptcp-pulumi\/\S+ is missing .*the host keeps what mptcp-pulumi applied.*pulumi state delete/,
      );
      expect(r.stdout).not.toMatch(/restored|removed/);
    }
  });

  it("control: with the saved originals in place, the same reverts succeed and restore the pre-up state exactly", async () => {
    const server = f.host("server");
    for (const c of commandsOf("server")) {
      const r = await f.ssh.run(c, c.delete!, "delete");
      expect(r.code, `${c.name}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(/restored|removed|no rollback pending|nothing of host entry server is applied here/);
    }
    // then what destroy runs last: the copied scripts' cleanup
    const cleanup = f.sim.state.get("server-scripts-cleanup")!;
    expect((await f.ssh.run(cleanup, cleanup.delete!, "delete")).code).toBe(0);
    expect(snapshot(server)).toBe(pre.get("server"));
  });
});
