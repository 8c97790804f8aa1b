// The subflow arithmetic against the kernel: for client endpoint combinations (subflow, fullmesh,
// backup, on the interface the connection starts on or not) with a server that signals its wlan
// address, `npm run verify`'s check (joins from MPJoin counters, subflows from MPTCP_INFO, paths
// carrying data) matches the model's prediction on every one.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectedJoins, requireValidConfig } from "../components";
import { LabState, labStackConfig } from "../scripts/lab/lab";
import { DEFAULT_TOPOLOGY } from "../scripts/lab/topology";
import { connectAll, Session } from "../scripts/verify/ssh";
import { formatReports, verifyLink } from "../scripts/verify/verify";
import { startLab, stopLab } from "./harness/fixture";
import { runProgram } from "./harness/program";
import { CommandProviderSim } from "./harness/provider";
import { SshRunner } from "./harness/ssh";

let lab: LabState;
let ssh: SshRunner;
let sim: CommandProviderSim;
let privateKey: string;
let sessions: Map<string, Session>;

/** Client endpoints per case; the connection starts on lan (the client dials the server's lan address). */
const CASES: [string, object[], number][] = [
  ["no endpoints: the announcement only", [], 1],
  ["subflow on wlan", [{ interface: "wlan", flags: ["subflow"] }], 2],
  ["subflow on lan, where the connection starts", [{ interface: "lan", flags: ["subflow"] }], 1],
  ["subflow on lan and wlan", [{ interface: "lan", flags: ["subflow"] }, { interface: "wlan", flags: ["subflow"] }], 2],
  ["subflow and fullmesh on lan and wlan", [{ interface: "lan", flags: ["subflow", "fullmesh"] }, { interface: "wlan", flags: ["subflow", "fullmesh"] }], 3],
  ["subflow and fullmesh on wlan", [{ interface: "wlan", flags: ["subflow", "fullmesh"] }], 2],
  ["subflow and backup on wlan", [{ interface: "wlan", flags: ["subflow", "backup"] }], 2],
];

function stackFor(endpoints: object[]) {
  const cfg = labStackConfig(lab) as { hosts: any[]; links: any[] };
  Object.assign(cfg.hosts.find((h) => h.name === "server").limits, { subflows: 8 });
  Object.assign(cfg.hosts.find((h) => h.name === "client"), { limits: { subflows: 8, addAddrAccepted: 1 }, endpoints });
  return cfg;
}

beforeAll(async () => {
  ({ lab, ssh, sim, privateKey } = await startLab(DEFAULT_TOPOLOGY, "p"));
  const connected = await connectAll(requireValidConfig(stackFor([])).hosts, { privateKey });
  sessions = connected.sessions;
});

afterAll(async () => {
  for (const s of sessions?.values() ?? []) s.close();
  await sim.destroy().catch(() => undefined);
  await stopLab({ lab, ssh });
});

describe("predicted joins match the kernel's for each client endpoint combination", () => {
  for (const [name, endpoints, kernel] of CASES) {
    it(name, async () => {
      const cfg = stackFor(endpoints);
      await sim.up((await runProgram(cfg, { privateKey })).commands);
      const model = requireValidConfig(cfg);
      const [client, server] = ["client", "server"].map((n) => model.hosts.find((h) => h.name === n)!);
      const predicted = expectedJoins(client, server, model.links[0].address, "lan");
      const r = await verifyLink(model, model.links[0], sessions);
      console.log(`${name}: predicted ${predicted} (first interface unknown: ${expectedJoins(client, server, model.links[0].address)}), observed ${r.joins?.observed}\n${formatReports([r])}`);
      expect(predicted).toBe(kernel); // what 6.18 does, measured by hand first
      expect(r.problems).toEqual([]);
      expect(r.joins).toEqual({ observed: kernel, predicted: kernel });
    });
  }
});

describe("links[].reaches is checked against the client's routes", () => {
  it("a reaches that leaves out an address the client routes to: verify names it, and still predicts from the routes", async () => {
    const cfg = stackFor([]);
    await sim.up((await runProgram(cfg, { privateKey })).commands);
    const announced = cfg.hosts.find((h) => h.name === "server").endpoints[0].address;
    for (const [reaches, problem] of [
      [[announced], undefined],
      [[], `mptcp:links[0].reaches leaves out ${announced}, but client has a route to it`],
    ] as const) {
      const model = requireValidConfig({ ...cfg, links: cfg.links.map((l) => ({ ...l, reaches })) });
      const r = await verifyLink(model, model.links[0], sessions);
      expect(r.joins).toEqual({ observed: 1, predicted: 1 });
      expect(r.problems).toEqual(problem ? [problem] : []);
    }
  });
});
