// Identity by name, not list positions: what reaches a host names the host entry and its keys
// (sysctl, limits, endpoints by interface and address, services by unit), and endpoint ids, routing
// tables and rule priorities the config leaves out are derived from what they belong to. So
// reordering hosts or endpoints, or removing a host, changes no other host's commands, and a
// `pulumi up` after such an edit has nothing to run. Measured on the program's registered
// resources under the SDK's mocks (runProgram). Controls: changing one setting of one host changes
// that host's command for it and no other command, so the comparison can see a change.
import { describe, expect, it } from "vitest";
import { buildModel, concernOfPath, configPathOfKey, configSchema } from "../components";
import { runProgram } from "./harness/program";

type Cfg = { hosts: any[]; links: any[] };

/** Four hosts with every concern, endpoints without ids (two on one interface of each), services, hooks. */
function fleet(): Cfg {
  const host = (name: string, n: number) => ({
    name,
    ssh: { host: `203.0.113.${n}`, insecureIgnoreHostKey: true },
    sysctl: { enabled: true, addAddrTimeout: 60 + n },
    limits: { subflows: 4, addAddrAccepted: 4 },
    endpoints: [
      { interface: "eth0", address: `10.0.${n}.1`, flags: ["signal"] },
      { interface: "eth1", address: `10.1.${n}.1`, flags: ["signal"] },
      { interface: "eth1", address: `10.1.${n}.2`, flags: ["signal", "backup"] },
      { interface: "wlan0", flags: ["subflow"] },
    ],
    hooks: true,
    routing: [{ interface: "wlan0", mode: "source" }],
    services: [{ unit: "iperf3.service" }, { unit: "web.socket", mode: "socket" }, { unit: "api.service", mode: "godebug" }],
  });
  return { hosts: [host("alpha", 1), host("bravo", 2), host("charlie", 3), host("delta", 4)], links: [] };
}

const clone = (c: Cfg): Cfg => JSON.parse(JSON.stringify(c));

/** Every command's inputs (what Pulumi diffs), by command name. */
async function inputsOf(c: Cfg): Promise<Map<string, string>> {
  const run = await runProgram(c);
  return new Map(run.commands.map((x) => [x.name, JSON.stringify(x.inputs)]));
}

/** The commands of `before` whose inputs differ in `after` (or are gone), and how many were compared. */
function changed(before: Map<string, string>, after: Map<string, string>): { changed: string[]; of: number } {
  const names = [...before.keys()].filter((n) => after.has(n));
  return { changed: names.filter((n) => before.get(n) !== after.get(n)).sort(), of: names.length };
}

describe("identity by name: reordering or removing hosts changes no other host's commands", () => {
  it("reversing the hosts and each host's endpoints, routing and services changes no command's inputs", async () => {
    const base = fleet();
    const reversed = clone(base);
    reversed.hosts.reverse();
    for (const h of reversed.hosts) for (const k of ["endpoints", "routing", "services"]) h[k].reverse();
    const [a, b] = [await inputsOf(base), await inputsOf(reversed)];
    // per host: the scripts' copy and its cleanup, anchor, sysctl, limits, networkmanager, endpoints(+confirm), hooks(+confirm), services
    expect(a.size).toBe(4 * 11);
    expect(changed(a, b)).toEqual({ changed: [], of: 44 });
  });

  it("removing the first host changes no command of the other three", async () => {
    const base = fleet();
    const fewer = clone(base);
    fewer.hosts.shift();
    const [a, b] = [await inputsOf(base), await inputsOf(fewer)];
    expect(b.size).toBe(3 * 11);
    expect(changed(a, b)).toEqual({ changed: [], of: 33 });
  });

  it("control: one setting of one host changes that host's command for it (and the copy of its scripts) and nothing else", async () => {
    const base = fleet();
    const a = await inputsOf(base);
    const edits: [string, (c: Cfg) => void, string[]][] = [
      // the interface sync the hooks install re-applies the limits at boot (sh/sync.sh), so it carries them
      ["limits", (c) => (c.hosts[2].limits.subflows = 5), ["charlie-hooks", "charlie-limits", "charlie-scripts"]],
      ["sysctl", (c) => (c.hosts[1].sysctl.addAddrTimeout = 90), ["bravo-scripts", "bravo-sysctl"]],
      ["service", (c) => (c.hosts[3].services[0].restart = "never"), ["delta-scripts", "delta-services"]],
      // the endpoints' data is in the hooks' interface sync too; the confirm commands carry no data
      ["endpoint flags", (c) => (c.hosts[0].endpoints[1].flags = ["signal", "backup"]), ["alpha-endpoints", "alpha-hooks", "alpha-scripts"]],
    ];
    for (const [what, edit, want] of edits) {
      const c = clone(base);
      edit(c);
      expect(changed(a, await inputsOf(c)).changed, what).toEqual(want);
    }
  });
});

describe("ids, tables and priorities the config leaves out", () => {
  const model = (endpoints: object[], routing: object[] = []) =>
    buildModel(configSchema.parse({ hosts: [{ name: "h", ssh: { host: "h", insecureIgnoreHostKey: true }, endpoints, hooks: true, routing }] })).hosts[0];
  const eps = [
    { interface: "eth0", address: "10.0.0.1" },
    { interface: "eth1", address: "10.0.1.1" },
    { interface: "eth1", address: "10.0.1.2" },
    { interface: "wlan0" },
    { interface: "wwan0", address: "2001:db8::1" },
  ];
  const ids = (m: ReturnType<typeof model>) => Object.fromEntries(m.endpoints.map((e) => [`${e.interface} ${e.address ?? ""}`, e.id]));
  const tables = (m: ReturnType<typeof model>) => Object.fromEntries(m.routing.map((r) => [r.interface, [r.table, r.priority]]));

  it("do not depend on the order of the list, and an added endpoint moves no other's id", () => {
    const m = model(eps);
    expect(ids(model([...eps].reverse()))).toEqual(ids(m));
    expect(tables(model([...eps].reverse()))).toEqual(tables(m));
    expect(new Set(m.endpoints.map((e) => e.id)).size).toBe(eps.length);
    for (const e of m.endpoints) {
      expect(e.id).toBeGreaterThanOrEqual(1);
      expect(e.id).toBeLessThanOrEqual(255);
    }
    const fewer = ids(model(eps.slice(1)));
    for (const [k, id] of Object.entries(fewer)) expect(id, k).toBe(ids(m)[k]);
  });

  it("an explicit id is honoured and never given to another endpoint; explicit tables and priorities likewise", () => {
    const m = model(eps);
    // every id the others got, taken explicitly by a new endpoint
    for (const e of m.endpoints) {
      const taken = model([...eps, { interface: "lte0", address: "10.9.9.9", id: e.id }]);
      expect(taken.endpoints.find((x) => x.interface === "lte0")!.id).toBe(e.id);
      expect(new Set(taken.endpoints.map((x) => x.id)).size).toBe(eps.length + 1);
    }
    // an explicit table, or priority, of eth0 that is another interface's default: that one moves
    for (const r of m.routing.filter((x) => x.interface !== "eth0")) {
      for (const set of [{ table: r.table, priority: 5000 }, { priority: r.priority }]) {
        const t = model(eps, [{ interface: "eth0", ...set }]);
        expect(t.routing.find((x) => x.interface === "eth0")).toMatchObject(set);
        for (const k of ["table", "priority"] as const) expect(new Set(t.routing.map((x) => x[k])).size, `${k}: ${JSON.stringify(t.routing)}`).toBe(t.routing.length);
      }
    }
  });

  it("collisions are resolved by the endpoints' identity, not their order", () => {
    // 40 endpoints' ids over many orders (more than the kernel takes on one host, so collisions happen)
    const many = Array.from({ length: 40 }, (_, i) => ({ interface: `eth${i % 5}`, address: `10.2.${i}.1` }));
    const m = model(many);
    expect(new Set(m.endpoints.map((e) => e.id)).size).toBe(40);
    for (let seed = 1; seed <= 5; seed++) {
      const shuffled = [...many].sort(
        (x, y) => ((x.address.charCodeAt(5 + (seed % 3)) * seed) % 7) - ((y.address.charCodeAt(5 + (seed % 3)) * seed) % 7) || (seed % 2 ? 1 : -1) * x.address.localeCompare(y.address),
      );
      expect(ids(model(shuffled))).toEqual(ids(m));
    }
  });
});

describe("keys as the host names them, and their config paths", () => {
  const host = buildModel(
    configSchema.parse({
      hosts: [
        { name: "x", ssh: { host: "h", insecureIgnoreHostKey: true } },
        {
          name: "s",
          ssh: { host: "h2", insecureIgnoreHostKey: true },
          endpoints: [{ interface: "eth1", address: "10.0.1.2" }, { interface: "eth1", address: "2001:DB8::2" }, { interface: "wlan0" }],
          services: [{ unit: "a.service" }, { unit: "iperf3.service" }],
        },
      ],
    }),
  ).hosts[1];

  it("npm run check shows each key the host reports as its config path", () => {
    const cases: [string, string][] = [
      ["", "mptcp:hosts[1]"],
      ["limits.subflows", "mptcp:hosts[1].limits.subflows"],
      ["endpoints[eth1 10.0.1.2].address", "mptcp:hosts[1].endpoints[0].address"],
      ["endpoints[eth1 2001:db8::2]", "mptcp:hosts[1].endpoints[1]"],
      ["endpoints[wlan0].interface", "mptcp:hosts[1].endpoints[2].interface"],
      ["services[iperf3.service].unit", "mptcp:hosts[1].services[1].unit"],
      ["services[gone.service]", "mptcp:hosts[1].services[gone.service]"],
    ];
    for (const [key, path] of cases) expect(configPathOfKey(host, key), key).toBe(path);
  });

  it("the concern of a key, as the host names it or as a config path", () => {
    for (const [p, c] of [
      ["limits.subflows", "limits"],
      ["routing", "hooks"],
      ["services[iperf3.service]", "services"],
      ["endpoints[eth1 10.0.1.2].address", "endpoints"],
      ["endpointOwner", "networkmanager"],
      ["mptcp:hosts[3].sysctl.enabled", "sysctl"],
      ["", undefined],
      ["mptcp:hosts[0]", undefined],
    ] as const) {
      expect(concernOfPath(p), p).toBe(c);
    }
  });
});
