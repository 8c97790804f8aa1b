// TEST CODE. Executes recorded remote.Commands with the lifecycle of @pulumi/command 1.2.1
// (docs/upstream.md; provider source remote/commandController.go at v1.2.1):
// - preview: nothing runs;
// - first up: `create`;
// - up with no input changed: nothing;
// - an input other than `triggers` changed (create, delete, update, connection, ...): `update`
//   if set, else `create`, in place; the old `delete` is NOT run, not even on the old host;
// - `triggers` changed: replace. deleteBeforeReplace: old `delete` (stored inputs), then new
//   `create`; otherwise new `create` now and the old `delete` at the end of the update;
// - a command gone from the program, or destroy: its stored `delete`, in reverse dependency order.
// As the engine does, commands run in parallel as far as dependencies allow, and after a failure
// no new one starts (CommandProviderSim.up).
import { RecordedCommand } from "./program";

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

export type Phase = "create" | "update" | "delete";
/** Runs one command text over the command's connection. */
export type Runner = (command: RecordedCommand, text: string, phase: Phase) => Promise<RunResult>;

export interface Step {
  name: string;
  phase: Phase;
  /** Why it ran: a new command, changed inputs, a replace, a removal, or destroy. */
  reason: "new" | "changed" | "replace" | "removed" | "destroy";
  result?: RunResult;
}

export class CommandFailed extends Error {
  constructor(readonly step: Step) {
    super(`${step.phase} of ${step.name} failed (exit ${step.result!.code}):\n${step.result!.stderr || step.result!.stdout}`);
  }
}

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

function inputsWithoutTriggers(c: RecordedCommand): Record<string, unknown> {
  const { triggers: _t, ...rest } = c.inputs;
  return rest;
}

/** Dependency order (dependencies first); the program's registration order breaks ties. */
export function topoOrder(commands: RecordedCommand[]): RecordedCommand[] {
  const byName = new Map(commands.map((c) => [c.name, c]));
  const done = new Set<string>();
  const out: RecordedCommand[] = [];
  const visit = (c: RecordedCommand, path: string[]) => {
    if (done.has(c.name)) return;
    if (path.includes(c.name)) throw new Error(`dependency cycle: ${[...path, c.name].join(" -> ")}`);
    for (const d of c.dependsOn) {
      const dep = byName.get(d);
      if (dep) visit(dep, [...path, c.name]);
    }
    done.add(c.name);
    out.push(c);
  };
  commands.forEach((c) => visit(c, []));
  return out;
}

interface Planned {
  step: Step;
  command: RecordedCommand;
  /** A replace's delete that runs at the end (no deleteBeforeReplace). */
  deferred?: boolean;
}

export class CommandProviderSim {
  /** What the provider stored after the last successful step of each command. */
  readonly state = new Map<string, RecordedCommand>();
  /** The stdout each command printed when it last ran (an output other commands' inputs may hold). */
  private readonly stdout = new Map<string, string>();

  constructor(private readonly runner: Runner) {}

  /** What `pulumi preview` shows: the steps an up would run. Runs nothing. */
  preview(commands: RecordedCommand[]): Step[] {
    return this.plan(commands).map(({ step }) => step);
  }

  /** The steps one command needs against what is stored. */
  private stepsFor(c: RecordedCommand): Planned[] {
    const old = this.state.get(c.name);
    if (!old) return [{ step: { name: c.name, phase: "create", reason: "new" }, command: c }];
    if (!same(old.triggers, c.triggers)) {
      const del = { step: { name: c.name, phase: "delete" as Phase, reason: "replace" as const }, command: old };
      const create = { step: { name: c.name, phase: "create" as Phase, reason: "replace" as const }, command: c };
      return c.deleteBeforeReplace ? [del, create] : [create, { ...del, deferred: true }];
    }
    if (!same(inputsWithoutTriggers(old), inputsWithoutTriggers(c))) return [{ step: { name: c.name, phase: c.update !== undefined ? "update" : "create", reason: "changed" }, command: c }];
    return [];
  }

  /** Commands the stack no longer has, dependents first. */
  private removed(commands: RecordedCommand[]): Planned[] {
    const names = new Set(commands.map((c) => c.name));
    return topoOrder([...this.state.values()].filter((c) => !names.has(c.name)))
      .reverse()
      .map((c) => ({ step: { name: c.name, phase: "delete", reason: "removed" }, command: c }));
  }

  private plan(commands: RecordedCommand[]): Planned[] {
    const planned = topoOrder(commands).flatMap((c) => this.stepsFor(c));
    return [...planned.filter((p) => !p.deferred), ...this.removed(commands), ...planned.filter((p) => p.deferred).reverse()];
  }

  /**
   * An input the engine knows only once a dependency has run: under mocks a command's stdout is
   * "NAME: applied"; in a trigger it stands for the stdout the dependency really printed.
   */
  private resolve(c: RecordedCommand): RecordedCommand {
    if (!c.triggers?.length) return c;
    const triggers = c.triggers.map((t) => {
      const dep = c.dependsOn.find((d) => t === `${d}: applied`);
      return dep !== undefined && this.stdout.has(dep) ? this.stdout.get(dep) : t;
    });
    return { ...c, triggers, inputs: { ...c.inputs, triggers } };
  }

  /**
   * `pulumi up`, as the engine runs it: each command starts as soon as the commands it depends on
   * have finished (Pulumi's default parallelism is unbounded), its steps decided when it starts
   * (as the engine resolves inputs then); commands the program no longer has are deleted after,
   * dependents first, again in parallel where nothing orders them. After a failure, operations in
   * flight finish and no new one starts (the engine's default without --continue-on-error); the
   * first failure is thrown. Steps are listed in the order they finished.
   */
  async up(commands: RecordedCommand[]): Promise<Step[]> {
    const steps: Step[] = [];
    const deferred: Planned[] = [];
    const failed: { error?: Error } = {};
    const run = async ({ step, command }: Planned) => {
      if (failed.error) return;
      await this.exec(step, command);
      steps.push(step);
      if (step.phase === "delete") {
        // A replaced command's new state is stored by its create; a removed one is forgotten.
        if (step.reason === "removed" || (step.reason === "replace" && this.state.get(step.name) === command)) this.state.delete(step.name);
      } else {
        this.state.set(step.name, command);
        this.stdout.set(step.name, step.result!.stdout);
      }
    };
    const ordered = topoOrder(commands);
    const names = new Set(ordered.map((c) => c.name));
    await inParallel(ordered, (c) => c.dependsOn.filter((d) => names.has(d)), failed, async (c) => {
      for (const p of this.stepsFor(this.resolve(c))) {
        if (p.deferred) deferred.unshift(p);
        else await run(p);
      }
    });
    const gone = this.removed(commands);
    await inParallel(gone, dependentsIn(gone.map((p) => p.command), (p) => p.command.name), failed, run);
    for (const p of deferred) await run(p);
    if (failed.error) throw failed.error;
    return steps;
  }

  /** `pulumi destroy`: every stored delete, dependents first, in parallel where nothing orders them. */
  async destroy(): Promise<Step[]> {
    const steps: Step[] = [];
    const failed: { error?: Error } = {};
    const stored = [...this.state.values()];
    await inParallel(stored, dependentsIn(stored, (c) => c.name), failed, async (c) => {
      const step: Step = { name: c.name, phase: "delete", reason: "destroy" };
      await this.exec(step, c);
      steps.push(step);
      this.state.delete(c.name);
    });
    if (failed.error) throw failed.error;
    return steps;
  }

  private async exec(step: Step, command: RecordedCommand): Promise<void> {
    const text = step.phase === "delete" ? command.delete : step.phase === "update" ? command.update : command.create;
    if (text === undefined) {
      step.result = { stdout: "", stderr: "", code: 0 };
      return;
    }
    step.result = await this.runner(command, text, step.phase);
    if (step.result.code !== 0) throw new CommandFailed(step);
  }
}

/**
 * Runs `run` on every item, each once the items `after` names have finished; after the first
 * failure (kept in `failed`), nothing new starts and the ones in flight finish.
 */
async function inParallel<T extends { name?: string; step?: Step }>(items: T[], after: (item: T) => string[], failed: { error?: Error }, run: (item: T) => Promise<void>): Promise<void> {
  const key = (item: T) => item.name ?? item.step!.name;
  const byKey = new Map(items.map((i) => [key(i), i]));
  const done = new Map<string, Promise<void>>();
  const start = (item: T): Promise<void> => {
    const k = key(item);
    if (!done.has(k)) {
      done.set(k, (async () => {
        await Promise.all(after(item).flatMap((d) => (byKey.has(d) ? [start(byKey.get(d)!)] : [])));
        if (failed.error) return;
        try {
          await run(item);
        } catch (e) {
          failed.error ??= e as Error;
        }
      })());
    }
    return done.get(k)!;
  };
  await Promise.all(items.map(start));
}

/** For deletes: each command waits for the commands among `commands` that depend on it. */
function dependentsIn<T>(commands: RecordedCommand[], nameOf: (item: T) => string): (item: T) => string[] {
  return (item: T) => commands.filter((c) => c.dependsOn.includes(nameOf(item))).map((c) => c.name);
}
