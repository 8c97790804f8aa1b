// TEST CODE. The lab suite: the real program (index.ts under mocks) emits commands; the provider
// simulator runs them over real SSH against lab laptops on this MPTCP kernel; then real MPTCP
// transfers. Runs as root (CI is root); fails, never skips, when the lab cannot be built.
// Every expectation is computed from the stack config, so the suite runs unchanged against any
// topology and config (the config's ssh sections are filled in from the lab).
import { isDeepStrictEqual } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { announcedEndpoints, ENDPOINT_FLAGS, expectedJoins, HostModel, Link, Model, parseApplied, readStackConfig, requireValidConfig } from "../../components";
import { LAB_USER, LabHost, LabState, labAddUser, labExec, labSh, labStackConfig } from "../../scripts/lab/lab";
import { connectAll, Session } from "../../scripts/verify/ssh";
import { CARRIED_SHARE, formatReports, transfer, verifyLink } from "../../scripts/verify/verify";
import { DEFAULT_TOPOLOGY, pathEnds, reaches, readTopology, Topology } from "../../scripts/lab/topology";
import { sleep } from "../../scripts/lab/wait";
import { runProgram, StackConfig } from "./program";
import { CommandProviderSim } from "./provider";
import { SshRunner } from "./ssh";
import { startLab, stopLab } from "./fixture";
import { endpoints, hostState, limits, snapshot, snapshotDiff, sysctl, unstaged } from "./labtest";

/** Long enough at the lab's 100 Mbit/s per path to outlast the flap by seconds. */
const FAILOVER_BYTES = 96 << 20;
/** How long the primary path stays down when only a backup path can take over (MPTCP marks the primary's subflow stale after stale_loss_cnt retransmission timeouts). */
const PRIMARY_DOWN_MS = 3000;

export interface LabSuiteOptions {
  /** Shown in the describe block. */
  label: string;
  topology: Topology;
  /** A Pulumi.<stack>.yaml; default: the lab's generated stack config. */
  configFile?: string;
}

/** The suite's topology and config from MPTCP_LAB_TOPOLOGY / MPTCP_LAB_CONFIG, else the defaults. */
export function optionsFromEnv(): LabSuiteOptions {
  return {
    label: process.env.MPTCP_LAB_TOPOLOGY ?? "default topology",
    topology: process.env.MPTCP_LAB_TOPOLOGY ? readTopology(process.env.MPTCP_LAB_TOPOLOGY) : DEFAULT_TOPOLOGY,
    configFile: process.env.MPTCP_LAB_CONFIG,
  };
}

/** The stack config under test: MPTCP_LAB_CONFIG with ssh (and links' dial addresses) filled in from the lab, or the lab's own. */
function stackConfigFor(opts: LabSuiteOptions, state: LabState): StackConfig {
  const generated = labStackConfig(state);
  if (!opts.configFile) return generated;
  const raw = readStackConfig(opts.configFile) as { hosts: any[]; links?: any[] };
  const ssh = new Map((generated.hosts as any[]).map((h) => [h.name, h.ssh]));
  const dial = (l: { client: string; server: string }) => generated.links.find((g) => g.client === l.client && g.server === l.server)?.address;
  // where to connect comes from the lab; who connects from the config: root, or a sudo user the
  // lab makes on the laptop when it is not its own (LAB_USER)
  const sshOf = (h: any) => {
    const user = h.ssh?.user ?? "root";
    const laptop = state.hosts.find((x) => x.name === h.name);
    if (laptop && user !== "root" && user !== LAB_USER) labAddUser(laptop, user);
    return ssh.has(h.name) ? { ...ssh.get(h.name), user } : h.ssh;
  };
  return { hosts: raw.hosts.map((h) => ({ ...h, ssh: sshOf(h) })), links: raw.links?.map((l) => ({ ...l, address: l.address ?? dial(l) })) };
}

/** The laptop's endpoints as the kernel lists them (ip -j), in the form the tests compare. */
const configuredEndpointsOf = (h: LabHost) => endpoints(h).map((e) => ({ id: e.id, dev: e.dev, flags: ENDPOINT_FLAGS.filter((f) => e[f]).sort(), address: e.address }));

/**
 * What the suite's steps share: the lab, the SSH runner and provider simulator over it, the stack
 * config under test and its model, npm run verify's sessions and each laptop's pre-up snapshot.
 * start() fills it in (beforeAll); the update step (c) moves config on to the updated one.
 */
class LabRun {
  lab!: LabState;
  ssh!: SshRunner;
  sim!: CommandProviderSim;
  config!: StackConfig;
  model!: Model;
  privateKey!: string;
  sessions!: Map<string, Session>;
  readonly pre = new Map<string, string>();

  constructor(readonly opts: LabSuiteOptions) {}

  /** Boots the lab, reads the config under test, snapshots every laptop and opens verify's sessions. */
  async start(): Promise<void> {
    ({ lab: this.lab, ssh: this.ssh, sim: this.sim, privateKey: this.privateKey } = await startLab(this.opts.topology, "t"));
    this.config = stackConfigFor(this.opts, this.lab);
    this.model = requireValidConfig(this.config);
    for (const h of this.lab.hosts) this.pre.set(h.name, snapshot(h));
    // the product's verification (npm run verify) over its own SSH sessions
    const connected = await connectAll(this.model.hosts, { privateKey: this.privateKey });
    expect(Object.fromEntries(connected.unreachable)).toEqual({});
    this.sessions = connected.sessions;
  }

  /** Closes the sessions and takes the lab down (also after a failed start). */
  async stop(): Promise<void> {
    for (const s of this.sessions?.values() ?? []) s.close();
    await stopLab({ lab: this.lab, ssh: this.ssh });
  }

  readonly host = (name: string): LabHost => this.lab.hosts.find((h) => h.name === name)!;
  readonly modelOf = (name: string): HostModel => this.model.hosts.find((h) => h.name === name)!;

  /** Every laptop as before the suite; after a failed up, as before but for the scripts its copies delivered (hostState). */
  readonly expectAsBefore = (opts: { failedUp?: boolean } = {}): void => {
    const { lab, pre } = this;
    for (const h of lab.hosts) {
      const now = opts.failedUp ? hostState(h) : snapshot(h);
      const was = opts.failedUp ? unstaged(pre.get(h.name)!) : pre.get(h.name)!;
      if (now !== was) console.log(`${h.name}: ${snapshotDiff(now, was)}`);
      expect(now, h.name).toBe(was);
    }
  };

  /** Runs the program for `cfg` and ups its commands: the program, the steps run and the SSH connections they opened. */
  readonly deploy = async (cfg: StackConfig) => {
    const { privateKey, ssh, sim } = this;
    const program = await runProgram(cfg, { privateKey });
    const before = ssh.connections;
    const steps = await sim.up(program.commands);
    return { program, steps, connections: ssh.connections - before };
  };

  /** The links whose paths the lab can tell apart (interfaces are named after paths). */
  readonly linkOf = (l: Link) => {
    const { topology } = this.opts;
    const { host, modelOf } = this;
    const dialledPath = pathEnds(topology).find((e) => e.host === l.server && e.address === l.address)?.path;
    if (!dialledPath) throw new Error(`mptcp:links[${l.index}]: ${l.address} is no lab address of ${l.server}`);
    // lab interfaces are named after their paths: the client's first subflow leaves through dialledPath
    const reachable = (a: string) => pathEnds(topology).some((e) => e.host === l.server && e.address === a && reaches(e, l.client));
    return {
      link: l,
      client: host(l.client),
      server: host(l.server),
      address: l.address!,
      dialledPath,
      reachable,
      joins: expectedJoins(modelOf(l.client), modelOf(l.server), l.address, dialledPath, reachable),
    };
  };
}

/** A link of the config with its lab ends, dialled path and predicted joins (LabRun.linkOf). */
type LabLink = ReturnType<LabRun["linkOf"]>;

/**
 * The primary path (the first subflow's) goes down on the server mid-transfer for
 * PRIMARY_DOWN_MS and comes back: the backup path, idle before, carries the data meanwhile, and
 * the transfer completes intact.
 */
async function failoverToBackup(run: LabRun, c: LabLink, primary: string, backup: string): Promise<void> {
  const { sessions } = run;
  const bytes = FAILOVER_BYTES;
  const rx = (then = "") => Number(labSh(c.server, `${then}cat /sys/class/net/${backup}/statistics/rx_bytes`));
  const t0 = performance.now();
  const at = { down: 0, up: 0, end: 0 };
  const backupAt = { start: 0, down: 0, up: 0, end: 0 };
  backupAt.start = rx();
  const report = await transfer(sessions.get(c.client.name)!, sessions.get(c.server.name)!, c.address, {
    bytes,
    subflows: c.joins,
    during: async () => {
      await sleep(700);
      backupAt.down = rx(`ip link set ${primary} down; `);
      at.down = performance.now() - t0;
      await sleep(PRIMARY_DOWN_MS);
      backupAt.up = rx();
      labSh(c.server, `ip link set ${primary} up`);
      at.up = performance.now() - t0;
    },
  });
  at.end = performance.now() - t0;
  backupAt.end = rx();
  const mb = (n: number) => (n / 1e6).toFixed(2);
  console.log(
    `(g) backup ${backup} of ${c.server.name}: ${mb(backupAt.down - backupAt.start)} MB before the primary ${primary} went down at ${at.down.toFixed(0)} ms, ${mb(backupAt.up - backupAt.down)} MB while it was down, ${mb(backupAt.end - backupAt.up)} MB after it came up at ${at.up.toFixed(0)} ms; ${report.server.bytes} of ${bytes} B received at ${at.end.toFixed(0)} ms (subflows ${report.subflows}/${report.server.subflows}), checksum ${report.sha256 === report.server.sha256 ? "identical" : "DIFFERENT"}`,
  );
  expect({ bytes: report.server.bytes, sha256: report.server.sha256 }).toEqual({ bytes, sha256: report.sha256 });
  expect(at.end).toBeGreaterThan(at.up);
  // the control: a backup carries nothing while the primary works
  expect(backupAt.down - backupAt.start).toBeLessThan(bytes * 0.01);
  expect(backupAt.up - backupAt.down).toBeGreaterThan(bytes * CARRIED_SHARE);
}

/** Bad input: a sysctl value the target rejects fails the apply naming the config path and host, and changes nothing. */
async function rejectedValueChangesNothing(run: LabRun): Promise<void> {
  const { ssh, config, privateKey, expectAsBefore } = run;
  const bad = structuredClone(config) as { hosts: any[]; links: unknown };
  for (const h of bad.hosts) h.sysctl = { ...(h.sysctl ?? {}), scheduler: "nosuchsched" };
  const scratch = new CommandProviderSim(ssh.run);
  const err = await scratch.up((await runProgram(bad, { privateKey })).commands).then(
    () => undefined,
    (e: Error) => e,
  );
  console.log(`(bad input) ${err?.message.split("\n")[1]}`);
  expect(err?.message).toMatch(/mptcp-pulumi\[[a-z0-9-]+\]: error: sysctl\.scheduler: scheduler nosuchsched is not available \(available: [a-z_ ]+\): pick one of those/);
  expectAsBefore({ failedUp: true });
}

/** (a) up: every laptop's live state, and the hosts' applied outputs, equal what the config asks. */
async function upMatchesConfig(run: LabRun): Promise<void> {
  const { sim, config, model, host, deploy } = run;
  const t0 = performance.now();
  const { steps, connections } = await deploy(config);
  console.log(`(a) up: ${steps.length} commands, ${connections} new SSH connections (the runner keeps one per host), ${(performance.now() - t0).toFixed(0)} ms`);
  expect(steps.every((s) => s.phase === "create" && s.reason === "new")).toBe(true);
  for (const m of model.hosts) {
    const h = host(m.name);
    for (const s of m.sysctl) {
      const knob = s.knob === "path_manager" && labExec(h, "test -e /proc/sys/net/mptcp/path_manager").code !== 0 ? "pm_type" : s.knob;
      expect(sysctl(h, knob), `${m.name} net.mptcp.${knob}`).toBe(s.value);
    }
    if (m.sysctl.length) {
      const conf = labSh(h, "cat /etc/sysctl.d/99-mptcp-pulumi.conf");
      for (const s of m.sysctl) expect(conf).toContain(`net.mptcp.${s.knob} = ${s.value}`);
    }
    const live = limits(h);
    if (m.limits.subflows !== undefined) expect(live.subflows, `${m.name} subflows`).toBe(m.limits.subflows);
    if (m.limits.addAddrAccepted !== undefined) expect(live.addAddrAccepted, `${m.name} add_addr_accepted`).toBe(m.limits.addAddrAccepted);
    if (m.endpoints.length) {
      const eps = configuredEndpointsOf(h);
      const want = m.endpoints.map((e) => ({ id: e.id, dev: e.interface, flags: [...e.flags].sort(), address: e.address ?? expect.any(String) }));
      expect(eps.sort((a, b) => a.id - b.id)).toEqual(want.sort((a, b) => a.id - b.id));
    }
    // the host's stack output (MptcpHost.applied): what the applies reported, as the host holds it
    const applied = parseApplied(
      [...sim.state.keys()]
        .filter((n) => n.startsWith(`${m.name}-`))
        .map((n) => sim.stdoutOf(n) ?? "")
        .join("\n"),
    );
    if (m.limits.subflows !== undefined || m.limits.addAddrAccepted !== undefined) expect(applied.limits, m.name).toEqual(live);
    if (m.sysctl.length) expect(Object.keys(applied.sysctl ?? {}).sort()).toEqual(m.sysctl.map((s) => `net.mptcp.${s.knob}`).sort());
    for (const [k, v] of Object.entries(applied.sysctl ?? {})) expect(labSh(h, `cat /proc/sys/${k.replace(/\./g, "/")}`).trim(), k).toBe(v);
    expect((applied.endpoints ?? []).map((e) => ({ id: e.id, dev: e.interface, flags: e.flags, address: e.address })).sort((a, b) => a.id - b.id)).toEqual(
      configuredEndpointsOf(h).sort((a, b) => a.id - b.id),
    );
  }
}

/** (b) every create run again exits 0 and leaves the state byte-identical; a second up runs nothing. */
async function reapplyIsIdempotent(run: LabRun): Promise<void> {
  const { lab, ssh, sim, config, privateKey } = run;
  const before = new Map(lab.hosts.map((h) => [h.name, snapshot(h)]));
  let ran = 0;
  for (const c of sim.state.values()) {
    // a copy is no command (what it delivered is what the commands run); the scripts' cleanup only deletes
    if (c.copy || c.create === undefined) continue;
    const r = await ssh.run(c, c.create!, "create");
    expect(r.code, `${c.name}: ${r.stderr}`).toBe(0);
    // the endpoint table is left alone (no flush, so live connections keep their subflows)
    if (c.name.endsWith("-endpoints")) expect(r.stdout).toContain("endpoints unchanged");
    ran++;
  }
  for (const h of lab.hosts) expect(snapshot(h), h.name).toBe(before.get(h.name));
  const again = await sim.up((await runProgram(config, { privateKey })).commands);
  console.log(`(b) re-ran ${ran} creates: state byte-identical on ${lab.hosts.length} laptops; a second up ran ${again.length} commands`);
  expect(again).toEqual([]);
}

/** (e) npm run verify's check passes on every link, with the joins and paths the topology predicts. */
async function verifyPassesOnEveryLink(run: LabRun): Promise<void> {
  const { model, sessions, linkOf } = run;
  for (const l of model.links) {
    const r = await verifyLink(model, l, sessions);
    console.log(`(e) ${formatReports([r])}`);
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.joins!.observed).toBeGreaterThan(0);
    // verify predicts from the client's routes; the suite, independently, from the topology
    expect(r.joins!.observed).toBe(linkOf(l).joins);
    // in the lab nothing else moves data: exactly the predicted client interfaces send it (on the
    // server, a client subflow endpoint's subflow arrives on whichever interface shares its link)
    expect(r.paths!.carried.client).toEqual(r.paths!.predicted!.client);
  }
}

/** (f) negative control of (e): the client's limits forced down on the laptop, verify fails as predicted. */
async function verifyFailsWithLimitsForced(run: LabRun): Promise<void> {
  const { ssh, sim, model, sessions, modelOf, linkOf } = run;
  const joining = model.links.map(linkOf).filter((x) => x.joins > 0);
  expect(joining.length, "the config predicts no join on any link: nothing multipath to test").toBeGreaterThan(0);
  const announces = (x: (typeof joining)[number]) => announcedEndpoints(modelOf(x.server.name), x.address, x.reachable).length > 0;
  const c = joining.find(announces) ?? joining[0];
  const client = modelOf(c.client.name);
  const { subflows } = limits(c.client);
  const forced = { subflows: announces(c) ? subflows : 0, addAddrAccepted: 0 };
  const joinsWithout = expectedJoins({ ...client, limits: forced }, modelOf(c.server.name), c.address, c.dialledPath, c.reachable);
  expect(joinsWithout).toBeLessThan(c.joins);
  const limitsCmd = [...sim.state.values()].find((x) => x.name === `${c.client.name}-limits`)!;
  // Validation bypassed: set the kernel limits directly on the laptop.
  labSh(c.client, `ip mptcp limits set subflows ${forced.subflows} add_addr_accepted 0`);
  try {
    const r = await verifyLink(model, c.link, sessions);
    console.log(`(f) subflows ${forced.subflows} add_addr_accepted 0: ${formatReports([r])}`);
    expect(r.ok).toBe(false);
    expect(r.transfer!.server.sha256).toBe(r.transfer!.sha256);
    expect(r.joins).toEqual({ observed: joinsWithout, predicted: c.joins });
    expect(r.problems).toContain(`${joinsWithout} subflow${joinsWithout === 1 ? "" : "s"} joined, ${c.joins} predicted`);
    // which of the client's predicted paths go idle, from the model: with add_addr_accepted 0 no
    // announced address is joined, but the first subflow's path still carries data, and so
    // does each non-backup subflow (or fullmesh) endpoint's when subflows are still allowed:
    // those open their subflows to the dialled address
    const still = new Set([c.dialledPath, ...(forced.subflows > 0 ? client.endpoints.filter((e) => e.flags.includes("subflow") && !e.flags.includes("backup")).map((e) => e.interface) : [])]);
    const idle = (r.paths?.predicted?.client ?? []).filter((i) => !still.has(i));
    const idleProblem = r.problems.find((p) => p.startsWith(`${c.client.name}: `) && p.endsWith(" carried no data (predicted to)"));
    console.log(`(f) predicted idle on ${c.client.name}: ${idle.join(", ") || "none"}; still carrying: ${[...still].join(", ")}`);
    if (idle.length) expect(idleProblem?.slice(c.client.name.length + 2, -" carried no data (predicted to)".length).split(", ")).toEqual(expect.arrayContaining(idle));
    // a path the model says still carries data did
    for (const i of still) if (r.paths?.predicted?.client.includes(i)) expect(r.paths!.carried.client, `${c.client.name} ${i} still carries data`).toContain(i);
  } finally {
    const r = await ssh.run(limitsCmd, limitsCmd.create!, "create");
    expect(r.code).toBe(0);
  }
  expect(limits(c.client)).toEqual({ subflows, addAddrAccepted: client.limits.addAddrAccepted });
}

/** (g) a path goes down mid-transfer and comes back (or the primary, when only a backup is left). */
async function failoverMidTransfer(run: LabRun): Promise<void> {
  const { model, sessions, modelOf, linkOf } = run;
  const c = model.links.map(linkOf).find((x) => x.joins > 0)!;
  const all = announcedEndpoints(modelOf(c.server.name), c.address, c.reachable);
  const announced = all.filter((e) => !e.flags.includes("backup")).map((e) => e.interface);
  // an announced path, else a client subflow endpoint's (not a backup one: it carries no data)
  const flapped = announced[0] ?? modelOf(c.client.name).endpoints.find((e) => e.flags.includes("subflow") && !e.flags.includes("backup"))?.interface;
  if (flapped === undefined) {
    // every other path is a backup: the primary (the first subflow's) goes down, the backup takes over
    const backup = all.find((e) => e.flags.includes("backup"))?.interface ?? modelOf(c.client.name).endpoints.find((e) => e.flags.includes("subflow") && e.flags.includes("backup"))?.interface;
    expect(backup, "no backup path either: nothing to fail over to").toBeDefined();
    await failoverToBackup(run, c, c.dialledPath, backup!);
    return;
  }
  // unpaced, and long enough to outlast the flap: a paced transfer that one path alone can
  // carry gives the scheduler no reason to use the path again, so nothing would be shown
  const bytes = FAILOVER_BYTES;
  const rx = (then = "") => Number(labSh(c.server, `${then}cat /sys/class/net/${flapped}/statistics/rx_bytes`));
  // every time on this clock (the test's), none from the transfer's own
  const t0 = performance.now();
  const at = { down: 0, up: 0, end: 0 };
  const bytesAt = { down: 0, up: 0, end: 0 };
  const report = await transfer(sessions.get(c.client.name)!, sessions.get(c.server.name)!, c.address, {
    bytes,
    subflows: c.joins,
    during: async () => {
      await sleep(700);
      // the counter right after the link goes down, and right before it comes up
      bytesAt.down = rx(`ip link set ${flapped} down; `);
      at.down = performance.now() - t0;
      await sleep(600);
      bytesAt.up = rx();
      labSh(c.server, `ip link set ${flapped} up`);
      at.up = performance.now() - t0;
    },
  });
  at.end = performance.now() - t0;
  bytesAt.end = rx();
  const mb = (n: number) => (n / 1e6).toFixed(2);
  console.log(
    `(g) ${flapped} of ${c.server.name}: ${mb(bytesAt.down)} MB before it went down at ${at.down.toFixed(0)} ms, ${mb(bytesAt.up - bytesAt.down)} MB while down, up at ${at.up.toFixed(0)} ms, ${mb(bytesAt.end - bytesAt.up)} MB after; ${report.bytes} B sent and ${report.server.bytes} B received at ${at.end.toFixed(0)} ms (subflows ${report.subflows}/${report.server.subflows}), checksum ${report.sha256 === report.server.sha256 ? "identical" : "DIFFERENT"}`,
  );
  // count and checksum in one comparison, so a failure shows both: a short count is loss, the
  // same count with another checksum corruption.
  // Seen once in a full run (three paths, the server's wlan down late under load): another
  // checksum (the count was not logged then); the kernel's MPTCP counters of both ends go to
  // the log for a report
  const received = { bytes: report.server.bytes, sha256: report.server.sha256 };
  const sent = { bytes, sha256: report.sha256 };
  if (!isDeepStrictEqual(received, sent)) {
    for (const h of [c.server, c.client]) console.log(`(g) ${h.name}'s MPTcpExt counters after the mismatch:\n${labSh(h, "nstat -asz 'MPTcpExt*' | awk '$2 != 0'")}`);
  }
  expect(received).toEqual(sent);
  expect(at.end).toBeGreaterThan(at.up);
  // the path carried the connection before the flap, nothing while down, and a real share after
  // (plain TCP, or a connection that lost the subflow, leaves it idle: (f) shows the same measure failing)
  expect(bytesAt.up - bytesAt.down).toBeLessThan(bytes * 0.01);
  expect(bytesAt.end - bytesAt.up).toBeGreaterThan(bytes * CARRIED_SHARE);
}

/** (c) a changed limit and endpoint flag run only the affected commands; config moves on to the update. */
async function updateRunsOnlyAffected(run: LabRun): Promise<void> {
  const { lab, config, model, host, modelOf, deploy } = run;
  const next = structuredClone(config) as { hosts: any[]; links: unknown };
  const clients = new Set(model.links.map((l) => l.client));
  // a client's subflows limit one up (one down at the kernel's maximum), and the backup flag of
  // some host's first endpoint turned over: whatever the config, still a valid one
  const client = next.hosts.find((h) => clients.has(h.name) && h.limits?.subflows !== undefined)!;
  client.limits.subflows += client.limits.subflows < 8 ? 1 : -1;
  const epHost = next.hosts.find((h) => h.endpoints?.length)!;
  const ep0 = epHost.endpoints[0];
  const backup = !ep0.flags.includes("backup");
  ep0.flags = backup ? [...ep0.flags, "backup"] : ep0.flags.filter((f: string) => f !== "backup");
  requireValidConfig(next);
  const before = new Map(lab.hosts.map((h) => [h.name, snapshot(h)]));
  const { steps, connections } = await deploy(next);
  console.log(`(c) update ran ${steps.map((s) => `${s.name}:${s.phase}`).join(", ")} (${connections} new SSH connections)`);
  const applies = steps.filter((s) => !s.name.endsWith("-confirm") && !s.name.endsWith("-scripts"));
  // each changed host's scripts were copied again before its commands ran (a copy's update)
  expect(
    steps
      .filter((s) => s.name.endsWith("-scripts"))
      .map((s) => `${s.name}:${s.phase}`)
      .sort(),
  ).toEqual([...new Set([client.name, epHost.name])].map((n) => `${n}-scripts:update`).sort());
  // with hooks, the installed entry point carries the host's limits and endpoints: its command changes too
  const hooked = [...new Set([client.name, epHost.name])].filter((n) => modelOf(n).hooks).map((n) => `${n}-hooks`);
  expect(applies.map((s) => s.name).sort()).toEqual([`${client.name}-limits`, `${epHost.name}-endpoints`, ...hooked].sort());
  expect(applies.every((s) => s.reason === "changed")).toBe(true);
  // the endpoints (and hooks) applies armed a rollback, so their confirmations (triggered by the applies' output) ran again
  const confirms = steps.filter((s) => s.name.endsWith("-confirm")).map((s) => `${s.name}:${s.phase}`);
  const guarded = [`${epHost.name}-endpoints`, ...hooked].filter((n) => modelOf(n.slice(0, n.lastIndexOf("-"))).confirmTimeout > 0);
  expect(confirms.sort()).toEqual(guarded.flatMap((n) => [`${n}-confirm:delete`, `${n}-confirm:create`]).sort());
  expect(limits(host(client.name)).subflows).toBe(client.limits.subflows);
  const live = endpoints(host(epHost.name)).find((e) => e.dev === ep0.interface)!;
  expect(!!live.backup).toBe(backup);
  for (const h of lab.hosts.filter((x) => x.name !== client.name && x.name !== epHost.name)) expect(snapshot(h)).toBe(before.get(h.name));
  run.config = next;
}

/** (d) destroy: every laptop equals its pre-up snapshot. */
async function destroyRestoresSnapshots(run: LabRun): Promise<void> {
  const { sim, expectAsBefore } = run;
  const steps = await sim.destroy();
  console.log(`(d) destroy ran ${steps.length} deletes: ${steps.map((s) => s.name).join(", ")}`);
  expect(steps.length).toBeGreaterThan(0);
  expectAsBefore();
}

export function labSuite(opts: LabSuiteOptions): void {
  const run = new LabRun(opts);
  beforeAll(() => run.start());
  afterAll(() => run.stop());

  describe(`lab (${opts.label}): commands on a real MPTCP kernel over real SSH`, () => {
    it("a value the target rejects fails the apply naming the config path and host, changing nothing", () => rejectedValueChangesNothing(run));
    it("(a) up: each laptop's live state equals what the config asks", () => upMatchesConfig(run));
    it("(b) idempotence: every create again exits 0 and leaves a byte-identical state", () => reapplyIsIdempotent(run));
    it("(e) MPTCP works on every link: npm run verify's check passes (identical checksum, predicted joins and subflows, predicted paths carry data)", () => verifyPassesOnEveryLink(run));
    it("(f) negative control: with the client's limits forced down (add_addr_accepted 0; subflows 0 too where nothing is announced), the verification fails: fewer joins, an idle path", () =>
      verifyFailsWithLimitsForced(run));
    it("(g) failover: a path goes down mid-transfer and comes back; an announced (or subflow) path carries data again after, or, where the only other path is a backup, the backup carries the data while the primary is down; the transfer completes intact", () =>
      failoverMidTransfer(run));
    it("(c) update: a changed limit and endpoint flag run only the affected commands, and the state converges", () => updateRunsOnlyAffected(run));
    it("(d) destroy: every laptop's MPTCP state and our directories equal the pre-up snapshot", () => destroyRestoresSnapshots(run));
  });
}
