// The whole config, fuzzed (fast-check): validation never crashes, every error names a config path
// and says something, and every accepted config renders host scripts (applies, reverts,
// confirmations, drift checks, hook files) that `sh -n` accepts.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { renderCheck, renderHookFiles, renderHost, selfText, validateConfig, wrapScript } from "../components/core";
import { runSync } from "../scripts/lab/spawner";

const ED25519 = `ssh-ed25519 ${Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from("ssh-ed25519"), Buffer.from([0, 0, 0, 32]), Buffer.alloc(32, 7)]).toString("base64")}`;
/** Values a user could plausibly write, good and bad, per field. */
const pick = <T>(...xs: T[]) => fc.constantFrom(...xs);
const junk = fc.oneof(fc.string({ maxLength: 12 }), fc.integer({ min: -3, max: 70000 }), fc.boolean(), fc.constant(null), fc.constant(undefined));
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.oneof({ weight: 6, arbitrary: arb }, { weight: 1, arbitrary: junk as fc.Arbitrary<unknown> });
const names = pick("server", "client", "laptop-1", "laptop-2", "Bad Name", "");
const address = pick("198.51.100.1", "198.51.100.17", "2001:db8::2", "2001:DB8:0::9", "fe80::1%wlan0", "10.0.0.300", "198.51.100.1/24", "host.example.net", "");
const iface = pick("lan", "wlan", "wlp2s0", "eth0.100", "wlan0;reboot", "a-very-long-interface-name", "");

const endpoint = fc.record(
  {
    interface: maybe(iface),
    address: maybe(address),
    flags: maybe(fc.subarray(["signal", "subflow", "backup", "fullmesh", "laser"] as const)),
    id: maybe(fc.integer({ min: 0, max: 256 })),
    port: maybe(fc.integer({ min: 0, max: 65536 })),
  },
  { requiredKeys: ["interface"] },
);

const host = fc.record(
  {
    name: names,
    ssh: fc.record(
      {
        host: maybe(address),
        port: maybe(fc.integer({ min: 0, max: 65536 })),
        user: maybe(pick("root", "admin", "Admin!", "")),
        hostKey: maybe(pick(ED25519, ED25519.replace("ssh-ed25519", "ssh-rsa"), "ssh-ed25519 AAAA", "not a key")),
        insecureIgnoreHostKey: maybe(fc.boolean()),
      },
      { requiredKeys: ["host"] },
    ),
    sysctl: maybe(
      fc.record(
        { enabled: maybe(fc.boolean()), pathManager: maybe(pick("kernel", "userspace", "fast")), scheduler: maybe(pick("default", "blest", "rm -rf /")), addAddrTimeout: maybe(fc.integer({ min: -1, max: 3000 })) },
        { requiredKeys: [] },
      ),
    ),
    limits: maybe(fc.record({ subflows: maybe(fc.integer({ min: -1, max: 9 })), addAddrAccepted: maybe(fc.integer({ min: -1, max: 9 })) }, { requiredKeys: [] })),
    endpoints: maybe(fc.array(endpoint, { maxLength: 9 })),
    hooks: maybe(fc.boolean()),
    routing: maybe(fc.array(fc.record({ interface: maybe(iface), mode: maybe(pick("auto", "source", "none", "magic")), table: maybe(fc.integer({ min: 0, max: 300 })), priority: maybe(fc.integer({ min: 0, max: 40000 })), gateway: maybe(address) }, { requiredKeys: ["interface"] }), { maxLength: 3 })),
    services: maybe(fc.array(fc.record({ unit: maybe(pick("iperf3.service", "web@8080.service", "web@.service", "echo.socket", "x.service;reboot")), mode: maybe(pick("preload", "godebug", "socket", "ebpf")), restart: maybe(pick("ifRunning", "never", "always")) }, { requiredKeys: ["unit"] }), { maxLength: 3 })),
    confirmTimeout: maybe(fc.integer({ min: -1, max: 4000 })),
  },
  { requiredKeys: ["name", "ssh"] },
);

const link = fc.record({ client: maybe(names), server: maybe(names), address: maybe(address) }, { requiredKeys: ["client", "server"] });
const config = fc.record({ hosts: fc.oneof({ weight: 9, arbitrary: fc.array(host, { minLength: 1, maxLength: 4 }) }, { weight: 1, arbitrary: fc.anything() }), links: fc.oneof({ weight: 9, arbitrary: fc.array(link, { maxLength: 4 }) }, { weight: 1, arbitrary: fc.anything() }) });

/** The same shapes, but only values that pass the field checks: most such configs are accepted. */
const goodHost = (name: string) =>
  fc.record({
    name: fc.constant(name),
    // distinct ports: two entries with one SSH target are refused (a rule the first generator covers)
    ssh: fc.record({ host: pick("198.51.100.1", "2001:db8::2", "host.example.net"), port: fc.constant(name === "server" ? 22 : 2222), hostKey: fc.constant(ED25519), user: pick("root", "admin") }),
    sysctl: fc.record({ enabled: fc.boolean(), scheduler: pick("default", "blest") }, { requiredKeys: [] }),
    limits: fc.record({ subflows: fc.integer({ min: 0, max: 8 }), addAddrAccepted: fc.integer({ min: 0, max: 8 }) }),
    endpoints: fc.array(fc.record({ interface: pick("lan", "wlan", "lte"), address: pick("198.51.100.1", "198.51.100.17", "198.51.100.33", undefined), flags: fc.subarray(["signal", "subflow", "backup"] as const) }, { requiredKeys: ["interface", "flags"] }), { maxLength: 3 }),
    hooks: fc.boolean(),
    services: fc.array(fc.record({ unit: pick("iperf3.service", "web@8080.service"), mode: pick("preload", "godebug"), restart: pick("ifRunning", "never") }), { maxLength: 1 }),
    confirmTimeout: pick(0, 3, 120),
  });
const goodConfig = fc.record({ hosts: fc.tuple(goodHost("server"), goodHost("client")), links: fc.constant([{ client: "client", server: "server" }]) });

const dir = mkdtempSync(join(tmpdir(), "mptcp-fuzz-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every script a valid config renders, as it reaches a host (or is installed). */
function scriptsOf(raw: { hosts: unknown; links?: unknown }): string[] {
  const r = validateConfig(raw);
  if (!r.ok) return [];
  return r.model.hosts.flatMap((h) => {
    const rendered = renderHost(h);
    return [
      ...rendered.flatMap((s) => [s.apply, s.revert, ...(s.confirm ? [s.confirm.create, s.confirm.delete] : [])].map((t) => wrapScript(t, { user: h.ssh.user, host: h.name }))),
      // an apply runs the script it keeps in a variable: sh -n of the command text does not parse that
      ...rendered.map((s) => selfText(s.apply)),
      renderCheck(h),
      ...(h.hooks ? renderHookFiles(h).filter((f) => f.source.endsWith(".sh")).map((f) => f.content) : []),
    ];
  });
}

/**
 * `sh -n` on every s*.sh in the scratch folder: names the first it refuses and fails, else removes
 * them all. Through the spawner: a fork of this test worker costs several times a fork of its helper.
 */
const shSyntaxCheck = () => runSync("sh", ["-c", `for f in "$1"/s*.sh; do sh -n "$f" || { echo "$f"; exit 1; }; done; rm -f "$1"/s*.sh`, "sh", dir]);

/**
 * The errors that do not name a config path (mptcp:hosts[0].ssh.port) or do not say something: a
 * plain filter, since an expect per error made the 2000 configs take 3.2 s instead of 1.3.
 */
const unhelpful = (errors: { path: string; message: string }[]) =>
  errors.filter((e) => !/^mptcp:(hosts|links)(\[\d+\]|\[".*"\]|\.[A-Za-z_][A-Za-z0-9_]*)*$/.test(e.path) || e.message.length <= 8 || /undefined|\[object Object\]|NaN/.test(e.message));

describe("the whole config, fuzzed", () => {
  it("validation never crashes; every error names a config path and says what to do (2000 configs)", () => {
    let rejected = 0;
    fc.assert(
      fc.property(config, (raw) => {
        const r = validateConfig(raw as { hosts: unknown; links?: unknown });
        if (r.ok) return;
        rejected++;
        expect(r.errors.length).toBeGreaterThan(0);
        expect(unhelpful(r.errors)).toEqual([]);
      }),
      { numRuns: 2000, seed: 20261126 },
    );
    expect(rejected).toBeGreaterThan(700); // the generator does reach the errors
  });

  it("the error check refuses a path outside the config, a message that says nothing, and one that leaks undefined (negative control)", () => {
    const good = { path: "mptcp:hosts[0].endpoints[1].flags", message: "unknown flag; use signal, subflow, backup or fullmesh" };
    const bad = [{ path: "hosts[0].name", message: good.message }, { path: good.path, message: "invalid" }, { path: good.path, message: "expected undefined to be a number" }, { path: "mptcp:hosts[0][object Object]", message: good.message }];
    expect(unhelpful([good, ...bad])).toEqual(bad);
  });

  it("every accepted config renders scripts that sh -n accepts (100 configs)", () => {
    let accepted = 0;
    // a text already checked is not checked again (about half of them repeat across configs)
    const checked = new Set<string>();
    fc.assert(
      fc.property(goodConfig, (raw) => {
        const scripts = scriptsOf(raw);
        if (!scripts.length) return;
        accepted++;
        const fresh = [...new Set(scripts)].filter((s) => !checked.has(s));
        if (!fresh.length) return;
        fresh.forEach((s, i) => writeFileSync(join(dir, `s${i}.sh`), s));
        const r = shSyntaxCheck();
        expect(r.stderr + r.stdout).toBe("");
        expect(r.code).toBe(0);
        fresh.forEach((s) => checked.add(s));
      }),
      { numRuns: 100, seed: 20261126 },
    );
    expect(accepted).toBeGreaterThan(25); // not vacuous
  });

  it("the sh -n check fails on a broken script (negative control)", () => {
    writeFileSync(join(dir, "s0.sh"), "if true; then\n  echo unterminated\n");
    const r = shSyntaxCheck();
    expect(r.code).not.toBe(0);
    expect(r.stdout).toContain("s0.sh");
    rmSync(join(dir, "s0.sh"));
  });
});
