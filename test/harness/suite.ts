// TEST CODE. The lab suite: the real program (index.ts under mocks) emits commands; the provider
// simulator runs them over real SSH against lab laptops on this MPTCP kernel; then real MPTCP
// transfers. Runs as root (CI is root); fails, never skips, when the lab cannot be built.
// Every expectation is computed from the stack config, so the suite runs unchanged against any
// topology and config (the config's ssh sections are filled in from the lab).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { announcedEndpoints, ENDPOINT_FLAGS, expectedJoins, HostModel, Link, Model, readStackConfig, requireValidConfig } from "../../components";
import { LabHost, LabState, labExec, labSh, labStackConfig } from "../../scripts/lab/lab";
import { connectAll, Session } from "../../scripts/verify/ssh";
import { formatReports, transfer, verifyLink } from "../../scripts/verify/verify";
import { DEFAULT_TOPOLOGY, pathEnds, readTopology, Topology } from "../../scripts/lab/topology";
import { runProgram, StackConfig } from "./program";
import { CommandProviderSim } from "./provider";
import { SshRunner } from "./ssh";
import { startLab, stopLab } from "./fixture";
import { endpoints, limits, snapshot, sysctl } from "./labtest";

const PAYLOAD = 4 << 20;

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
    topology: process.env.MPTCP_LAB_TOPOLOGY
      ? readTopology(process.env.MPTCP_LAB_TOPOLOGY)
      : DEFAULT_TOPOLOGY,
    configFile: process.env.MPTCP_LAB_CONFIG,
  };
}

export function labSuite(opts: LabSuiteOptions): void {
  const { topology } = opts;
  let lab: LabState;
  let ssh: SshRunner;
  let sim: CommandProviderSim;
  let config: StackConfig;
  let model: Model;
  let privateKey: string;
  let sessions: Map<string, Session>;
  const pre = new Map<string, string>();

  const host = (name: string): LabHost => lab.hosts.find((h) => h.name === name)!;
  const modelOf = (name: string): HostModel => model.hosts.find((h) => h.name === name)!;

  /** The stack config under test: MPTCP_LAB_CONFIG with ssh (and links' dial addresses) filled in from the lab, or the lab's own. */
  function stackConfigFor(state: LabState): StackConfig {
    const generated = labStackConfig(state);
    if (!opts.configFile) return generated;
    const raw = readStackConfig(opts.configFile) as { hosts: any[]; links?: any[] };
    const ssh = new Map((generated.hosts as any[]).map((h) => [h.name, h.ssh]));
    const dial = (l: { client: string; server: string }) => generated.links.find((g) => g.client === l.client && g.server === l.server)?.address;
    return { hosts: raw.hosts.map((h) => ({ ...h, ssh: ssh.get(h.name) ?? h.ssh })), links: raw.links?.map((l) => ({ ...l, address: l.address ?? dial(l) })) };
  }

  async function deploy(cfg: StackConfig) {
    const program = await runProgram(cfg, { privateKey });
    const before = ssh.connections;
    const steps = await sim.up(program.commands);
    return { program, steps, connections: ssh.connections - before };
  }

  /** The links whose paths the lab can tell apart (interfaces are named after paths). */
  function linkOf(l: Link) {
    const dialledPath = pathEnds(topology).find((e) => e.host === l.server && e.address === l.address)?.path;
    if (!dialledPath) throw new Error(`mptcp:links[${l.index}]: ${l.address} is no lab address of ${l.server}`);
    // lab interfaces are named after their paths: the client's first subflow leaves through dialledPath
    // the client reaches the server's ends of the paths it is on (laptops have no other routes)
    const onPaths = new Set(topology.paths.filter((p) => p.between.includes(l.client)).map((p) => p.name));
    const reachable = (a: string) => pathEnds(topology).some((e) => e.host === l.server && e.address === a && onPaths.has(e.path));
    return { link: l, client: host(l.client), server: host(l.server), address: l.address!, dialledPath, reachable, joins: expectedJoins(modelOf(l.client), modelOf(l.server), l.address, dialledPath, reachable) };
  }

  beforeAll(async () => {
    ({ lab, ssh, sim, privateKey } = await startLab(topology, "t"));
    config = stackConfigFor(lab);
    model = requireValidConfig(config);
    for (const h of lab.hosts) pre.set(h.name, snapshot(h));
    // the product's verification (npm run verify) over its own SSH sessions
    const connected = await connectAll(model.hosts, { privateKey });
    expect(Object.fromEntries(connected.unreachable)).toEqual({});
    sessions = connected.sessions;
  });

  afterAll(async () => {
    for (const s of sessions?.values() ?? []) s.close();
    await stopLab({ lab, ssh });
  });

  describe(`lab (${opts.label}): commands on a real MPTCP kernel over real SSH`, () => {
    it("a value the target rejects fails the apply naming the config path and host, changing nothing", async () => {
      const bad = structuredClone(config) as { hosts: any[]; links: unknown };
      for (const h of bad.hosts) h.sysctl = { ...(h.sysctl ?? {}), scheduler: "nosuchsched" };
      const scratch = new CommandProviderSim(ssh.run);
      const err = await scratch.up((await runProgram(bad, { privateKey })).commands).then(() => undefined, (e: Error) => e);
      console.log(`(bad input) ${err?.message.split("\n")[1]}`);
      expect(err?.message).toMatch(/mptcp-pulumi\[[a-z0-9-]+\]: error: mptcp:hosts\[\d+\]\.sysctl\.scheduler: scheduler nosuchsched is not available \(available: [a-z_ ]+\): pick one of those/);
      for (const h of lab.hosts) expect(snapshot(h), h.name).toBe(pre.get(h.name));
    });

    it("(a) up: each laptop's live state equals what the config asks", async () => {
      const t0 = performance.now();
      const { steps, connections } = await deploy(config);
      console.log(`(a) up: ${steps.length} commands, ${connections} SSH connections, ${(performance.now() - t0).toFixed(0)} ms`);
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
          const eps = endpoints(h).map((e) => ({ id: e.id, dev: e.dev, flags: ENDPOINT_FLAGS.filter((f) => e[f]).sort(), address: e.address }));
          const want = m.endpoints.map((e) => ({ id: e.id, dev: e.interface, flags: [...e.flags].sort(), address: e.address ?? expect.any(String) }));
          expect(eps.sort((a, b) => a.id - b.id)).toEqual(want.sort((a, b) => a.id - b.id));
        }
      }
    });

    it("(b) idempotence: every create again exits 0 and leaves a byte-identical state", async () => {
      const before = new Map(lab.hosts.map((h) => [h.name, snapshot(h)]));
      let ran = 0;
      for (const c of sim.state.values()) {
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
    });

    it("(e) MPTCP works on every link: npm run verify's check passes (identical checksum, predicted joins and subflows, predicted paths carry data)", async () => {
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
    });

    it("(f) negative control: with the client's add_addr_accepted forced to 0, the verification fails: fewer joins, the announced path idle", async () => {
      const c = model.links.map(linkOf).find((x) => announcedEndpoints(modelOf(x.server.name), x.address, x.reachable).length > 0 && x.joins > 0);
      expect(c, "the config must predict a join from an announcement on some link").toBeDefined();
      const client = modelOf(c!.client.name);
      const deaf = { ...client, limits: { ...client.limits, addAddrAccepted: 0 } };
      const joinsWithout = expectedJoins(deaf, modelOf(c!.server.name), c!.address, c!.dialledPath, c!.reachable);
      expect(joinsWithout).toBeLessThan(c!.joins);
      const limitsCmd = [...sim.state.values()].find((x) => x.name === `${c!.client.name}-limits`)!;
      // Validation bypassed: set the kernel limit directly on the laptop.
      const { subflows } = limits(c!.client);
      labSh(c!.client, `ip mptcp limits set subflows ${subflows} add_addr_accepted 0`);
      try {
        const r = await verifyLink(model, c!.link, sessions);
        console.log(`(f) add_addr_accepted 0: ${formatReports([r])}`);
        expect(r.ok).toBe(false);
        expect(r.transfer!.server.sha256).toBe(r.transfer!.sha256);
        expect(r.joins).toEqual({ observed: joinsWithout, predicted: c!.joins });
        expect(r.problems).toContain(`${joinsWithout} subflow${joinsWithout === 1 ? "" : "s"} joined, ${c!.joins} predicted`);
        expect(r.problems.some((p) => /carried no data \(predicted to\)/.test(p))).toBe(true);
      } finally {
        const r = await ssh.run(limitsCmd, limitsCmd.create!, "create");
        expect(r.code).toBe(0);
      }
      expect(limits(c!.client).addAddrAccepted).toBe(client.limits.addAddrAccepted);
    });

    it("(g) failover: the server's announced path goes down mid-transfer and comes back; the transfer completes intact", async () => {
      const c = model.links.map(linkOf).find((x) => x.joins > 0)!;
      const announced = announcedEndpoints(modelOf(c.server.name), c.address, c.reachable).map((e) => e.interface);
      const flapped = announced[0] ?? modelOf(c.client.name).endpoints.find((e) => e.flags.includes("subflow"))!.interface;
      let downAt = 0;
      let upAt = 0;
      const t0 = performance.now();
      const report = await transfer(sessions.get(c.client.name)!, sessions.get(c.server.name)!, c.address, {
        bytes: PAYLOAD,
        pace: 2.5,
        during: async () => {
          await sleep(700);
          labSh(c.server, `ip link set ${flapped} down`);
          downAt = performance.now() - t0;
          await sleep(800);
          labSh(c.server, `ip link set ${flapped} up`);
          upAt = performance.now() - t0;
        },
      });
      console.log(`(g) ${flapped} of ${c.server.name} down at ${downAt.toFixed(0)} ms, up at ${upAt.toFixed(0)} ms; transfer of ${report.bytes} B done in ${report.seconds} s, checksum ${report.sha256 === report.server.sha256 ? "identical" : "DIFFERENT"}`);
      expect(report.seconds * 1000).toBeGreaterThan(upAt - 200);
      expect(report.server.sha256).toBe(report.sha256);
      expect(report.server.bytes).toBe(PAYLOAD);
    });

    it("(c) update: a changed limit and endpoint flag run only the affected commands, and the state converges", async () => {
      const next = structuredClone(config) as { hosts: any[]; links: unknown };
      const clients = new Set(model.links.map((l) => l.client));
      const client = next.hosts.find((h) => clients.has(h.name) && h.limits?.subflows !== undefined && h.limits.subflows < 8)!;
      const server = next.hosts.find((h) => h.endpoints?.length)!;
      client.limits.subflows += 1;
      server.endpoints[0].flags = [...new Set([...server.endpoints[0].flags, "backup"])];
      const before = new Map(lab.hosts.map((h) => [h.name, snapshot(h)]));
      const { steps, connections } = await deploy(next);
      console.log(`(c) update ran ${steps.map((s) => `${s.name}:${s.phase}`).join(", ")} (${connections} SSH connections)`);
      const applies = steps.filter((s) => !s.name.endsWith("-confirm"));
      expect(applies.map((s) => s.name).sort()).toEqual([`${client.name}-limits`, `${server.name}-endpoints`].sort());
      expect(applies.every((s) => s.reason === "changed")).toBe(true);
      // the endpoints apply armed a rollback, so its confirmation (triggered by the apply's output) ran again
      const confirms = steps.filter((s) => s.name.endsWith("-confirm"));
      if (modelOf(server.name).confirmTimeout > 0) expect(confirms.map((s) => `${s.name}:${s.phase}`)).toEqual([`${server.name}-endpoints-confirm:delete`, `${server.name}-endpoints-confirm:create`]);
      else expect(confirms).toEqual([]);
      expect(limits(host(client.name)).subflows).toBe(client.limits.subflows);
      const ep = endpoints(host(server.name)).find((e) => e.dev === server.endpoints[0].interface)!;
      expect(ep.backup).toBe(true);
      for (const h of lab.hosts.filter((x) => x.name !== client.name && x.name !== server.name)) expect(snapshot(h)).toBe(before.get(h.name));
      config = next;
    });

    it("(d) destroy: every laptop's MPTCP state and our directories equal the pre-up snapshot", async () => {
      const steps = await sim.destroy();
      console.log(`(d) destroy ran ${steps.length} deletes: ${steps.map((s) => s.name).join(", ")}`);
      expect(steps.length).toBeGreaterThan(0);
      for (const h of lab.hosts) expect(snapshot(h), h.name).toBe(pre.get(h.name));
    });
  });

}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
