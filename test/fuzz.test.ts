// The whole config, fuzzed (fast-check): validation never crashes, every error names a config path
// and says something, and every accepted config renders host scripts (applies, reverts,
// confirmations, drift checks, hook files) that `sh -n` accepts.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { formatErrors, HOST_TYPE, renderCheck, renderHookFiles, renderHost, selfText, validateConfig, wrapScript } from "../components/core";
import { runSync } from "../scripts/lab/spawner";
import { runProgram } from "./harness/program";

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
        {
          enabled: maybe(fc.boolean()),
          pathManager: maybe(pick("kernel", "userspace", "fast")),
          scheduler: maybe(pick("default", "blest", "rm -rf /")),
          addAddrTimeout: maybe(fc.integer({ min: -1, max: 3000 })),
        },
        { requiredKeys: [] },
      ),
    ),
    limits: maybe(fc.record({ subflows: maybe(fc.integer({ min: -1, max: 9 })), addAddrAccepted: maybe(fc.integer({ min: -1, max: 9 })) }, { requiredKeys: [] })),
    endpoints: maybe(fc.array(endpoint, { maxLength: 9 })),
    hooks: maybe(fc.boolean()),
    routing: maybe(
      fc.array(
        fc.record(
          {
            interface: maybe(iface),
            mode: maybe(pick("auto", "source", "none", "magic")),
            table: maybe(fc.integer({ min: 0, max: 300 })),
            priority: maybe(fc.integer({ min: 0, max: 40000 })),
            gateway: maybe(address),
          },
          { requiredKeys: ["interface"] },
        ),
        { maxLength: 3 },
      ),
    ),
    services: maybe(
      fc.array(
        fc.record(
          {
            unit: maybe(pick("iperf3.service", "web@8080.service", "web@.service", "echo.socket", "x.service;reboot")),
            mode: maybe(pick("preload", "godebug", "socket", "ebpf")),
            restart: maybe(pick("ifRunning", "never", "always")),
          },
          { requiredKeys: ["unit"] },
        ),
        { maxLength: 3 },
      ),
    ),
    confirmTimeout: maybe(fc.integer({ min: -1, max: 4000 })),
  },
  { requiredKeys: ["name", "ssh"] },
);

const link = fc.record({ client: maybe(names), server: maybe(names), address: maybe(address) }, { requiredKeys: ["client", "server"] });
const config = fc.record({
  hosts: fc.oneof({ weight: 9, arbitrary: fc.array(host, { minLength: 1, maxLength: 4 }) }, { weight: 1, arbitrary: fc.anything() }),
  links: fc.oneof({ weight: 9, arbitrary: fc.array(link, { maxLength: 4 }) }, { weight: 1, arbitrary: fc.anything() }),
});

/** The same shapes, but only values that pass the field checks: most such configs are accepted. */
const goodHost = (name: string) =>
  fc.record({
    name: fc.constant(name),
    // distinct ports: two entries with one SSH target are refused (a rule the first generator covers)
    ssh: fc.record({ host: pick("198.51.100.1", "2001:db8::2", "host.example.net"), port: fc.constant(name === "server" ? 22 : 2222), hostKey: fc.constant(ED25519), user: pick("root", "admin") }),
    sysctl: fc.record({ enabled: fc.boolean(), scheduler: pick("default", "blest") }, { requiredKeys: [] }),
    limits: fc.record({ subflows: fc.integer({ min: 0, max: 8 }), addAddrAccepted: fc.integer({ min: 0, max: 8 }) }),
    endpoints: fc.array(
      fc.record(
        { interface: pick("lan", "wlan", "lte"), address: pick("198.51.100.1", "198.51.100.17", "198.51.100.33", undefined), flags: fc.subarray(["signal", "subflow", "backup"] as const) },
        { requiredKeys: ["interface", "flags"] },
      ),
      { maxLength: 3 },
    ),
    hooks: fc.boolean(),
    services: fc.array(fc.record({ unit: pick("iperf3.service", "web@8080.service"), mode: pick("preload", "godebug"), restart: pick("ifRunning", "never") }), { maxLength: 1 }),
    confirmTimeout: pick(0, 3, 90),
  });
const goodConfig = fc.record({ hosts: fc.tuple(goodHost("server"), goodHost("client")), links: fc.constant([{ client: "client", server: "server" }]) });

/**
 * The ssh block as a careless, hostile or unlucky user could write it: odd hosts (zones,
 * brackets, ports inside, unicode, option-like, huge), ports and numbers of every size and type,
 * users and host keys with control characters, keys the schema does not know (privateKey paths,
 * passwords), and the block itself of the wrong type.
 */
const sshHostOdd = fc.oneof(
  pick(
    "198.51.100.1",
    "2001:db8::2",
    "host.example.net",
    "fe80::1%eth0",
    "FE80::0:1%eth0",
    "fe80::1%2",
    "fe80::1%",
    "fe80::1%eth0%eth1",
    "fe80::1%-e",
    "fe80::1%a b",
    "198.51.100.1%eth0",
    "[2001:db8::2]",
    "[fe80::1%eth0]:22",
    "198.51.100.1:22",
    "::ffff:198.51.100.1",
    "::",
    "0",
    "0.0.0.0",
    "256.1.1.1",
    "localhost",
    "host.example.net.",
    "bücher.example",
    "xn--bcher-kva.example",
    "😀",
    "-oProxyCommand=touch /tmp/x",
    "host name",
    " 198.51.100.1",
    "198.51.100.1\n",
    "http://host/",
    "a".repeat(254),
    `${"a".repeat(63)}.example`,
    "",
  ),
  fc.string({ maxLength: 20, unit: "grapheme" }),
  fc.string({ maxLength: 8, unit: "binary" }),
);
const number = fc.oneof(
  fc.integer({ min: -70000, max: 140000 }),
  pick(0, -0, 1e21, 2 ** 53 + 2, Number.MAX_VALUE, Number.MIN_VALUE, 22.5, -1, 65535, 65536, 2147483648),
  fc.double(),
  pick("22", "0x16", "", "22 ", "٢٢"),
);
const wrongType = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.constant([]),
  fc.constant({}),
  fc.array(fc.integer(), { maxLength: 2 }),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 2 }),
);
const odd = <T>(arb: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 6, arbitrary: arb as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: number as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: wrongType as fc.Arbitrary<unknown> });
/** Mostly a good value (so whole configs pass too), else an odd one, a number or a wrong type. */
const mostly = <T, U>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<U>) => fc.oneof({ weight: 5, arbitrary: good as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: odd(bad) });
const hostKeyOdd = fc.oneof(
  pick(
    ED25519,
    `${ED25519} user@host`,
    `${ED25519} ünïcode ✓`,
    `${ED25519}\nssh-rsa AAAA`,
    ED25519.replace("ssh-ed25519", "ssh-rsa"),
    ED25519.toUpperCase(),
    `ssh-ed25519 ${"A".repeat(100000)}`,
    "ssh-ed25519",
    "ssh-ed25519 AAAA",
    "not a key",
    "",
  ),
  fc.string({ maxLength: 40, unit: "grapheme" }),
);
/** Keys the ssh block does not have, as users guess them: rare, so most blocks can pass. */
const sshExtra = fc.oneof(
  { weight: 8, arbitrary: fc.constant({}) },
  { weight: 1, arbitrary: fc.record({ privateKey: pick("/root/.ssh/id_ed25519", "~/.ssh/id", "-----BEGIN OPENSSH PRIVATE KEY-----\n", "C:\\keys\\id") }) },
  { weight: 1, arbitrary: fc.record({ password: fc.string({ maxLength: 6 }) }) },
);
const sshOdd = fc.oneof(
  {
    weight: 12,
    arbitrary: fc
      .tuple(
        fc.record(
          {
            host: mostly(pick("198.51.100.1", "2001:db8::2", "fe80::1%eth0", "host.example.net"), sshHostOdd),
            port: mostly(pick(22, 2222, 65535, 1), number),
            user: mostly(pick("root", "admin"), fc.oneof(pick("Admin", "ro ot", "-oX", "用户", "a".repeat(33), "_x", ""), fc.string({ maxLength: 10 }))),
            hostKey: mostly(pick(ED25519, `${ED25519} user@host`, `${ED25519} ünïcode ✓`), hostKeyOdd),
            insecureIgnoreHostKey: mostly(fc.boolean(), pick<unknown>("true", 1)),
          },
          { requiredKeys: ["host"] },
        ),
        sshExtra,
      )
      .map(([a, b]) => ({ ...a, ...b })),
  },
  { weight: 1, arbitrary: fc.oneof(wrongType, sshHostOdd) as fc.Arbitrary<unknown> },
);
const sshConfig = fc.record({
  hosts: fc.oneof(
    {
      weight: 12,
      arbitrary: fc.array(
        fc.record(
          { name: fc.oneof({ weight: 8, arbitrary: names }, { weight: 1, arbitrary: fc.string({ maxLength: 6 }) }), ssh: sshOdd, hooks: maybe(fc.boolean()) },
          { requiredKeys: ["name", "ssh"] },
        ),
        { minLength: 1, maxLength: 3 },
      ),
    },
    { weight: 1, arbitrary: fc.anything() },
  ),
  links: fc.oneof({ weight: 6, arbitrary: fc.constant([]) }, { weight: 3, arbitrary: fc.array(link, { maxLength: 2 }) }, { weight: 1, arbitrary: fc.anything() }),
});
/** Private keys as `mptcp:sshPrivateKey` holds them: paths by mistake, junk, unicode, none. */
const privateKeyOdd = fc.option(fc.oneof(pick("/root/.ssh/id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n", "ключ", ""), fc.string({ maxLength: 12 })), {
  nil: undefined,
});

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
      ...(h.hooks
        ? renderHookFiles(h)
            .filter((f) => f.source.endsWith(".sh"))
            .map((f) => f.content)
        : []),
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
 * plain filter, since an expect per error made the 2000 configs take more than twice as long
 * (docs/performance.md, "Tools and the harness").
 */
const unhelpful = (errors: { path: string; message: string }[]) =>
  errors.filter((e) => !/^mptcp:(hosts|links)(\[\d+\]|\[".*"\]|\.[A-Za-z_][A-Za-z0-9_]*)*$/.test(e.path) || e.message.length <= 8 || /undefined|\[object Object\]|NaN/.test(e.message));

/** zod's default messages: a field without its own message. */
const ZOD_DEFAULT = /^(Too (small|big)|Invalid (input|string|number|option)|Expected |Unrecognized key|Number must)/;

/**
 * Whether the program failed the one way it may: pulumi.RunError (the CLI prints its message, no
 * stack trace) carrying formatErrors' text of the errors validation finds, every one path-named.
 */
function isConfigError(e: unknown, v: ReturnType<typeof validateConfig>): boolean {
  return !v.ok && (e as { __pulumiRunError?: boolean })?.__pulumiRunError === true && (e as Error).message === formatErrors(v.errors) && unhelpful(v.errors).length === 0;
}

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
    const bad = [
      { path: "hosts[0].name", message: good.message },
      { path: good.path, message: "invalid" },
      { path: good.path, message: "expected undefined to be a number" },
      { path: "mptcp:hosts[0][object Object]", message: good.message },
    ];
    expect(unhelpful([good, ...bad])).toEqual(bad);
  });

  it("the ssh block, fuzzed with odd hosts, ports, users, host keys and types: validation never throws and every error is path-named (3000 configs)", () => {
    let rejected = 0;
    let accepted = 0;
    fc.assert(
      fc.property(sshConfig, (raw) => {
        const r = validateConfig(raw as { hosts: unknown; links?: unknown });
        if (r.ok) return void accepted++;
        rejected++;
        expect(r.errors.length).toBeGreaterThan(0);
        expect(unhelpful(r.errors)).toEqual([]);
        // zod's own wording ("Too small: expected number to be >=1") says nothing a user can act on
        expect(r.errors.filter((e) => ZOD_DEFAULT.test(e.message))).toEqual([]);
      }),
      { numRuns: 3000, seed: 20261207 },
    );
    console.log(`ssh fuzz: ${accepted} accepted, ${rejected} rejected`);
    expect(accepted).toBeGreaterThan(30);
    expect(rejected).toBeGreaterThan(1500);
  });

  it("the Pulumi program's preview (index.ts under mocks) of the whole config, ssh included: it registers the hosts when validation accepts, else fails with the path-named errors and nothing else (400 configs)", async () => {
    const start = Date.now();
    const seen = { accepted: 0, rejected: 0 };
    const other: string[] = [];
    await fc.assert(
      fc.asyncProperty(fc.oneof(sshConfig, config, goodConfig), privateKeyOdd, async (raw, privateKey) => {
        // what the program reads: the stack config as JSON (undefined fields gone, -0 as 0)
        const json = { hosts: JSON.parse(JSON.stringify((raw as { hosts: unknown }).hosts) ?? "null"), links: JSON.parse(JSON.stringify((raw as { links?: unknown }).links) ?? "null") };
        const v = validateConfig(json.links === null ? { hosts: json.hosts } : json);
        try {
          const run = await runProgram(json, { preview: true, privateKey });
          if (!v.ok) other.push(`preview accepted a config validation refuses: ${JSON.stringify(v.errors)}`);
          else expect(run.resources.filter((x) => x.type === HOST_TYPE).length).toBe(v.model.hosts.length);
          seen.accepted++;
        } catch (e) {
          seen.rejected++;
          const message = (e as Error).message ?? String(e);
          // the program's one failure: pulumi.RunError with formatErrors' text, every line a config path
          if (!isConfigError(e, v)) other.push(`${(e as Error).name}: ${message}\n${JSON.stringify(json).slice(0, 300)}`);
        }
      }),
      { numRuns: 400, seed: 20261207 },
    );
    console.log(`preview fuzz: ${seen.accepted} accepted, ${seen.rejected} rejected in ${Date.now() - start} ms`);
    expect(other).toEqual([]);
    expect(seen.accepted).toBeGreaterThan(40);
    expect(seen.rejected).toBeGreaterThan(150);
  });

  it("the preview check refuses a TypeError (item 8's Invalid URL), a plain Error, and a RunError for a config validation accepts (negative control)", async () => {
    const bad = validateConfig({ hosts: "x" });
    const good = validateConfig({ hosts: [{ name: "a", ssh: { host: "fe80::1%eth0", insecureIgnoreHostKey: true } }] });
    expect(good.ok).toBe(true);
    // the program's own failure on a refused config passes the check
    const e = await runProgram({ hosts: "x" }, { preview: true }).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(isConfigError(e, bad)).toBe(true);
    // what the zoned ssh.host threw before the fix, and what a crash outside validation would throw
    expect(isConfigError(new TypeError("Invalid URL"), bad)).toBe(false);
    expect(isConfigError(new Error((e as Error).message), bad)).toBe(false);
    expect(isConfigError(e, good)).toBe(false);
    // and the zoned host's preview now registers it
    await expect(runProgram({ hosts: [{ name: "a", ssh: { host: "fe80::1%eth0", insecureIgnoreHostKey: true } }] }, { preview: true })).resolves.toBeTruthy();
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
        fresh.forEach((s, i) => {
          writeFileSync(join(dir, `s${i}.sh`), s);
        });
        const r = shSyntaxCheck();
        expect(r.stderr + r.stdout).toBe("");
        expect(r.code).toBe(0);
        for (const s of fresh) checked.add(s);
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
