// An apply that completes on the host but whose command fails (the SSH session cut, or the
// command killed, right after the commit) is never recorded by the engine: pulumi-command's
// Create returns the error (provider/pkg/provider/remote/commandController.go, v1.2.1: `return
// infer.CreateResponse{ID: id, Output: state}, err`) and pulumi-go-provider turns an error that is
// not a ResourceInitFailedError into an empty CreateResponse (infer/resource.go, v1.3.0,
// derivedResourceController.Create: `} else if err != nil { return p.CreateResponse{}, err }`), so
// no partial state reaches the engine and no delete of that command ever runs; the simulator
// stores only commands that succeed, as test/harness/provider.ts says. The host's anchor command
// (components/sh/anchor.revert.sh), created before the concerns and deleted after them, reverts
// what is left. Faults are real: a laptop-local `rm` in /usr/local/sbin (first in root's PATH)
// cuts the session or kills the apply at the commit's last step, after which the host is fully
// applied. Control: the same fault and destroy without the anchor leave the host changed while
// destroy reports success.
import { beforeAll, describe, expect, it } from "vitest";
import { CONCERNS, LOCK_FILE, renderCheck, requireValidConfig, STATE_DIR, wrapScript } from "../components";
import { LabHost, labExec, labSh } from "../scripts/lab/lab";
import { waitFor } from "../scripts/lab/wait";
import { DEFAULT_TOPOLOGY } from "../scripts/lab/topology";
import { labFile } from "./harness/fixture";
import { RecordedCommand, runProgram } from "./harness/program";
import { CommandProviderSim } from "./harness/provider";
import { adminEndpoint, allConcernsConfig, AllConcernsConfig, labFault, snapshot, snapshotDiff } from "./harness/labtest";

// a connection per command, as the provider makes: the fault cuts one
const f = labFile(DEFAULT_TOPOLOGY, "a", { reuseSsh: false });
let client: LabHost;
let cfg: AllConcernsConfig;
/** The client before anything of ours, with an endpoint of an admin's own (id 9). */
let before: string;

beforeAll(async () => {
  client = f.host("client");
  adminEndpoint(client, 9);
  cfg = allConcernsConfig(f.lab, { client: { routing: [{ interface: "wlan", mode: "source", table: 77, priority: 7700 }], confirmTimeout: 60 } });
  before = snapshot(client);
});

async function clientCommands(): Promise<RecordedCommand[]> {
  return (await runProgram(cfg, { privateKey: f.privateKey })).commands.filter((c) => c.name.startsWith("client-"));
}

type Cut = "session" | "command";

/**
 * Makes the commit of CONCERN's apply end its command: right after the rename that commits,
 * while the transaction's files are removed, the session's sshd is killed (session) or the apply's
 * shell is (command). The host is then fully applied. Returns what removes the fault.
 */
function cutAfterCommit(h: LabHost, concern: string, cut: Cut): () => void {
  // $PPID: the apply's shell; its parent: the session's sshd
  return labFault(h, "rm", `${STATE_DIR}/${concern}/.txn.undo`, cut === "command" ? "kill -9 $PPID" : 'kill -9 "$(ps -o ppid= -p $PPID)"');
}

/** `pulumi up` with the fault at CONCERN's commit; returns the simulator (the stack) after it. */
async function failedUp(concern: string, cut: Cut, commands: RecordedCommand[]): Promise<{ sim: CommandProviderSim; error: string }> {
  const sim = new CommandProviderSim(f.ssh.run);
  const heal = cutAfterCommit(client, concern, cut);
  const error = await sim.up(commands).then(
    () => "",
    (e: Error) => e.message,
  );
  heal();
  return { sim, error };
}

/**
 * Takes the anchor and the scripts' cleanup out of the stack, so that its destroy runs only the
 * concerns' deletes (their scripts still copied); the test runs the anchor's delete itself, then
 * `cleanup()`, the cleanup's delete, as destroy would after the anchor.
 */
function holdAnchor(sim: CommandProviderSim): { anchor: RecordedCommand; cleanup: () => Promise<void> } {
  const anchor = sim.state.get("client-anchor")!;
  const c = sim.state.get("client-scripts-cleanup")!;
  sim.state.delete("client-anchor");
  sim.state.delete("client-scripts-cleanup");
  return {
    anchor,
    cleanup: async () => {
      const r = await f.ssh.run(c, c.delete!, "delete");
      expect(r.code, r.stderr).toBe(0);
    },
  };
}

const rollbackUnits = async (c: RecordedCommand) => (await f.ssh.run(c, "systemctl list-units --all --no-legend 'mptcp-pulumi-rollback-*'", "create")).stdout;

describe("an apply that completed on the host but whose command failed is reverted by destroy (the anchor)", () => {
  CONCERNS.forEach((concern, i) => {
    const cut: Cut = i % 2 === 0 ? "command" : "session";
    it(`${concern}: the ${cut === "command" ? "command killed" : "SSH session cut"} right after the commit, then destroy: the host is exactly as before`, async () => {
      const commands = await clientCommands();
      const { sim, error } = await failedUp(concern, cut, commands);
      expect(error).toMatch(new RegExp(`create of client-${concern} failed`));
      // the engine holds no command for it, yet the host carries the apply
      expect(sim.state.has(`client-${concern}`)).toBe(false);
      expect(sim.state.has("client-anchor")).toBe(true);
      expect(labSh(client, `cat ${STATE_DIR}/${concern}/.owners`)).toContain("|client|");
      expect(snapshot(client)).not.toBe(before);
      const steps = await sim.destroy();
      const anchor = steps.find((s) => s.name === "client-anchor")!;
      // the anchor's delete runs last of the host's scripts: after it, only the copy's cleanup and the copy
      expect(steps.slice(-3).map((s) => s.name)).toEqual(["client-anchor", "client-scripts-cleanup", "client-scripts"]);
      expect(anchor.result!.stdout).toContain(`mptcp-pulumi[client]: ${concern}: still applied here although Pulumi held no command for it`);
      // the snapshot covers our state directory and the lock file: both gone
      const after = snapshot(client);
      expect(after, snapshotDiff(after, before)).toBe(before);
      expect(await rollbackUnits(commands[0])).toBe("");
    });
  });

  it("the next up adopts it (runs its apply again and goes on); one the config then drops is named by check, and destroy reverts it", async () => {
    const { sim } = await failedUp("limits", "session", await clientCommands());
    const applied = snapshot(client);
    await sim.up(await clientCommands());
    expect(sim.state.has("client-limits")).toBe(true);
    // services, then dropped from the config before any up recorded it
    const { sim: other } = await failedUp("services", "command", await clientCommands());
    expect(other.state.has("client-services")).toBe(false);
    const dropped = structuredClone(cfg);
    delete dropped.hosts[1].services;
    await other.up((await runProgram(dropped, { privateKey: f.privateKey })).commands.filter((c) => c.name.startsWith("client-")));
    const host = requireValidConfig(dropped).hosts[1];
    const anchor = other.state.get("client-anchor")!;
    const check = await f.ssh.run(anchor, wrapScript(renderCheck({ ...host, stack: "mptcp/test" }), { user: "root", host: "client" }), "create");
    expect(check.stdout).toMatch(/^removed services$/m);
    expect(check.stdout).toMatch(/(^|\n)services\|applied here by host entry client, no longer in the config: .*reverted by pulumi destroy of the host, through its anchor command/);
    const steps = await other.destroy();
    expect(steps.find((s) => s.name === "client-anchor")!.result!.stdout).toMatch(/services: still applied here although Pulumi held no command for it/);
    const after = snapshot(client);
    expect(after, snapshotDiff(after, before)).toBe(before);
    expect(applied).not.toBe(before);
  });

  it("the anchor's own revert killed half-way (the limits' revert, at its ip mptcp limits set): the next destroy finishes it; control: without the kept revert (.sweep.sh) the next run reports success over the changed limits", async () => {
    const run = async (withResume: boolean) => {
      const { sim } = await failedUp("limits", "session", await clientCommands());
      // the stored commands' deletes first, as destroy runs them; the anchor's last
      const { anchor, cleanup } = holdAnchor(sim);
      await sim.destroy();
      const heal = labFault(client, "ip", "mptcp limits set", "kill -9 $PPID");
      const cut = await f.ssh.run(anchor, anchor.delete!, "delete");
      heal();
      expect(cut.code).not.toBe(0);
      expect(cut.stderr).toMatch(/mptcp-pulumi\[client\]: error: limits: reverting the limits that Pulumi held no command for failed/);
      const text = withResume ? anchor.delete! : anchor.delete!.replaceAll('[ -e "$d/.sweep.sh" ]', '[ -e "$d/.no-such-file" ]');
      if (!withResume) expect(text).not.toBe(anchor.delete);
      const r = await f.ssh.run(anchor, text, "delete");
      await cleanup();
      return r;
    };
    const r = await run(true);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/limits: finishing its revert, cut short by an earlier run/);
    const after = snapshot(client);
    expect(after, snapshotDiff(after, before)).toBe(before);
    // control
    const c = await run(false);
    expect(c.code).toBe(0);
    expect(snapshot(client)).not.toBe(before);
    // put right by the real anchor delete
    const anchor = (await clientCommands()).find((x) => x.name === "client-anchor")!;
    expect((await f.ssh.run(anchor, anchor.delete!, "delete")).code).toBe(0);
    const fixed = snapshot(client);
    expect(fixed, snapshotDiff(fixed, before)).toBe(before);
  });

  it("a first guarded apply (endpoints) committed, its command failed, then its rollback undid it: destroy says so and succeeds; control: an anchor that expects the apply's text fails on every run", async () => {
    const short = structuredClone(cfg);
    short.hosts[1].confirmTimeout = 3;
    const commands = (await runProgram(short, { privateKey: f.privateKey })).commands.filter((c) => c.name.startsWith("client-"));
    const rolledBack = async () => {
      const { sim } = await failedUp("endpoints", "session", commands);
      expect(sim.state.has("client-endpoints")).toBe(false);
      await waitFor("the endpoints' rollback", 20_000, () => labExec(client, `test -e ${STATE_DIR}/endpoints/rolled-back`).code === 0, 200);
      return sim;
    };
    // control first: the anchor without its rolled-back branch
    const broken = await rolledBack();
    const anchor = broken.state.get("client-anchor")!;
    const without = anchor.delete!.replace('[ -e "$d/rolled-back" ]', '[ -e "$d/.no-such-file" ]');
    expect(without).not.toBe(anchor.delete);
    broken.state.set("client-anchor", { ...anchor, delete: without, inputs: { ...anchor.inputs, delete: without } });
    await expect(broken.destroy()).rejects.toThrow(/no revert of it was found/);
    // the real anchor, then what destroy runs after it: the copied scripts' cleanup
    const r = await f.ssh.run(anchor, anchor.delete!, "delete");
    expect(r.code, r.stderr).toBe(0);
    const cleanup = broken.state.get("client-scripts-cleanup")!;
    expect((await f.ssh.run(cleanup, cleanup.delete!, "delete")).code).toBe(0);
    expect(r.stdout).toMatch(/endpoints: already restored by its rollback at /);
    const after = snapshot(client);
    expect(after, snapshotDiff(after, before)).toBe(before);
    // and through destroy
    const sim = await rolledBack();
    await sim.destroy();
    const again = snapshot(client);
    expect(again, snapshotDiff(again, before)).toBe(before);
  });

  it("the anchor killed after its revert completed, before it forgot the revert (.sweep.sh): the next run finds nothing to do and succeeds; control: rerunning the kept revert fails 'cannot restore'", async () => {
    const run = async (guarded: boolean) => {
      const { sim } = await failedUp("limits", "session", await clientCommands());
      const { anchor, cleanup } = holdAnchor(sim);
      await sim.destroy();
      await cleanup(); // (the anchor's delete below is its script itself, no copied file)
      // the revert completed; killed at the rm that forgets it (and that rm not run)
      const heal = labFault(client, "rm", `${STATE_DIR}/limits/.sweep.sh`, "kill -9 $PPID; exit 0");
      const cut = await f.ssh.run(anchor, anchor.delete!, "delete");
      heal();
      expect(cut.code).not.toBe(0);
      expect(labSh(client, `ls -A ${STATE_DIR}/limits`).trim()).toBe(".sweep.sh");
      const text = guarded ? anchor.delete! : anchor.delete!.replace('! state_left "$d" && [ ! -e "$d/.reverting" ]', "false");
      if (!guarded) expect(text).not.toBe(anchor.delete);
      return { r: await f.ssh.run(anchor, text, "delete"), anchor };
    };
    const { r } = await run(true);
    expect(r.code, r.stderr).toBe(0);
    const after = snapshot(client);
    expect(after, snapshotDiff(after, before)).toBe(before);
    const { r: c, anchor } = await run(false);
    expect(c.code).not.toBe(0);
    expect(c.stderr).toMatch(/cannot restore/);
    expect((await f.ssh.run(anchor, anchor.delete!, "delete")).code).toBe(0);
    const fixed = snapshot(client);
    expect(fixed, snapshotDiff(fixed, before)).toBe(before);
  });

  it("negative control: the same fault at the endpoints' commit and destroy without the anchor report success over a changed host (the admin's endpoint lost)", async () => {
    // (what depended on the anchor depends on the scripts' cleanup, deleted after every script ran)
    const commands = (await clientCommands())
      .filter((c) => c.name !== "client-anchor")
      .map((c) => ({ ...c, dependsOn: c.dependsOn.map((d) => (d === "client-anchor" ? "client-scripts-cleanup" : d)) }));
    const { sim, error } = await failedUp("endpoints", "session", commands);
    expect(error).toMatch(/create of client-endpoints failed/);
    await sim.destroy();
    expect(snapshot(client)).not.toBe(before);
    expect(labSh(client, "ip mptcp endpoint show")).not.toMatch(/ id 9 signal/);
    // what the anchor's delete does puts it right
    // (and it waits for the host lock, held here for 800 ms, before it changes anything)
    const anchor = (await clientCommands()).find((c) => c.name === "client-anchor")!;
    labSh(client, `flock ${LOCK_FILE} sh -c 'echo $$ > /run/lab-lock-holder; exec sleep 0.8' < /dev/null > /dev/null 2>&1 &`);
    await waitFor("the lock to be held", 5000, () => labExec(client, "test -s /run/lab-lock-holder").code === 0, 10);
    const t0 = performance.now();
    const r = await f.ssh.run(anchor, anchor.delete!, "delete");
    const ms = performance.now() - t0;
    labSh(client, "rm -f /run/lab-lock-holder");
    expect(r.code, r.stderr).toBe(0);
    expect(ms).toBeGreaterThan(500);
    const after = snapshot(client);
    expect(after, snapshotDiff(after, before)).toBe(before);
  });
});
