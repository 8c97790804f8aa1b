// npm run verify checks where each join went, not only how many there were. The default
// two-laptop stack (the server announces wlan, the client joins to it) verifies with the join
// predicted by the server's signal endpoint. Then the failure found with a NetworkManager client:
// the server's signal endpoint is gone (nothing announced) and an endpoint the config does not
// declare (NetworkManager's `subflow` on wlan; added here by hand) makes the join instead. The
// count, the subflows and the bytes per interface all still match the prediction (negative
// control: the checks verify had before pass), and only the address check catches it: exit 1,
// naming the host, the address and interface, what was predicted and the config path to fix.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { requireValidConfig } from "../components";
import { labSh, labStackConfig } from "../scripts/lab/lab";
import { DEFAULT_TOPOLOGY, pathAddress } from "../scripts/lab/topology";
import { verifyMain } from "../scripts/verify";
import { ENDPOINT_HINT } from "../scripts/verify/verify";
import { inProcess } from "./harness/cli";
import { labFile } from "./harness/fixture";
import { runProgram } from "./harness/program";

const dir = mkdtempSync(join(tmpdir(), "mptcp-verify-joins-"));
const f = labFile(DEFAULT_TOPOLOGY, "j");
let file: string;
/** Each laptop's address on each path. */
let addr: (host: string, path: string) => string;

const verify = (...args: string[]) => inProcess("verify", verifyMain, [file, "--identity", f.lab.privateKeyFile, ...args]);
const laptop = f.host;

beforeAll(async () => {
  const config = labStackConfig(f.lab) as { hosts: any[]; links: any[] };
  file = join(dir, "Pulumi.lab.yaml");
  writeFileSync(file, stringify({ config: { "mptcp:hosts": config.hosts, "mptcp:links": config.links } }));
  addr = (host, path) => pathAddress(f.lab.topology, host, path);
  await f.sim.up((await runProgram(config, { privateKey: f.privateKey, stack: "lab" })).commands);
});

afterAll(async () => {
  await f.sim?.destroy().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

describe("npm run verify checks each join's addresses against the config's endpoints", () => {
  it("the applied default stack: exit 0, the one join goes from the client's wlan to the announced wlan address", async () => {
    const r = await verify("--json");
    expect(r.code, r.out).toBe(0);
    const link = JSON.parse(r.out).links[0];
    expect(link.joins).toEqual({ observed: 1, predicted: 1 });
    expect(link.joinAddresses.predicted).toEqual([{ at: "mptcp:hosts[0].endpoints[0]", by: "signal", fromInterface: "wlan", toAddress: addr("server", "wlan") }]);
    expect(link.joinAddresses.observed).toEqual([
      { client: addr("client", "wlan"), clientInterface: "wlan", server: addr("server", "wlan"), serverInterface: "wlan", seenBy: ["client", "server"], predictedBy: "mptcp:hosts[0].endpoints[0]" },
    ]);
    const table = await verify();
    expect(table.out).toContain(`  join       client ${addr("client", "wlan")} (wlan) -> server ${addr("server", "wlan")} (wlan): predicted (mptcp:hosts[0].endpoints[0])`);
  });

  it("nothing announced and an undeclared client endpoint joins instead: the count still matches (negative control), the address check exits 1 naming the join", async () => {
    // what NetworkManager did on the client: its own `subflow` endpoint on wlan, with dev, while
    // the server's signal endpoint was deleted
    const applied = labSh(laptop("server"), "ip mptcp endpoint show").trim();
    // its id: derived from interface and address (components/model.ts, assignEndpointIds)
    const id = requireValidConfig(labStackConfig(f.lab)).hosts[0].endpoints[0].id;
    expect(applied).toBe(`${addr("server", "wlan")} id ${id} signal dev wlan`);
    labSh(laptop("server"), "ip mptcp endpoint flush");
    labSh(laptop("client"), `ip mptcp endpoint add ${addr("client", "wlan")} dev wlan subflow`);
    try {
      const r = await verify("--json");
      console.log(r.out);
      const link = JSON.parse(r.out).links[0];
      // negative control: what verify checked before (joins, subflows, checksum, bytes per
      // interface) all match: the join from wlan to the dialled lan address arrives on the
      // server's wlan, so wlan carries data on both hosts as predicted
      expect(link.joins).toEqual({ observed: 1, predicted: 1 });
      expect(link.subflows).toEqual({ client: 1, server: 1, predicted: 1 });
      expect(link.paths.carried).toEqual(link.paths.predicted);
      const byAddress = link.problems.filter((p: string) => p.includes(ENDPOINT_HINT));
      expect(link.problems.filter((p: string) => !byAddress.includes(p))).toEqual([]);
      // the address check
      expect(r.code).toBe(1);
      expect(JSON.parse(r.out).ok).toBe(false);
      expect(link.joinAddresses.observed).toEqual([{ client: addr("client", "wlan"), clientInterface: "wlan", server: addr("server", "lan"), serverInterface: "lan", seenBy: ["client", "server"] }]);
      expect(byAddress).toEqual([
        `client: a subflow joined from ${addr("client", "wlan")} (wlan) to server ${addr("server", "lan")} (lan), which the config does not predict (predicted: from wlan to ${addr("server", "wlan")} (mptcp:hosts[0].endpoints[0], signal)); fix mptcp:hosts[1].endpoints: it declares no subflow endpoint on wlan, but client has endpoint id 1 ${addr("client", "wlan")} subflow dev wlan (${ENDPOINT_HINT})`,
        `server: no subflow joined to ${addr("server", "wlan")}, which mptcp:hosts[0].endpoints[0] announces (signal): is that endpoint still on server? (${ENDPOINT_HINT})`,
      ]);
      const table = await verify();
      console.log(table.out);
      expect(table.code).toBe(1);
      expect(table.out).toMatch(/mptcp:links\[0\]: client -> server \(dials [0-9.]+\): MISMATCH/);
      expect(table.out).toContain(`  join       client ${addr("client", "wlan")} (wlan) -> server ${addr("server", "lan")} (lan): NOT PREDICTED`);
      expect(table.out).toContain("  joins      1 (predicted 1)");
      expect(table.out).toContain("npm run check -- ");
    } finally {
      labSh(laptop("client"), "ip mptcp endpoint flush");
      labSh(laptop("server"), `ip mptcp endpoint add ${applied}`);
    }
  });

  it("the endpoints as the config has them again: exit 0", async () => {
    const r = await verify();
    expect(r.code, r.out).toBe(0);
  });
});
