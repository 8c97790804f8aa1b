// The simulator follows the Pulumi engine v3.248.0 where our product depends on it. Sources read
// (github.com/pulumi/pulumi at tag v3.248.0):
// - pkg/resource/deploy/step_generator.go: continueStepsFromDiff (a delete-before-replace deletes
//   the dependents calculateDependentReplacements returns first, dependents first, then the old
//   resource, then creates the new one), generateSteps (`recreating`: a dependent deleted that way
//   is created again when registered, whatever the targets; an untargeted resource gets a same step,
//   an untargeted new one a skipped create), isTargetedForUpdate (--target-dependents);
// - pkg/resource/deploy/deployment.go: UrnTargets (literal URNs, `*` within a segment, `**` across),
//   Options.DegreeOfParallelism;
// - pkg/cmd/pulumi/operations/up.go: defaultParallel (PULUMI_PARALLEL, else 4 x GOMAXPROCS(0));
// - pkg/resource/deploy/step_executor.go: newStepExecutor (`parallel` workers, each runs one chain);
// - pkg/backend/snapshot.go: SnapshotManager (BeginMutation writes for create/update/delete, End
//   writes, same steps elide unless mustWrite, one flush at Close if the last was elided);
//   pkg/backend/diy/backend.go apply: the DIY backend uses NewSnapshotManager (no journal);
//   pkg/backend/diy/state.go: compactJSONMarshaler.
// And github.com/pulumi/pulumi-command at tag v1.2.1: provider/pkg/provider/common/inputs.go
// declares `Triggers` with `provider:"replaceOnChanges"`, so an unknown trigger (the output of a
// replaced dependency) makes the provider's Diff say replace.
import { describe, expect, it } from "vitest";
import { RecordedCommand, runProgram } from "./harness/program";
import { CommandProviderSim, defaultParallel, Phase, targetMatcher } from "./harness/provider";

function cmd(name: string, over: Partial<RecordedCommand> = {}): RecordedCommand {
  const c = { name, urn: `urn:pulumi:test::mptcp::mptcp:index:Host$command:remote:Command::${name}`, create: `create ${name}`, delete: `delete ${name}`, triggers: ["h1"], connection: { host: "h1" }, dependsOn: [], deleteBeforeReplace: true, ...over } as RecordedCommand;
  c.inputs = { create: c.create, delete: c.delete, update: c.update, triggers: c.triggers, connection: c.connection };
  return c;
}

/** A guarded concern as components/host.ts registers it: the apply, and its confirmation whose triggers hold the apply's stdout. */
const guarded = (host: string, apply = "apply v1") => [
  cmd("s-endpoints", { create: apply, triggers: [host], connection: { host } }),
  cmd("s-endpoints-confirm", { create: "confirm", delete: "disarm", dependsOn: ["s-endpoints"], triggers: [host, "s-endpoints: applied"], connection: { host } }),
];

function recorder() {
  const ran: string[] = [];
  let n = 0;
  const sim = new CommandProviderSim(async (c, text, phase: Phase) => {
    ran.push(`${phase} ${c.name}@${c.connection.host}`);
    return { stdout: c.name.endsWith("confirm") ? "confirmed" : `armed ${++n}`, stderr: "", code: text === "fail" ? 1 : 0 };
  });
  return { sim, ran };
}

describe("replacement of a guarded concern (step_generator.go v3.248.0 continueStepsFromDiff, calculateDependentReplacements)", () => {
  it("a changed ssh target: old confirm's delete, old revert, new apply, new confirm", async () => {
    const { sim, ran } = recorder();
    await sim.up(guarded("h1"));
    ran.length = 0;
    const steps = await sim.up(guarded("h2"));
    expect(ran).toEqual(["delete s-endpoints-confirm@h1", "delete s-endpoints@h1", "create s-endpoints@h2", "create s-endpoints-confirm@h2"]);
    expect(steps.map((s) => s.reason)).toEqual(["replace", "replace", "replace", "replace"]);
    expect(sim.state.get("s-endpoints-confirm")!.connection.host).toBe("h2");
  });

  it("--replace of the apply: the confirmation is deleted first and created after it", async () => {
    const { sim, ran } = recorder();
    await sim.up(guarded("h1"));
    ran.length = 0;
    await sim.up(guarded("h1"), { replace: ["urn:pulumi:test::mptcp::mptcp:index:Host$command:remote:Command::s-endpoints"] });
    expect(ran).toEqual(["delete s-endpoints-confirm@h1", "delete s-endpoints@h1", "create s-endpoints@h1", "create s-endpoints-confirm@h1"]);
  });

  it("a dependent that takes no output of the replaced command is not replaced (only a dependsOn edge)", async () => {
    const { sim, ran } = recorder();
    const next = (host: string) => cmd("s-hooks", { dependsOn: ["s-endpoints-confirm"], triggers: [host], connection: { host } });
    await sim.up([...guarded("h1"), next("h1")]);
    ran.length = 0;
    await sim.up([...guarded("h1"), next("h1")], { replace: ["s-endpoints"] });
    expect(ran).toEqual(["delete s-endpoints-confirm@h1", "delete s-endpoints@h1", "create s-endpoints@h1", "create s-endpoints-confirm@h1"]);
  });

  it("negative control: the order the simulator ran before (no dependent replacement) is not what it runs now", async () => {
    const { sim, ran } = recorder();
    await sim.up(guarded("h1"));
    ran.length = 0;
    await sim.up(guarded("h2"));
    expect(ran).not.toEqual(["delete s-endpoints@h1", "create s-endpoints@h2", "delete s-endpoints-confirm@h1", "create s-endpoints-confirm@h2"]);
  });

  it("the real program: an ssh.host change replaces every command; each confirmation is deleted before its apply's revert and created after its apply", async () => {
    const host = (addr: string) => ({ name: "server", ssh: { host: addr, insecureIgnoreHostKey: true }, sysctl: { enabled: true }, limits: { subflows: 2, addAddrAccepted: 2 }, endpoints: [{ interface: "eth1", flags: ["signal"] }], hooks: true });
    const { sim, ran } = recorder();
    await sim.up((await runProgram({ hosts: [host("203.0.113.1")] })).commands);
    ran.length = 0;
    await sim.up((await runProgram({ hosts: [host("203.0.113.2")] })).commands);
    for (const concern of ["endpoints", "hooks"]) {
      const at = (s: string) => ran.indexOf(s);
      const order = [`delete server-${concern}-confirm@203.0.113.1`, `delete server-${concern}@203.0.113.1`, `create server-${concern}@203.0.113.2`, `create server-${concern}-confirm@203.0.113.2`].map(at);
      expect(order.every((i) => i >= 0), ran.join("\n")).toBe(true);
      expect([...order].sort((a, b) => a - b)).toEqual(order);
    }
    // the anchor has no triggers: updated in place (its create again), never deleted
    expect(ran.filter((s) => s.includes("anchor"))).toEqual(["create server-anchor@203.0.113.2"]);
  });
});

describe("default parallelism (up.go v3.248.0 defaultParallel; step_executor.go newStepExecutor)", () => {
  it("4 x CPUs unless PULUMI_PARALLEL is set", () => {
    expect(defaultParallel({})).toBe(4 * require("node:os").availableParallelism());
    expect(defaultParallel({ PULUMI_PARALLEL: "3" })).toBe(3);
    expect(defaultParallel({ PULUMI_PARALLEL: "0" })).toBe(4 * require("node:os").availableParallelism());
  });

  it("never more than `parallel` commands at once; unbounded (parallel = commands) runs them all at once", async () => {
    let now = 0;
    let peak = 0;
    const sim = new CommandProviderSim(async () => {
      peak = Math.max(peak, ++now);
      await new Promise((r) => setTimeout(r, 5));
      now--;
      return { stdout: "", stderr: "", code: 0 };
    });
    const many = Array.from({ length: 20 }, (_, i) => cmd(`c${i}`));
    await sim.up(many, { parallel: 3 });
    expect(peak).toBe(3);
    expect(sim.peakParallel).toBe(3);
    peak = 0;
    await sim.destroy({ parallel: 5 });
    expect(peak).toBe(5);
    // negative control: with the cap at the number of commands, all 20 run at once
    peak = 0;
    await sim.up(many, { parallel: 20 });
    expect(peak).toBe(20);
  });

  it("a step that runs nothing (a command without create) hands its slot on: the bound holds when it finishes at once", async () => {
    // each slow command has a dependent that finishes in the same tick, whose own dependent is slow
    const slow = async () => {
      await new Promise((r) => setTimeout(r, 5));
      return { stdout: "", stderr: "", code: 0 };
    };
    const sim = new CommandProviderSim(slow);
    const instant = (name: string, after: string) => {
      const c = cmd(name, { dependsOn: [after] });
      c.inputs = { ...c.inputs, create: undefined };
      return c;
    };
    const chains = Array.from({ length: 12 }, (_, i) => [cmd(`a${i}`), instant(`b${i}`, `a${i}`), cmd(`c${i}`, { dependsOn: [`b${i}`] })]).flat();
    await sim.up(chains, { parallel: 3 });
    expect(sim.peakParallel).toBe(3);
  });
});

describe("DIY backend checkpoints (snapshot.go SnapshotManager, diy/backend.go v3.248.0)", () => {
  it("the whole state at the start and end of every step; an unchanged up writes once (the elided same steps' flush)", async () => {
    const { sim } = recorder();
    const two = [cmd("a"), cmd("b", { dependsOn: ["a"] })];
    await sim.up(two);
    expect(sim.checkpoints.writes).toBe(4); // 2 steps x (begin + end)
    const full = Buffer.byteLength(sim.checkpointJson());
    expect(sim.checkpoints.largest).toBe(full);
    const state = JSON.parse(sim.checkpointJson()).checkpoint.latest.resources;
    expect(state.map((r: any) => [r.inputs.create, r.outputs.stdout])).toEqual([["create a", "armed 1"], ["create b", "armed 2"]]);
    await sim.up(two);
    expect(sim.checkpoints).toEqual({ writes: 1, bytes: full, largest: full });
    await sim.up([cmd("a", { triggers: ["h2"] }), cmd("b", { dependsOn: ["a"] })]);
    expect(sim.checkpoints.writes).toBe(4); // delete + create of a (a replace step writes nothing)
    await sim.destroy();
    expect(sim.checkpoints.writes).toBe(4);
    expect(JSON.parse(sim.checkpointJson()).checkpoint.latest.resources).toEqual([]);
  });

  it("a real host: the state holds each resource's registered inputs twice, as inputs and again as outputs", async () => {
    const host = { name: "server", ssh: { host: "203.0.113.1", insecureIgnoreHostKey: true }, sysctl: { enabled: true }, limits: { subflows: 2, addAddrAccepted: 2 }, endpoints: [{ interface: "eth1", flags: ["signal"] }], hooks: true };
    const { sim } = recorder();
    const { commands } = await runProgram({ hosts: [host] });
    await sim.up(commands);
    const perHost = Buffer.byteLength(sim.checkpointJson());
    console.log(`one host: ${commands.length} commands, ${sim.checkpoints.writes} writes, ${sim.checkpoints.bytes} bytes, state ${perHost} bytes`);
    expect(sim.checkpoints.writes).toBe(2 * commands.length);
    expect(perHost).toBeGreaterThan(2 * commands.reduce((n, c) => n + Buffer.byteLength(JSON.stringify(c.inputs)), 0));
  });
});

describe("preview after up (no false replaces)", () => {
  it("an up with nothing changed previews nothing; a changed apply previews its confirmation's replace (its stdout unknown)", async () => {
    const { sim } = recorder();
    await sim.up(guarded("h1"));
    expect(sim.preview(guarded("h1"))).toEqual([]);
    expect(sim.preview(guarded("h1", "apply v2")).map((s) => `${s.phase} ${s.name} (${s.reason})`)).toEqual(["create s-endpoints (changed)", "delete s-endpoints-confirm (replace)", "create s-endpoints-confirm (replace)"]);
    expect(sim.preview(guarded("h2")).map((s) => `${s.phase} ${s.name}`)).toEqual(["delete s-endpoints-confirm", "delete s-endpoints", "create s-endpoints", "create s-endpoints-confirm"]);
  });
});

describe("--target (step_generator.go v3.248.0 isTargetedForUpdate, generateSteps; deployment.go UrnTargets)", () => {
  it("globs: `*` stays within a URN segment, `**` crosses them", () => {
    const m = targetMatcher(["urn:pulumi:test::mptcp::mptcp:index:Host$command:remote:Command::server-*"]);
    expect(m(cmd("server-endpoints"))).toBe(true);
    expect(m(cmd("client-endpoints"))).toBe(false);
    expect(targetMatcher(["**server-endpoints*"])(cmd("server-endpoints-confirm"))).toBe(true);
    expect(targetMatcher(["*server-endpoints"])(cmd("server-endpoints"))).toBe(false);
  });

  it("targeting the apply alone runs the apply and not its confirmation; --target-dependents or a glob runs both", async () => {
    const { sim, ran } = recorder();
    await sim.up(guarded("h1"));
    ran.length = 0;
    const urn = cmd("s-endpoints").urn;
    await sim.up(guarded("h1", "apply v2"), { target: [urn] });
    expect(ran).toEqual(["create s-endpoints@h1"]); // the confirmation keeps its stored state: the apply is not confirmed
    ran.length = 0;
    await sim.up(guarded("h1", "apply v3"), { target: [urn], targetDependents: true });
    expect(ran).toEqual(["create s-endpoints@h1", "delete s-endpoints-confirm@h1", "create s-endpoints-confirm@h1"]);
    ran.length = 0;
    await sim.up(guarded("h1", "apply v4"), { target: [`${urn}*`] });
    expect(ran).toEqual(["create s-endpoints@h1", "delete s-endpoints-confirm@h1", "create s-endpoints-confirm@h1"]);
  });

  it("a replace of a targeted apply recreates its confirmation even untargeted (`recreating`)", async () => {
    const { sim, ran } = recorder();
    await sim.up(guarded("h1"));
    ran.length = 0;
    await sim.up(guarded("h2"), { target: ["s-endpoints"] });
    expect(ran).toEqual(["delete s-endpoints-confirm@h1", "delete s-endpoints@h1", "create s-endpoints@h2", "create s-endpoints-confirm@h2"]);
  });

  it("an untargeted new command is not created; a targeted one depending on it fails", async () => {
    const { sim, ran } = recorder();
    await expect(sim.up(guarded("h1"), { target: ["s-endpoints-confirm"] })).rejects.toThrow(/depends on s-endpoints, which is not targeted/);
    expect(ran).toEqual([]);
  });
});
