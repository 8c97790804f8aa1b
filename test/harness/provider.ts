// TEST CODE. Executes recorded remote.Commands with the lifecycle of @pulumi/command 1.2.1
// (docs/upstream.md; provider source remote/commandController.go at v1.2.1) and the step
// generation and execution of the Pulumi engine v3.248.0 (pkg/resource/deploy/step_generator.go,
// step_executor.go, deployment.go; pkg/backend/snapshot.go, pkg/backend/diy):
// - preview: nothing runs;
// - first up: `create`;
// - up with no input changed: nothing (a same step);
// - an input other than `triggers` changed (create, delete, update, connection, ...): `update`
//   if set, else `create`, in place; the old `delete` is NOT run, not even on the old host;
// - `triggers` changed (or `--replace`): replace. deleteBeforeReplace: the stored dependents
//   whose triggers hold an output of the replaced command are deleted first, dependents first
//   (step_generator.go continueStepsFromDiff -> calculateDependentReplacements), then the old
//   `delete`, then the new `create`; each such dependent is created again when the program
//   registers it (generateSteps, `recreating`). Without deleteBeforeReplace: new `create` now and
//   the old `delete` at the end of the update;
// - a command gone from the program, or destroy: its stored `delete`, in reverse dependency order;
// - identity is the URN (step_generator.go getOldResource): a registration is the stored resource
//   with its URN, else the one stored under the first of its alias URNs (`aliases`) that is; an
//   aliased one is compared by inputs as usual and its state moves to the new URN (a same step
//   with a changed URN writes a checkpoint: snapshot.go mustWrite); a stored resource no
//   registration claims, even one with the name of a registered command (a URN changed without an
//   alias), is deleted as removed, after every registration, so after the new URN's create
//   (GenerateDeletes, isOperatedOn; deployment_executor.go performPostSteps);
//   two registrations claiming one stored URN is an error (diag GetDuplicateResourceAliasError),
//   raised here before any step where the engine raises it at the second registration;
// - `--target` (with `*`/`**` globs as deployment.go's UrnTargets) and `--target-dependents`:
//   only targeted commands step; an untargeted one keeps its stored state (a same step) or, new,
//   is not created (a skipped create); a recreated dependent steps whatever the targets;
// - at most `parallel` chains of steps run at once (default 4 x CPUs: up.go defaultParallel,
//   step_executor.go newStepExecutor); after a failure no new step starts;
// - a command runs its registered inputs (`inputs.create`, ...), not the script text a test reads;
// - remote.CopyToRemote (copyController.go at v1.2.1): create copies; an update copies only when
//   the source's hash or remotePath changed (a changed connection alone copies nothing); its
//   delete does nothing; `triggers` replace it;
// - a DIY backend's checkpoints: the whole state, as JSON, written at the start and at the end of
//   every create, update and delete step (pkg/backend/snapshot.go SnapshotManager; the DIY
//   backend uses it without a journal: pkg/backend/diy/backend.go apply -> NewSnapshotManager).
import { availableParallelism } from "node:os";
import { RecordedCommand } from "./program";
import { ExecResult } from "../../scripts/ssh-exec";

/** One command's result, as every SSH exec wrapper gives it (scripts/ssh-exec.ts: 255 when no exit status came). */
export type RunResult = ExecResult;

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

/** Options of `pulumi up` the simulator follows. */
export interface UpOptions {
  /** `--replace URN` (names, URNs or URN globs with `*`). */
  replace?: string[];
  /** `--target URN` (names, URNs or URN globs with `*` and `**`). */
  target?: string[];
  /** `--target-dependents`. */
  targetDependents?: boolean;
  /** `--parallel N`; default defaultParallel(). */
  parallel?: number;
}

/**
 * The engine's default `--parallel`: PULUMI_PARALLEL if set and positive, else
 * 4 x GOMAXPROCS(0) (pkg/cmd/pulumi/operations/up.go at v3.248.0, defaultParallel;
 * GOMAXPROCS defaults to the CPUs the process may use, Node's availableParallelism).
 */
export function defaultParallel(env: NodeJS.ProcessEnv = process.env): number {
  const p = Number(env.PULUMI_PARALLEL);
  return Number.isInteger(p) && p > 0 ? p : 4 * availableParallelism();
}

/** What the DIY backend wrote during one operation. */
export interface Checkpoints {
  /** Whole-state JSON writes. */
  writes: number;
  /** Bytes written, all writes together. */
  bytes: number;
  /** The largest single write. */
  largest: number;
}

/** URN targets as deployment.go's UrnTargets: a literal, or a glob (`*` within a segment, `**` across). */
export function targetMatcher(targets: string[]): (c: { name: string; urn: string }) => boolean {
  const globs = targets
    .filter((t) => t.includes("*"))
    .map(
      (g) =>
        new RegExp(
          "^" +
            g
              .split("**")
              .map((seg) =>
                seg
                  .split("*")
                  .map((x) => x.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
                  .join("[^:]*"),
              )
              .join(".*") +
            "$",
        ),
    );
  const literals = new Set(targets.filter((t) => !t.includes("*")));
  return (c) => literals.has(c.urn) || literals.has(c.name) || globs.some((r) => r.test(c.urn));
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
  for (const c of commands) visit(c, []);
  return out;
}

interface Planned {
  step: Step;
  command: RecordedCommand;
  /** A replace's delete that runs at the end (no deleteBeforeReplace). */
  deferred?: boolean;
  /** The state key, when not the step's name (a removed command displaced to its URN). */
  key?: string;
}

/** A trigger that stands for an output the engine knows only once a dependency has run (preview). */
export const UNKNOWN = "<unknown: an output of a command this update changes>";

/** Under mocks a command's stdout is "NAME: applied"; in a trigger it names that dependency's stdout. */
const stdoutDep = (c: RecordedCommand, t: unknown) => c.dependsOn.find((d) => t === `${d}: applied`);

export class CommandProviderSim {
  /**
   * What the provider stored after the last successful step of each command (its inputs), by
   * name. A stored command a registration of another URN displaced (no alias) is kept under its
   * URN until its delete.
   */
  readonly state = new Map<string, RecordedCommand>();
  /** The stored stdout of each command (an output other commands' inputs may hold). */
  private readonly stdout = new Map<string, string>();

  /** A stored command's stdout: its `stdout` output, as the state holds it. */
  stdoutOf(name: string): string | undefined {
    return this.stdout.get(name);
  }
  /** The commands whose stdout each stored command's triggers hold (the engine's property dependencies). */
  private readonly triggerDeps = new Map<string, string[]>();
  /** Operations pending in the checkpoint (the engine's pending_operations), by state key. */
  private readonly pending = new Map<string, { urn: string; phase: Phase }>();
  /** The DIY backend's writes in the last operation (up or destroy). */
  checkpoints: Checkpoints = { writes: 0, bytes: 0, largest: 0 };
  /** The most chains of steps that ran at once in the last operation. */
  peakParallel = 0;

  constructor(private readonly runner: Runner) {}

  /**
   * What `pulumi preview` shows: the steps an up would run. Runs nothing. An output of a command
   * that steps in this preview is unknown, and an unknown trigger is a replace (the provider
   * marks `triggers` replaceOnChanges); an unchanged command's stored outputs are known.
   */
  preview(commands: RecordedCommand[], opts: UpOptions = {}): Step[] {
    // on a copy: matching registrations to stored URNs moves state
    const view = new CommandProviderSim(this.runner);
    for (const [k, c] of this.state) view.state.set(k, c);
    for (const [k, v] of this.stdout) view.stdout.set(k, v);
    for (const [k, v] of this.triggerDeps) view.triggerDeps.set(k, v);
    view.claim(commands);
    return view.plan(commands, opts);
  }

  /** The URN a command or stored command is identified by (a hand-made one without a URN: its name). */
  private static id = (c: RecordedCommand) => c.urn || c.name;

  /**
   * Matches the registrations to the stored commands as getOldResource does (step_generator.go
   * v3.248.0): by URN, else by the first alias URN stored. Then keys the state so that each
   * stored command a registration claims sits under that registration's name (taking that name),
   * and one no registration claims but whose name a registration has sits under its URN (to be
   * deleted as removed, GenerateDeletes). Throws when two registrations claim one stored URN.
   */
  private claim(commands: RecordedCommand[]): void {
    const stored = new Map([...this.state].map(([k, c]) => [CommandProviderSim.id(c), k]));
    const claimedBy = new Map<string, RecordedCommand>();
    for (const c of commands) {
      for (const u of [CommandProviderSim.id(c), ...(c.aliases ?? [])]) {
        const k = stored.get(u);
        if (k === undefined) continue;
        const other = claimedBy.get(k);
        if (other) throw new Error(`Duplicate resource alias: ${c.urn} and ${other.urn} both claim ${u} (step_generator.go getOldResource, diag GetDuplicateResourceAliasError)`);
        claimedBy.set(k, c);
        break;
      }
    }
    const names = new Set(commands.map((c) => c.name));
    const entries = [...this.state].map(([k, c]) => {
      const by = claimedBy.get(k);
      const key = by ? by.name : names.has(k) ? CommandProviderSim.id(c) : k;
      return { k, key, c: by && by.name !== c.name ? { ...c, name: by.name } : c, stdout: this.stdout.get(k), deps: this.triggerDeps.get(k) };
    });
    if (entries.every((e) => e.key === e.k && e.c === this.state.get(e.k))) return;
    this.state.clear();
    this.stdout.clear();
    this.triggerDeps.clear();
    for (const e of entries) {
      if (this.state.has(e.key)) throw new Error(`two stored commands under ${e.key}`);
      this.state.set(e.key, e.c);
      if (e.stdout !== undefined) this.stdout.set(e.key, e.stdout);
      if (e.deps !== undefined) this.triggerDeps.set(e.key, e.deps);
    }
  }

  /** The steps of a preview, against a state claim() has keyed. */
  private plan(commands: RecordedCommand[], opts: UpOptions): Step[] {
    const planned: Planned[] = [];
    const changing = new Set<string>();
    const recreate = new Set<string>();
    const targeted = this.targeting(opts);
    for (const raw of topoOrder(commands)) {
      const c = this.resolve(raw, (d) => (changing.has(d) ? UNKNOWN : this.stdout.get(d)));
      const mine = recreate.has(c.name) ? this.recreated(c) : targeted(c, this.state.has(c.name)) ? this.stepsFor(c, opts) : [];
      for (const p of mine) if (p.step.phase === "delete" && p.step.name !== c.name) recreate.add(p.step.name);
      if (mine.length) changing.add(c.name);
      planned.push(...mine);
    }
    return [...planned.filter((p) => !p.deferred), ...this.removed(commands, opts), ...planned.filter((p) => p.deferred).reverse()].map((p) => p.step);
  }

  /** Whether a command steps under --target: tracks --target-dependents as the registrations come in (isTargetedForUpdate). */
  private targeting(opts: UpOptions): (c: RecordedCommand, hasOld: boolean) => boolean {
    if (!opts.target?.length) return () => true;
    const match = targetMatcher(opts.target);
    const actual = new Set<string>();
    return (c) => {
      const t = match(c) || (!!opts.targetDependents && c.dependsOn.some((d) => actual.has(d)));
      if (t) actual.add(c.name);
      return t;
    };
  }

  /** The steps one command needs against what is stored (continueStepsFromDiff). */
  private stepsFor(c: RecordedCommand, opts: UpOptions): Planned[] {
    const old = this.state.get(c.name);
    if (!old) return [{ step: { name: c.name, phase: "create", reason: "new" }, command: c }];
    const forced = !!opts.replace?.length && targetMatcher(opts.replace)(c);
    if (forced || !same(old.triggers, c.triggers)) {
      const del = { step: { name: c.name, phase: "delete" as Phase, reason: "replace" as const }, command: old };
      const create = { step: { name: c.name, phase: "create" as Phase, reason: "replace" as const }, command: c };
      if (!c.deleteBeforeReplace) return [create, { ...del, deferred: true }];
      // delete-before-replace: first the stored dependents that would be replaced, dependents first
      const dependents = this.dependentReplacements(c.name)
        .reverse()
        .map((d) => ({ step: { name: d.name, phase: "delete" as Phase, reason: "replace" as const }, command: d }));
      return [...dependents, del, create];
    }
    if (!same(inputsWithoutTriggers(old), inputsWithoutTriggers(c))) return [{ step: { name: c.name, phase: c.update !== undefined || c.copy ? "update" : "create", reason: "changed" }, command: c }];
    return [];
  }

  /** A dependent deleted by a delete-before-replace, registered again: a create (generateSteps, `recreating`). */
  private recreated(c: RecordedCommand): Planned[] {
    return [{ step: { name: c.name, phase: "create", reason: "replace" }, command: c }];
  }

  /**
   * calculateDependentReplacements (step_generator.go, v3.248.0): the stored commands that depend
   * on `root` transitively and have an input taken from a command in the replace set, in
   * dependency order. With that input unknown the provider's Diff says replace for `triggers`
   * (replaceOnChanges); our commands take outputs into `triggers` only.
   */
  private dependentReplacements(root: string): RecordedCommand[] {
    const replaceSet = new Set([root]);
    const out: RecordedCommand[] = [];
    // not one displaced to its URN: it is deleted as removed
    for (const d of topoOrder([...this.state].filter(([k, c]) => k === c.name).map(([, c]) => c))) {
      if (d.name === root) continue;
      if ((this.triggerDeps.get(d.name) ?? []).some((x) => replaceSet.has(x))) {
        replaceSet.add(d.name);
        out.push(d);
      }
    }
    return out;
  }

  /**
   * Stored commands no registration claimed (after claim(): those not under a registered name),
   * dependents first (only targeted ones, by their stored URN, under --target).
   */
  private removed(commands: RecordedCommand[], opts: UpOptions = {}): Planned[] {
    const names = new Set(commands.map((c) => c.name));
    const match = opts.target?.length ? targetMatcher(opts.target) : () => true;
    const gone = [...this.state].filter(([k, c]) => !names.has(k) && match(c));
    const keys = new Map(gone.map(([k, c]) => [c, k]));
    return topoOrder(gone.map(([, c]) => c))
      .reverse()
      .map((c) => ({ step: { name: c.name, phase: "delete", reason: "removed" }, command: c, key: keys.get(c) }));
  }

  /**
   * Resolves a trigger that holds a dependency's stdout to that stdout, as the engine resolves an
   * output before it registers the dependent: `value(dep)` gives it (the stdout stored for the
   * dependency, printed in this up or an earlier one).
   */
  private resolve(c: RecordedCommand, value: (dep: string) => string | undefined = (d) => this.stdout.get(d)): RecordedCommand & { triggerDeps: string[] } {
    const triggerDeps: string[] = [];
    if (!c.triggers?.length) return { ...c, triggerDeps };
    const triggers = c.triggers.map((t) => {
      const dep = stdoutDep(c, t);
      if (dep === undefined) return t;
      triggerDeps.push(dep);
      return value(dep) ?? t;
    });
    return { ...c, triggers, inputs: { ...c.inputs, triggers }, triggerDeps };
  }

  /**
   * `pulumi up`, as the engine runs it: each command registers once the commands it depends on
   * have finished, its steps decided then (one chain, run by one of `parallel` workers); commands
   * the program no longer has are deleted after, dependents first, again in parallel where nothing
   * orders them. After a failure, steps in flight finish and no new one starts (the engine's default
   * without --continue-on-error); the first failure is thrown. Steps are listed in the order they
   * finished. Counts the DIY backend's checkpoint writes (`checkpoints`).
   */
  async up(commands: RecordedCommand[], opts: UpOptions = {}): Promise<Step[]> {
    const steps: Step[] = [];
    const deferred: Planned[] = [];
    const failed: { error?: Error } = {};
    const recreate = new Set<string>();
    const targeted = this.targeting(opts);
    const skipped = new Set<string>();
    const pool = new Pool(opts.parallel ?? defaultParallel());
    this.claim(commands);
    this.beginOperation();
    const run = async ({ step, command, key = step.name }: Planned) => {
      if (failed.error) return;
      this.pending.set(key, { urn: command.urn, phase: step.phase });
      this.writeCheckpoint();
      try {
        await this.exec(step, command);
      } finally {
        this.pending.delete(key);
        if (step.result && step.result.code === 0) {
          if (step.phase === "delete") {
            // A replaced command's new state is stored by its create; a removed one is forgotten.
            if (step.reason === "removed" || (step.reason === "replace" && this.state.get(step.name) === command)) this.forget(key);
          } else {
            const { triggerDeps, ...stored } = command as RecordedCommand & { triggerDeps?: string[] };
            this.state.set(step.name, stored);
            this.triggerDeps.set(step.name, triggerDeps ?? []);
            this.stdout.set(step.name, step.result.stdout);
          }
        }
        this.writeCheckpoint();
      }
      steps.push(step);
    };
    const ordered = topoOrder(commands);
    const names = new Set(ordered.map((c) => c.name));
    try {
      await inParallel(
        ordered,
        (c) => c.dependsOn.filter((d) => names.has(d)),
        failed,
        async (raw) => {
          const c = this.resolve(raw);
          if (recreate.has(c.name)) {
            recreate.delete(c.name);
            await pool.run(async () => {
              for (const p of this.recreated(c)) await run(p);
            });
            return;
          }
          if (!targeted(c, this.state.has(c.name))) {
            if (!this.state.has(c.name)) skipped.add(c.name);
            return; // a same step (or a skipped create): nothing runs, the stored state stays
          }
          const skippedDep = c.dependsOn.find((d) => skipped.has(d));
          if (skippedDep) throw new Error(`${c.name} depends on ${skippedDep}, which is not targeted and not created yet: add it with --target (step_generator.go hasSkippedDependencies)`);
          const planned = this.stepsFor(c, opts);
          const old = this.state.get(c.name);
          if (!planned.length && old && old.urn !== c.urn) {
            // a same step under an alias: the state moves to the new URN (a write: mustWrite)
            this.state.set(c.name, { ...old, urn: c.urn });
            this.writeCheckpoint();
          }
          if (!planned.length) return;
          await pool.run(async () => {
            for (const p of planned) {
              if (p.deferred) deferred.unshift(p);
              else {
                if (p.step.phase === "delete" && p.step.name !== c.name) recreate.add(p.step.name);
                await run(p);
              }
            }
          });
        },
      );
      const gone = this.removed(commands, opts);
      await inParallel(
        gone,
        dependentsIn(
          gone.map((p) => p.command),
          (p) => p.command.name,
        ),
        failed,
        (p) => pool.run(() => run(p)),
      );
      for (const p of deferred) await pool.run(() => run(p));
    } finally {
      this.endOperation();
      this.peakParallel = pool.peak;
    }
    if (failed.error) throw failed.error;
    return steps;
  }

  /** `pulumi destroy`: every stored delete, dependents first, in parallel where nothing orders them. */
  async destroy(opts: { parallel?: number } = {}): Promise<Step[]> {
    const steps: Step[] = [];
    const failed: { error?: Error } = {};
    const keys = new Map([...this.state].map(([k, c]) => [c, k]));
    const stored = [...this.state.values()];
    const pool = new Pool(opts.parallel ?? defaultParallel());
    this.beginOperation();
    try {
      await inParallel(
        stored,
        dependentsIn(stored, (c) => c.name),
        failed,
        (c) =>
          pool.run(async () => {
            const step: Step = { name: c.name, phase: "delete", reason: "destroy" };
            const key = keys.get(c)!;
            this.pending.set(key, { urn: c.urn, phase: "delete" });
            this.writeCheckpoint();
            try {
              await this.exec(step, c);
              steps.push(step);
              this.forget(key);
            } finally {
              this.pending.delete(key);
              this.writeCheckpoint();
            }
          }),
      );
    } finally {
      this.endOperation();
      this.peakParallel = pool.peak;
    }
    if (failed.error) throw failed.error;
    return steps;
  }

  private forget(key: string): void {
    this.state.delete(key);
    this.stdout.delete(key);
    this.triggerDeps.delete(key);
  }

  /**
   * The checkpoint as the DIY backend writes it: every stored resource's inputs and outputs (a
   * command's outputs are its inputs plus stdout and stderr), and the operations in flight;
   * compact JSON (pkg/backend/diy/state.go compactJSONMarshaler).
   */
  checkpointJson(): string {
    const resources = [...this.state].map(([key, c]) => ({
      urn: c.urn,
      custom: true,
      type: c.copy ? "command:remote:CopyToRemote" : "command:remote:Command",
      id: `${c.name}-id`,
      inputs: this.stored(c),
      outputs: c.copy ? this.stored(c) : { ...c.inputs, stdout: this.stdout.get(key) ?? "", stderr: "" },
      dependencies: c.dependsOn,
    }));
    const pending = [...this.pending.values()].map(({ urn, phase }) => ({ resource: { urn }, type: phase === "delete" ? "deleting" : phase === "update" ? "updating" : "creating" }));
    return JSON.stringify({ version: 3, checkpoint: { latest: { resources, ...(pending.length ? { pending_operations: pending } : {}) } } });
  }

  /** A copy's inputs as the state holds them: its source serialized with the path the engine keeps. */
  private stored(c: RecordedCommand): Record<string, unknown> {
    return c.copy ? { ...c.inputs, source: storedArchive(c.copy.hash, c.copy.dir) } : c.inputs;
  }

  private elided = true;

  private beginOperation(): void {
    this.checkpoints = { writes: 0, bytes: 0, largest: 0 };
    // SnapshotManager.defaultServiceLoop starts with hasElidedWrites = true
    this.elided = true;
  }

  private writeCheckpoint(): void {
    const bytes = Buffer.byteLength(this.checkpointJson());
    this.checkpoints.writes++;
    this.checkpoints.bytes += bytes;
    this.checkpoints.largest = Math.max(this.checkpoints.largest, bytes);
    this.elided = false;
  }

  /** Close: same steps elide their writes (sameSnapshotMutation.mustWrite), flushed once at the end. */
  private endOperation(): void {
    if (this.elided) this.writeCheckpoint();
  }

  private async exec(step: Step, command: RecordedCommand): Promise<void> {
    if (command.copy) {
      const old = this.state.get(step.name)?.copy;
      const copies = step.phase === "create" || (step.phase === "update" && (old?.hash !== command.copy.hash || old?.remotePath !== command.copy.remotePath));
      step.result = copies ? await this.runner(command, "", step.phase) : { stdout: "", stderr: "", code: 0 };
      if (step.result.code !== 0) throw new CommandFailed(step);
      return;
    }
    const inputs = command.inputs as { create?: string; update?: string; delete?: string };
    const text = step.phase === "delete" ? inputs.delete : step.phase === "update" ? inputs.update : inputs.create;
    if (text === undefined) {
      step.result = { stdout: "", stderr: "", code: 0 };
      return;
    }
    step.result = await this.runner(command, text, step.phase);
    if (step.result.code !== 0) throw new CommandFailed(step);
  }
}

/** At most `size` chains at once, as the step executor's `--parallel` workers (newStepExecutor). */
/** A FileArchive as the engine stores it in a checkpoint: the archive signature, its hash and its local path (archive.go Serialize at v3.248.0: the signature key and archive signature of resource/sig). */
export const storedArchive = (hash: string, path: string) => ({ "4dabf18193072939515e22adb298388d": "0def7320c3a5731c473e5ecbe6d01bc7", hash, path });

class Pool {
  private running = 0;
  peak = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly size: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    // a finished run hands its slot to the first waiter (running stays), so a caller arriving
    // before that waiter resumes cannot take the slot as well
    if (this.running >= this.size) await new Promise<void>((r) => this.waiting.push(r));
    else this.running++;
    this.peak = Math.max(this.peak, this.running);
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
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
      done.set(
        k,
        (async () => {
          await Promise.all(after(item).flatMap((d) => (byKey.has(d) ? [start(byKey.get(d)!)] : [])));
          if (failed.error) return;
          try {
            await run(item);
          } catch (e) {
            failed.error ??= e as Error;
          }
        })(),
      );
    }
    return done.get(k)!;
  };
  await Promise.all(items.map(start));
}

/** For deletes: each command waits for the commands among `commands` that depend on it. */
function dependentsIn<T>(commands: RecordedCommand[], nameOf: (item: T) => string): (item: T) => string[] {
  return (item: T) => commands.filter((c) => c.dependsOn.includes(nameOf(item))).map((c) => c.name);
}
