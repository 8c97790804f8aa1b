// The network-stack library (components/sh/lib/netstack.sh) against stand-ins of nmcli and
// NetworkManager on PATH: which versions have MPTCP handling, and which profiles are foreign,
// with a profile name that carries our field separator. No root, no lab.
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { buildModel, configSchema, renderScript, shq } from "../components/core";

const dir = mkdtempSync(join(tmpdir(), "mptcp-netstack-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const host = buildModel(configSchema.parse({ hosts: [{ name: "ns", ssh: { host: "h", insecureIgnoreHostKey: true } }] })).hosts[0];

/** Runs library code with stand-ins of NetworkManager (printing `version`) and nmcli (one device, wlan, whose profile is `name` with `flags`). */
function withNm(code: string, nm: { version: string; name?: string; flags?: string }): string {
  const bin = mkdtempSync(join(dir, "bin-"));
  const tool = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  tool("NetworkManager", `echo ${shq(nm.version)}`);
  tool(
    "nmcli",
    `case "$*" in
  "-t -f RUNNING general") echo running ;;
  "-t -f DEVICE,STATE device") printf 'lo:connected (externally)\\nwlan:connected\\nmgmt:unmanaged\\n' ;;
  "-g GENERAL.CON-UUID device show wlan") echo 0f6a-uuid ;;
  "-g connection.id,connection.mptcp-flags connection show 0f6a-uuid") printf '%s\\n%s\\n' ${shq(nm.name ?? "wlan")} ${shq(nm.flags ?? "0x0")} ;;
  *) exit 10 ;;
esac`,
  );
  // installed as far as nm_present can tell (the stand-in nmcli), whatever this machine has in /etc
  const script = renderScript({ host, title: "test", source: "test.sh", text: `nm_present() { command -v nmcli >/dev/null; }\n${code}` });
  const r = spawnSync("sh", ["-c", `PATH=${shq(bin)}:$PATH; export PATH\n${script}`], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

describe("NetworkManager in the network-stack library", () => {
  it("MPTCP handling from 1.40 on (nm_mptcp); older and unreadable versions get none", () => {
    const has = (version: string) => withNm("if nm_mptcp; then echo yes; else echo no; fi", { version }).trim();
    expect(["1.40.0", "1.42.4", "1.46.0", "2.0.1"].map(has)).toEqual(["yes", "yes", "yes", "yes"]);
    expect(["1.36.6", "1.39.99", "", "unknown"].map(has)).toEqual(["no", "no", "no", "no"]);
  });

  it("a profile with flags of its own is foreign; the default and disabled are not; a name with our field separator cannot forge a field", () => {
    const foreign = (name: string, flags: string) => withNm("nm_profiles_foreign", { version: "1.42.4", name, flags });
    expect(foreign("Wired connection 1", "0x22")).toBe("wlan|Wired connection 1|0x22\n");
    expect(foreign("wlan", "0x0")).toBe("");
    expect(foreign("wlan", "0x1")).toBe("");
    expect(foreign("wlan", "0x23")).toBe("");
    expect(foreign("evil|mptcp:hosts[0]", "0x22")).toBe("wlan|evil?mptcp?hosts?0?|0x22\n");
  });
});
