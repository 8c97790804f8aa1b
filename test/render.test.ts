// The host-side shell: its sources (components/sh/) and every script rendered from them.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { runSync } from "../scripts/lab/spawner";
import fc from "fast-check";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import {
  buildModel,
  codeOf,
  configSchema,
  functionsFor,
  HostModel,
  loadLibrary,
  parseLibrary,
  readStackConfig,
  renderHookFiles,
  CONCERNS,
  renderCheck,
  renderConcern,
  renderAnchor,
  renderHost,
  renderScript,
  requireValidConfig,
  SH_DIR,
  shq,
  wrapScript,
  selfText,
} from "../components/core";

const ROOT = join(__dirname, "..");
const devModel = () => requireValidConfig(readStackConfig(join(ROOT, "Pulumi.dev.yaml")));

/** A host that uses every knob, every flag kind, IPv6, an address-less endpoint, every routing mode, hooks and a sudo user. */
const wide: HostModel = buildModel(
  configSchema.parse({
    hosts: [
      {
        name: "wide-1",
        ssh: { host: "wide.example.net", user: "admin", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAbc" },
        sysctl: {
          enabled: true,
          pathManager: "kernel",
          scheduler: "default",
          checksumEnabled: false,
          allowJoinInitialAddrPort: true,
          addAddrTimeout: 60,
          staleLossCnt: 4,
          blackholeTimeout: 0,
          closeTimeout: 30,
          synRetransBeforeTcpFallback: 2,
        },
        limits: { subflows: 8, addAddrAccepted: 8 },
        endpoints: [
          { interface: "wlp2s0", address: "2001:db8::2", flags: ["signal", "backup"], port: 8443 },
          { interface: "enp0s31f6", flags: ["subflow", "fullmesh"] },
          { interface: "wwan0", address: "198.51.100.9", flags: ["subflow", "backup"], id: 9 },
          { interface: "wlp3s0", address: "2001:db8:1::2", flags: ["subflow"] },
        ],
        hooks: true,
        routing: [
          { interface: "wwan0", mode: "source", table: 42, priority: 4242, gateway: "198.51.100.1" },
          { interface: "wlp3s0", mode: "none" },
        ],
        services: [{ unit: "iperf3.service" }, { unit: "caddy.service", mode: "godebug", restart: "never" }, { unit: "web@8080.socket", mode: "socket" }],
      },
    ],
  }),
).hosts[0];

interface Rendered {
  /** Golden file, relative to test/golden. */
  golden: string;
  /** The script as it reaches the host (concerns: wrapped in the command text). */
  text: string;
  /** The script itself. */
  script: string;
  shell: boolean;
}

/** Every script the project renders for the dev stack's hosts and the wide host, as the program renders them (the stack named). */
function rendered(): Rendered[] {
  const hosts: [string, HostModel][] = [...devModel().hosts.map((h): [string, HostModel] => ["dev", { ...h, stack: "mptcp/dev" }]), ["wide", { ...wide, stack: "mptcp/wide" }]];
  return hosts.flatMap(([dir, h]) => [
    { golden: `${dir}/${h.name}-anchor.create.sh`, text: wrapScript(renderAnchor(h).apply, { user: h.ssh.user, host: h.name }), script: renderAnchor(h).apply, shell: true },
    { golden: `${dir}/${h.name}-anchor.delete.sh`, text: wrapScript(renderAnchor(h).revert, { user: h.ssh.user, host: h.name }), script: renderAnchor(h).revert, shell: true },
    ...renderHost(h).flatMap((s) => [
      { golden: `${dir}/${h.name}-${s.concern}.create.sh`, text: wrapScript(s.apply, { user: h.ssh.user, host: h.name }), script: selfText(s.apply), shell: true },
      { golden: `${dir}/${h.name}-${s.concern}.delete.sh`, text: wrapScript(s.revert, { user: h.ssh.user, host: h.name }), script: s.revert, shell: true },
      ...(s.confirm
        ? [
            { golden: `${dir}/${h.name}-${s.concern}-confirm.create.sh`, text: wrapScript(s.confirm.create, { user: h.ssh.user, host: h.name }), script: s.confirm.create, shell: true },
            { golden: `${dir}/${h.name}-${s.concern}-confirm.delete.sh`, text: wrapScript(s.confirm.delete, { user: h.ssh.user, host: h.name }), script: s.confirm.delete, shell: true },
          ]
        : []),
    ]),
    ...(h.hooks ? renderHookFiles(h) : []).map((f) => ({ golden: `${dir}/files${f.path}`, text: f.content, script: f.content, shell: f.source.endsWith(".sh") })),
    { golden: `${dir}/${h.name}-check.sh`, text: renderCheck(h), script: renderCheck(h), shell: true },
  ]);
}

/**
 * shellcheck on many scripts in one run (one process, not one per script): each script's findings
 * by its key, "" when it has none. The scripts are written to a temporary directory.
 */
function shellcheckEach(scripts: Map<string, string>, ...opts: string[]): Map<string, string> {
  const dir = mkdtempSync(join(tmpdir(), "mptcp-shellcheck-"));
  try {
    const files = [...scripts.keys()].map((k, i) => {
      const file = join(dir, `s${i}.sh`);
      writeFileSync(file, scripts.get(k)!);
      return [k, file] as const;
    });
    const r = spawnSync("shellcheck", ["-s", "sh", "-S", "style", "-f", "gcc", ...opts, ...files.map(([, f]) => f)], { encoding: "utf8", maxBuffer: 64 << 20 });
    if (r.error) throw r.error;
    const lines = r.stdout.split("\n");
    return new Map(files.map(([k, f]) => [k, lines.filter((l) => l.startsWith(`${f}:`)).join("\n")]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A script with what differs between hosts blanked: its title lines and its data values (as shq
 * writes them: a bare word, or a single-quoted string with '\'' for a quote). Scripts of one shape
 * differ only in quoted literals, so shellcheck finds the same in each: it runs on one of them.
 */
function shapeOf(script: string): string {
  return script.replace(/^# mptcp-pulumi: host .*$/gm, "#").replace(/^([A-Z_][A-Z0-9_]*)=(?:'(?:[^']|'\\'')*'|[A-Za-z0-9_.,:/@%+=-]*)$/gm, "$1=x");
}

function shellcheck(text: string, ...opts: string[]): string {
  const r = spawnSync("shellcheck", ["-s", "sh", "-S", "style", ...opts, "-"], { input: text, encoding: "utf8" });
  if (r.error) throw r.error;
  return r.stdout;
}

/** Names of functions a script defines but never calls. */
function unusedFunctions(script: string): string[] {
  const code = codeOf(script);
  const defined = [...code.matchAll(/^([a-z_][a-z0-9_]*)\(\) \{/gm)].map((m) => m[1]);
  return defined.filter((name) => (code.match(new RegExp(`(?<![A-Za-z0-9_])${name}(?![A-Za-z0-9_])`, "g")) ?? []).length < 2);
}

const sources = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? sources(join(dir, d.name)) : d.name.endsWith(".sh") ? [join(dir, d.name)] : []));

describe("shell sources (components/sh)", () => {
  const files = sources(SH_DIR);

  it("are there: the library, a body per concern and action, the entry point and each hook", () => {
    const names = files.map((f) => relative(SH_DIR, f));
    for (const c of CONCERNS) expect(names).toEqual(expect.arrayContaining([`${c}.apply.sh`, `${c}.revert.sh`]));
    expect(names).toEqual(expect.arrayContaining(["sync.sh", "ifup.sh", "ifdown.sh", "nm-dispatcher.sh", "dhclient-hook.sh", "dhcpcd-hook.sh", "prologue.sh", "lib/base.sh"]));
  });

  let checked: Map<string, string> | undefined;
  for (const f of files) {
    it(`${relative(SH_DIR, f)}: shellcheck`, () => {
      checked ??= shellcheckEach(new Map(files.map((x) => [x, readFileSync(x, "utf8")])));
      expect(checked.get(f)).toBe("");
    });
  }

  it("shellcheck finds a fault in a source, also among others in one run (negative controls)", () => {
    const faulty = `${readFileSync(join(SH_DIR, "limits.apply.sh"), "utf8")}\nrm -rf $STATE_DIR/*\n`;
    expect(shellcheck(faulty)).toMatch(/SC2115|SC2086/);
    const each = shellcheckEach(
      new Map([
        ["good", "echo ok\n"],
        ["bad", faulty],
        ["good too", "true\n"],
      ]),
    );
    expect(each.get("bad")).toMatch(/SC2115|SC2086/);
    expect([each.get("good"), each.get("good too")]).toEqual(["", ""]);
  });

  /** Whether a body takes the host lock (a line `state_lock`) before it writes anything. */
  const locksFirst = (code: string) => {
    const lines = codeOf(code)
      .split("\n")
      .map((l) => l.trim());
    const lock = lines.indexOf("state_lock");
    const write = lines.findIndex((l) =>
      /(^|[^2])>(?!\s*\/dev\/null)|\b(mkdir|state_keep|file_install|ip mptcp (limits set|endpoint (add|flush|delete))|limits_(set|save|apply|restore)|knob_(write|restore)|route_|rp_|ep_(set|clear|add_lines)|unit_enable|file_restore_all|file_remember|dir_create|svc_release|systemctl (restart|daemon-reload))\b/.test(
        l,
      ),
    );
    return lock >= 0 && (write < 0 || lock < write);
  };

  it("every apply and revert takes the host lock before its first change", () => {
    const bodies = files.filter((f) => /\.(apply|revert)\.sh$/.test(f) && !f.endsWith("/anchor.apply.sh"));
    // every concern's two, and the anchor's delete (its create changes nothing: no lock, no write)
    expect(bodies).toHaveLength(2 * CONCERNS.length + 1);
    const anchor = readFileSync(join(SH_DIR, "anchor.apply.sh"), "utf8");
    expect(codeOf(anchor).trim().split("\n")).toEqual([expect.stringMatching(/^say "/)]);
    for (const f of bodies) expect(locksFirst(readFileSync(f, "utf8")), relative(SH_DIR, f)).toBe(true);
    // control: the check notices a body that writes before it locks, or never locks
    expect(locksFirst("need_ip\nlimits_save\nstate_lock\n")).toBe(false);
    expect(locksFirst("need_ip\nlimits_apply\n")).toBe(false);
  });

  it("library files hold only comments and function definitions, each name once", () => {
    const lib = loadLibrary();
    expect(lib.length).toBeGreaterThan(30);
    expect(new Set(lib.map((f) => f.name)).size).toBe(lib.length);
  });

  it("the library parser refuses code outside a function, an unclosed function and a name defined twice", () => {
    expect(() => parseLibrary("lib/x.sh", "# a comment\nf() { :; }\nrm -rf /tmp/x\n")).toThrow(/lib\/x\.sh:3: a library file holds only comments and function definitions, found: rm -rf/);
    expect(() => parseLibrary("lib/x.sh", "f() {\n  :\n")).toThrow(/function f has no closing/);
    expect(parseLibrary("lib/x.sh", "# doc of f\nf() {\n  :\n}\n\n# not attached\n\ng() { f; }\n")).toEqual([
      { name: "f", file: "lib/x.sh", text: "# doc of f\nf() {\n  :\n}" },
      { name: "g", file: "lib/x.sh", text: "g() { f; }" },
    ]);
  });

  it("a body gets the functions it calls, directly or through others, and no other", () => {
    const names = (code: string) => functionsFor(code).map((f) => f.name);
    expect(names("say hello")).toEqual(["say"]);
    expect(names("# ep_set in a comment pulls in nothing\nsay x")).toEqual(["say"]);
    const sync = names("iface_sync wlan up");
    for (const f of ["iface_sync", "ep_set", "ep_want", "ep_normalize", "ep_clear", "ep_add_lines", "route_set", "route_clear", "rp_loose", "state_keep", "die"]) expect(sync).toContain(f);
    expect(sync).not.toContain("limits_set");
    expect(sync).not.toContain("file_install");
  });
});

describe("rendered scripts", () => {
  const all = rendered();

  it("cover every concern and every hook file of the wide host", () => {
    expect(renderHost(wide).map((s) => s.concern)).toEqual(["sysctl", "limits", "networkmanager", "endpoints", "hooks", "services"]);
    expect(all.filter((r) => r.golden.startsWith("wide/files/")).length).toBe(13);
  });

  let checked: Map<string, string> | undefined;
  /** shellcheck's findings for every script, run once per shape (the dev hosts' scripts mostly share the wide host's). */
  const shellcheckAll = (): Map<string, string> => {
    const shell = all.filter((x) => x.shell).map((x) => ({ x, shape: shapeOf(x.script) }));
    const first = new Map<string, Rendered>();
    for (const { x, shape } of shell) if (!first.has(shape)) first.set(shape, x);
    const found = shellcheckEach(new Map([...first.values()].map((x) => [x.golden, x.script])), "-o", "check-unassigned-uppercase");
    return new Map(shell.map(({ x, shape }) => [x.golden, found.get(first.get(shape)!.golden)!]));
  };
  for (const r of all.filter((x) => x.shell)) {
    it(`${r.golden}: sh -n, shellcheck (unassigned variables too), no unused function`, () => {
      checked ??= shellcheckAll();
      for (const input of [r.text, r.script]) {
        const n = runSync("sh", ["-n"], input);
        expect(n.stderr).toBe("");
        expect(n.code).toBe(0);
      }
      expect(checked.get(r.golden)).toBe("");
      expect(unusedFunctions(r.script)).toEqual([]);
      expect(r.script.split("\n").find((l) => l.startsWith("# mptcp-pulumi:"))).toMatch(/^# mptcp-pulumi: host [a-z0-9-]+, [a-z ()-]+, generated from its entry in mptcp:hosts$/i);
    });
  }

  it("scripts of one shape differ only in title lines and quoted data; a change to code is another shape (the shellcheck runs depend on it)", () => {
    const script = (host: string, concern: string) => all.find((x) => x.golden === `${host}-${concern}.create.sh`)!.script;
    const dev = script("dev/server", "sysctl");
    expect(shapeOf(dev)).toBe(shapeOf(script("wide/wide-1", "sysctl")));
    expect(shapeOf(dev)).not.toBe(shapeOf(script("wide/wide-1", "limits")));
    expect(shapeOf(dev.replace("txn_commit sysctl", "txn_commit sysctl; echo $UNSET"))).not.toBe(shapeOf(dev));
    // a quoted value with a quote and newlines in it, and a bare one, are blanked; code is not
    expect(shapeOf(`A='it'\\''s\nmore'\nB=root@h:22\nC=$(x)\nD='a' 'b'\n`)).toBe("A=x\nB=x\nC=$(x)\nD='a' 'b'\n");
    const shapes = new Set(all.filter((x) => x.shell).map((x) => shapeOf(x.script)));
    console.log(`shellcheck: ${shapes.size} shapes for ${all.filter((x) => x.shell).length} scripts`);
  });

  it("the unused-function and unassigned-variable checks catch one (negative controls)", () => {
    const s = selfText(renderHost(wide)[0].apply);
    expect(unusedFunctions(`${s}\nnever_called() { :; }\n`)).toEqual(["never_called"]);
    expect(shellcheck(s.replace(/^HOST=.*$/m, ""), "-o", "check-unassigned-uppercase")).toMatch(/HOST is referenced but not assigned/);
  });

  it("the check's APPLIES sums are the sums of the text each apply keeps on the host, as sh keeps it (a changed setting: another sum)", () => {
    const sumsOf = (h: HostModel) => /^APPLIES='([^']*)'$/m.exec(renderCheck(h))![1];
    // what an apply writes as its last completed apply (lib/txn.sh): its MPTCP_PULUMI_SELF, printed
    const kept = (apply: string) => runSync("sh", ["-c", apply.replace(/^eval "\$MPTCP_PULUMI_SELF"$/m, `printf '%s\\n' "$MPTCP_PULUMI_SELF" | sha256sum`)]).stdout.split(" ")[0];
    for (const h of [
      { ...devModel().hosts[0], stack: "mptcp/dev" },
      { ...wide, stack: "mptcp/wide" },
    ]) {
      expect(sumsOf(h)).toBe(
        renderHost(h)
          .map((s) => `${s.concern} ${kept(s.apply)}`)
          .join("\n"),
      );
      const changed = { ...h, limits: { ...h.limits, subflows: (h.limits.subflows ?? 0) + 1 } };
      const [was, now] = [sumsOf(h).split("\n"), sumsOf(changed).split("\n")];
      // limits, and hooks where the host has them (its boot unit restores the limits); not sysctl
      expect(now.filter((l) => !was.includes(l)).map((l) => l.split(" ")[0])).toEqual(h.hooks ? ["limits", "hooks"] : ["limits"]);
    }
    // without the stack no sum is given: an apply's text names its stack
    expect(sumsOf(wide)).toBe(
      renderHost(wide)
        .map((s) => `${s.concern} -`)
        .join("\n"),
    );
  });

  it("set LC_ALL=C before any sort or cmp", () => {
    for (const r of all.filter((x) => x.shell)) {
      const code = codeOf(r.script);
      const first = code.search(/(?<![A-Za-z0-9_-])(sort|cmp)(?![A-Za-z0-9_-])/);
      if (first < 0) continue;
      const lc = code.indexOf("export LC_ALL=C");
      expect(lc, r.golden).toBeGreaterThanOrEqual(0);
      expect(lc, r.golden).toBeLessThan(first);
    }
  });

  it("the systemd-networkd drop-in is the same for a renamed or moved host (a change restarts networkd); control: the hook scripts name the host", () => {
    const moved = { ...wide, name: "other", index: 7 };
    const file = (h: typeof wide, path: string) => renderHookFiles(h).find((f) => f.path === path)!.content;
    expect(file(moved, "/etc/systemd/networkd.conf.d/mptcp-pulumi.conf")).toBe(file(wide, "/etc/systemd/networkd.conf.d/mptcp-pulumi.conf"));
    expect(file(moved, "/etc/network/if-up.d/mptcp_up")).not.toBe(file(wide, "/etc/network/if-up.d/mptcp_up"));
  });

  it("the networkmanager apply does not change with the endpoints or limits (pulumi up would run it again for nothing); control: its own data does change it", () => {
    const nmApply = (h: typeof wide) => renderConcern(h, "networkmanager").apply;
    const changed = { ...wide, endpoints: wide.endpoints.map((e, i) => (i === 0 ? { ...e, flags: [...e.flags, "backup" as const] } : e)), limits: { subflows: 7, addAddrAccepted: 7 } };
    expect(nmApply(changed)).toBe(nmApply(wide));
    expect(nmApply({ ...wide, name: "other" })).not.toBe(nmApply(wide));
  });

  it("carry only the data their code references", () => {
    const [sysctl, limits, , endpoints] = renderHost(wide);
    // the data section: the assignments before the functions (the embedded revert has its own)
    const vars = (s: string) => [...s.split("# ---- functions")[0].matchAll(/^([A-Z_]+)=/gm)].map((m) => m[1]);
    expect(vars(selfText(limits.apply))).toEqual(["HOST", "STACK", "TARGET", "STATE_DIR", "LOCK_FILE", "SUBFLOWS", "ADD_ADDR_ACCEPTED"]);
    expect(vars(sysctl.revert)).not.toContain("KNOBS");
    expect(vars(endpoints.apply)).toEqual(expect.arrayContaining(["ENDPOINTS", "HOOKS"]));
    expect(vars(endpoints.apply)).not.toContain("ROUTING");
  });

  it("a data value reaches the script shell-quoted", () => {
    const s = renderScript({ host: { ...wide, name: "it's" }, title: "t", source: "t.sh", text: 'say "$HOST"' });
    expect(s).toContain(`HOST='it'\\''s'`);
    const r = spawnSync("sh", ["-c", s], { encoding: "utf8" });
    expect(r.stdout).toBe("mptcp-pulumi[it's]: it's\n");
  });

  it("golden files: every script, as it reaches the host", async () => {
    for (const r of all) await expect(r.text).toMatchFileSnapshot(`golden/${r.golden}.golden`);
  });

  it("a non-root user goes through sudo -n with a clear message", () => {
    const text = wrapScript("true", { user: "admin", host: "wide-1" });
    expect(text).toMatch(/^sudo -n true 2>\/dev\/null \|\| \{ echo .*user admin cannot run sudo without a password.*NOPASSWD.*>&2; exit 1; \}\nexec sudo -n sh -s <<'MPTCP_PULUMI_SCRIPT'\n/);
    const r = spawnSync("sh", ["-c", text.replace(/sudo -n true/, "false")], { encoding: "utf8" });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("mptcp-pulumi[wide-1]: error: user admin cannot run sudo without a password");
  });

  it("chk_lines (drift of a set of lines) reports exactly the lines missing on either side, whatever they hold (fast-check, 120 cases in one shell)", () => {
    // lines of a small alphabet, so the two sides share some; backslashes, | and blanks included, empty lines skipped
    const line = fc.stringMatching(/^[ab\\| ]{0,4}$/);
    const cases = fc.sample(fc.tuple(fc.array(line, { maxLength: 6 }), fc.array(line, { maxLength: 6 })), { numRuns: 120, seed: 12 });
    const text = cases.map(([want, have], i) => `echo @${i}; chk_lines P w ${shq(want.join("\n"))} ${shq(have.join("\n"))}`).join("\n");
    const r = spawnSync("sh", ["-c", renderScript({ host: wide, title: "t", source: "t.sh", text })], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    const got = r.stdout.split(/^@\d+\n/m).slice(1);
    const model = ([want, have]: string[][]) =>
      [...want.filter((l) => l && !have.includes(l)).map((l) => `P|w missing: ${l}\n`), ...have.filter((l) => l && !want.includes(l)).map((l) => `P|w not in the config: ${l}\n`)].join("");
    expect(got).toEqual(cases.map(model));
    // control: a differing case reports something (the model is not vacuous)
    expect(got.filter(Boolean).length).toBeGreaterThan(40);
  });

  it("refuses a script containing the heredoc terminator", () => {
    expect(() => wrapScript("echo\nMPTCP_PULUMI_SCRIPT\n", { user: "root", host: "x" })).toThrow(/terminator/);
  });
});

describe("components/*.ts hold no shell", () => {
  /** String and template literals in a TypeScript file that span more than `lines` source lines or hold more than `lines` newlines. */
  function longLiterals(file: string, text: string, lines: number): string[] {
    const src = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
    const found: string[] = [];
    const visit = (node: ts.Node) => {
      if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node) || ts.isTemplateExpression(node)) {
        const raw = node.getText(src);
        const span = raw.split("\n").length;
        const escapes = (raw.match(/\\n/g) ?? []).length;
        if (span > lines || escapes + span - 1 > lines) found.push(`${file}:${src.getLineAndCharacterOfPosition(node.getStart(src)).line + 1}`);
        return;
      }
      ts.forEachChild(node, visit);
    };
    visit(src);
    return found;
  }

  it("no string or template literal spans more than three lines", () => {
    const dir = join(ROOT, "components");
    const files = readdirSync(dir).filter((f) => f.endsWith(".ts"));
    expect(files.length).toBeGreaterThan(5);
    expect(files.flatMap((f) => longLiterals(f, readFileSync(join(dir, f), "utf8"), 3))).toEqual([]);
  });

  it("the check finds a script in a template literal (negative control)", () => {
    expect(longLiterals("x.ts", "const s = `set -eu\nsay() { :; }\nsay hi\nexit 0\n`;", 3)).toEqual(["x.ts:1"]);
    expect(longLiterals("x.ts", 'const s = "a\\nb\\nc\\nd\\ne";', 3)).toEqual(["x.ts:1"]);
  });
});

describe("shq", () => {
  const nasty = ["plain", "", "it's", "a b", "$(reboot)", "`id`", "x\ny", "\\", "'", "--", "*", "~root", "a;b|c&d>e<f"];
  for (const s of nasty) {
    it(`round-trips ${JSON.stringify(s)} through sh`, () => {
      const r = runSync("sh", ["-c", `printf %s ${shq(s)}`]);
      expect(r.stdout).toBe(s);
    });
  }
});
