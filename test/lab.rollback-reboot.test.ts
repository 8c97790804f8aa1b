// A reboot inside confirmTimeout does not lose the rollback. SSH reaches the client only through
// router r1, over its uplink, which the client routes by source; an apply with a wrong gateway
// there cuts SSH, and the laptop reboots before the rollback's timer fires (the timer dies with
// it). At boot the entry point (our boot unit, or ifupdown's if-up hook, which runs first) finds
// the rollback armed with no job and fires it before applying anything: the laptop comes back
// reachable on its last confirmed state, the rollback is recorded (when, and that the host
// rebooted), and the confirmation fails naming it. Both jobs: a systemd unit, and the setsid job
// of a host without systemd-run. Negative control: the entry point as it was (no rollback at
// boot) leaves SSH cut after the reboot. Then: the last good config put back is a pulumi up that
// succeeds and is confirmed though it changes nothing (negative control: without the apply
// clearing the rolled-back marker, its confirmation fails).
import { join } from "node:path";
import { readFileSync, writeFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { renderCheck, requireValidConfig, STATE_DIR, wrapScript } from "../components";
import { renderSyncScript } from "../components/hooks";
import { renderScript, SH_DIR, SYNC_PATH } from "../components/script";
import { LabHost, labExec, labReboot, labSh, labStackConfig } from "../scripts/lab/lab";
import { pathEnds, readTopology, validateTopology } from "../scripts/lab/topology";
import { sleep, waitFor } from "../scripts/lab/wait";
import { labFile } from "./harness/fixture";
import { run } from "./harness/scratch";
import { RecordedCommand, runProgram } from "./harness/program";
import { CommandProviderSim, Runner } from "./harness/provider";
import { snapshot, unstaged, uplinkRoutingConfig } from "./harness/labtest";

// This machine routes a router lab's uplink subnet to its router: lab.router (.32/28) and
// lab.rollback (.48/28) may run beside this file, so its uplink takes a /28 of its own.
const fixture = readTopology(join(__dirname, "fixtures", "router.topology.yaml"));
const topology = validateTopology({ ...fixture, paths: fixture.paths.map((p) => (p.name === "uplink" ? { ...p, subnet: "198.51.100.208/28" } : p)) });
/** Long enough that every reboot here happens well inside it. */
const TIMEOUT = 90;
const GATEWAY = "198.51.100.209"; // r1 on the uplink
const WRONG = "198.51.100.216"; // nobody
const HOOKS = `${STATE_DIR}/hooks`;
// one connection per command, as the provider: a reboot kills every connection
const f = labFile(topology, "e", { reuseSsh: false });
let client: LabHost;
let pre: string;

/** The lab's stack with the client routing its uplink (the path SSH arrives on) by source through `gateway`. */
const stack = (gateway: string, confirmTimeout = TIMEOUT) => uplinkRoutingConfig(f.lab, gateway, confirmTimeout);

const model = (gateway: string, confirmTimeout = TIMEOUT) => requireValidConfig(stack(gateway, confirmTimeout)).hosts.find((h) => h.name === "client")!;

/** npm run check's lines for the client (its "stack" lines left out). */
async function check(gateway: string, confirmTimeout = TIMEOUT): Promise<string[]> {
  const r = await f.ssh.run(probeCommand(), wrapScript(renderCheck({ ...model(gateway, confirmTimeout), stack: "mptcp/test" }), { user: "root", host: "client" }), "create");
  expect(r.code).toBe(0);
  return r.stdout.split("\n").filter((l) => l && !l.startsWith("stack "));
}

/** A probe over SSH to the client, as the command provider would connect. */
function probeCommand(): RecordedCommand {
  const c = (labStackConfig(f.lab).hosts as { name: string; ssh: object }[]).find((h) => h.name === "client")!;
  return { name: "probe", urn: "", connection: { ...c.ssh, privateKey: f.privateKey }, dependsOn: [], deleteBeforeReplace: false, inputs: {} };
}

/**
 * Whether a new SSH connection reaches the client within 2 s (one started during a cut may
 * connect much later, when a retransmitted SYN gets through after the cut ends).
 */
const reachable = () => Promise.race([f.ssh.run(probeCommand(), "true", "create").then((r) => r.code === 0), sleep(2000).then(() => false)]);
const routeRule = () => labSh(client, "ip -4 rule show | grep 'lookup 100' || true; ip -4 route show table 100 default || true");
const rolledBack = () => labExec(client, `cat ${HOOKS}/rolled-back`).stdout.trim();

/** The entry point as it was before a rollback could fire at boot: sync.sh without its first block. */
function oldSyncScript(gateway: string): string {
  const text = readFileSync(join(SH_DIR, "sync.sh"), "utf8");
  const old = text.replace(/\n# First, before anything is applied[\s\S]*?\nesac\n/, "\n");
  expect(old).not.toBe(text);
  expect(old).not.toContain("rb_recover");
  const render = (t: string) => renderScript({ host: model(gateway), title: "interface sync (hooks and boot)", source: "sync.sh", text: t, strict: true, installed: true });
  // the same rendering of today's text is what the hooks apply installs
  expect(render(text)).toBe(renderSyncScript(model(gateway)));
  return render(old);
}

/**
 * pulumi up of the wrong gateway: its apply cuts SSH, its own session included, so the command
 * hangs (until the rollback's timer, 90 s); once the apply has committed and armed its rollback,
 * the laptop reboots (`beforeReboot` runs on it first), which ends that session. Returns the
 * up's error, how long the reboot and the up took, and what the laptop's state was before it.
 */
async function upCutThenReboot(opts: { beforeReboot?: string; selfConfigured?: boolean } = {}) {
  let rebootMs = 0;
  let cutBeforeReboot: boolean | undefined;
  let rebootError: string | undefined;
  let before = "";
  const rebooting: Runner = async (c, text, phase) => {
    if (c.name !== "client-hooks" || phase === "delete") return f.ssh.run(c, text, phase);
    const running = f.ssh.run(c, text, phase);
    await waitFor(
      "the apply to commit, arm its rollback and route by the wrong gateway",
      30_000,
      () => labExec(client, `test -e ${HOOKS}/rollback/armed && ! test -e ${HOOKS}/.txn`).code === 0 && routeRule().includes(WRONG),
      100,
    );
    cutBeforeReboot = !(await reachable());
    before = labSh(client, `cat ${HOOKS}/rollback/armed; ls ${HOOKS}/rollback; systemctl is-active mptcp-pulumi-rollback-hooks.service || true; ${opts.beforeReboot ?? ""}`);
    unplug();
    const t0 = performance.now();
    // it waits for sshd's port over the SSH path: one the boot cut does not open (the control)
    await labReboot(f.lab, ["client"], { selfConfigured: opts.selfConfigured }).catch((e: Error) => {
      rebootError = e.message;
      writeFileSync(join(f.lab.dir, "state.json"), JSON.stringify(f.lab, null, 2));
    });
    rebootMs = performance.now() - t0;
    // this machine's end of the apply's session waits for data that never comes (the laptop that
    // held the other end is gone; nothing sends a keepalive): ended here, as a TCP keepalive would
    run(["ss", "-K", "dst", client.mgmtAddress, "dport", "=", "22"]);
    // the boot done (our boot unit too): what follows sees what the boot left
    labExec(client, "systemctl is-system-running --wait");
    return running;
  };
  const rebootSim = new CommandProviderSim(rebooting);
  for (const [name, c] of f.sim.state) rebootSim.state.set(name, c);
  const t0 = performance.now();
  const err = await rebootSim.up((await runProgram(stack(WRONG), { privateKey: f.privateKey })).commands).then(
    () => undefined,
    (e: Error) => e,
  );
  const upMs = performance.now() - t0;
  for (const [name, c] of rebootSim.state) f.sim.state.set(name, c);
  return { err, rebootMs, upMs, cutBeforeReboot, rebootError, before };
}

/**
 * Pulls the client's cables (its paths' ends on the server and r1) just before it reboots: a
 * deleted namespace frees its veths later, and the lab re-creates them at once (File exists).
 */
function unplug(): void {
  const netns = (name: string) => [...f.lab.hosts, ...f.lab.routers].find((b) => b.name === name)!.netns;
  for (const e of pathEnds(topology).filter((x) => x.peer === "client")) run(["ip", "-n", netns(e.host), "link", "del", e.path]);
}

/** The ifupdown configuration that brings the client's paths (and its route back to SSH) up at boot. */
function interfacesFile(): string {
  const ends = pathEnds(topology).filter((e) => e.host === "client");
  return (
    [
      "auto lo",
      "iface lo inet loopback",
      ...ends.map((e) =>
        [
          `auto ${e.path}`,
          `iface ${e.path} inet static`,
          `  address ${e.address}/${e.prefix}`,
          ...(e.path === "uplink" ? [`  up ip route replace 203.0.113.0/24 via ${GATEWAY} dev uplink`] : []),
        ].join("\n"),
      ),
    ].join("\n") + "\n"
  );
}

beforeAll(async () => {
  client = f.host("client");
  pre = snapshot(client);
});

const BOOT = /^\S+ \(undo exit 0, the host rebooted before the apply was confirmed\)$/;

describe("a reboot inside confirmTimeout", () => {
  let good = "";

  it("the good gateway, confirmed: the last confirmed state", async () => {
    const steps = await f.sim.up((await runProgram(stack(GATEWAY), { privateKey: f.privateKey })).commands);
    expect(steps.find((s) => s.name === "client-hooks-confirm")!.result!.stdout).toContain("hooks: confirmed over a new SSH connection: rollback disarmed");
    expect(routeRule()).toContain(`default via ${GATEWAY} dev uplink`);
    good = snapshot(client);
  });

  it("a wrong gateway cuts SSH and the laptop reboots before it is confirmed: the boot unit fires the rollback before applying anything, and the laptop is reachable on its last confirmed state, the rollback recorded", async () => {
    const { err, rebootMs, upMs, cutBeforeReboot, rebootError, before } = await upCutThenReboot();
    const journal = labSh(client, "journalctl -b -u mptcp-pulumi.service --no-pager -o cat");
    console.log(
      `systemd job (${before.trim().split("\n").pop()}): SSH cut ${cutBeforeReboot}, reboot ${rebootMs.toFixed(0)} ms, up failed after ${(upMs / 1000).toFixed(1)} s (timeout ${TIMEOUT} s): ${err?.message.split("\n")[0]}; rolled-back: ${rolledBack()}; boot unit: ${journal.split("\n").find((l) => l.includes("no job"))}`,
    );
    expect(rebootError).toBeUndefined();
    expect(cutBeforeReboot).toBe(true);
    expect(before).toMatch(/^active$/m);
    // the reboot ended the apply's session: the up fails, long before the rollback's timer
    expect(err?.message).toMatch(/create of client-hooks failed \(exit 255\)/);
    expect(upMs / 1000).toBeLessThan(TIMEOUT / 2);
    expect(rolledBack()).toMatch(BOOT);
    expect(journal).toMatch(/hooks: the rollback armed at \S+ has no job \(the host rebooted before the apply was confirmed\): undoing the apply now/);
    // back on the last confirmed state: reachable, the good gateway, the good sync script, its state
    expect(await reachable()).toBe(true);
    expect(routeRule()).toContain(`default via ${GATEWAY} dev uplink`);
    expect(routeRule()).not.toContain(WRONG);
    expect(labSh(client, `cat ${SYNC_PATH}`)).toBe(renderSyncScript(model(GATEWAY)));
    expect(labSh(client, `ls ${HOOKS}/rollback`)).not.toMatch(/armed|firing/);
    // (but for the copied scripts: the failed up delivered its own, which stay until destroy)
    expect(
      snapshot(client, { staged: false })
        .replace(/^.*rolled-back.*$\n?/gm, "")
        .replace(/^.*\/rollback.*$\n?/gm, ""),
    ).toBe(unstaged(good).replace(/^.*\/rollback.*$\n?/gm, ""));
    // npm run check names the rollback (the stack never stored the apply that was rolled back)
    expect(await check(WRONG)).toContainEqual(expect.stringMatching(/^routing\|the last apply of hooks was rolled back at .*the host rebooted before the apply was confirmed/));
    // and with the last good config (what the stack kept: the failed apply was never recorded) the
    // host is in step: the rollback put back exactly the apply pulumi up would run
    expect(await check(GATEWAY)).toEqual([]);
  });

  it("a confirmation finds a rollback armed with no job (nothing at boot fired it): it fires it, then fails naming the reboot", async () => {
    // the wrong apply committed and armed, from this machine; then the host "reboots" as far as
    // the rollback can tell (its job is gone): what the confirmation sees after a boot path that did not run
    const hooks = f.sim.state.get("client-hooks")!;
    const wrong = (await runProgram(stack(WRONG), { privateKey: f.privateKey })).commands;
    const apply = wrong.find((c) => c.name === "client-hooks")!;
    const confirm = wrong.find((c) => c.name === "client-hooks-confirm")!;
    expect(hooks).toBeDefined();
    labSh(client, apply.create!, "the wrong apply");
    labSh(client, `systemctl kill mptcp-pulumi-rollback-hooks.service; sed -i '2s/.*/another boot/' ${HOOKS}/rollback/armed`);
    expect(await reachable()).toBe(false);
    const r = labExec(client, confirm.create!);
    console.log(`confirmation: ${r.stdout.trim()} / ${r.stderr.trim().slice(0, 200)}`);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/hooks: the rollback armed at \S+ has no job \(the host rebooted before the apply was confirmed\): undoing the apply now/);
    expect(r.stderr).toMatch(
      /the last apply of hooks was rolled back at \S+ \(undo exit 0, the host rebooted before the apply was confirmed\): client rebooted within 90 s after it, before it was confirmed over a new SSH connection, so the apply was undone \(at boot, or by this confirmation\) and the last confirmed state put back/,
    );
    expect(await reachable()).toBe(true);
    expect(routeRule()).toContain(`default via ${GATEWAY} dev uplink`);
  });

  it("without systemd-run (the setsid job), the laptop bringing its paths up itself at boot: ifupdown's if-up hook, which runs before our boot unit, fires the rollback", async () => {
    const interfaces = labSh(client, "cat /etc/network/interfaces");
    labSh(client, `cat > /etc/network/interfaces <<'EOF'\n${interfacesFile()}EOF`);
    // systemd-run hidden from the apply (in the laptop's mount namespace, gone at its reboot)
    labSh(client, "touch /run/no-systemd-run && mount --bind /run/no-systemd-run $(command -v systemd-run)");
    try {
      const { err, rebootMs, upMs, cutBeforeReboot, rebootError, before } = await upCutThenReboot({ beforeReboot: `cat ${HOOKS}/rollback/pid`, selfConfigured: true });
      const ifup = labSh(client, "journalctl -b -u networking.service --no-pager -o cat");
      const unit = labSh(client, "journalctl -b -u mptcp-pulumi.service --no-pager -o cat");
      console.log(
        `setsid job (pid ${before.trim().split("\n").pop()}), ifupdown at boot: SSH cut ${cutBeforeReboot}, reboot ${rebootMs.toFixed(0)} ms, up failed after ${(upMs / 1000).toFixed(1)} s; rolled-back: ${rolledBack()}; networking.service: ${ifup.split("\n").find((l) => l.includes("no job"))}`,
      );
      expect(rebootError).toBeUndefined();
      expect(cutBeforeReboot).toBe(true);
      expect(before).toMatch(/^inactive$/m);
      expect(before.trim().split("\n").pop()).toMatch(/^\d+$/);
      expect(err?.message).toMatch(/create of client-hooks failed \(exit 255\)/);
      expect(upMs / 1000).toBeLessThan(TIMEOUT / 2);
      expect(ifup).toMatch(/hooks: the rollback armed at \S+ has no job \(the host rebooted before the apply was confirmed\)/);
      expect(unit).not.toContain("no job");
      expect(rolledBack()).toMatch(BOOT);
      expect(await reachable()).toBe(true);
      expect(routeRule()).toContain(`default via ${GATEWAY} dev uplink`);
      expect(routeRule()).not.toContain(WRONG);
    } finally {
      labSh(client, `cat > /etc/network/interfaces <<'EOF'\n${interfaces}EOF`);
    }
  });

  it("negative control: the entry point as it was (no rollback at boot) re-applies the unconfirmed routing at boot: SSH stays cut after the reboot; today's entry point, run late, still fires the rollback", async () => {
    const { err, cutBeforeReboot, rebootError } = await upCutThenReboot({ beforeReboot: `cat > ${SYNC_PATH} <<'MPTCP_TEST_SYNC'\n${oldSyncScript(WRONG)}MPTCP_TEST_SYNC` });
    expect(cutBeforeReboot).toBe(true);
    expect(err?.message).toMatch(/create of client-hooks failed/);
    const probes: boolean[] = [];
    for (let i = 0; i < 4; i++) probes.push(await reachable());
    console.log(
      `old entry point: the lab's wait for sshd ${rebootError ? "timed out" : "passed (in the moment before the boot unit)"}; ${probes.filter((p) => !p).length} of ${probes.length} probes after the reboot failed; rule: ${routeRule().trim().replace(/\n/g, "; ")}; armed: ${labExec(client, `test -e ${HOOKS}/rollback/armed`).code === 0}`,
    );
    expect(probes).toEqual([false, false, false, false]);
    expect(routeRule()).toContain(`default via ${WRONG} dev uplink`);
    expect(labExec(client, `test -e ${HOOKS}/rollback/armed`).code).toBe(0);
    expect(labExec(client, "systemctl -q is-active mptcp-pulumi-rollback-hooks.service").code).not.toBe(0);
    // today's entry point (from this machine, not over the SSH that is cut) fires it
    labSh(client, `cat > ${SYNC_PATH} <<'MPTCP_TEST_SYNC'\n${renderSyncScript(model(WRONG))}MPTCP_TEST_SYNC\n${SYNC_PATH} boot`);
    expect(rolledBack()).toMatch(BOOT);
    expect(await reachable()).toBe(true);
    expect(routeRule()).toContain(`default via ${GATEWAY} dev uplink`);
  }, 180_000);

  it("after a rollback (no reboot), the last good config put back: pulumi up succeeds and is confirmed though it changes nothing, and npm run check finds the host in step (negative control: an apply that does not clear the rolled-back marker fails at the confirmation)", async () => {
    const SHORT = 4;
    await f.sim.up((await runProgram(stack(GATEWAY, SHORT), { privateKey: f.privateKey })).commands);
    // the apply's session is cut until the rollback at 4 s; then its confirmation fails
    const cut = await f.sim.up((await runProgram(stack(WRONG, SHORT), { privateKey: f.privateKey })).commands).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(cut?.message).toMatch(/create of client-hooks-confirm failed[\s\S]*the last apply of hooks was rolled back at/);
    // the control: the same up, its hooks apply without the line that clears the marker
    let stripped = 0;
    const old: Runner = (c, text, phase) => {
      if (c.name === "client-hooks" && phase !== "delete") {
        // (the simulator runs the registered runner; the script it runs is c.create)
        const t = c.create!.replace("\nrb_settle hooks\n", "\n");
        if (t !== c.create) stripped++;
        text = t;
      }
      return f.ssh.run(c, text, phase);
    };
    const oldSim = new CommandProviderSim(old);
    for (const [name, c] of f.sim.state) oldSim.state.set(name, c);
    const control = await oldSim.up((await runProgram(stack(GATEWAY, SHORT), { privateKey: f.privateKey })).commands).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(stripped).toBe(1);
    console.log(`without clearing the marker: ${control?.message.split("\n")[1]?.slice(0, 160)}`);
    expect(control?.message).toMatch(/create of client-hooks-confirm failed[\s\S]*the last apply of hooks was rolled back at/);
    // (sim's state is the stack's before the control: its up runs the hooks apply again)
    const steps = await f.sim.up((await runProgram(stack(GATEWAY, SHORT), { privateKey: f.privateKey })).commands);
    const apply = steps.find((s) => s.name === "client-hooks")!.result!.stdout;
    const confirm = steps.find((s) => s.name === "client-hooks-confirm" && s.phase === "create")!.result!.stdout;
    console.log(`good config again: ${apply.split("\n").find((l) => l.includes("in step"))}; ${confirm.trim()}`);
    expect(apply).not.toContain("rollback armed");
    expect(apply).toMatch(/hooks: in step with this apply again \(its earlier apply was rolled back at \S+/);
    expect(confirm).toContain("hooks: confirmed");
    expect(labExec(client, `test -e ${HOOKS}/rolled-back`).code).not.toBe(0);
    expect(await check(GATEWAY, SHORT)).toEqual([]);
  }, 180_000);

  it("destroy restores the laptop as it was before the first up", async () => {
    await f.sim.destroy();
    expect(snapshot(client)).toBe(pre);
  });
});
