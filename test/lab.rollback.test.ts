// An apply that cuts the management path undoes itself (like `netplan try`). SSH reaches the
// client only through router r1, over its uplink; the client routes its uplink by source. A wrong
// gateway there sends SSH replies nowhere: the laptop becomes unreachable, rolls back by itself
// within confirmTimeout, is reachable again, and the up (and the next one, and npm run check) says
// the apply was rolled back. Also: a cut of the management path right after an apply; destroy after
// a rollback; a no-op apply arms nothing; negative control: without the rollback, the laptop stays
// unreachable.
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { renderCheck, renderHost, requireValidConfig, STATE_DIR, wrapScript } from "../components";
import { LabHost, labExec, labSh, labStackConfig } from "../scripts/lab/lab";
import { readTopology, validateTopology } from "../scripts/lab/topology";
import { sleep, waitFor } from "../scripts/lab/wait";
import { labFile } from "./harness/fixture";
import { run } from "./harness/scratch";
import { RecordedCommand, runProgram } from "./harness/program";
import { CommandProviderSim, Runner } from "./harness/provider";
import { snapshot, uplinkRoutingConfig } from "./harness/labtest";

// This machine routes a router lab's uplink subnet to its router, and lab.router.test.ts, which
// may run beside this file, routes the fixture's 198.51.100.32/28: this lab's uplink takes the next /28.
const fixture = readTopology(join(__dirname, "fixtures", "router.topology.yaml"));
const topology = validateTopology({ ...fixture, paths: fixture.paths.map((p) => (p.name === "uplink" ? { ...p, subnet: "198.51.100.48/28" } : p)) });
const TIMEOUT = 4;
const GATEWAY = "198.51.100.49"; // r1 on the uplink
const WRONG = "198.51.100.56"; // nobody
// one connection per command, as the provider: the subject here is what a cut connection does
// Dials shortened explicitly to one of at most 5 s (the provider: 11 of up to 15 s, about 3 min on
// a path that drops everything, test/harness/ssh.ts PROVIDER_TIMINGS): the reachability probes and
// the confirmation over a cut path must give up within the test's time
const f = labFile(topology, "b", { reuseSsh: false, sshTimings: { dialErrorLimit: 0, perDialTimeoutMs: 5000 } });
let client: LabHost;
let pre: string;

/** The lab's stack with the client routing its uplink (the path SSH arrives on) by source through `gateway`. */
const stack = (gateway: string, confirmTimeout = TIMEOUT, table = 100) => uplinkRoutingConfig(f.lab, gateway, confirmTimeout, table);

/** A probe over SSH to the client, as the command provider would connect. */
function probeCommand(): RecordedCommand {
  const c = (labStackConfig(f.lab).hosts as { name: string; ssh: object }[]).find((h) => h.name === "client")!;
  return { name: "probe", urn: "", connection: { ...c.ssh, privateKey: f.privateKey }, dependsOn: [], deleteBeforeReplace: false, inputs: {} };
}

/**
 * Polls SSH to the client every 250 ms, each probe a new connection, timestamping when it started.
 * A probe counts as reaching the laptop when it succeeds within a second (one started during a cut
 * may succeed later, when its retransmitted SYN gets through).
 */
function reachability() {
  const probes: { at: number; ok: boolean }[] = [];
  let stop = false;
  const loop = (async () => {
    const pending: Promise<void>[] = [];
    while (!stop) {
      const at = performance.now();
      pending.push(f.ssh.run(probeCommand(), "true", "create").then((r) => void probes.push({ at, ok: r.code === 0 && performance.now() - at < 1000 })));
      await sleep(250);
    }
    await Promise.all(pending);
  })();
  return {
    async stop() {
      stop = true;
      await loop;
      probes.sort((a, b) => a.at - b.at);
      const cut = probes.find((p) => !p.ok);
      const back = cut && probes.find((p) => p.ok && p.at > cut.at);
      return { cut: cut?.at, back: back?.at, probes };
    },
  };
}

/** The rollback job has fired and finished (it runs on its own, after the timeout). */
const rolledBack = () => labExec(client, `test -e ${STATE_DIR}/hooks/rolled-back && ! test -e ${STATE_DIR}/hooks/rollback/firing`).code === 0;
// the job sleeps the timeout, then re-runs an apply, which takes seconds under load
// (docs/performance.md, "Lab proofs under load")
const waitRolledBack = () => waitFor("the rollback job to finish", (TIMEOUT + 15) * 1000, rolledBack, 100);

const routeRule = () => labSh(client, "ip -4 rule show | grep 'lookup 100' || true; ip -4 route show table 100 default || true");

beforeAll(async () => {
  client = f.host("client");
  pre = snapshot(client);
});

describe("applies that cut the management path undo themselves", () => {
  it("a good gateway: the apply is confirmed over a new connection, nothing is pending; a no-op re-apply arms nothing", async () => {
    const steps = await f.sim.up((await runProgram(stack(GATEWAY), { privateKey: f.privateKey })).commands);
    const names = steps.map((s) => s.name);
    expect(names.indexOf("client-hooks-confirm")).toBeGreaterThan(names.indexOf("client-hooks"));
    const apply = steps.find((s) => s.name === "client-hooks")!.result!.stdout;
    const confirm = steps.find((s) => s.name === "client-hooks-confirm")!.result!.stdout;
    console.log(`apply: ${apply.split("\n").find((l) => l.includes("armed"))}\nconfirm: ${confirm}`);
    expect(apply).toMatch(/hooks: rollback armed at \S+: undone in 4 s unless confirmed over a new SSH connection/);
    expect(confirm).toContain("hooks: confirmed over a new SSH connection: rollback disarmed");
    expect(routeRule()).toContain(`default via ${GATEWAY} dev uplink`);
    await sleep((TIMEOUT + 1) * 1000);
    expect(labSh(client, `ls ${STATE_DIR}/hooks`)).not.toMatch(/rollback|rolled-back/);
    expect(routeRule()).toContain(`default via ${GATEWAY} dev uplink`);
    const c = f.sim.state.get("client-hooks")!;
    const again = await f.ssh.run(c, c.create!, "create");
    expect(again.code).toBe(0);
    expect(again.stdout).not.toContain("rollback armed");
    expect(labSh(client, `ls ${STATE_DIR}/hooks`)).not.toContain("rollback");
  });

  it("a wrong gateway on the SSH interface: the laptop becomes unreachable, undoes the apply by itself within the timeout, is reachable again, and up says so (again on the next up, and in npm run check)", async () => {
    const watch = reachability();
    await sleep(500);
    const err = await f.sim.up((await runProgram(stack(WRONG), { privateKey: f.privateKey })).commands).then(
      () => undefined,
      (e: Error) => e,
    );
    await sleep(500);
    const { cut, back, probes } = await watch.stop();
    console.log(
      `wrong gateway: SSH cut, reachable again ${cut && back ? ((back - cut) / 1000).toFixed(1) : "?"} s later (${probes.filter((p) => !p.ok).length} failed probes); up: ${err?.message.split("\n")[1]}`,
    );
    expect(cut).toBeDefined();
    expect(back).toBeDefined();
    // the timeout, the undo itself, probe spacing, and three lab files running side by side on two
    // cores (docs/performance.md, "Lab proofs under load"); the control below shows the laptop never comes back without the rollback
    expect((back! - cut!) / 1000).toBeLessThan(TIMEOUT + 15);
    expect(err?.message).toMatch(/create of client-hooks-confirm failed/);
    expect(err?.message).toMatch(/mptcp-pulumi\[client\]: error: routing, hooks: the last apply of hooks was rolled back at \S+ .*within 4 s .*not in step with the config/);
    // undone: back to the last confirmed apply (the good gateway)
    expect(routeRule()).toContain(`default via ${GATEWAY} dev uplink`);
    expect(routeRule()).not.toContain(WRONG);
    // the next up does not pretend the host is in step
    const again = await f.sim.up((await runProgram(stack(WRONG), { privateKey: f.privateKey })).commands).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(again?.message).toMatch(/the last apply of hooks was rolled back at/);
    // npm run check shows it too
    const model = requireValidConfig(stack(WRONG)).hosts.find((h) => h.name === "client")!;
    const check = await f.ssh.run(probeCommand(), wrapScript(renderCheck({ ...model, stack: "mptcp/test" }), { user: "root", host: "client" }), "create");
    expect(check.stdout).toMatch(/^routing\|the last apply of hooks was rolled back at/m);
    // the rolled-back apply is the stack's (the host now holds the last confirmed one): pulumi up
    // runs nothing, so it is not pending, and npm run check's advice is to replace it
    expect(check.stdout).not.toMatch(/^(pending|unapplied) /m);
  });

  it("a cut of the management path right after an apply (and every SSH session killed): no confirmation arrives, the host undoes the apply by itself", async () => {
    const forwarding = (v: number) => run(["ip", "netns", "exec", f.lab.routers[0].netns, "sysctl", "-qw", `net.ipv4.ip_forward=${v}`]);
    // the runner cuts r1's forwarding just before the confirmation connects
    let applied = "";
    let job = "";
    const cutting: Runner = async (c, text, phase) => {
      if (c.name === "client-hooks-confirm" && phase === "create") {
        // the armed job is a unit of its own, outside every SSH session: every session dies (sshd
        // restarted with its control group) and it still fires
        job = labSh(client, "systemctl show -p ControlGroup -p ActiveState mptcp-pulumi-rollback-hooks.service; systemctl restart mptcp-lab-sshd.service");
        forwarding(0);
      }
      const r = await f.ssh.run(c, text, phase);
      if (c.name === "client-hooks") applied = r.stdout;
      return r;
    };
    const cutSim = new CommandProviderSim(cutting);
    for (const [name, c] of f.sim.state) cutSim.state.set(name, c);
    try {
      const err = await cutSim.up((await runProgram(stack(GATEWAY, TIMEOUT, 110), { privateKey: f.privateKey })).commands).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err?.message).toMatch(/create of client-hooks-confirm failed/);
      // the apply ran (table 110) and armed; the confirmation never connected (ConnectTimeout 5 s)
      expect(applied).toMatch(/hooks: rollback armed at/);
      expect(job).toContain("ControlGroup=/system.slice/mptcp-pulumi-rollback-hooks.service");
      expect(job).toContain("ActiveState=active");
      await waitRolledBack();
      expect(labSh(client, `cat ${STATE_DIR}/hooks/rolled-back`)).toMatch(/^\S+ \(undo exit 0\)/);
      expect(labSh(client, "ip -4 rule show")).not.toContain("lookup 110");
      expect(routeRule()).toContain(`default via ${GATEWAY} dev uplink`);
    } finally {
      forwarding(1);
    }
    for (const [name, c] of cutSim.state) f.sim.state.set(name, c);
  });

  it("destroy after rolled-back applies restores the laptop as it was before the first up", async () => {
    await f.sim.destroy();
    expect(snapshot(client)).toBe(pre);
  });

  it("a first apply with the wrong gateway is undone by the revert (nothing was confirmed before); destroy then finds nothing left and says so", async () => {
    const err = await f.sim.up((await runProgram(stack(WRONG), { privateKey: f.privateKey })).commands).then(
      () => undefined,
      (e: Error) => e,
    );
    // the confirmation's SYN is retransmitted until the rollback restores the path, so it reaches
    // the laptop either after the rollback or while it still runs (under load, both happen)
    expect(err?.message).toMatch(/the last apply of hooks (was rolled back at|is being rolled back right now)/);
    await waitRolledBack();
    expect(labSh(client, "ip -4 rule show")).not.toContain("lookup 100");
    expect(labSh(client, "ls /usr/local/sbin")).not.toContain("mptcp-pulumi-sync");
    const steps = await f.sim.destroy();
    expect(steps.find((x) => x.name === "client-hooks")!.result!.stdout).toMatch(/hooks: already restored by its rollback at \S+/);
    expect(snapshot(client)).toBe(pre);
  });

  it("negative control: the same wrong gateway without the rollback (confirmTimeout 0) leaves the laptop unreachable", async () => {
    const model = requireValidConfig(stack(WRONG, 0)).hosts.find((h) => h.name === "client")!;
    const scripts = renderHost(model);
    expect(scripts.some((s) => s.confirm)).toBe(false);
    // applied from this machine (nsenter), not over the SSH it cuts
    for (const s of scripts) labSh(client, s.apply);
    await sleep(500);
    const watch = reachability();
    await sleep((TIMEOUT + 1) * 1000);
    const { probes } = await watch.stop();
    console.log(`no rollback: ${probes.length} probes over ${TIMEOUT + 1} s, ${probes.filter((p) => p.ok).length} reached the laptop`);
    expect(probes.filter((p) => p.ok)).toEqual([]);
    for (const s of [...scripts].reverse()) labSh(client, s.revert);
    expect((await f.ssh.run(probeCommand(), "true", "create")).code).toBe(0);
    expect(snapshot(client)).toBe(pre);
  });
});
