// The user tools' pure parts: host-key pinning, the command a drifted config path belongs to,
// and the verification table.
import { describe, expect, it } from "vitest";
import { buildModel, commandName, concernOfPath, configSchema } from "../components/core";
import { hostKeyMatches } from "../scripts/verify/ssh";
import { formatReports, LinkReport } from "../scripts/verify/verify";

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
    expect(concernOfPath("mptcp:hosts[0]")).toBeUndefined();
    expect(commandName("server", "endpoints")).toBe("server-endpoints");
  });
});

describe("the verification table", () => {
  it("says ok or MISMATCH per link and lists every problem", () => {
    const base: LinkReport = {
      at: "mptcp:links[0]", client: "c", server: "s", address: "10.0.0.1", ok: true, problems: [],
      transfer: { sha256: "x", bytes: 100, subflows: 1, seconds: 0.1, server: { sha256: "x", bytes: 100, subflows: 1 } },
      joins: { observed: 1, predicted: 1 }, subflows: { client: 1, server: 1, predicted: 1 },
      bytes: { server: { lan: 60, wlan: 40 }, client: { lan: 60, wlan: 40 } },
      paths: { predicted: { server: ["lan", "wlan"], client: ["lan", "wlan"] }, carried: { server: ["lan", "wlan"], client: ["lan", "wlan"] } },
    };
    expect(formatReports([base])).toMatch(/^mptcp:links\[0\]: c -> s \(dials 10\.0\.0\.1\): ok\n/);
    const bad = { ...base, ok: false, problems: ["0 subflows joined, 1 predicted"], subflows: { client: null, server: null, predicted: 1 } };
    const text = formatReports([bad]);
    expect(text).toContain("MISMATCH");
    expect(text).toContain("subflows   client none (plain TCP), server none (plain TCP) (predicted 1)");
    expect(text).toContain("problem    0 subflows joined, 1 predicted");
  });
});
