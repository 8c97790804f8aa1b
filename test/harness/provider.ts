// TEST CODE. Executes recorded remote.Commands with the lifecycle of @pulumi/command 1.2.1
// (../shared/reference/pulumi-command.md; provider source remote/commandController.go):
// - preview: nothing runs;
// - first up: `create`;
// - up with no input changed: nothing;
// - an input other than `triggers` changed (create, delete, update, connection, ...): `update`
//   if set, else `create`, in place; the old `delete` is NOT run, not even on the old host;
// - `triggers` changed: replace. deleteBeforeReplace: old `delete` (stored inputs), then new
//   `create`; otherwise new `create` now and the old `delete` at the end of the update;
// - a command gone from the program, or destroy: its stored `delete`, in reverse dependency order.
// Commands run one at a time in dependency order, so runs are deterministic.
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

export class CommandProviderSim {
  /** What the provider stored after the last successful step of each command. */
  readonly state = new Map<string, RecordedCommand>();

  constructor(private readonly runner: Runner) {}

  /** What `pulumi preview` shows: the steps an up would run. Runs nothing. */
  preview(commands: RecordedCommand[]): Step[] {
    return this.plan(commands).map(({ step }) => step);
  }

  private plan(commands: RecordedCommand[]): { step: Step; command: RecordedCommand; deferred?: boolean }[] {
    const plan: { step: Step; command: RecordedCommand; deferred?: boolean }[] = [];
    const deferred: { step: Step; command: RecordedCommand; deferred?: boolean }[] = [];
    for (const c of topoOrder(commands)) {
      const old = this.state.get(c.name);
      if (!old) {
        plan.push({ step: { name: c.name, phase: "create", reason: "new" }, command: c });
      } else if (!same(old.triggers, c.triggers)) {
        const del = { step: { name: c.name, phase: "delete" as Phase, reason: "replace" as const }, command: old };
        const create = { step: { name: c.name, phase: "create" as Phase, reason: "replace" as const }, command: c };
        if (c.deleteBeforeReplace) plan.push(del, create);
        else {
          plan.push(create);
          deferred.unshift({ ...del, deferred: true });
        }
      } else if (!same(inputsWithoutTriggers(old), inputsWithoutTriggers(c))) {
        plan.push({ step: { name: c.name, phase: c.update !== undefined ? "update" : "create", reason: "changed" }, command: c });
      }
    }
    const names = new Set(commands.map((c) => c.name));
    const removed = topoOrder([...this.state.values()].filter((c) => !names.has(c.name))).reverse();
    for (const c of removed) plan.push({ step: { name: c.name, phase: "delete", reason: "removed" }, command: c });
    return [...plan, ...deferred];
  }

  /** `pulumi up`: runs the plan; stops at the first failing command (as its dependents would). */
  async up(commands: RecordedCommand[]): Promise<Step[]> {
    const steps: Step[] = [];
    const current = new Map(commands.map((c) => [c.name, c]));
    for (const { step, command } of this.plan(commands)) {
      await this.exec(step, command);
      steps.push(step);
      if (step.phase === "delete") {
        // A replaced command's new state is stored by its create; a removed one is forgotten.
        if (step.reason === "removed" || (step.reason === "replace" && this.state.get(step.name) === command)) this.state.delete(step.name);
      } else {
        this.state.set(step.name, current.get(step.name)!);
      }
    }
    return steps;
  }

  /** `pulumi destroy`: every stored delete, dependents first. */
  async destroy(): Promise<Step[]> {
    const steps: Step[] = [];
    for (const c of topoOrder([...this.state.values()]).reverse()) {
      const step: Step = { name: c.name, phase: "delete", reason: "destroy" };
      await this.exec(step, c);
      steps.push(step);
      this.state.delete(c.name);
    }
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
