// The provider simulator's semantics, checked against @pulumi/command 1.2.1 (docs/upstream.md).
import { describe, expect, it } from "vitest";
import { RecordedCommand } from "./harness/program";
import { CommandProviderSim, Phase, topoOrder } from "./harness/provider";

function cmd(name: string, over: Partial<RecordedCommand> = {}): RecordedCommand {
  const c = { name, urn: name, create: `create ${name}`, delete: `delete ${name}`, triggers: ["h1"], connection: { host: "h1" }, dependsOn: [], deleteBeforeReplace: true, ...over } as RecordedCommand;
  c.inputs = { create: c.create, delete: c.delete, update: c.update, triggers: c.triggers, connection: c.connection };
  return c;
}

function recorder() {
  const ran: string[] = [];
  const sim = new CommandProviderSim(async (c, text, phase: Phase) => {
    ran.push(`${phase}@${c.connection.host}:${text}`);
    return { stdout: "", stderr: "", code: text.includes("fail") ? 1 : 0 };
  });
  return { sim, ran };
}

describe("provider simulator (remote.Command 1.2.1 lifecycle)", () => {
  it("first up runs create in dependency order; an unchanged up runs nothing; preview runs nothing", async () => {
    const { sim, ran } = recorder();
    const a = cmd("a"),
      b = cmd("b", { dependsOn: ["a"] });
    expect(sim.preview([b, a]).map((s) => `${s.phase} ${s.name}`)).toEqual(["create a", "create b"]);
    expect(ran).toEqual([]);
    await sim.up([b, a]);
    expect(ran).toEqual(["create@h1:create a", "create@h1:create b"]);
    ran.length = 0;
    expect(await sim.up([a, b])).toEqual([]);
    expect(ran).toEqual([]);
  });

  it("a changed input re-runs create in place (no delete); with update set, update runs", async () => {
    const { sim, ran } = recorder();
    await sim.up([cmd("a")]);
    ran.length = 0;
    await sim.up([cmd("a", { delete: "delete a v2" })]);
    expect(ran).toEqual(["create@h1:create a"]);
    ran.length = 0;
    await sim.up([cmd("a", { delete: "delete a v2", update: "update a" })]);
    expect(ran).toEqual(["update@h1:update a"]);
  });

  it("a changed connection updates in place: the old host gets no delete", async () => {
    const { sim, ran } = recorder();
    await sim.up([cmd("a")]);
    ran.length = 0;
    await sim.up([cmd("a", { connection: { host: "h2" } })]);
    expect(ran).toEqual(["create@h2:create a"]);
  });

  it("changed triggers replace: deleteBeforeReplace runs the old delete first, otherwise last", async () => {
    const { sim, ran } = recorder();
    await sim.up([cmd("a")]);
    ran.length = 0;
    await sim.up([cmd("a", { triggers: ["h2"], connection: { host: "h2" } })]);
    expect(ran).toEqual(["delete@h1:delete a", "create@h2:create a"]);
    const other = recorder();
    await other.sim.up([cmd("a", { deleteBeforeReplace: false }), cmd("b")]);
    other.ran.length = 0;
    await other.sim.up([cmd("a", { deleteBeforeReplace: false, triggers: ["x"], create: "create a2", delete: "delete a2" }), cmd("b", { create: "create b2" })]);
    expect(other.ran).toEqual(["create@h1:create a2", "create@h1:create b2", "delete@h1:delete a"]);
    expect(other.sim.state.get("a")!.delete).toBe("delete a2");
  });

  it("a command gone from the program is deleted; destroy deletes dependents first with stored inputs", async () => {
    const { sim, ran } = recorder();
    await sim.up([cmd("a"), cmd("b", { dependsOn: ["a"] }), cmd("c", { dependsOn: ["b"] })]);
    ran.length = 0;
    await sim.up([cmd("a"), cmd("b", { dependsOn: ["a"] })]);
    expect(ran).toEqual(["delete@h1:delete c"]);
    ran.length = 0;
    await sim.destroy();
    expect(ran).toEqual(["delete@h1:delete b", "delete@h1:delete a"]);
    expect(sim.state.size).toBe(0);
  });

  it("a failing command stops the up and is not stored", async () => {
    const { sim } = recorder();
    await expect(sim.up([cmd("a", { create: "fail" }), cmd("b", { dependsOn: ["a"] })])).rejects.toThrow(/create of a failed/);
    expect(sim.state.size).toBe(0);
  });

  it("runs commands in parallel as far as dependencies allow, as the engine does", async () => {
    const log: string[] = [];
    const sim = new CommandProviderSim(async (c) => {
      log.push(`start ${c.name}`);
      await new Promise((r) => setTimeout(r, c.name === "a" ? 40 : 10));
      log.push(`end ${c.name}`);
      return { stdout: "", stderr: "", code: 0 };
    });
    await sim.up([cmd("a"), cmd("b"), cmd("c", { dependsOn: ["a"] })]);
    // b (independent) starts before a ends; c (after a) only once a has ended
    expect(log.indexOf("start b")).toBeLessThan(log.indexOf("end a"));
    expect(log.indexOf("start c")).toBeGreaterThan(log.indexOf("end a"));
    log.length = 0;
    await sim.destroy();
    // c is deleted before a (dependents first); b is independent of both
    expect(log.indexOf("end c")).toBeLessThan(log.indexOf("start a"));
    expect(log.indexOf("start b")).toBeLessThan(log.indexOf("end c"));
  });

  it("after a failure, operations in flight finish and are stored, and no new one starts", async () => {
    const ran: string[] = [];
    const sim = new CommandProviderSim(async (c) => {
      ran.push(c.name);
      await new Promise((r) => setTimeout(r, c.name === "slow" ? 40 : 5));
      return { stdout: "", stderr: "", code: c.name === "bad" ? 1 : 0 };
    });
    await expect(sim.up([cmd("bad"), cmd("slow"), cmd("after-slow", { dependsOn: ["slow"] })])).rejects.toThrow(/create of bad failed/);
    expect(ran.sort()).toEqual(["bad", "slow"]);
    expect([...sim.state.keys()]).toEqual(["slow"]);
  });

  it("detects dependency cycles", () => {
    expect(() => topoOrder([cmd("a", { dependsOn: ["b"] }), cmd("b", { dependsOn: ["a"] })])).toThrow(/cycle/);
  });

  it("a trigger holding a dependency's stdout is resolved when the dependency has run: the dependent re-runs only when that output changed", async () => {
    let n = 0;
    const ran: string[] = [];
    const sim = new CommandProviderSim(async (c, text, phase: Phase) => {
      ran.push(`${phase} ${c.name}`);
      return { stdout: c.name === "apply" ? `armed ${text.includes("v1") ? ++n : "nothing"}` : "", stderr: "", code: 0 };
    });
    const apply = (v: string) => cmd("apply", { create: `apply ${v}` });
    const confirm = cmd("confirm", { dependsOn: ["apply"], triggers: ["h1", "apply: applied"] });
    await sim.up([apply("v1"), confirm]);
    expect(ran).toEqual(["create apply", "create confirm"]);
    ran.length = 0;
    expect(await sim.up([apply("v1"), confirm])).toEqual([]); // nothing changed, nothing runs
    await sim.up([apply("v1 again"), confirm]); // the apply re-runs and prints something new
    expect(ran).toEqual(["create apply", "delete confirm", "create confirm"]);
    ran.length = 0;
    await sim.up([apply("v2"), confirm]); // re-runs, prints "armed nothing" (new again)
    ran.length = 0;
    await sim.up([apply("v3"), confirm]); // re-runs, prints the same: the confirm stays
    expect(ran).toEqual(["create apply"]);
  });
});
