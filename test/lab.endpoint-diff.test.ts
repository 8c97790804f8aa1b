// Changes touch only what changed, on live connections. Three paths (lan, wlan, lte); the client
// dials the server's lan address and joins the server's announced wlan address, so a long MPTCP
// transfer runs on two subflows. While it runs, an endpoints apply on the server
// - adds a signal endpoint on lte: no subflow of the connection is closed, no RM_ADDR is sent or
//   received, no subflow removed (`ip mptcp monitor` in both laptops' namespaces, MPTcpExt
//   counters), the client joins lte too, and the transfer completes intact (bytes and sha256);
// - re-flags wlan's endpoint backup: `ip mptcp endpoint change` in place, the subflows stay.
// Negative controls: the same applies with the whole table flushed and re-added (the apply as it
// was) close the wlan subflow and send RM_ADDR: the same check fails there.
// Then routing and drop-ins: a hooks apply and a services apply over state that is right delete no
// rule or route (`ip monitor`) and restart no unit (MainPID); controls: the entry point's route_set
// as it was (clear, then add) deletes the rules and routes, and a drop-in that differs restarts.
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { SYNC_PATH } from "../components";
import { dialAddress, labExec, labSh, labSpawn, labStackConfig } from "../scripts/lab/lab";
import { pathAddress, readTopology } from "../scripts/lab/topology";
import { waitFor } from "../scripts/lab/wait";
import { labFile } from "./harness/fixture";
import { counter, snapshot, snapshotDiff } from "./harness/labtest";
import { RecordedCommand, runProgram, StackConfig } from "./harness/program";

const f = labFile(readTopology(join(__dirname, "fixtures", "three-paths.topology.yaml")), "d");
let base: StackConfig;
const pre = new Map<string, string>();
const PORT = 5328;
const host = f.host;
let addr: (host: string, path: string) => string;

/** The stack with the server's endpoints `server` (signal endpoints by path, optional flags) and `client` merged into the client. */
function stack(server: { path: string; flags?: string[] }[], client: Record<string, unknown> = {}): StackConfig {
  const cfg = JSON.parse(JSON.stringify(base)) as { hosts: any[]; links: unknown };
  const s = cfg.hosts.find((h) => h.name === "server");
  s.endpoints = server.map((e) => ({ interface: e.path, address: addr("server", e.path), flags: e.flags ?? ["signal"] }));
  Object.assign(
    cfg.hosts.find((h) => h.name === "client"),
    client,
  );
  return cfg as StackConfig;
}
const WLAN = [{ path: "wlan" }];
const WLAN_LTE = [{ path: "wlan" }, { path: "lte" }];
const WLAN_BACKUP = [{ path: "wlan", flags: ["signal", "backup"] }];

/** A command of the program for `config`, by name. */
async function commandOf(config: StackConfig, name: string): Promise<RecordedCommand> {
  return (await runProgram(config, { privateKey: f.privateKey })).commands.find((c) => c.name === name)!;
}

/** Runs a command's create text (or `text`) on its host over SSH; fails on a non-zero exit. */
async function runCreate(cmd: RecordedCommand, text = cmd.create!): Promise<string> {
  const r = await f.ssh.run(cmd, text, "create");
  if (r.code !== 0) throw new Error(`${cmd.name}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** The endpoints apply as it was before ep_sync: the whole table flushed and re-added when anything differs. */
function flushing(text: string): string {
  const old = text.replace('ep_sync "$want" "$have"', "ip mptcp endpoint flush; _changed=all; ep_add_lines <<EOF\n$want\nEOF");
  expect(old, "the apply calls ep_sync, which the control replaces").not.toBe(text);
  return old;
}

/** The server's endpoints apply for `server` as the flushing apply did it, then its confirm (when it has one). */
async function applyFlushing(server: { path: string; flags?: string[] }[]): Promise<string> {
  const cmds = (await runProgram(stack(server), { privateKey: f.privateKey })).commands;
  const apply = cmds.find((c) => c.name === "server-endpoints")!;
  const out = await runCreate(apply, flushing(apply.create!));
  const confirm = cmds.find((c) => c.name === "server-endpoints-confirm");
  if (confirm) await runCreate(confirm);
  return out;
}

interface Run {
  /** Monitor events after the apply began, per laptop. */
  events: { client: string[]; server: string[] };
  /** MPTcpExt counter deltas over the apply and the rest of the transfer. */
  delta: Record<string, number>;
  sent: string;
  received: string;
  applyOut: string;
}
const COUNTERS = ["MPTcpExtRmAddr", "MPTcpExtRmAddrTx", "MPTcpExtRmSubflow", "MPTcpExtMPJoinSynAckRx", "MPTcpExtMPPrioRx", "MPTcpExtMPPrioTx"];
const counters = () => Object.fromEntries(["client", "server"].flatMap((h) => COUNTERS.map((c) => [`${h} ${c}`, counter(host(h), c)])));

/**
 * A paced MPTCP transfer (about 25 Mbit/s) from the client to the server's lan address under `ip
 * mptcp monitor` on both laptops; once both subflows are established, `apply` runs; 3 s later the
 * sender stops. Returns what the monitors saw after the apply began and the counter deltas.
 */
async function transferDuring(apply: () => Promise<string>): Promise<Run> {
  const mon = { client: "", server: "" };
  const monitors = (["client", "server"] as const).map((h) => {
    const p = labSpawn(host(h), ["ip", "mptcp", "monitor"]);
    p.stdout.on("data", (d) => (mon[h] += d));
    return p;
  });
  labSh(host("client"), "rm -f /run/endpoint-diff.stop");
  const server = labSpawn(host("server"), [
    "python3",
    "-c",
    `import socket, hashlib
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", ${PORT})); s.listen(); s.settimeout(30)
c, _ = s.accept(); c.settimeout(60)
h = hashlib.sha256(); n = 0
while True:
    b = c.recv(1 << 16)
    if not b: break
    h.update(b); n += len(b)
print(n, h.hexdigest(), flush=True)`,
  ]);
  let received = "";
  server.stdout.on("data", (d) => (received += d));
  const serverDone = new Promise((r) => server.on("close", r));
  await waitFor("the server's listener", 5000, () => labSh(host("server"), "ss -Hltn").includes(`:${PORT} `));
  const client = labSpawn(host("client"), [
    "python3",
    "-c",
    `import socket, hashlib, os, random, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)
s.connect((${JSON.stringify(dialAddress(f.lab.topology, "client", "server"))}, ${PORT}))
r = random.Random(28); h = hashlib.sha256(); n = 0; t0 = time.time()
while not os.path.exists("/run/endpoint-diff.stop") and time.time() - t0 < 120:
    b = r.randbytes(1 << 15); s.sendall(b); h.update(b); n += len(b); time.sleep(0.01)
s.shutdown(socket.SHUT_WR); s.recv(1); s.close()
print(n, h.hexdigest(), flush=True)`,
  ]);
  let sent = "";
  client.stdout.on("data", (d) => (sent += d));
  let clientErr = "";
  client.stderr.on("data", (d) => (clientErr += d));
  const clientDone = new Promise((r) => client.on("close", r));
  try {
    const joined = `daddr4=${addr("server", "wlan")}`;
    await waitFor("the client's join to the server's wlan address", 10000, () => mon.client.split("\n").some((l) => l.includes("SF_ESTABLISHED") && l.includes(joined)));
    await new Promise((r) => setTimeout(r, 500));
    const before = counters();
    const mark = { client: mon.client.length, server: mon.server.length };
    const applyOut = await apply();
    await new Promise((r) => setTimeout(r, 3000));
    labSh(host("client"), ": > /run/endpoint-diff.stop");
    await Promise.race([Promise.all([clientDone, serverDone]), new Promise((_, no) => setTimeout(() => no(new Error(`transfer did not end: ${clientErr}`)), 20000))]);
    const after = counters();
    const lines = (t: string) => t.split("\n").filter(Boolean);
    return {
      events: { client: lines(mon.client.slice(mark.client)), server: lines(mon.server.slice(mark.server)) },
      delta: Object.fromEntries(Object.keys(after).map((k) => [k, after[k] - before[k]])),
      sent: sent.trim(),
      received: received.trim(),
      applyOut,
    };
  } finally {
    for (const p of [...monitors, client, server]) p.kill();
    labExec(host("client"), "rm -f /run/endpoint-diff.stop");
  }
}

/** What the apply did to the connection's existing subflows: closes and removals seen, RM_ADDR counted. */
function disruption(r: Run): { sfClosed: number; removed: number; rmAddr: number; rmAddrTx: number; rmSubflow: number } {
  // ip prints an event as "[%16s]": its name right-aligned in brackets
  const n = (h: "client" | "server", ev: string) => r.events[h].filter((l) => new RegExp(`^\\[ *${ev}\\]`).test(l)).length;
  return {
    sfClosed: n("client", "SF_CLOSED") + n("server", "SF_CLOSED"),
    removed: n("client", "REMOVED") + n("server", "REMOVED"),
    rmAddr: r.delta["client MPTcpExtRmAddr"],
    rmAddrTx: r.delta["server MPTcpExtRmAddrTx"],
    rmSubflow: r.delta["client MPTcpExtRmSubflow"] + r.delta["server MPTcpExtRmSubflow"],
  };
}
const NONE = { sfClosed: 0, removed: 0, rmAddr: 0, rmAddrTx: 0, rmSubflow: 0 };
const report = (label: string, r: Run) =>
  console.log(
    `${label}: ${JSON.stringify(disruption(r))}; counters ${JSON.stringify(r.delta)}; sent ${r.sent}; received ${r.received}\nclient monitor:\n${r.events.client.join("\n")}\nserver monitor:\n${r.events.server.join("\n")}\napply:\n${r.applyOut}`,
  );

beforeAll(async () => {
  addr = (host, path) => pathAddress(f.lab.topology, host, path);
  const cfg = labStackConfig(f.lab) as { hosts: any[]; links: unknown };
  Object.assign(
    cfg.hosts.find((h) => h.name === "server"),
    { limits: { subflows: 3, addAddrAccepted: 0 } },
  );
  Object.assign(
    cfg.hosts.find((h) => h.name === "client"),
    { limits: { subflows: 3, addAddrAccepted: 3 } },
  );
  base = cfg as StackConfig;
  for (const h of f.lab.hosts) pre.set(h.name, snapshot(h));
  await f.sim.up((await runProgram(stack(WLAN), { privateKey: f.privateKey })).commands);
});

describe("an endpoints apply during a live transfer touches only the endpoints that change", () => {
  it("adding lte's endpoint: no subflow closed, no RM_ADDR, the client joins lte too, the transfer intact", async () => {
    const r = await transferDuring(async () => (await f.sim.up((await runProgram(stack(WLAN_LTE), { privateKey: f.privateKey })).commands)).map((s) => s.result?.stdout ?? "").join(""));
    report("add (ep_sync)", r);
    expect(r.applyOut).toMatch(new RegExp(`endpoint added: ${addr("server", "lte")} id \\d+ dev lte signal`));
    expect(r.applyOut).not.toContain("endpoint removed");
    expect(disruption(r)).toEqual(NONE);
    expect(r.events.client.filter((l) => l.includes("SF_ESTABLISHED") && l.includes(`daddr4=${addr("server", "lte")}`))).toHaveLength(1);
    expect(r.sent).toMatch(/^\d+ [0-9a-f]{64}$/);
    expect(r.received).toBe(r.sent);
  });

  it("negative control: the same add by the flushing apply closes the wlan subflow and sends RM_ADDR for wlan, which stays", async () => {
    await f.sim.up((await runProgram(stack(WLAN), { privateKey: f.privateKey })).commands);
    try {
      const r = await transferDuring(() => applyFlushing(WLAN_LTE));
      report("add (flush)", r);
      const d = disruption(r);
      expect(d).not.toEqual(NONE);
      expect(d.rmAddrTx).toBeGreaterThanOrEqual(1);
      expect(d.sfClosed).toBeGreaterThanOrEqual(1);
      expect(r.events.client.filter((l) => /SF_CLOSED/.test(l) && l.includes(`daddr4=${addr("server", "wlan")} `)).length).toBeGreaterThanOrEqual(1);
      expect(r.received).toBe(r.sent);
    } finally {
      // the control's table is outside the stack's state: back to the stack's (wlan only)
      await runCreate(await commandOf(stack(WLAN), "server-endpoints"));
    }
  });

  it("re-flagging wlan's endpoint backup: changed in place (MP_PRIO), no subflow closed, no RM_ADDR; control: the flushing apply closes it", async () => {
    const r = await transferDuring(async () => (await f.sim.up((await runProgram(stack(WLAN_BACKUP), { privateKey: f.privateKey })).commands)).map((s) => s.result?.stdout ?? "").join(""));
    report("backup (ep_sync)", r);
    expect(r.applyOut).toMatch(new RegExp(`endpoint re-flagged: ${addr("server", "wlan")} id \\d+ dev wlan backup signal`));
    expect(labSh(host("server"), "ip mptcp endpoint show").trim()).toMatch(new RegExp(`^${addr("server", "wlan")} id \\d+ signal backup dev wlan$`));
    expect(disruption(r)).toEqual(NONE);
    expect(r.delta["server MPTcpExtMPPrioTx"]).toBeGreaterThanOrEqual(1);
    expect(r.received).toBe(r.sent);

    await f.sim.up((await runProgram(stack(WLAN), { privateKey: f.privateKey })).commands);
    try {
      const c = await transferDuring(() => applyFlushing(WLAN_BACKUP));
      report("backup (flush)", c);
      expect(disruption(c)).not.toEqual(NONE);
      expect(disruption(c).rmAddrTx).toBeGreaterThanOrEqual(1);
      expect(disruption(c).sfClosed).toBeGreaterThanOrEqual(1);
    } finally {
      await runCreate(await commandOf(stack(WLAN), "server-endpoints"));
    }
    expect(labSh(host("server"), "ip mptcp endpoint show").trim()).toMatch(new RegExp(`^${addr("server", "wlan")} id \\d+ signal dev wlan$`));
  });
});

describe("routing and service drop-ins: a re-apply over state that is right deletes and restarts nothing", () => {
  const client = () => ({
    hooks: true,
    endpoints: [{ interface: "wlan", flags: ["subflow"] }],
    routing: [{ interface: "wlan", mode: "source", table: 9, priority: 99, gateway: addr("server", "wlan") }],
    services: [{ unit: "iperf3.service" }],
  });
  const mainPid = () => labSh(host("client"), "systemctl show -p MainPID --value iperf3.service").trim();
  /** The unit's main PID once it stays the same for 0.5 s: the applies before this test restart it (ifRunning). */
  async function settledPid(): Promise<string> {
    let last = "";
    for (let i = 0; i < 40; i++) {
      const now = mainPid();
      if (now !== "0" && now === last) return now;
      last = now;
      await new Promise((r) => setTimeout(r, 500));
    }
    return last;
  }
  /** `action` under `ip monitor rule route` in the client's namespace: the Deleted lines for table 9. */
  async function deletions(action: () => Promise<unknown>): Promise<string[]> {
    let out = "";
    const mon = labSpawn(host("client"), ["ip", "monitor", "rule", "route"]);
    mon.stdout.on("data", (d) => (out += d));
    try {
      await new Promise((r) => setTimeout(r, 300));
      await action();
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      mon.kill();
    }
    return out.split("\n").filter((l) => l.startsWith("Deleted") && / (lookup|table) 9\b/.test(l));
  }

  it("the hooks apply run again deletes no rule or route; control: route_set as it was (clear, then add) deletes them", async () => {
    labSh(host("client"), "systemctl start iperf3.service");
    const cfg = stack(WLAN, client());
    await f.sim.up((await runProgram(cfg, { privateKey: f.privateKey })).commands);
    expect(labSh(host("client"), "ip -4 rule show")).toMatch(new RegExp(`99:\\s+from ${addr("client", "wlan").replace(/\./g, "\\.")} lookup 9`));
    const hooks = await commandOf(cfg, "client-hooks");
    const d = await deletions(() => runCreate(hooks));
    console.log(`hooks re-apply: ${d.length} deletions`);
    expect(d).toEqual([]);
    // control: the installed entry point with route_set clearing first, as it did
    const c = await deletions(async () =>
      labSh(
        host("client"),
        `sed 's/if \\[ "\\$rt_mode" != source \\]; then route_clear "\\$rt_table"; return 0; fi/route_clear "$rt_table"; [ "$rt_mode" = source ] || return 0/' ${SYNC_PATH} > /run/sync-old && grep -q '^  route_clear "\\$rt_table"; \\[' /run/sync-old && sh /run/sync-old apply; rc=$?; rm -f /run/sync-old; exit $rc`,
      ),
    );
    console.log(`clearing route_set: ${c.length} deletions:\n${c.join("\n")}`);
    expect(c.filter((l) => / lookup 9/.test(l))).toHaveLength(1);
    expect(c.filter((l) => / table 9/.test(l)).length).toBeGreaterThanOrEqual(2);
  });

  it("the services apply run again restarts nothing; control: with the drop-in changed on disk it rewrites it and restarts the unit", async () => {
    const services = await commandOf(stack(WLAN, client()), "client-services");
    const pid = await settledPid();
    expect(pid).not.toBe("0");
    const again = await runCreate(services);
    expect(again).toContain("iperf3.service: drop-in unchanged");
    expect(again).not.toContain("restarted");
    expect(mainPid()).toBe(pid);
    labSh(host("client"), "echo '# edited' >> /etc/systemd/system/iperf3.service.d/zz-mptcp-pulumi.conf");
    const control = await runCreate(services);
    expect(control).toContain("iperf3.service restarted");
    expect(mainPid()).not.toBe(pid);
    labSh(host("client"), "systemctl stop iperf3.service");
  });

  it("destroy restores every laptop as it was", async () => {
    await f.sim.destroy();
    for (const h of f.lab.hosts) {
      const now = snapshot(h);
      expect(now, snapshotDiff(now, pre.get(h.name)!)).toBe(pre.get(h.name));
    }
  });
});
