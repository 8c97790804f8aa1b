// The subflow arithmetic against the kernel, on three paths (lan, wlan, lte): for client endpoint
// combinations (subflow, fullmesh, backup, on the interface the connection starts on or not) with
// a server that signals its wlan address, and for signal combinations (one or two announcements,
// signal with backup, each limit that can cut them: the client's add_addr_accepted and subflows,
// the server's subflows), `npm run verify`'s check (joins from MPJoin counters, subflows from
// MPTCP_INFO, paths carrying data) matches the model's prediction on every one.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectedJoins, requireValidConfig } from "../components";
import { labSh, labStackConfig } from "../scripts/lab/lab";
import { readTopology } from "../scripts/lab/topology";
import { connectAll, Session } from "../scripts/verify/ssh";
import { formatReports, verifyLink } from "../scripts/verify/verify";
import { labFile } from "./harness/fixture";
import { runProgram } from "./harness/program";

const f = labFile(readTopology(join(__dirname, "fixtures", "three-paths.topology.yaml")), "p");
let sessions: Map<string, Session>;

interface Case {
  name: string;
  /** The client's endpoints; the connection starts on lan (the client dials the server's lan address). */
  client?: object[];
  /** The server's announcements (interfaces, with flags besides signal); default: wlan. */
  signals?: { interface: string; flags?: string[] }[];
  /**
   * A limit set by hand below what the endpoints want, after the up (validation refuses such a
   * config, saying a path would be dropped: this shows the kernel does drop it).
   */
  cut?: { host: "client" | "server"; subflows?: number; addAddrAccepted?: number };
  /** What kernel 6.18 does, measured by hand first. */
  joins: number;
}

const BOTH = [{ interface: "wlan" }, { interface: "lte" }];
const CASES: Case[] = [
  { name: "no endpoints: the announcement only", joins: 1 },
  { name: "subflow on wlan", client: [{ interface: "wlan", flags: ["subflow"] }], joins: 2 },
  { name: "subflow on lan, where the connection starts", client: [{ interface: "lan", flags: ["subflow"] }], joins: 1 },
  {
    name: "subflow on lan and wlan",
    client: [
      { interface: "lan", flags: ["subflow"] },
      { interface: "wlan", flags: ["subflow"] },
    ],
    joins: 2,
  },
  {
    name: "subflow and fullmesh on lan and wlan",
    client: [
      { interface: "lan", flags: ["subflow", "fullmesh"] },
      { interface: "wlan", flags: ["subflow", "fullmesh"] },
    ],
    joins: 3,
  },
  { name: "subflow and fullmesh on wlan", client: [{ interface: "wlan", flags: ["subflow", "fullmesh"] }], joins: 2 },
  { name: "subflow and backup on wlan", client: [{ interface: "wlan", flags: ["subflow", "backup"] }], joins: 2 },
  { name: "two announcements (wlan, lte), both accepted", signals: BOTH, joins: 2 },
  { name: "two announcements, the client accepts one (add_addr_accepted 1)", signals: BOTH, cut: { host: "client", addAddrAccepted: 1 }, joins: 1 },
  { name: "two announcements, the client's subflows limit 1", signals: BOTH, cut: { host: "client", subflows: 1 }, joins: 1 },
  { name: "two announcements, the server's subflows limit 1", signals: BOTH, cut: { host: "server", subflows: 1 }, joins: 1 },
  { name: "two announcements, lte signalled as backup", signals: [{ interface: "wlan" }, { interface: "lte", flags: ["backup"] }], joins: 2 },
  { name: "two announcements and subflow on wlan", signals: BOTH, client: [{ interface: "wlan", flags: ["subflow"] }], joins: 3 },
  { name: "two announcements and fullmesh on wlan", signals: BOTH, client: [{ interface: "wlan", flags: ["subflow", "fullmesh"] }], joins: 3 },
];

function stackFor(c: Case) {
  const cfg = labStackConfig(f.lab) as { hosts: any[]; links: any[] };
  const server = cfg.hosts.find((h) => h.name === "server");
  const announced = new Map<string, { address: string }>(server.endpoints.map((e: { interface: string; address: string }) => [e.interface, e]));
  server.endpoints = (c.signals ?? [{ interface: "wlan" }]).map((s) => ({ ...announced.get(s.interface)!, flags: ["signal", ...(s.flags ?? [])] }));
  Object.assign(server.limits, { subflows: 8 });
  Object.assign(
    cfg.hosts.find((h) => h.name === "client"),
    { limits: { subflows: 8, addAddrAccepted: 2 }, endpoints: c.client ?? [] },
  );
  return cfg;
}

beforeAll(async () => {
  const connected = await connectAll(requireValidConfig(stackFor(CASES[0])).hosts, { privateKey: f.privateKey });
  sessions = connected.sessions;
});

afterAll(async () => {
  for (const s of sessions?.values() ?? []) s.close();
  await f.sim.destroy().catch(() => undefined);
});

describe("predicted joins match the kernel's for each endpoint and limit combination", () => {
  for (const c of CASES) {
    const [name, kernel] = [c.name, c.joins];
    it(name, async () => {
      const cfg = stackFor(c);
      await f.sim.up((await runProgram(cfg, { privateKey: f.privateKey })).commands);
      const model = requireValidConfig(cfg);
      const [client, server] = ["client", "server"].map((n) => model.hosts.find((h) => h.name === n)!);
      let r: Awaited<ReturnType<typeof verifyLink>>;
      if (c.cut) {
        const { host, ...cut } = c.cut;
        const h = host === "client" ? client : server;
        const was = { ...h.limits };
        // validation refuses this config, naming the path the limit drops
        const refused = structuredClone(cfg);
        Object.assign(refused.hosts.find((x) => x.name === host).limits, cut);
        expect(() => requireValidConfig(refused)).toThrow(new RegExp(`mptcp:hosts\\[${cfg.hosts.findIndex((x) => x.name === host)}\\]\\.limits\\.${Object.keys(cut)[0]}: is 1 but`));
        Object.assign(h.limits, cut);
        const laptop = f.lab.hosts.find((x) => x.name === host)!;
        const set = (l: { subflows?: number; addAddrAccepted?: number }) => labSh(laptop, `ip mptcp limits set subflows ${l.subflows} add_addr_accepted ${l.addAddrAccepted}`);
        set(h.limits);
        try {
          r = await verifyLink(model, model.links[0], sessions);
        } finally {
          set(was);
        }
      } else {
        r = await verifyLink(model, model.links[0], sessions);
      }
      const predicted = expectedJoins(client, server, model.links[0].address, "lan");
      console.log(`${name}: predicted ${predicted} (first interface unknown: ${expectedJoins(client, server, model.links[0].address)}), observed ${r.joins?.observed}\n${formatReports([r])}`);
      expect(predicted).toBe(kernel); // what 6.18 does, measured by hand first
      expect(r.problems).toEqual([]);
      expect(r.joins).toEqual({ observed: kernel, predicted: kernel });
    });
  }
});

describe("links[].reaches is checked against the client's routes", () => {
  it("a reaches that leaves out an address the client routes to: verify names it, and still predicts from the routes", async () => {
    const cfg = stackFor(CASES[0]);
    await f.sim.up((await runProgram(cfg, { privateKey: f.privateKey })).commands);
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
