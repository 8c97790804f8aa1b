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
import { remote } from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { HOST_TYPE, LEGACY_HOST_TYPE, NETWORK_TYPE } from "../components/render";
import { aliasUrns, RecordedCommand, runProgram, urnOf } from "./harness/program";
import { CommandProviderSim, defaultParallel, Phase, targetMatcher } from "./harness/provider";

/** A server entry with every concern the engine tests step through (sysctl, limits, networkmanager, endpoints, hooks). */
const SERVER = {
  name: "server",
  ssh: { host: "203.0.113.1", insecureIgnoreHostKey: true },
  sysctl: { enabled: true },
  limits: { subflows: 2, addAddrAccepted: 2 },
  endpoints: [{ interface: "eth1", flags: ["signal"] }],
  hooks: true,
};

function cmd(name: string, over: Partial<RecordedCommand> = {}): RecordedCommand {
  const c = {
    name,
    urn: `urn:pulumi:test::mptcp::mptcp:index:Host$command:remote:Command::${name}`,
    create: `create ${name}`,
    delete: `delete ${name}`,
    triggers: ["h1"],
    connection: { host: "h1" },
    dependsOn: [],
    deleteBeforeReplace: true,
    ...over,
  } as RecordedCommand;
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
    const host = (addr: string) => ({
      name: "server",
      ssh: { host: addr, insecureIgnoreHostKey: true },
      sysctl: { enabled: true },
      limits: { subflows: 2, addAddrAccepted: 2 },
      endpoints: [{ interface: "eth1", flags: ["signal"] }],
      hooks: true,
    });
    const { sim, ran } = recorder();
    await sim.up((await runProgram({ hosts: [host("203.0.113.1")] })).commands);
    ran.length = 0;
    await sim.up((await runProgram({ hosts: [host("203.0.113.2")] })).commands);
    for (const concern of ["endpoints", "hooks"]) {
      const at = (s: string) => ran.indexOf(s);
      const order = [
        `delete server-${concern}-confirm@203.0.113.1`,
        `delete server-${concern}@203.0.113.1`,
        `create server-${concern}@203.0.113.2`,
        `create server-${concern}-confirm@203.0.113.2`,
      ].map(at);
      expect(
        order.every((i) => i >= 0),
        ran.join("\n"),
      ).toBe(true);
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
    expect(state.map((r: any) => [r.inputs.create, r.outputs.stdout])).toEqual([
      ["create a", "armed 1"],
      ["create b", "armed 2"],
    ]);
    await sim.up(two);
    expect(sim.checkpoints).toEqual({ writes: 1, bytes: full, largest: full });
    await sim.up([cmd("a", { triggers: ["h2"] }), cmd("b", { dependsOn: ["a"] })]);
    expect(sim.checkpoints.writes).toBe(4); // delete + create of a (a replace step writes nothing)
    await sim.destroy();
    expect(sim.checkpoints.writes).toBe(4);
    expect(JSON.parse(sim.checkpointJson()).checkpoint.latest.resources).toEqual([]);
  });

  it("a real host: the state holds each resource's registered inputs twice, as inputs and again as outputs", async () => {
    const host = SERVER;
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
    expect(sim.preview(guarded("h1", "apply v2")).map((s) => `${s.phase} ${s.name} (${s.reason})`)).toEqual([
      "create s-endpoints (changed)",
      "delete s-endpoints-confirm (replace)",
      "create s-endpoints-confirm (replace)",
    ]);
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

// URN identity and aliases, as github.com/pulumi/pulumi v3.248.0 has them:
// - pkg/resource/deploy/step_generator.go getOldResource: the old state is looked up by the
//   registration's URN, then by each alias URN in order; a match by alias is the same resource
//   (diffed as usual, `aliased` records the old URN so GenerateDeletes/isOperatedOn keep it); no
//   match is a create, and the old URN, seen by no registration, is deleted by GenerateDeletes,
//   which deployment_executor.go performPostSteps runs once the program has registered everything;
//   two registrations on one old URN is an error
//   (diag GetDuplicateResourceAliasError);
// - step_generator.go generateAliases, collapseAliasToUrn, inheritedChildAlias: how specs become URNs
//   and children inherit their parent's alias; sdk/go/common/resource/alias.go CreateURN,
//   sdk/go/common/resource/urn/urn.go New;
// - pkg/backend/snapshot.go sameSnapshotMutation.mustWrite: a same step whose URN changed writes;
// - the Node SDK 3.248.0 (node_modules/@pulumi/pulumi/runtime/resource.js mapAliasesForRequest)
//   sends specs (the mock monitor, like the engine, supports "aliasSpecs"): `parent: undefined`
//   (pulumi.rootStackResource under mocks) as noParent; the root stack's URN (a real deployment)
//   is no parent too (collapseAliasToUrn parentIsRootStack).
describe("URN identity and aliases (step_generator.go v3.248.0 getOldResource, generateAliases)", () => {
  const OLD_HOST = LEGACY_HOST_TYPE;
  const NET = NETWORK_TYPE;
  const HOST = HOST_TYPE;
  const CMD = "command:remote:Command";
  const netUrn = urnOf("test", NET, "net", "");
  const hostUrn = urnOf("test", HOST, "s", netUrn);

  it("alias URNs from specs: defaults, noParent, the root stack as parent, a name change, another stack/project, a literal URN", () => {
    const none = () => [];
    const host = { name: "s", type: HOST, parent: netUrn };
    expect(hostUrn).toBe(`urn:pulumi:test::mptcp::${NET}$${HOST}::s`);
    // MptcpHost's alias: the old type at the stack's root
    expect(aliasUrns({ ...host, aliasSpecs: [{ type: OLD_HOST, noParent: true }] }, none, "test")).toEqual([`urn:pulumi:test::mptcp::${OLD_HOST}::s`]);
    expect(aliasUrns({ ...host, aliasSpecs: [{ type: OLD_HOST, parentUrn: "urn:pulumi:test::mptcp::pulumi:pulumi:Stack::mptcp-test" }] }, none, "test")).toEqual([
      `urn:pulumi:test::mptcp::${OLD_HOST}::s`,
    ]);
    // without noParent the resource's parent stays: the old type under the new parent
    expect(aliasUrns({ ...host, aliasSpecs: [{ type: OLD_HOST }] }, none, "test")).toEqual([`urn:pulumi:test::mptcp::${NET}$${OLD_HOST}::s`]);
    expect(aliasUrns({ ...host, aliasSpecs: [{ name: "old", parentUrn: netUrn }] }, none, "test")).toEqual([`urn:pulumi:test::mptcp::${NET}$${HOST}::old`]);
    expect(aliasUrns({ ...host, aliasSpecs: [{ stack: "prod", project: "p", noParent: true }] }, none, "test")).toEqual([`urn:pulumi:prod::p::${HOST}::s`]);
    expect(aliasUrns({ ...host, aliasSpecs: [{ urn: "urn:pulumi:x::y::t::z" }] }, none, "test")).toEqual(["urn:pulumi:x::y::t::z"]);
  });

  it("a child inherits each alias of its parent (the name's parent prefix renamed); with its own aliases, their products too", () => {
    const oldHost = `urn:pulumi:test::mptcp::${OLD_HOST}::server`;
    const parents = (p: string) => (p === hostUrn ? [oldHost] : []);
    // parent "s" aliased from "server": "s-endpoints" was "server-endpoints"
    expect(aliasUrns({ name: "s-endpoints", type: CMD, parent: hostUrn, aliasSpecs: [] }, parents, "test")).toEqual([`urn:pulumi:test::mptcp::${OLD_HOST}$${CMD}::server-endpoints`]);
    expect(aliasUrns({ name: "x-endpoints", type: CMD, parent: hostUrn, aliasSpecs: [] }, parents, "test")).toEqual([`urn:pulumi:test::mptcp::${OLD_HOST}$${CMD}::x-endpoints`]);
    expect(aliasUrns({ name: "s-new", type: CMD, parent: hostUrn, aliasSpecs: [{ name: "s-old", parentUrn: hostUrn }] }, parents, "test")).toEqual([
      // the spec's parent given: replaced by the parent's alias (collapseAliasToUrn), and as it is
      `urn:pulumi:test::mptcp::${OLD_HOST}$${CMD}::s-old`,
      `urn:pulumi:test::mptcp::${NET}$${HOST}$${CMD}::s-old`,
      `urn:pulumi:test::mptcp::${OLD_HOST}$${CMD}::server-new`,
      `urn:pulumi:test::mptcp::${OLD_HOST}$${CMD}::server-old`,
    ]);
    // negative control: a parent without aliases gives its child none
    expect(aliasUrns({ name: "s-endpoints", type: CMD, parent: hostUrn, aliasSpecs: [] }, () => [], "test")).toEqual([]);
  });

  /** The components' shape through the real SDK, reduced: a network component, hosts under it (aliased or not), commands under the hosts. */
  const planned = (aliased: boolean) => () => {
    const net = new pulumi.ComponentResource(NET, "net", {});
    const host = new pulumi.ComponentResource(HOST, "server", {}, { parent: net, ...(aliased ? { aliases: [{ type: OLD_HOST, parent: pulumi.rootStackResource }] } : {}) });
    const a = new remote.Command("server-endpoints", { connection: { host: "h1" }, create: "apply" }, { parent: host });
    new remote.Command("server-endpoints-confirm", { connection: { host: "h1" }, create: "confirm" }, { parent: host, dependsOn: [a] });
    return {};
  };

  it("through the SDK: the engine's URN (the whole type chain), the alias sent as a noParent spec, inherited by the commands", async () => {
    const { resources, commands } = await runProgram({ hosts: [] }, { program: planned(true) });
    const host = resources.find((r) => r.type === HOST)!;
    expect(host.urn).toBe(`urn:pulumi:test::mptcp::${NET}$${HOST}::server`);
    expect(host.aliasSpecs).toEqual([{ type: OLD_HOST, noParent: true }]);
    expect(host.aliases).toEqual([`urn:pulumi:test::mptcp::${OLD_HOST}::server`]);
    expect(commands.map((c) => [c.urn, c.aliases, c.dependsOn])).toEqual([
      [`urn:pulumi:test::mptcp::${NET}$${HOST}$${CMD}::server-endpoints`, [`urn:pulumi:test::mptcp::${OLD_HOST}$${CMD}::server-endpoints`], []],
      [`urn:pulumi:test::mptcp::${NET}$${HOST}$${CMD}::server-endpoints-confirm`, [`urn:pulumi:test::mptcp::${OLD_HOST}$${CMD}::server-endpoints-confirm`], ["server-endpoints"]],
    ]);
    // negative control: without the alias, no command has one
    const bare = await runProgram({ hosts: [] }, { program: planned(false) });
    expect(bare.commands.map((c) => c.aliases)).toEqual([[], []]);
  });

  /**
   * The real program's commands (hosts under its MptcpNetwork, each host aliased to the old
   * top-level type) and the same commands as the program registered them before MptcpNetwork
   * (URNs `mptcp:index:Host$command:remote:Command::NAME`, no aliases). Without `aliased`, the new
   * commands' aliases are dropped: what an upgrade without the alias would register.
   */
  async function upgraded(host: object, aliased: boolean): Promise<{ before: RecordedCommand[]; after: RecordedCommand[] }> {
    const { commands } = await runProgram({ hosts: [host] });
    const before = commands.map((c) => ({ ...c, urn: c.urn.replace(`::${NET}$${HOST}$`, `::${OLD_HOST}$`), aliases: [] }));
    const after = commands.map((c) => (aliased ? c : { ...c, aliases: [] }));
    if (aliased) expect(after.every((c, i) => c.aliases?.length === 1 && c.aliases[0] === before[i].urn)).toBe(true);
    return { before, after };
  }
  const server = SERVER;

  it("negative control: the real program's URNs changed without an alias: every command created anew, then every old one deleted (its delete reverts the host)", async () => {
    const { before, after } = await upgraded(server, false);
    expect(after.every((c, i) => c.urn !== before[i].urn && c.name === before[i].name)).toBe(true);
    const { sim, ran } = recorder();
    await sim.up(before);
    ran.length = 0;
    expect(sim.preview(after).map((s) => `${s.phase} ${s.reason}`)).toEqual([...after.map(() => "create new"), ...before.map(() => "delete removed")]);
    const steps = await sim.up(after);
    const applies = before.filter((c) => !c.copy && c.create !== undefined).length;
    expect(steps.filter((s) => s.phase === "create").length).toBe(after.length);
    expect(steps.filter((s) => s.phase === "delete" && s.reason === "removed").length).toBe(before.length);
    // the deletes run after every create: what the new commands applied, the old deletes revert
    const lastCreate = Math.max(...ran.map((r, i) => (r.startsWith("create") ? i : -1)));
    const firstDelete = ran.findIndex((r) => r.startsWith("delete"));
    expect(firstDelete).toBeGreaterThan(lastCreate);
    expect(ran.filter((r) => r.startsWith("delete")).length).toBe(before.filter((c) => !c.copy && c.delete !== undefined).length);
    console.log(`no alias: ${ran.length} runs on the host: ${firstDelete} creates (${applies} of them applying host state), then ${ran.length - firstDelete} deletes`);
    // the state: only the new URNs
    expect([...sim.state.values()].map((c) => c.urn).sort()).toEqual(after.map((c) => c.urn).sort());
    expect([...sim.state.keys()].sort()).toEqual(after.map((c) => c.name).sort());
  });

  it("the same change with the host's alias (inherited by its commands): no step at all; the stored state moves to the new URNs", async () => {
    const { before, after } = await upgraded(server, true);
    const { sim, ran } = recorder();
    await sim.up(before);
    const stdout = before.map((c) => sim.stdoutOf(c.name));
    ran.length = 0;
    expect(sim.preview(after)).toEqual([]);
    expect([...sim.state.values()].map((c) => c.urn)).toEqual(before.map((c) => c.urn)); // a preview moves nothing
    expect(await sim.up(after)).toEqual([]);
    expect(ran).toEqual([]);
    expect([...sim.state.values()].map((c) => c.urn)).toEqual(after.map((c) => c.urn));
    expect(after.map((c) => sim.stdoutOf(c.name))).toEqual(stdout);
    // one checkpoint write per same step whose URN changed (mustWrite)
    expect(sim.checkpoints.writes).toBe(after.length);
    expect(JSON.parse(sim.checkpointJson()).checkpoint.latest.resources.map((r: any) => r.urn)).toEqual(after.map((c) => c.urn));
    // next up: by their own URNs, nothing
    expect(await sim.up(after)).toEqual([]);
    expect(sim.checkpoints.writes).toBe(1);
    // an input changed along with the alias: the aliased command updates as it would under its old URN
    const changed = after.map((c) => (c.name === "server-limits" ? { ...c, inputs: { ...c.inputs, create: "limits v2" } } : c));
    const { sim: other, ran: otherRan } = recorder();
    await other.up(before);
    otherRan.length = 0;
    expect((await other.up(changed)).map((s) => `${s.phase} ${s.name} ${s.reason}`)).toEqual(["create server-limits changed"]);
  });

  it("a command moved to the stack's root: found with a noParent alias; without one, created and its old self deleted after", async () => {
    const old = cmd("s-endpoints");
    const moved = (aliases: string[]) => ({ ...old, urn: urnOf("test", CMD, "s-endpoints", ""), aliases });
    const noParent = aliasUrns({ name: "s-endpoints", type: CMD, parent: "", aliasSpecs: [{ type: CMD, noParent: true }] }, () => [], "test");
    expect(noParent).toEqual(["urn:pulumi:test::mptcp::command:remote:Command::s-endpoints"]);
    // the old command sat under the old host; the alias names its old parent's URN
    const back = aliasUrns({ name: "s-endpoints", type: CMD, parent: "", aliasSpecs: [{ parentUrn: urnOf("test", OLD_HOST, "s", "") }] }, () => [], "test");
    expect(back).toEqual([old.urn]);
    let { sim, ran } = recorder();
    await sim.up([old]);
    ran.length = 0;
    expect(await sim.up([moved(back)])).toEqual([]);
    expect(sim.state.get("s-endpoints")!.urn).toBe(moved([]).urn);
    // negative control: the noParent alias names the root, not where it was: create, then delete of the old
    ({ sim, ran } = recorder());
    await sim.up([old]);
    ran.length = 0;
    await sim.up([moved(noParent)]);
    expect(ran).toEqual(["create s-endpoints@h1", "delete s-endpoints@h1"]);
  });

  it("a renamed command: with a name alias the same resource under its new name; without, a create and the old one's delete", async () => {
    const old = guarded("h1");
    const renamed = (alias: boolean) =>
      old
        .map((c) => {
          const name = c.name.replace("s-", "s-mptcp-");
          return {
            ...c,
            name,
            urn: c.urn.replace(/::[^:]*$/, `::${name}`),
            dependsOn: c.dependsOn.map((d) => d.replace("s-", "s-mptcp-")),
            triggers: c.triggers!.map((t) => String(t).replace("s-", "s-mptcp-")),
            aliases: alias
              ? aliasUrns({ name, type: CMD, parent: urnOf("test", OLD_HOST, "s", ""), aliasSpecs: [{ name: c.name, parentUrn: urnOf("test", OLD_HOST, "s", "") }] }, () => [], "test")
              : [],
          };
        })
        .map((c) => ({ ...c, inputs: { ...c.inputs, triggers: c.triggers } }));
    let { sim, ran } = recorder();
    await sim.up(old);
    ran.length = 0;
    expect(await sim.up(renamed(true))).toEqual([]);
    expect([...sim.state.keys()]).toEqual(["s-mptcp-endpoints", "s-mptcp-endpoints-confirm"]);
    expect(sim.state.get("s-mptcp-endpoints")!.urn).toBe(renamed(true)[0].urn);
    expect(sim.stdoutOf("s-mptcp-endpoints")).toBe("armed 1");
    // negative control
    ({ sim, ran } = recorder());
    await sim.up(old);
    ran.length = 0;
    await sim.up(renamed(false));
    expect(ran).toEqual(["create s-mptcp-endpoints@h1", "create s-mptcp-endpoints-confirm@h1", "delete s-endpoints-confirm@h1", "delete s-endpoints@h1"]);
  });

  it("two registrations claiming one old URN: an error (GetDuplicateResourceAliasError), nothing runs", async () => {
    const { sim, ran } = recorder();
    const old = cmd("s-endpoints");
    await sim.up([old]);
    ran.length = 0;
    const claimant = (name: string) => ({ ...cmd(name), aliases: [old.urn] });
    await expect(sim.up([claimant("a"), claimant("b")])).rejects.toThrow(/Duplicate resource alias/);
    expect(ran).toEqual([]);
    // the old URN registered as itself and claimed by an alias: the same error
    await expect(sim.up([old, claimant("a")])).rejects.toThrow(/Duplicate resource alias/);
  });

  it("--target takes the new URN; an untargeted aliased command keeps its old URN (a same step of the old state)", async () => {
    const { before, after } = await upgraded(server, true);
    const { sim, ran } = recorder();
    await sim.up(before);
    ran.length = 0;
    const limits = after.find((c) => c.name === "server-limits")!;
    const changed = after.map((c) => (c === limits ? { ...c, inputs: { ...c.inputs, create: "limits v2" } } : c));
    await sim.up(changed, { target: [limits.urn] });
    expect(ran).toEqual(["create server-limits@203.0.113.1"]);
    expect(sim.state.get("server-limits")!.urn).toBe(limits.urn);
    expect(sim.state.get("server-sysctl")!.urn).toBe(before.find((c) => c.name === "server-sysctl")!.urn);
    // the old URN as target matches nothing registered: nothing runs, nothing is deleted
    ran.length = 0;
    await sim.up(after, { target: [before.find((c) => c.name === "server-sysctl")!.urn] });
    expect(ran).toEqual([]);
  });
});
