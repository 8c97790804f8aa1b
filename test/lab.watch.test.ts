// npm run watch against the lab, as a person sees it: under tmux (capture-pane) during an MPTCP
// transfer and a link flap of the server's wlan (link down and the hooks' sync, as ifdown runs
// it; then up): both paths carry data, the flapped path reads 0 and comes back, and the events
// come in order (subflow closed on wlan, then established again). Ctrl-C leaves nothing running on
// the laptops (the same check finds our processes while it runs: the control). Then --json during
// a transfer without the flap, each interval's rates against the interfaces' byte counters read
// directly (nsenter) over the same window (control: the same check against the other path's
// counters fails), the path never reading 0 (the flap's control), and the watcher killed
// (SIGKILL, its connections cut) still leaves nothing on the laptops.
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { HostModel, Model, requireValidConfig, SYNC_PATH } from "../components";
import { dialAddress, LAB_USER, LabHost, labSh, labStackConfig } from "../scripts/lab/lab";
import { DEFAULT_TOPOLOGY, pathAddress, Topology } from "../scripts/lab/topology";
import { sleep, waitFor } from "../scripts/lab/wait";
import { connectAll, Session } from "../scripts/verify/ssh";
import { transfer } from "../scripts/verify/verify";
import { npmScript, ROOT } from "./harness/cli";
import { labFile } from "./harness/fixture";
import { runProgram } from "./harness/program";

// unequal paths: a check against the wrong path's counters cannot pass by chance
const RATES: Record<string, string> = { lan: "20mbit", wlan: "10mbit" };
const topology: Topology = { ...DEFAULT_TOPOLOGY, paths: DEFAULT_TOPOLOGY.paths.map((p) => ({ ...p, rate: RATES[p.name] })) };

const f = labFile(topology, "w");
const dir = mkdtempSync(join(tmpdir(), "mptcp-watch-"));
const sock = join(dir, "tmux.sock");
let file: string;
let model: Model;
let sessions: Map<string, Session>;
const host = f.host;
const addr = (h: string, path: string) => pathAddress(topology, h, path);
const tmux = (...args: string[]) => execFileSync("tmux", ["-S", sock, ...args], { encoding: "utf8" });
const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Our processes on a laptop: the sampler's shell, its sleep and reader, ip mptcp monitor, ss. */
function ours(h: LabHost): string[] {
  return labSh(h, "ps -eo pid=,args=")
    .split("\n")
    .filter((l) => /mptcp monitor|@sample|^\s*\d+ (cat|sleep|ss)( |$)/.test(l));
}

/** The frame's rows as "host iface" -> rates in Mbit/s (NaN for "-"). */
function ratesOf(frame: string): Map<string, { rx: number; tx: number }> {
  const out = new Map<string, { rx: number; tx: number }>();
  for (const m of frame.matchAll(/^(server|client)\s+(lan|wlan)\s+(\S+)(?: Mbit\/s)?\s+(\S+)(?: Mbit\/s)?\s+\d+\s+\d+/gm)) out.set(`${m[1]} ${m[2]}`, { rx: Number(m[3]), tx: Number(m[4]) });
  return out;
}

/** A transfer client -> server big enough to outlast `seconds` on both paths, with `during`. */
function bigTransfer(during: () => Promise<void>) {
  return transfer(sessions.get("client")!, sessions.get("server")!, dialAddress(topology, "client", "server")!, { bytes: 40 << 20, subflows: 1, during });
}

beforeAll(async () => {
  const config = labStackConfig(f.lab) as { hosts: any[]; links: any[] };
  // the server's hooks: the flap's down removes its wlan endpoint (RM_ADDR), up announces it again
  config.hosts.find((h) => h.name === "server").hooks = true;
  model = requireValidConfig(config);
  file = join(dir, "Pulumi.lab.yaml");
  writeFileSync(file, stringify({ config: { "mptcp:hosts": config.hosts, "mptcp:links": config.links } }));
  await f.sim.up((await runProgram(config, { privateKey: f.privateKey, stack: "lab" })).commands);
  ({ sessions } = await connectAll(model.hosts as HostModel[], { privateKey: f.privateKey }));
});

afterAll(async () => {
  for (const s of sessions?.values() ?? []) await s.close();
  try {
    tmux("kill-server");
  } catch {
    // none running
  }
  rmSync(dir, { recursive: true, force: true });
});

describe("npm run watch: the live view of both laptops", () => {
  it("under tmux during a transfer and a wlan flap: both paths carry, wlan reads 0 and comes back, events in order; Ctrl-C leaves nothing on the laptops", async () => {
    const cmd = `cd ${shq(ROOT)} && exec npm run watch -- ${shq(file)} --identity ${shq(f.lab.privateKeyFile)} --interval 1 --plot ${shq(join(dir, "watch.svg"))}`;
    tmux("new-session", "-d", "-s", "watch", "-x", "200", "-y", "50", cmd);
    // the pane stays after watch exits: its last lines can be read
    tmux("set-option", "-t", "watch", "remain-on-exit", "on");
    try {
      await viewDuringFlap();
    } finally {
      // a failure above must not leave the watcher running into the next test
      tmux("kill-server");
    }
  });

  async function viewDuringFlap() {
    const pane = () => tmux("capture-pane", "-p", "-t", "watch");
    await waitFor("the view with both hosts' rows", 30_000, () => ratesOf(pane()).has("server wlan") && ratesOf(pane()).has("client lan"), 200).catch((e) => {
      throw new Error(`${e.message}; the pane:\n${pane()}`);
    });
    // control of the check that nothing is left: it finds our processes while watch runs
    for (const name of ["server", "client"]) expect(ours(host(name)).join("\n"), name).toMatch(/mptcp monitor/);
    const frames: { t: number; phase: string; text: string }[] = [];
    let phase = "both";
    let capturing = true;
    const capture = (async () => {
      while (capturing) {
        frames.push({ t: performance.now(), phase, text: pane() });
        await sleep(500);
      }
    })();
    const report = await bigTransfer(async () => {
      await sleep(4000);
      labSh(host("server"), `ip link set wlan down && ${SYNC_PATH} wlan down`);
      phase = "down";
      await sleep(4000);
      labSh(host("server"), `ip link set wlan up && ${SYNC_PATH} wlan up`);
      phase = "up";
    });
    capturing = false;
    await capture;
    const last = pane();
    console.log(`transfer ${report.bytes} B in ${report.seconds} s; last frame:\n${last}`);
    expect(report.server.sha256).toBe(report.sha256);
    const at = (p: string) => frames.filter((x) => x.phase === p).map((x) => ratesOf(x.text));
    const rx = (r: Map<string, { rx: number; tx: number }>, k: string) => r.get(k)?.rx ?? NaN;
    // both paths carry the transfer (the server receives on lan and wlan, the client sends on both)
    const both = at("both").filter((r) => rx(r, "server lan") > 1 && rx(r, "server wlan") > 1);
    expect(both.length, "frames with both paths above 1 Mbit/s").toBeGreaterThan(0);
    expect(both.some((r) => (r.get("client lan")?.tx ?? 0) > 1 && (r.get("client wlan")?.tx ?? 0) > 1)).toBe(true);
    // wlan reads 0 while down (both ends), lan carries on
    const down = at("down").filter((r) => rx(r, "server wlan") === 0 && r.get("client wlan")?.tx === 0);
    expect(down.length, "frames with wlan at 0").toBeGreaterThan(0);
    expect(down.some((r) => rx(r, "server lan") > 1)).toBe(true);
    // and comes back
    expect(
      at("up").some((r) => rx(r, "server wlan") > 1),
      "wlan carries again after the flap",
    ).toBe(true);
    // the events, in order: on the client, the wlan subflow closed, then established again
    const events = last.split("\n").filter((l) => /^\d\d:\d\d:\d\d\.\d{3} {2}/.test(l));
    const wlanSf = (what: string) => events.findIndex((l) => l.includes(` client  subflow ${what}  ${addr("client", "wlan")}`) && l.includes(addr("server", "wlan")));
    const closed = wlanSf("closed");
    expect(closed, "subflow closed on wlan").toBeGreaterThanOrEqual(0);
    const again = events.findIndex((l, i) => i > closed && l.includes(` client  subflow established  ${addr("client", "wlan")}`));
    expect(again, "subflow established on wlan after it closed").toBeGreaterThan(closed);
    expect(events.some((l) => l.includes(" client  address removed"))).toBe(true);
    // Ctrl-C: the view ends, and nothing of ours is left on the laptops
    const stop = performance.now();
    tmux("send-keys", "-t", "watch", "C-c");
    await waitFor("watch to end (the plot written)", 20_000, () => /wrote .*watch\.svg/.test(pane()), 200).catch((e) => {
      throw new Error(`${e.message}; the pane:\n${pane()}`);
    });
    expect(readFileSync(join(dir, "watch.svg"), "utf8")).toMatch(/^<svg/);
    for (const name of ["server", "client"]) await waitFor(`nothing of ours on ${name}`, 5000, () => ours(host(name)).length === 0, 100);
    console.log(`nothing left on either laptop ${((performance.now() - stop) / 1000).toFixed(2)} s after Ctrl-C`);
  }

  it("--json during a transfer without the flap: rates match the byte counters read directly; the path never reads 0; SIGKILL leaves nothing", async () => {
    const [node, args] = npmScript("watch", file, "--identity", f.lab.privateKeyFile, "--interval", "1", "--json");
    const child: ChildProcess = spawn(node, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d));
    child.stderr!.on("data", (d: Buffer) => process.stderr.write(d));
    try {
      await waitFor("the first JSON objects", 30_000, () => out.split("\n").length > 3, 100);
      // the server's counters read directly, with the kernel's uptime (the laptops share the kernel's clock)
      const direct: { up: number; lan: number; wlan: number }[] = [];
      let reading = true;
      const read = (async () => {
        while (reading) {
          const [up, lan, wlan] = labSh(host("server"), "cut -d' ' -f1 /proc/uptime; cat /sys/class/net/lan/statistics/rx_bytes /sys/class/net/wlan/statistics/rx_bytes")
            .trim()
            .split("\n")
            .map(Number);
          direct.push({ up, lan, wlan });
          await sleep(250);
        }
      })();
      const startUp = Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]);
      await bigTransfer(async () => undefined);
      const endUp = Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]);
      reading = false;
      await read;
      const objects = out
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      const intervals = new Map<number, { up: number; seconds: number; lan: number; wlan: number }>();
      for (const o of objects) {
        const s = o.hosts.server;
        if (s.seconds && s.uptime - s.seconds >= direct[0].up && s.uptime <= direct[direct.length - 1].up)
          intervals.set(s.uptime, { up: s.uptime, seconds: s.seconds, lan: s.interfaces.lan.rx, wlan: s.interfaces.wlan.rx });
      }
      const at = (t: number, k: "lan" | "wlan") => {
        const i = direct.findIndex((d) => d.up >= t);
        const [a, b] = [direct[Math.max(0, i - 1)], direct[i]];
        return b.up === a.up ? b[k] : a[k] + ((b[k] - a[k]) * (t - a.up)) / (b.up - a.up);
      };
      const expected = (iv: { up: number; seconds: number }, k: "lan" | "wlan") => (at(iv.up, k) - at(iv.up - iv.seconds, k)) / iv.seconds;
      const within = (got: number, want: number) => Math.abs(got - want) <= 0.1 * want + 60_000;
      const rows = [...intervals.values()];
      const busy = rows.filter((iv) => iv.up - iv.seconds >= startUp && iv.up <= endUp);
      console.log(
        `intervals in the transfer: ${busy.length}; json/direct server rx (MB/s): ${busy.map((iv) => `lan ${(iv.lan / 1e6).toFixed(2)}/${(expected(iv, "lan") / 1e6).toFixed(2)} wlan ${(iv.wlan / 1e6).toFixed(2)}/${(expected(iv, "wlan") / 1e6).toFixed(2)}`).join("; ")}`,
      );
      expect(busy.length).toBeGreaterThanOrEqual(4);
      for (const iv of rows) {
        expect(within(iv.lan, expected(iv, "lan")), `lan at ${iv.up}: ${iv.lan} vs ${expected(iv, "lan")}`).toBe(true);
        expect(within(iv.wlan, expected(iv, "wlan")), `wlan at ${iv.up}: ${iv.wlan} vs ${expected(iv, "wlan")}`).toBe(true);
      }
      // control: against the other path's counters the same check fails while data flows
      expect(busy.filter((iv) => !within(iv.wlan, expected(iv, "lan"))).length).toBeGreaterThan(busy.length / 2);
      // the flap's control: without it, wlan never reads 0 while the transfer runs
      const inner = busy.slice(1, -1);
      expect(
        inner.every((iv) => iv.wlan > 200_000),
        `wlan rx: ${inner.map((iv) => iv.wlan).join(", ")}`,
      ).toBe(true);
      for (const name of ["server", "client"]) expect(ours(host(name)).join("\n"), name).toMatch(/mptcp monitor/);
    } finally {
      // the connection cut, not closed: the laptops' side ends by itself
      child.kill("SIGKILL");
    }
    const killed = performance.now();
    for (const name of ["server", "client"])
      await waitFor(`nothing of ours on ${name} after SIGKILL`, 10_000, () => ours(host(name)).length === 0, 100).catch((e) => {
        throw new Error(`${e.message}: ${ours(host(name)).join("\n")}\n${labSh(host(name), "ps -eo pid,ppid,args")}`);
      });
    console.log(`nothing left on either laptop ${((performance.now() - killed) / 1000).toFixed(2)} s after SIGKILL`);
  });

  it("as a non-root ssh.user through sudo -n: the same rows and ip mptcp monitor; without the sudo rule the host says so and nothing runs there (control)", async () => {
    const config = labStackConfig(f.lab) as { hosts: any[]; links: any[] };
    config.hosts.find((h) => h.name === "client").ssh.user = LAB_USER;
    const sudoFile = join(dir, "Pulumi.sudo.yaml");
    writeFileSync(sudoFile, stringify({ config: { "mptcp:hosts": config.hosts, "mptcp:links": config.links } }));
    const watchFor = async (objects: number) => {
      const [node, args] = npmScript("watch", sudoFile, "--identity", f.lab.privateKeyFile, "--interval", "1", "--json");
      const child: ChildProcess = spawn(node, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let err = "";
      child.stdout!.on("data", (d: Buffer) => (out += d));
      child.stderr!.on("data", (d: Buffer) => (err += d));
      const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
      await Promise.race([waitFor("JSON objects", 30_000, () => out.split("\n").length > objects, 100), exited]);
      child.kill("SIGINT");
      const code = await exited;
      return {
        objects: out.trim()
          ? out
              .trim()
              .split("\n")
              .map((l) => JSON.parse(l))
          : [],
        err,
        code,
      };
    };
    const withSudo = await watchFor(3);
    const client = withSudo.objects.at(-1).hosts.client;
    expect(client.status, withSudo.err).toBeUndefined();
    expect(client.monitor).toBeUndefined();
    expect(Object.keys(client.interfaces).sort()).toEqual(["lan", "wlan"]);
    expect(typeof client.interfaces.lan.rxBytes).toBe("number");
    for (const name of ["server", "client"]) await waitFor(`nothing of ours on ${name}`, 10_000, () => ours(host(name)).length === 0, 100);
    // control: the user without its sudo rule
    labSh(host("client"), "mv /etc/sudoers.d/mptcp-lab-user /root/sudo-rule");
    try {
      const without = await watchFor(2);
      const said = JSON.stringify(without.objects.at(-1)?.hosts?.client ?? {}) + without.err;
      console.log(`without sudo: exit ${without.code}; ${said.slice(0, 300)}`);
      expect(said).toMatch(/sudo/);
      expect(ours(host("client"))).toEqual([]);
      // no host can run anything: watch ends by itself with 2, as when none can be reached
      const both = labStackConfig(f.lab) as { hosts: any[]; links: any[] };
      for (const h of both.hosts) h.ssh.user = LAB_USER;
      labSh(host("server"), "mv /etc/sudoers.d/mptcp-lab-user /root/sudo-rule");
      try {
        const noneFile = join(dir, "Pulumi.nosudo.yaml");
        writeFileSync(noneFile, stringify({ config: { "mptcp:hosts": both.hosts, "mptcp:links": both.links } }));
        const [node, args] = npmScript("watch", noneFile, "--identity", f.lab.privateKeyFile, "--interval", "1", "--json");
        const child = spawn(node, args, { cwd: ROOT, stdio: ["ignore", "ignore", "ignore"] });
        const code = await new Promise<number | null>((r) => {
          const t = setTimeout(() => {
            child.kill("SIGKILL");
            r(null);
          }, 30_000);
          child.on("exit", (c) => {
            clearTimeout(t);
            r(c);
          });
        });
        expect(code).toBe(2);
      } finally {
        labSh(host("server"), "mv /root/sudo-rule /etc/sudoers.d/mptcp-lab-user");
      }
    } finally {
      labSh(host("client"), "mv /root/sudo-rule /etc/sudoers.d/mptcp-lab-user");
    }
  });

  it("a host whose iproute2 has no ip mptcp monitor: the events say so for that host, its rates still come; the other host's events are unaffected (control)", async () => {
    // an iproute2 before 5.11 has ip mptcp but no monitor: `Command "monitor" is unknown`
    const wrapper = `#!/bin/sh\nif [ "$1 $2" = "mptcp monitor" ]; then echo 'Command "monitor" is unknown, try "ip mptcp help".' >&2; exit 255; fi\nexec /usr/bin/ip "$@"\n`;
    labSh(host("client"), `printf '%s' ${shq(wrapper)} > /usr/local/sbin/ip && chmod 755 /usr/local/sbin/ip && command -v ip`);
    try {
      const [node, args] = npmScript("watch", file, "--identity", f.lab.privateKeyFile, "--interval", "1", "--json");
      const child: ChildProcess = spawn(node, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout!.on("data", (d: Buffer) => (out += d));
      try {
        await waitFor("JSON objects", 30_000, () => out.split("\n").length > 4, 100);
      } finally {
        child.kill("SIGINT");
      }
      const last = JSON.parse(out.trim().split("\n").at(-1)!);
      console.log(`client monitor: ${last.hosts.client.monitor}`);
      expect(last.hosts.client.monitor).toMatch(/^ip mptcp monitor is not available \(.*unknown.*\): no subflow or address events from this host, counters and rates only$/);
      expect(typeof last.hosts.client.interfaces.lan.rxBytes).toBe("number");
      expect(last.hosts.server.monitor).toBeUndefined();
    } finally {
      labSh(host("client"), "rm -f /usr/local/sbin/ip");
    }
    for (const name of ["server", "client"]) await waitFor(`nothing of ours on ${name}`, 10_000, () => ours(host(name)).length === 0, 100);
  });
});
