import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildModel, configSchema, HostModel, readStackConfig, renderHookFiles, renderHost, requireValidConfig, shq, wrapScript } from "../components";

const ROOT = join(__dirname, "..");
const devModel = () => requireValidConfig(readStackConfig(join(ROOT, "Pulumi.dev.yaml")));

/** A host that uses every knob, flag kind, an address-less endpoint, IPv6 and a sudo user. */
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
        ],
        hooks: true,
        routing: [{ interface: "wwan0", mode: "source", table: 42, priority: 4242, gateway: "198.51.100.1" }],
      },
    ],
  }),
).hosts[0];

function scripts(): { label: string; text: string; user: string; host: string }[] {
  const hosts = [...devModel().hosts, wide];
  return hosts.flatMap((h) =>
    renderHost(h).flatMap((s) => [
      { label: `${h.name}-${s.concern}.apply`, text: s.apply, user: h.ssh.user, host: h.name },
      { label: `${h.name}-${s.concern}.revert`, text: s.revert, user: h.ssh.user, host: h.name },
    ]),
  );
}

describe("rendered scripts", () => {
  it("cover every concern of the wide host", () => {
    expect(renderHost(wide).map((s) => s.concern)).toEqual(["sysctl", "limits", "endpoints", "hooks"]);
  });

  for (const f of renderHookFiles(wide)) {
    if (f.path.endsWith(".service")) continue;
    it(`hook file ${f.path}: sh -n and shellcheck`, () => {
      expect(spawnSync("sh", ["-n"], { input: f.content, encoding: "utf8" }).status).toBe(0);
      const sc = spawnSync("shellcheck", ["-s", "sh", "-S", "style", "-"], { input: f.content, encoding: "utf8" });
      expect(sc.stdout).toBe("");
    });
  }

  for (const s of scripts()) {
    it(`${s.label}: sh -n, shellcheck, and the wrapped command parse`, () => {
      const n = spawnSync("sh", ["-n"], { input: s.text, encoding: "utf8" });
      expect(n.stderr).toBe("");
      expect(n.status).toBe(0);
      const sc = spawnSync("shellcheck", ["-s", "sh", "-S", "style", "-"], { input: s.text, encoding: "utf8" });
      expect(sc.stdout).toBe("");
      expect(sc.status).toBe(0);
      const wrapped = wrapScript(s.text, { user: s.user, host: s.host });
      expect(spawnSync("sh", ["-n"], { input: wrapped, encoding: "utf8" }).status).toBe(0);
      expect(s.text.split("\n")[0]).toMatch(/^# mptcp-pulumi: host [a-z0-9-]+, (sysctl|limits|endpoints|hooks) (apply|revert), generated from mptcp:hosts\[\d+\]$/);
    });
  }

  it("a non-root user goes through sudo -n with a clear message", () => {
    const text = wrapScript("true", { user: "admin", host: "wide-1" });
    expect(text).toMatch(/^sudo -n true 2>\/dev\/null \|\| \{ echo .*user admin cannot run sudo without a password.*NOPASSWD.*>&2; exit 1; \}\nsudo -n sh -s <<'MPTCP_PULUMI_SCRIPT'\n/);
    const r = spawnSync("sh", ["-c", text.replace(/sudo -n true/, "false")], { encoding: "utf8" });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("mptcp-pulumi[wide-1]: error: user admin cannot run sudo without a password");
  });

  it("refuses a script containing the heredoc terminator", () => {
    expect(() => wrapScript("echo\nMPTCP_PULUMI_SCRIPT\n", { user: "root", host: "x" })).toThrow(/terminator/);
  });

  it("golden files for the dev stack", async () => {
    for (const h of devModel().hosts) {
      for (const s of renderHost(h)) {
        await expect(wrapScript(s.apply, { user: h.ssh.user, host: h.name })).toMatchFileSnapshot(`golden/dev/${h.name}-${s.concern}.create.sh`);
        await expect(wrapScript(s.revert, { user: h.ssh.user, host: h.name })).toMatchFileSnapshot(`golden/dev/${h.name}-${s.concern}.delete.sh`);
      }
    }
  });
});

describe("shq", () => {
  const nasty = ["plain", "", "it's", "a b", "$(reboot)", "`id`", "x\ny", "\\", "'", "--", "*", "~root", "a;b|c&d>e<f"];
  for (const s of nasty) {
    it(`round-trips ${JSON.stringify(s)} through sh`, () => {
      const r = spawnSync("sh", ["-c", `printf %s ${shq(s)}`], { encoding: "utf8" });
      expect(r.stdout).toBe(s);
    });
  }
});
