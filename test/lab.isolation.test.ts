// Booting lab laptops leaves this machine alone: its files in /tmp, /var/tmp, /run, /home and
// /root (a laptop's systemd once wiped this machine's /tmp), its hostname, and every kernel
// setting outside the laptops' network namespaces. Each laptop runs systemd with nothing failed.
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { labExec, labSh, linksNotReady, MASKED_UNITS } from "../scripts/lab/lab";
import { waitFor } from "../scripts/lab/wait";
import { DEFAULT_TOPOLOGY } from "../scripts/lab/topology";
import { labFile } from "./harness/fixture";

const PRIVATE_DIRS = ["/tmp", "/var/tmp", "/run", "/home", "/root"];
const tag = randomBytes(4).toString("hex");
const sentinels = PRIVATE_DIRS.map((d) => ({ path: join(d, `.mptcp-lab-sentinel-${tag}`), content: `${d} ${tag}\n` }));

/**
 * Every readable kernel setting outside /proc/sys/net: path to its first 300 bytes, newlines and
 * tabs as spaces. Read here, not by a shell: a process or three per file was 2,300 per run.
 */
function kernelSettings(): Map<string, string> {
  const settings = new Map<string, string>();
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) {
        if (path !== "/proc/sys/net") walk(path);
      } else if (e.isFile() && statSync(path).mode & 0o400) {
        let value = "";
        try {
          value = readFileSync(path)
            .subarray(0, 300)
            .toString("latin1")
            .replace(/[\n\t]/g, " ");
        } catch {
          // unreadable despite its mode (as head's 2>/dev/null left it): compared as empty
        }
        settings.set(path, value);
      }
    }
  };
  walk("/proc/sys");
  return settings;
}

/** Keys whose values differ between two maps. */
const changed = (a: Map<string, string>, b: Map<string, string>) => [...new Set([...a.keys(), ...b.keys()])].filter((k) => a.get(k) !== b.get(k));

let settingsBefore: Map<string, string>;
let volatile: Set<string>;
const hostnameBefore = hostname();

// before the lab starts (hooks run in the order they are registered; afterAll hooks in reverse,
// so the sentinels go once the lab is down)
beforeAll(async () => {
  for (const s of sentinels) writeFileSync(s.path, s.content);
  // two readings a moment apart: what changes on its own (counters, entropy) is not compared
  settingsBefore = kernelSettings();
  await new Promise((r) => setTimeout(r, 300));
  volatile = new Set(changed(settingsBefore, kernelSettings()));
  for (const k of settingsBefore.keys()) if (/dentry-state|inode-|file-nr|\/random\/|ns_last_pid|pty\/nr|aio-nr|\/fs\/quota\//.test(k)) volatile.add(k);
});

afterAll(() => {
  for (const s of sentinels) rmSync(s.path, { force: true });
});

const f = labFile(DEFAULT_TOPOLOGY, "i");

describe("lab laptops are handed over with their links ready", () => {
  it("every interface has carrier and its IPv6 multicast route when up returns; a link without either is seen as not ready", async () => {
    for (const h of f.lab.hosts) expect(linksNotReady(h), h.name).toEqual([]);
    const [server, client] = f.lab.hosts;
    // controls: the peer's end down takes the client's carrier; a deleted multicast route is missed
    labSh(server, "ip link set lan down");
    expect(linksNotReady(client)).toEqual(["lan"]);
    labSh(server, "ip link set lan up");
    await waitFor("the client's lan to be ready again", 5000, () => linksNotReady(client).length === 0);
    labSh(client, "ip -6 route del multicast ff00::/8 dev wlan table local");
    expect(linksNotReady(client)).toEqual(["wlan"]);
    labSh(client, "ip link set wlan down && ip link set wlan up");
    await waitFor("the client's wlan to be ready again", 5000, () => linksNotReady(client).length === 0);
  });
});

describe("lab laptops boot systemd without touching this machine", () => {
  it("each laptop's systemd is running with no failed unit, and the units that reach this machine are masked", () => {
    const masked = Object.values(MASKED_UNITS).flatMap((u) => u.split(" "));
    for (const h of f.lab.hosts) {
      expect(labSh(h, "systemctl is-system-running --wait || true").trim(), h.name).toBe("running");
      expect(labSh(h, "systemctl --failed --no-legend --plain")).toBe("");
      const states = labSh(h, `systemctl is-enabled ${masked.join(" ")} 2>/dev/null || true`)
        .trim()
        .split("\n");
      expect(new Set(states), h.name).toEqual(new Set(["masked"]));
      expect(labSh(h, "cat /proc/1/comm; hostname").trim().split("\n")).toEqual(["systemd", h.name]);
    }
  });

  it("this machine's /tmp, /var/tmp, /run, /home and /root: every sentinel is still there, unchanged, and no laptop sees it", () => {
    for (const s of sentinels) expect(readFileSync(s.path, "utf8"), s.path).toBe(s.content);
    for (const h of f.lab.hosts) {
      for (const s of sentinels) expect(labExec(h, `test -e ${s.path}`).code, `${h.name} sees ${s.path}`).not.toBe(0);
      // control: the same check does see a file of this machine that the laptop shares (read-only)
      expect(labExec(h, "test -e /usr/bin/env").code).toBe(0);
    }
  });

  it("kernel settings outside the network namespace are unchanged, and a laptop cannot change them", () => {
    const diff = changed(settingsBefore, kernelSettings()).filter((k) => !volatile.has(k));
    console.log(`${settingsBefore.size} kernel settings compared (${volatile.size} volatile ones left out): ${diff.length} changed`);
    expect(settingsBefore.size).toBeGreaterThan(100);
    // control: the comparison sees a value that changed (a fresh UUID on every read)
    expect(changed(settingsBefore, kernelSettings())).toContain("/proc/sys/kernel/random/uuid");
    expect(diff).toEqual([]);
    for (const h of f.lab.hosts) {
      const denied = labExec(h, "cat /proc/sys/kernel/pid_max > /proc/sys/kernel/pid_max");
      expect(denied.code).not.toBe(0);
      expect(denied.stderr).toMatch(/Read-only file system/);
      // control: the same kind of write inside the laptop's own network namespace works
      expect(labExec(h, "cat /proc/sys/net/mptcp/enabled > /proc/sys/net/mptcp/enabled").code).toBe(0);
    }
    expect(labExec(f.lab.hosts[0], "touch /usr/.mptcp-lab-write-test").stderr).toMatch(/Read-only file system/);
  });

  it("this machine keeps its hostname", () => {
    expect(hostname()).toBe(hostnameBefore);
  });
});
