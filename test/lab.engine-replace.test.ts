// What the Pulumi engine (v3.248.0, as test/harness/provider.ts follows it) really does to a
// guarded concern (the server's endpoints: an apply that arms a rollback, and its confirmation),
// on lab laptops:
// - a replace (an ssh.user change; `pulumi up --replace` of the apply) runs the old confirmation's
//   delete, the old revert, the new apply, the new confirmation: the new apply is guarded until the
//   new confirmation, nothing stays armed and nothing is undone. Negative control: the order the
//   simulator used to run (old revert, new apply, old confirmation's delete, new confirmation)
//   disarms the new apply's rollback before anything confirmed it;
// - a failure on another host between a guarded apply and its confirmation (the engine starts
//   nothing new): the rollback undoes the good apply; the next plain `pulumi up` creates the
//   confirmation only, which applies it again (the client had acknowledged it) and confirms it:
//   in step. Negative control: without the kept apply (rolled-back.sh), the next up fails "was
//   rolled back" as before;
// - `pulumi up --target` of the apply alone: only the apply runs (its confirmation keeps its
//   stored state); the rollback undoes it, and the next plain up converges the same way;
//   `--target-dependents` runs the confirmation too and nothing is undone.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { STATE_DIR } from "../components";
import { LAB_USER, LabHost, labExec, labSh, labStackConfig } from "../scripts/lab/lab";
import { DEFAULT_TOPOLOGY } from "../scripts/lab/topology";
import { sleep, waitFor } from "../scripts/lab/wait";
import { checkMain } from "../scripts/check";
import { inProcess } from "./harness/cli";
import { labFile } from "./harness/fixture";
import { runProgram } from "./harness/program";
import { CommandProviderSim, Runner, Step, UpOptions } from "./harness/provider";
import { snapshot } from "./harness/labtest";

const TIMEOUT = 4;
const URN = (name: string) => `urn:pulumi:lab::mptcp::mptcp-pulumi:index:MptcpNetwork$mptcp-pulumi:index:MptcpHost$command:remote:Command::${name}`;
const dir = mkdtempSync(join(tmpdir(), "mptcp-engine-"));
const f = labFile(DEFAULT_TOPOLOGY, "e");
let server: LabHost;
let pre: string;
/** The runner the simulator uses now (a test may wrap the lab's SSH runner). */
let runner: Runner;
let sim: CommandProviderSim;

/** The login user of every host (the first test changes it). */
let user = "root";

/** The lab's stack, with confirmTimeout TIMEOUT; `backup` adds the backup flag to the server's endpoints; `subflows` sets the client's limit. */
function stack(opts: { backup?: boolean; subflows?: number } = {}) {
  const cfg = labStackConfig(f.lab) as { hosts: any[]; links: unknown };
  for (const h of cfg.hosts) {
    h.confirmTimeout = TIMEOUT;
    h.ssh.user = user;
  }
  const s = cfg.hosts.find((h) => h.name === "server");
  if (opts.backup) for (const e of s.endpoints) e.flags = ["signal", "backup"];
  if (opts.subflows) cfg.hosts.find((h) => h.name === "client").limits.subflows = opts.subflows;
  return cfg;
}

const up = async (cfg: ReturnType<typeof stack>, opts: UpOptions = {}) => sim.up((await runProgram(cfg, { privateKey: f.privateKey, stack: "lab" })).commands, opts);
const failure = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: Error) => e,
  );
const endpointsNow = () => labSh(server, "ip mptcp endpoint show | sed -E 's/ id [0-9]+//'").trim();
const armed = () => labExec(server, `test -e ${STATE_DIR}/endpoints/rollback/armed`).code === 0;
const rolledBack = () => labExec(server, `test -e ${STATE_DIR}/endpoints/rolled-back && ! test -e ${STATE_DIR}/endpoints/rollback/firing`).code === 0;
const order = (steps: Step[]) => steps.map((s) => `${s.phase} ${s.name}`).filter((s) => /server-endpoints/.test(s));
const REAL = ["delete server-endpoints-confirm", "delete server-endpoints", "create server-endpoints", "create server-endpoints-confirm"];

/** npm run check on the stack, as a user runs it: exit 0 when every host is in step. */
async function check(cfg: ReturnType<typeof stack>) {
  const file = join(dir, "Pulumi.lab.yaml");
  writeFileSync(file, stringify({ config: { "mptcp:hosts": cfg.hosts, "mptcp:links": cfg.links } }));
  return inProcess("check", checkMain, [file, "--identity", f.lab.privateKeyFile]);
}

/** A runner that notes, before the new confirmation of the endpoints runs, whether the new apply's rollback is still armed. */
function watchingArmed(seen: boolean[]): Runner {
  return async (c, text, phase) => {
    if (c.name === "server-endpoints-confirm" && phase === "create") seen.push(armed());
    return f.ssh.run(c, text, phase);
  };
}

beforeAll(async () => {
  runner = f.ssh.run;
  sim = new CommandProviderSim((c, t, p) => runner(c, t, p));
  server = f.host("server");
  pre = snapshot(server);
});

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
});

describe("replacing a guarded concern, in the engine's order", () => {
  it("an ssh.user change: old confirmation's delete, old revert, new apply (armed until) the new confirmation; nothing armed, nothing undone after confirmTimeout", async () => {
    await up(stack());
    const applied = endpointsNow();
    expect(applied).toContain("signal");
    const seen: boolean[] = [];
    runner = watchingArmed(seen);
    user = LAB_USER;
    const steps = await up(stack({ backup: true }));
    runner = f.ssh.run;
    expect(order(steps)).toEqual(REAL);
    expect(seen).toEqual([true]); // the new apply was guarded until its confirmation
    expect(armed()).toBe(false);
    await sleep((TIMEOUT + 2) * 1000);
    expect(rolledBack()).toBe(false);
    expect(endpointsNow()).toContain("signal backup");
    expect((await check(stack({ backup: true }))).code).toBe(0);
  });

  it("pulumi up --replace of the apply: the same order; nothing armed, nothing undone", async () => {
    const seen: boolean[] = [];
    runner = watchingArmed(seen);
    const steps = await up(stack({ backup: true }), { replace: [URN("server-endpoints")] });
    runner = f.ssh.run;
    expect(order(steps)).toEqual(REAL);
    expect(seen).toEqual([true]);
    await sleep((TIMEOUT + 2) * 1000);
    expect(rolledBack()).toBe(false);
    expect(endpointsNow()).toContain("signal backup");
  });

  it("negative control: the simulator's old order (old revert, new apply, old confirmation's delete, new confirmation) disarms the new apply before anything confirmed it", async () => {
    const stored = new Map([...sim.state].filter(([n]) => n.startsWith("server-endpoints")));
    const fresh = (await runProgram(stack({ backup: true }), { privateKey: f.privateKey, stack: "lab" })).commands.filter((c) => c.name.startsWith("server-endpoints"));
    const run = async (c: any, phase: "create" | "delete") => {
      const r = await f.ssh.run(c, phase === "delete" ? c.delete : c.create, phase);
      expect(r.code, r.stderr).toBe(0);
      return r;
    };
    await run(stored.get("server-endpoints"), "delete");
    await run(fresh[0], "create");
    expect(armed()).toBe(true);
    const disarm = await run(stored.get("server-endpoints-confirm"), "delete");
    expect(armed()).toBe(false); // unguarded now: a cut path here would not be undone
    expect(disarm.stdout).toContain("endpoints: no rollback pending");
    const confirm = await run(fresh[1], "create");
    expect(confirm.stdout).toContain("endpoints: confirmed (no rollback was armed)");
    // put the stack back as the simulator knows it
    await up(stack({ backup: true }), { replace: [URN("server-endpoints")] });
  });
});

describe("a failure elsewhere between a guarded apply and its confirmation", () => {
  /** An up where the client's limits fail right after the server's endpoints apply completed: the engine starts nothing new, so the confirmation never runs. */
  async function failingElsewhere(cfg: ReturnType<typeof stack>) {
    let applied!: () => void;
    const done = new Promise<void>((r) => (applied = r));
    let failed!: () => void;
    const gone = new Promise<void>((r) => (failed = r));
    runner = async (c, text, phase) => {
      if (c.name === "client-limits" && phase === "create") {
        await done;
        failed();
        return { code: 1, stdout: "", stderr: "mptcp-pulumi[client]: error: an injected failure of another host's command" };
      }
      const r = await f.ssh.run(c, text, phase);
      if (c.name === "server-endpoints" && phase === "create") {
        applied();
        await gone;
        await sleep(100);
      }
      return r;
    };
    try {
      return await failure(up(cfg));
    } finally {
      runner = f.ssh.run;
    }
  }

  it("the rollback undoes the good apply; the next plain up runs the confirmation only, which applies it again and confirms it: in step", async () => {
    const before = endpointsNow();
    const t0 = performance.now();
    const err = await failingElsewhere(stack({ subflows: 3 }));
    expect(err?.message).toMatch(/create of client-limits failed/);
    expect(armed()).toBe(true); // the apply ran and armed; its confirmation never started
    expect(endpointsNow()).not.toBe(before);
    await waitFor("the rollback", (TIMEOUT + 15) * 1000, rolledBack, 100);
    console.log(`rolled back ${((performance.now() - t0) / 1000).toFixed(1)} s after the up started`);
    expect(endpointsNow()).toBe(before);
    expect(labExec(server, `test -e ${STATE_DIR}/endpoints/rolled-back.sh`).code).toBe(0);
    const steps = await up(stack({ subflows: 3 }));
    const confirm = steps.find((s) => s.name === "server-endpoints-confirm" && s.phase === "create")!;
    console.log(`next up: ${steps.map((s) => `${s.phase} ${s.name}`).join(", ")}\n${confirm.result!.stdout}`);
    // the apply is stored: only the confirmation (its triggers hold the apply's new stdout) and the failed command run
    expect(steps.map((s) => `${s.phase} ${s.name}`).sort()).toEqual(["create client-limits", "create server-endpoints-confirm", "delete server-endpoints-confirm"]);
    expect(confirm.result!.stdout).toMatch(/endpoints: the apply rolled back at .* had been acknowledged by the client, but its confirmation never came/);
    expect(confirm.result!.stdout).toContain("endpoints: confirmed over a new SSH connection: rollback disarmed");
    expect(endpointsNow()).not.toBe(before);
    await sleep((TIMEOUT + 2) * 1000);
    expect(rolledBack()).toBe(false);
    const c = await check(stack({ subflows: 3 }));
    expect(c.code, c.out).toBe(0);
  });

  it("negative control: without the kept apply (the old behaviour), the next up fails 'was rolled back' and stays out of step", async () => {
    const before = endpointsNow();
    const err = await failingElsewhere(stack({ subflows: 2, backup: true }));
    expect(err?.message).toMatch(/create of client-limits failed/);
    await waitFor("the rollback", (TIMEOUT + 15) * 1000, rolledBack, 100);
    expect(endpointsNow()).toBe(before);
    labSh(server, `rm ${STATE_DIR}/endpoints/rolled-back.sh`);
    const again = await failure(up(stack({ subflows: 2, backup: true })));
    expect(again?.message).toMatch(/the last apply of endpoints was rolled back at .*: server could not be reached .*pulumi up --replace the endpoints command/);
    expect((await check(stack({ subflows: 2, backup: true }))).code).toBe(1);
    // the way out before this change
    await up(stack({ subflows: 2, backup: true }), { replace: [URN("server-endpoints")] });
    expect((await check(stack({ subflows: 2, backup: true }))).code).toBe(0);
  });
});

describe("pulumi up --target", () => {
  it("the apply alone: its confirmation does not run, the rollback undoes it; the next plain up converges", async () => {
    const before = endpointsNow();
    const steps = await up(stack({ subflows: 2 }), { target: [URN("server-endpoints")] });
    expect(steps.map((s) => `${s.phase} ${s.name}`)).toEqual(["create server-endpoints"]);
    await waitFor("the rollback", (TIMEOUT + 15) * 1000, rolledBack, 100);
    expect(endpointsNow()).toBe(before);
    expect(endpointsNow()).toContain("signal backup");
    const next = await up(stack({ subflows: 2 }));
    // (the untargeted copy of the server's scripts catches up: its set of files changed)
    expect(next.map((s) => `${s.phase} ${s.name}`)).toEqual(["update server-scripts", "delete server-endpoints-confirm", "create server-endpoints-confirm"]);
    expect(next[2].result!.stdout).toMatch(/endpoints: the apply rolled back at .* had been acknowledged by the client/);
    expect(endpointsNow()).not.toContain("backup");
    await sleep((TIMEOUT + 2) * 1000);
    expect(rolledBack()).toBe(false);
    expect((await check(stack({ subflows: 2 }))).code).toBe(0);
  });

  it("with --target-dependents (or a glob on the apply's URN) the confirmation runs too: nothing undone", async () => {
    const steps = await up(stack({ subflows: 2, backup: true }), { target: [URN("server-endpoints")], targetDependents: true });
    expect(order(steps)).toEqual(["create server-endpoints", "delete server-endpoints-confirm", "create server-endpoints-confirm"]);
    const globbed = await up(stack({ subflows: 2 }), { target: [`${URN("server-endpoints")}*`] });
    expect(order(globbed)).toEqual(["create server-endpoints", "delete server-endpoints-confirm", "create server-endpoints-confirm"]);
    await sleep((TIMEOUT + 2) * 1000);
    expect(rolledBack()).toBe(false);
    expect(endpointsNow()).not.toContain("backup");
    expect((await check(stack({ subflows: 2 }))).code).toBe(0);
  });

  it("destroy restores the server as it was", async () => {
    await sim.destroy();
    expect(snapshot(server)).toBe(pre);
  });
});
