// TEST CODE. Runs the real Pulumi program (index.ts) under pulumi.runtime.setMocks with a given
// stack config and records every resource it registers, including what the mock API hides
// (parent, dependsOn, deleteBeforeReplace), by wrapping the mock monitor's registerResource.
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { wrapScript } from "../../components/shell";
import { runnerSha } from "../../components/stage";

export interface RecordedResource {
  type: string;
  name: string;
  custom: boolean;
  /** Parent URN ("" for the stack's direct children). */
  parent: string;
  /** URNs from dependsOn. */
  dependencies: string[];
  deleteBeforeReplace: boolean;
  inputs: Record<string, any>;
  /** The URN the engine gives it (the parents' type chain, unlike the mock monitor's URNs). */
  urn: string;
  /** The aliases as registered (`req.getAliasesList()`), parent URNs translated to engine URNs. */
  aliasSpecs: AliasSpec[];
  /** Its alias URNs as the engine computes them (aliasUrns), its parents' aliases included. */
  aliases: string[];
}

/**
 * One alias of a register request (pulumirpc.Alias): a URN, or a spec whose empty fields default
 * to the resource's own (step_generator.go collapseAliasToUrn at v3.248.0).
 */
export interface AliasSpec {
  urn?: string;
  name?: string;
  type?: string;
  stack?: string;
  project?: string;
  parentUrn?: string;
  noParent?: boolean;
}

/** A remote.CopyToRemote of a local directory, as the provider would receive it. */
export interface RecordedCopy {
  /** The local directory (the FileArchive's path). */
  dir: string;
  remotePath: string;
  /** The archive's hash, by which the engine compares it (archive.go Equals at v3.248.0). */
  hash: string;
}

/**
 * A remote.Command (or, with `copy`, a remote.CopyToRemote) as the provider would receive it
 * (connection unwrapped from its secret). `inputs` are what the program registered: for our
 * commands, a few lines that check and run a copied script. `create` and `delete` are the script
 * that runs on the host, as one command text (wrapScript): what a test runs directly, or edits
 * to inject a fault, where the simulator runs `inputs`.
 */
export interface RecordedCommand {
  name: string;
  urn: string;
  create?: string;
  update?: string;
  delete?: string;
  copy?: RecordedCopy;
  stdin?: string;
  triggers?: unknown[];
  connection: Record<string, any>;
  /** Names of the commands this one depends on. */
  dependsOn: string[];
  deleteBeforeReplace: boolean;
  /** Inputs that, when changed, make Pulumi update or replace the resource. */
  inputs: Record<string, any>;
  /**
   * Full URNs under which the engine finds this command's old state when its own URN is not
   * stored (aliasUrns: its own aliases and those inherited from its parents), in the engine's
   * order. Absent or empty: no alias.
   */
  aliases?: string[];
}

export interface ProgramRun {
  resources: RecordedResource[];
  commands: RecordedCommand[];
  outputs: Record<string, unknown>;
  /** Warnings the program logged (pulumi.log.warn). */
  logs: string[];
  /** Information the program logged (pulumi.log.info). */
  infos: string[];
}

const SECRET_SIG = "4dabf18193072939515e22adb298388d";

function unwrapSecrets(v: any): any {
  if (v && typeof v === "object") {
    if (SECRET_SIG in v) return unwrapSecrets(v.value);
    if (Array.isArray(v)) return v.map(unwrapSecrets);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrapSecrets(x)]));
  }
  return v;
}

/** The project name: Pulumi.yaml's `name`, the one place the harness names it. */
export const PROJECT = "mptcp";
const ROOT_STACK_TYPE = "pulumi:pulumi:Stack";

/** A URN's qualified type (the parents' types and its own, `$`-joined): urn.go QualifiedType. */
const qualifiedType = (urn: string) => urn.split("::")[2];
/** A URN's own type (the qualified type's last part): urn.go Type. */
const typeOf = (urn: string) => qualifiedType(urn).split("$").pop()!;
/** A URN's name (everything after the third `::`): urn.go Name. */
const nameOf = (urn: string) => urn.split("::").slice(3).join("::");

/** urn.go New at v3.248.0: the parent's qualified type, `$`, the type; no prefix under the stack. */
export function newUrn(stack: string, project: string, parentType: string, type: string, name: string): string {
  const t = parentType && parentType !== ROOT_STACK_TYPE ? `${parentType}$${type}` : type;
  return `urn:pulumi:${stack}::${project}::${t}::${name}`;
}

/** A resource's URN as the engine makes it (step_generator.go generateURN -> urn.go New). */
export function urnOf(stack: string, type: string, name: string, parent: string, project = PROJECT): string {
  return newUrn(stack, project, parent ? qualifiedType(parent) : "", type, name);
}

/** alias.go CreateURN at v3.248.0: under a parent, the parent's URN up to its last `::` (its stack and project), `$`. */
function createUrn(name: string, type: string, parent: string, project: string, stack: string): string {
  const prefix = parent ? parent.slice(0, parent.lastIndexOf("::")) + "$" : `urn:pulumi:${stack}::${project}::`;
  return `${prefix}${type}::${name}`;
}

/** A resource as generateAliases sees it. */
export interface AliasTarget {
  name: string;
  type: string;
  /** Its parent's URN, "" for none. */
  parent: string;
  aliasSpecs: AliasSpec[];
}

/**
 * The alias URNs the engine derives for a registration (step_generator.go at v3.248.0,
 * generateAliases, collapseAliasToUrn, inheritedChildAlias), in its order, without duplicates:
 * - each alias: its URN, or a URN from its spec: name and type default to the resource's; the
 *   parent to the resource's parent (a parent given is replaced by that parent's alias the
 *   engine matched); noParent, or a parent that is the root stack, means none; stack and project
 *   default to the deployment's (a parent's prefix carries its own);
 * - then, for each alias of the parent: the child under that alias's qualified type
 *   (`ParentAliasType$ChildType::name`, in the deployment's stack and project), its name's prefix
 *   renamed when the child's name starts with the parent's; and the same for each of the child's
 *   own aliases.
 * The engine uses only the parent's alias that matched an old resource (sg.aliases); this takes
 * every alias of the parent (as the Node SDK's allAliases does when it computes aliases itself),
 * a superset that finds the same old state whenever the old stack held the parent under one of them.
 */
export function aliasUrns(r: AliasTarget, aliasesOf: (parentUrn: string) => string[], stack: string, project = PROJECT): string[] {
  const out: string[] = [];
  const add = (u: string) => void (out.includes(u) ? undefined : out.push(u));
  const collapse = (a: AliasSpec): string[] => {
    if (a.urn) return [a.urn];
    const parents = a.parentUrn ? [...aliasesOf(a.parentUrn), a.parentUrn] : [r.parent];
    return parents.map((p) => {
      const parent = a.noParent || (p && qualifiedType(p) === ROOT_STACK_TYPE) ? "" : p;
      return createUrn(a.name || r.name, a.type || r.type, parent, a.project || project, a.stack || stack);
    });
  };
  for (const a of r.aliasSpecs) collapse(a).forEach(add);
  if (r.parent) {
    const parentName = nameOf(r.parent);
    const inherited = (childType: string, childName: string, parentAlias: string) =>
      newUrn(stack, project, qualifiedType(parentAlias), childType, childName.startsWith(parentName) ? nameOf(parentAlias) + childName.slice(parentName.length) : childName);
    for (const pa of aliasesOf(r.parent)) {
      add(inherited(r.type, r.name, pa));
      for (const a of r.aliasSpecs) for (const ca of collapse(a)) add(inherited(typeOf(ca), nameOf(ca), pa));
    }
  }
  return out;
}

/** A register request's aliases (pulumirpc.Alias), parent URNs through `engineUrn`. */
function aliasSpecsOf(req: any, engineUrn: (mockUrn: string) => string): AliasSpec[] {
  return (req.getAliasesList() as any[]).map((a): AliasSpec => {
    if (a.hasUrn()) return { urn: a.getUrn() };
    const s = a.getSpec();
    const spec: AliasSpec = {};
    for (const [k, v] of [
      ["name", s.getName()],
      ["type", s.getType()],
      ["stack", s.getStack()],
      ["project", s.getProject()],
    ] as const)
      if (v) spec[k] = v;
    if (s.getNoparent()) spec.noParent = true;
    else if (s.getParenturn()) spec.parentUrn = engineUrn(s.getParenturn());
    return spec;
  });
}

export interface StackConfig {
  hosts: unknown;
  links?: unknown;
}

const ROOT = resolve(__dirname, "../..");

/**
 * Loads index.ts afresh (its top level is the program): through vitest's module registry in a
 * test, through Node's require cache elsewhere (the scale benchmark, run by tsx).
 */
async function loadProgram(file = "index.ts"): Promise<Record<string, unknown>> {
  const path = resolve(ROOT, file);
  if (process.env.VITEST) {
    const { vi } = await import("vitest");
    vi.resetModules();
    return import(path);
  }
  for (const f of Object.keys(require.cache)) {
    if (f === path || f.startsWith(resolve(ROOT, "components") + "/")) delete require.cache[f];
  }
  return require(path);
}

/**
 * Runs index.ts (or `opts.file`, another program of the repository, or `opts.program`) once under
 * mocks. Throws what the program throws (e.g. a validation error). `config`: more config values
 * (KEY as pulumi.Config of the project "mptcp" reads it: "mptcp:KEY"); `stdout`: the stdout a
 * resource of that name outputs (a command, or another resource a program takes values from).
 */
export async function runProgram(
  config: StackConfig,
  opts: {
    preview?: boolean;
    privateKey?: string;
    stack?: string;
    stdout?: (name: string) => string | undefined;
    program?: () => Record<string, unknown>;
    file?: string;
    config?: Record<string, string>;
  } = {},
): Promise<ProgramRun> {
  const resources: RecordedResource[] = [];
  const logs: string[] = [];
  const pending = new Map<string, Omit<RecordedResource, "inputs">>();
  const stack = opts.stack ?? "test";
  // The mock monitor's URNs carry the parent's own type only (mocks.js newUrn); the engine's, the
  // whole chain. Requests name parents and dependencies by the mock's URNs.
  const engineUrns = new Map<string, string>();
  const engineUrn = (mock: string) => engineUrns.get(mock) ?? mock;
  const aliasesByUrn = new Map<string, string[]>();
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const meta = pending.get(`${args.type}::${args.name}`);
        resources.push({
          ...(meta ?? { type: args.type, name: args.name, custom: !!args.custom, parent: "", dependencies: [], deleteBeforeReplace: false, urn: "", aliasSpecs: [], aliases: [] }),
          inputs: args.inputs,
        });
        const copy = args.type === "command:remote:CopyToRemote";
        const state = opts.preview || copy ? { ...args.inputs } : { ...args.inputs, stdout: opts.stdout?.(args.name) ?? `${args.name}: applied`, stderr: "" };
        return { id: `${args.name}-id`, state };
      },
      call(args) {
        throw new Error(`unexpected provider call ${args.token}`);
      },
    },
    PROJECT,
    stack,
    !!opts.preview,
  );
  const settings = require("@pulumi/pulumi/runtime/settings");
  const monitor = settings.getMonitor();
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req: any, cb: any) => {
    const parent = engineUrn(req.getParent());
    const [type, name] = [req.getType() as string, req.getName() as string];
    const urn = urnOf(stack, type, name, parent);
    const aliasSpecs = aliasSpecsOf(req, engineUrn);
    const aliases = aliasUrns({ name, type, parent, aliasSpecs }, (p) => aliasesByUrn.get(p) ?? [], stack);
    aliasesByUrn.set(urn, aliases);
    pending.set(`${type}::${name}`, {
      type,
      name,
      custom: req.getCustom(),
      parent,
      dependencies: (req.getDependenciesList() as string[]).map(engineUrn),
      deleteBeforeReplace: req.getDeletebeforereplace(),
      urn,
      aliasSpecs,
      aliases,
    });
    // the mock's URN, by which children and dependents will name this resource
    return register(req, (err: unknown, resp: any) => {
      if (resp) engineUrns.set(resp.getUrn(), urn);
      cb(err, resp);
    });
  };
  const values: Record<string, string> = {
    "mptcp:hosts": JSON.stringify(config.hosts),
    "mptcp:links": JSON.stringify(config.links ?? []),
    ...Object.fromEntries(Object.entries(opts.config ?? {}).map(([k, v]) => [`${PROJECT}:${k}`, v])),
  };
  if (opts.privateKey) values["mptcp:sshPrivateKey"] = opts.privateKey;
  pulumi.runtime.setAllConfig(values, opts.privateKey ? ["mptcp:sshPrivateKey"] : []);

  const infos: string[] = [];
  const [warn, info] = [pulumi.log.warn, pulumi.log.info];
  pulumi.log.warn = async (msg: string) => void logs.push(msg);
  pulumi.log.info = async (msg: string) => void infos.push(msg);
  // An output that rejects (a component's validation once its inputs are known) fails the
  // registrations waiting on it, unhandled: the language host's handler then fails the program
  // (sdk/nodejs/cmd/run/run.ts uncaughtHandler on "unhandledRejection" at v3.248.0). Under mocks
  // nothing would end the run, so the first such rejection is the program's error here, carrying
  // what was registered until then.
  let fail: (e: unknown) => void = () => {};
  const failure = new Promise<never>((_, reject) => (fail = reject));
  failure.catch(() => {});
  const listeners = process.listeners("unhandledRejection");
  process.removeAllListeners("unhandledRejection");
  process.on("unhandledRejection", (e) => fail(e));
  let program: Record<string, unknown>;
  try {
    // `program`: another program in index.ts's place (a test's registrations through the real SDK)
    program = opts.program ? opts.program() : await loadProgram(opts.file);
    await Promise.race([settings.waitForRPCs(), failure]);
  } catch (e) {
    throw Object.assign(e instanceof Error ? e : new Error(String(e)), { resources });
  } finally {
    pulumi.log.warn = warn;
    pulumi.log.info = info;
    process.removeAllListeners("unhandledRejection");
    for (const l of listeners) process.on("unhandledRejection", l);
  }
  const outputs: Record<string, unknown> = {};
  if (!opts.preview) {
    // every stack output, resolved as `pulumi stack output --json` shows it
    for (const [name, value] of Object.entries(program)) {
      outputs[name] = await new Promise((resolve) =>
        (pulumi.output(value) as pulumi.Output<unknown>).apply((v: unknown) => {
          resolve(v);
          return v;
        }),
      );
    }
  }
  const byUrn = new Map(resources.map((r) => [r.urn, r]));
  const copies = resources.filter((r) => r.type === "command:remote:CopyToRemote");
  // every script a copy of this run delivers, by its SHA-256 (the runner texts name them so)
  const staged = new Map<string, string>();
  const dirs = new Map<string, { dir: string; hash: string }>();
  for (const r of copies) {
    const dir = await archivePath(r.inputs.source, !!opts.preview);
    if (dir === undefined) {
      // a preview whose scripts depend on values not known yet (a component's inputs from other resources)
      dirs.set(r.urn, { dir: "", hash: "unknown" });
      continue;
    }
    const files = readDirectory(dir);
    dirs.set(r.urn, { dir, hash: filesHash(files) });
    for (const [f, data] of files) staged.set(f.replace(/\.sh$/, ""), data.toString("utf8"));
  }
  const effective = (inputs: Record<string, any>, text: string | undefined, name: string): string | undefined => {
    if (text === undefined) return undefined;
    if (typeof text !== "string") return text; // unknown in a preview
    const sha = runnerSha(text);
    if (sha === undefined) return text;
    const script = staged.get(sha);
    if (script === undefined) throw new Error(`${name}: runs a script no copy of this program delivers (${sha})`);
    // the runner's sudo check names the host as the title line does
    const host = /^# mptcp-pulumi: host ([^,]+),/.exec(script)?.[1] ?? String(inputs.connection.host);
    return wrapScript(script, { user: inputs.connection.user, host });
  };
  const commands = resources
    .filter((r) => r.type === "command:remote:Command" || r.type === "command:remote:CopyToRemote")
    .map((r): RecordedCommand => {
      const inputs = unwrapSecrets(r.inputs);
      // a URN this program did not register would be a dependency the simulator cannot order by
      const dependsOn = r.dependencies.map((u) => {
        const name = byUrn.get(u)?.name;
        if (name === undefined) throw new Error(`${r.name}: depends on ${u}, which the program did not register`);
        return name;
      });
      if (r.type === "command:remote:CopyToRemote") {
        const { dir, hash } = dirs.get(r.urn)!;
        // the engine compares an archive by its hash alone: the path is not an input that differs
        const { source: _s, ...rest } = inputs;
        return {
          name: r.name,
          urn: r.urn,
          aliases: r.aliases,
          triggers: inputs.triggers,
          connection: inputs.connection,
          dependsOn,
          deleteBeforeReplace: r.deleteBeforeReplace,
          copy: { dir, remotePath: inputs.remotePath, hash },
          inputs: { ...rest, source: { hash } },
        };
      }
      return {
        name: r.name,
        urn: r.urn,
        aliases: r.aliases,
        create: effective(inputs, inputs.create, r.name),
        update: effective(inputs, inputs.update, r.name),
        delete: effective(inputs, inputs.delete, r.name),
        stdin: inputs.stdin,
        triggers: inputs.triggers,
        connection: inputs.connection,
        dependsOn,
        deleteBeforeReplace: r.deleteBeforeReplace,
        inputs,
      };
    });
  return { resources, commands, outputs, logs, infos };
}

/** The path of a FileArchive as the mock monitor hands it over (deserialized: its path a promise). */
async function archivePath(source: any, preview: boolean): Promise<string | undefined> {
  const path = source instanceof pulumi.asset.FileArchive ? await source.path : undefined;
  if (preview && path === undefined && JSON.stringify(source).includes("__pulumiUnknown")) return undefined;
  if (typeof path !== "string") throw new Error(`not a FileArchive: ${JSON.stringify(source)}`);
  return path;
}

/** A directory's files, by name in sorted order, and their contents: read once for the hash and the scripts. */
function readDirectory(dir: string): [string, Buffer][] {
  return readdirSync(dir)
    .sort()
    .map((f) => [f, readFileSync(join(dir, f))]);
}

/**
 * A directory's hash as the engine computes it for a FileArchive: determined by its files' names
 * and contents only (archive.go EnsureHashWithWD at v3.248.0 hashes a tar whose headers carry the
 * name, a fixed mode 0600 and the size; no owner, mode or time of the files).
 */
function filesHash(files: [string, Buffer][]): string {
  const h = createHash("sha256");
  for (const [f, data] of files) h.update(`${f}\0${data.length}\0`).update(data);
  return h.digest("hex");
}
