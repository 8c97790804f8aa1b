// The user tools' pure parts: host-key pinning, the command a drifted config path belongs to,
// and the verification table.
import { describe, expect, it } from "vitest";
import { buildModel, commandName, concernOfPath, configSchema } from "../components/core";
import { hostKeyMatches } from "../scripts/verify/ssh";
import { backupFix, throughputVerdict } from "../scripts/verify/throughput";
import { checkJoins, ENDPOINT_HINT, formatReports, LinkReport, LiveEndpoint, parseEndpoints, predictJoins } from "../scripts/verify/verify";

const KEY = Buffer.from("\0\0\0\x0bssh-ed25519\0\0\0\x20" + "k".repeat(32), "latin1");
const BLOB = KEY.toString("base64");
const host = (ssh: object) => buildModel(configSchema.parse({ hosts: [{ name: "a", ssh: { host: "10.0.0.1", ...ssh } }] })).hosts[0];

describe("host key pinning (ssh2 sessions of verify and check)", () => {
  it("accepts exactly the pinned key, and any key only with insecureIgnoreHostKey", () => {
    const pinned = host({ hostKey: `ssh-ed25519 ${BLOB} comment` });
    expect(hostKeyMatches(pinned, KEY)).toBe(true);
    expect(hostKeyMatches(pinned, Buffer.concat([KEY.subarray(0, -1), Buffer.from("x")]))).toBe(false);
    expect(hostKeyMatches(host({ insecureIgnoreHostKey: true }), Buffer.from("anything"))).toBe(true);
  });
});

describe("drift repair", () => {
  it("maps each config path to the command that manages it", () => {
    expect(concernOfPath("mptcp:hosts[3].limits.subflows")).toBe("limits");
    expect(concernOfPath("mptcp:hosts[0].routing")).toBe("hooks");
    expect(concernOfPath("mptcp:hosts[0].services[2]")).toBe("services");
    expect(concernOfPath("mptcp:hosts[1].endpointOwner")).toBe("networkmanager");
    expect(concernOfPath("mptcp:hosts[0].hooks")).toBe("hooks");
    expect(concernOfPath("mptcp:hosts[0]")).toBeUndefined();
    expect(commandName("server", "endpoints")).toBe("server-endpoints");
  });
});

describe("the verification table", () => {
  it("says ok or MISMATCH per link and lists every problem", () => {
    const base: LinkReport = {
      at: "mptcp:links[0]",
      client: "c",
      server: "s",
      address: "10.0.0.1",
      ok: true,
      problems: [],
      transfer: { sha256: "x", bytes: 100, subflows: 1, seconds: 0.1, server: { sha256: "x", bytes: 100, subflows: 1 } },
      joins: { observed: 1, predicted: 1 },
      subflows: { client: 1, server: 1, predicted: 1 },
      bytes: { server: { lan: 60, wlan: 40 }, client: { lan: 60, wlan: 40 } },
      paths: { predicted: { server: ["lan", "wlan"], client: ["lan", "wlan"] }, carried: { server: ["lan", "wlan"], client: ["lan", "wlan"] } },
    };
    expect(formatReports([base])).toMatch(/^mptcp:links\[0\]: c -> s \(dials 10\.0\.0\.1\): ok\n/);
    const bad = { ...base, ok: false, problems: ["0 subflows joined, 1 predicted"], subflows: { client: null, server: null, predicted: 1 } };
    const text = formatReports([bad]);
    expect(text).toContain("MISMATCH");
    expect(text).toContain("subflows   client none (plain TCP), server none (plain TCP) (predicted 1)");
    expect(text).toContain("problem    0 subflows joined, 1 predicted");
    const joined = { ...base, joinAddresses: { predicted: [], observed: [{ client: "10.0.1.2", clientInterface: "wlan", server: "10.0.0.1", seenBy: ["client" as const] }] } };
    expect(formatReports([joined])).toContain("  join       c 10.0.1.2 (wlan) -> s 10.0.0.1: NOT PREDICTED");
    const unread = { ...base, joinAddresses: { predicted: [], observed: [], note: "why" } };
    expect(formatReports([unread])).toContain("  join       addresses not checked: why");
  });
});

describe("join addresses against the config's endpoints (checkJoins, predictJoins)", () => {
  const model = buildModel(
    configSchema.parse({
      hosts: [
        { name: "s", ssh: { host: "10.0.0.1" }, endpoints: [{ interface: "wlan", address: "10.0.1.1", flags: ["signal"] }] },
        { name: "c", ssh: { host: "10.0.0.2" }, limits: { subflows: 2, addAddrAccepted: 1 }, endpoints: [{ interface: "lte", address: "10.0.2.2", flags: ["subflow"] }] },
      ],
      links: [{ client: "c", server: "s", address: "10.0.0.1" }],
    }),
  );
  const [s, c] = model.hosts;
  const routes = new Map([
    ["10.0.0.1", "lan"],
    ["10.0.1.1", "wlan"],
  ]);
  const predicted = predictJoins(c, s, "10.0.0.1", routes);
  const required = predicted.filter((p) => p.by === "signal");
  const clientAddrs = new Map([
    ["10.0.0.2", "lan"],
    ["10.0.1.2", "wlan"],
    ["10.0.2.2", "lte"],
    ["10.0.3.2", "eth1"],
  ]);
  const serverAddrs = new Map([
    ["10.0.0.1", "lan"],
    ["10.0.1.1", "wlan"],
    ["10.0.9.1", "extra"],
  ]);
  const check = (joined: [string, string][], clientEndpoints: LiveEndpoint[] = []) =>
    checkJoins({
      at: "mptcp:links[0]",
      client: c,
      server: s,
      dialled: "10.0.0.1",
      predicted,
      required,
      clientAddrs,
      serverAddrs,
      clientEndpoints,
      serverEndpoints: [{ address: "10.0.9.1", id: 7, flags: ["signal"] }],
      clientView: { initial: ["10.0.0.2", "10.0.0.1"], joined },
      serverView: { initial: ["10.0.0.1", "10.0.0.2"], joined: joined.map(([l, r]) => [r, l]) },
    });

  it("predicts the subflow endpoint's join to the dialled address and the routed one to the announced address", () => {
    expect(predicted).toEqual([
      { at: "mptcp:hosts[1].endpoints[0]", by: "subflow", fromInterface: "lte", fromAddress: "10.0.2.2", toAddress: "10.0.0.1" },
      { at: "mptcp:hosts[0].endpoints[0]", by: "signal", fromInterface: "wlan", toAddress: "10.0.1.1" },
    ]);
    // fullmesh: the announced address is joined from each fullmesh endpoint, not from the route
    const mesh = buildModel(configSchema.parse({ hosts: [{ name: "c", ssh: { host: "10.0.0.2" }, endpoints: [{ interface: "lte", flags: ["subflow", "fullmesh"] }] }] })).hosts[0];
    expect(predictJoins(mesh, s, "10.0.0.1", routes).map((p) => [p.at, p.fromInterface, p.toAddress])).toEqual([
      ["mptcp:hosts[0].endpoints[0]", "lte", "10.0.0.1"],
      ["mptcp:hosts[0].endpoints[0]", "lte", "10.0.1.1"],
    ]);
  });

  it("the predicted joins: no problem, each attributed to the endpoint that makes it, seen by both ends", () => {
    const r = check([
      ["10.0.2.2", "10.0.0.1"],
      ["10.0.1.2", "10.0.1.1"],
    ]);
    expect(r.problems).toEqual([]);
    expect(r.observed.map((j) => [j.clientInterface, j.serverInterface, j.predictedBy, j.seenBy.join("+")])).toEqual([
      ["lte", "lan", "mptcp:hosts[1].endpoints[0]", "client+server"],
      ["wlan", "wlan", "mptcp:hosts[0].endpoints[0]", "client+server"],
    ]);
  });

  it("a join from an interface without a declared subflow endpoint: the client's endpoints are to fix, naming the live endpoint", () => {
    const r = check(
      [
        ["10.0.3.2", "10.0.0.1"],
        ["10.0.1.2", "10.0.1.1"],
      ],
      [{ address: "10.0.3.2", id: 3, flags: ["subflow"], dev: "eth1" }],
    );
    expect(r.problems).toEqual([
      `c: a subflow joined from 10.0.3.2 (eth1) to s 10.0.0.1 (lan), which the config does not predict (predicted: from 10.0.2.2 to 10.0.0.1 (mptcp:hosts[1].endpoints[0], subflow); from wlan to 10.0.1.1 (mptcp:hosts[0].endpoints[0], signal)); fix mptcp:hosts[1].endpoints: it declares no subflow endpoint on eth1, but c has endpoint id 3 10.0.3.2 subflow dev eth1 (${ENDPOINT_HINT})`,
    ]);
  });

  it("a join to an address the server's config does not announce: the server's endpoints are to fix", () => {
    const r = check([
      ["10.0.2.2", "10.0.0.1"],
      ["10.0.1.2", "10.0.9.1"],
    ]);
    expect(r.problems).toHaveLength(2);
    expect(r.problems[0]).toMatch(
      /^c: a subflow joined from 10\.0\.1\.2 \(wlan\) to s 10\.0\.9\.1 \(extra\), .*; fix mptcp:hosts\[0\]\.endpoints: it announces no 10\.0\.9\.1, but s has endpoint id 7 10\.0\.9\.1 signal \(/,
    );
    // and the announced address got no join
    expect(r.problems[1]).toBe(`s: no subflow joined to 10.0.1.1, which mptcp:hosts[0].endpoints[0] announces (signal): is that endpoint still on s? (${ENDPOINT_HINT})`);
  });

  it("a join only one end saw counts; no addresses (plain TCP, an old kernel): a note, not a problem", () => {
    const r = checkJoins({
      at: "mptcp:links[0]",
      client: c,
      server: s,
      dialled: "10.0.0.1",
      predicted,
      required: [],
      clientAddrs,
      serverAddrs,
      clientView: { joined: [] },
      serverView: { joined: [["10.0.0.1", "10.0.3.2"]] },
    });
    expect(r.observed).toEqual([{ client: "10.0.3.2", clientInterface: "eth1", server: "10.0.0.1", serverInterface: "lan", seenBy: ["server"] }]);
    expect(r.problems).toHaveLength(1);
    const none = checkJoins({ at: "mptcp:links[0]", client: c, server: s, dialled: "10.0.0.1", predicted, required, clientAddrs, serverAddrs, clientView: { joined: null }, serverView: {} });
    expect(none).toEqual({ observed: [], problems: [], note: expect.stringContaining("joins checked by count only") });
  });

  it("reads ip -j mptcp endpoint show, and gives nothing for output that is not JSON", () => {
    expect(parseEndpoints('[{"address":"2001:DB8::2","id":1,"subflow":true,"backup":true,"dev":"wlan"},{"address":"10.0.0.1","id":2,"signal":true}]')).toEqual([
      { address: "2001:db8::2", id: 1, flags: ["subflow", "backup"], dev: "wlan" },
      { address: "10.0.0.1", id: 2, flags: ["signal"] },
    ]);
    expect(parseEndpoints("10.0.0.1 id 1 signal")).toEqual([]);
    expect(parseEndpoints("")).toEqual([]);
  });
});

describe("verify --throughput's verdict (MPTCP's rate against each path alone)", () => {
  const paths = (lan: number, wlan: number, fix = { lan: "FIX-LAN", wlan: "FIX-WLAN" }) => [
    { name: "lan", mbit: lan, backup: false, fix: fix.lan },
    { name: "wlan", mbit: wlan, backup: false, fix: fix.wlan },
  ];

  it("aggregates: above the best single path by more than the tolerance, with its shares of the best path and of the sum", () => {
    const v = throughputVerdict(37.22, paths(19.17, 19.17));
    expect(v).toMatchObject({ verdict: "aggregates", ok: true, best: { path: "lan", mbit: 19.17 }, sum: 38.34, ofBest: 1.94, ofSum: 0.97 });
    expect(v.holdsBack).toBeUndefined();
  });

  it("below the best single path: names the slowest path that is not backup, and its fix", () => {
    const v = throughputVerdict(23.77, paths(4.83, 38.24));
    expect(v).toMatchObject({ verdict: "below the best single path", ok: false, best: { path: "wlan", mbit: 38.24 }, ofBest: 0.62 });
    expect(v.holdsBack).toEqual({ path: "lan", mbit: 4.83, fix: "FIX-LAN" });
    expect(v.summary).toContain("lan (4.83 Mbit/s) holds it back");
  });

  it("negative controls: within the tolerance of the best path is ok; below it with no slower path, or the slow path already backup, names none", () => {
    expect(throughputVerdict(37.61, paths(4.83, 38.25))).toMatchObject({ verdict: "matches the best single path", ok: true });
    expect(throughputVerdict(37.61, paths(4.83, 38.25)).holdsBack).toBeUndefined();
    // equal paths and MPTCP below both: no path is to blame (a shared bottleneck), exit 1 still
    const equal = throughputVerdict(12, paths(19, 19.5));
    expect(equal).toMatchObject({ verdict: "below the best single path", ok: false });
    expect(equal.holdsBack).toBeUndefined();
    const backup = throughputVerdict(20, [{ ...paths(4.83, 38)[0], backup: true }, paths(4.83, 38)[1]]);
    expect(backup.ok).toBe(false);
    expect(backup.holdsBack).toBeUndefined();
    expect(throughputVerdict(undefined, paths(5, 40))).toMatchObject({ verdict: "not measured", ok: false });
  });

  const model = buildModel(
    configSchema.parse({
      hosts: [
        { name: "server", ssh: { host: "10.0.0.1" }, endpoints: [{ interface: "wlan", address: "198.51.100.17", flags: ["signal"] }] },
        { name: "client", ssh: { host: "10.0.0.2" }, endpoints: [{ interface: "wlan", address: "198.51.100.18", flags: ["subflow"] }] },
      ],
      links: [{ client: "client", server: "server", address: "198.51.100.1" }],
    }),
  );
  const [s, c] = model.hosts;
  const lan = { name: "lan", clientAddress: "198.51.100.2", serverAddress: "198.51.100.1", serverInterface: "lan" };
  const wlan = { name: "wlan", clientAddress: "198.51.100.18", serverAddress: "198.51.100.17", serverInterface: "wlan" };

  it("the fix's config path: the client's endpoint on the path, else the server's announcement of it, else a backup endpoint to add", () => {
    expect(backupFix(c, s, "198.51.100.1", wlan).fix).toMatch(/^mptcp:hosts\[1\]\.endpoints\[0\]\.flags: add backup \(client's endpoint on wlan/);
    const noClientEndpoint = { ...c, endpoints: [] };
    expect(backupFix(noClientEndpoint, s, "198.51.100.1", wlan).fix).toMatch(/^mptcp:hosts\[0\]\.endpoints\[0\]\.flags: add backup \(server announces 198\.51\.100\.17 as a backup path/);
    expect(backupFix(c, s, "198.51.100.1", lan).fix).toMatch(/^mptcp:hosts\[1\]\.endpoints: add \{ interface: lan, address: 198\.51\.100\.2, flags: \[backup\] \}/);
    // already backup: nothing to change
    const backup = { ...c, endpoints: [{ ...c.endpoints[0], flags: ["subflow", "backup"] as (typeof c.endpoints)[0]["flags"] }] };
    expect(backupFix(backup, s, "198.51.100.1", wlan)).toEqual({ backup: true });
  });
});
