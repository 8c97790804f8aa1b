// examples/from-outputs: a program of another project that takes the laptops' SSH addresses from
// other resources' outputs (local.Command lookups) and hands them to MptcpNetwork. Run under the
// SDK's mocks (the lookups' outputs are what the mocks give them: the lab laptops' management
// addresses, as DNS would) and its commands through the provider stand-in against lab laptops.
import { beforeAll, describe, expect, it } from "vitest";
import { LabHost } from "../scripts/lab/lab";
import { DEFAULT_TOPOLOGY } from "../scripts/lab/topology";
import { labFile } from "./harness/fixture";
import { runProgram } from "./harness/program";
import { endpoints, limits, snapshot } from "./harness/labtest";

const FILE = "examples/from-outputs/index.ts";
const f = labFile(DEFAULT_TOPOLOGY, "x");
let server: LabHost;
let client: LabHost;
let before: { server: string; client: string };

beforeAll(async () => {
  server = f.host("server");
  client = f.host("client");
  before = { server: snapshot(server), client: snapshot(client) };
});

/** The example's config for the lab: names its lookups resolve, the laptops' host keys, the interface the server announces. */
const config = () => ({ server: "server.lab", client: "client.lab", serverHostKey: server.hostKey, clientHostKey: client.hostKey, wlan: "wlan" });
/** What the lookups output: the laptops' management addresses. */
const lookups = (name: string) => ({ "server.lab-address": server.mgmtAddress, "client.lab-address": client.mgmtAddress })[name];

describe("examples/from-outputs", () => {
  it("previews with the addresses unknown: every command, and a message naming the addresses it checks later", async () => {
    const run = await runProgram({ hosts: [] }, { file: FILE, preview: true, privateKey: f.privateKey, config: config() });
    expect(run.commands.map((c) => c.name).sort()).toEqual(
      [
        "server-scripts",
        "server-scripts-cleanup",
        "server-anchor",
        "server-sysctl",
        "server-limits",
        "server-networkmanager",
        "server-endpoints",
        "server-endpoints-confirm",
        "client-scripts",
        "client-scripts-cleanup",
        "client-anchor",
        "client-sysctl",
        "client-limits",
        "client-networkmanager",
      ].sort(),
    );
    expect(run.infos).toEqual([expect.stringContaining("not known until the update, so not checked yet: args.hosts[0].ssh.host, args.hosts[1].ssh.host")]);
  });

  it("applies to the lab laptops with the addresses the lookups output, and destroy puts both back as they were", async () => {
    const run = await runProgram({ hosts: [] }, { file: FILE, privateKey: f.privateKey, config: config(), stdout: lookups });
    expect(run.outputs.links).toEqual([{ client: "client", server: "server", address: server.mgmtAddress, joins: 1, subflows: 2 }]);
    // the commands dial the addresses the other resources output
    expect(new Set(run.commands.map((c) => c.connection.host))).toEqual(new Set([server.mgmtAddress, client.mgmtAddress]));
    await f.sim.up(run.commands);
    expect(limits(server)).toEqual({ subflows: 1, addAddrAccepted: 0 });
    expect(limits(client)).toEqual({ subflows: 1, addAddrAccepted: 1 });
    const wlan = endpoints(server).filter((e) => e.dev === "wlan");
    expect(wlan.map((e) => [e.signal, e.address])).toEqual([[true, expect.stringMatching(/^198\.51\.100\.(1[7-9]|2\d|30)$/)]]);
    // a second up changes nothing
    expect(await f.sim.up((await runProgram({ hosts: [] }, { file: FILE, privateKey: f.privateKey, config: config(), stdout: lookups })).commands)).toEqual([]);
    await f.sim.destroy();
    expect(snapshot(server)).toBe(before.server);
    expect(snapshot(client)).toBe(before.client);
  });

  it("control: with the client's lookup giving the server's address, the network refuses both hosts before any command", async () => {
    const same = (name: string) => (name === "client.lab-address" ? server.mgmtAddress : lookups(name));
    const e = (await runProgram({ hosts: [] }, { file: FILE, privateKey: f.privateKey, config: config(), stdout: same }).then(
      () => new Error("the run did not fail"),
      (x: Error) => x,
    )) as Error & { resources?: { type: string }[] };
    expect(e.message).toContain(`args.hosts[1].ssh.host: ${server.mgmtAddress} port 22 is also the SSH target of args.hosts[0] ("server")`);
    expect((e.resources ?? []).filter((r) => r.type.startsWith("command:remote"))).toEqual([]);
  });
});
