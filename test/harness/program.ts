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
  urn: string;
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
}

export interface ProgramRun {
  resources: RecordedResource[];
  commands: RecordedCommand[];
  outputs: Record<string, unknown>;
  /** Messages the program logged (pulumi.log.*). */
  logs: string[];
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

/** A URN as the engine makes it: the parent's whole type chain before the type (resource.NewURN in sdk/go/common/resource/urn.go at v3.248.0). */
function urnOf(stack: string, type: string, name: string, parent: string): string {
  if (!parent) return `urn:pulumi:${stack}::mptcp::${type}::${name}`;
  const parentType = parent.split("::")[2];
  return `urn:pulumi:${stack}::mptcp::${parentType}$${type}::${name}`;
}

/** The URN the mock monitor gives (runtime/mocks.ts newUrn at v3.248.0): only the parent's own type before the type, where the engine puts the whole chain. */
function mockUrnOf(stack: string, type: string, name: string, parent: string): string {
  if (!parent) return `urn:pulumi:${stack}::mptcp::${type}::${name}`;
  const parentType = parent.split("::")[2].split("$").pop();
  return `urn:pulumi:${stack}::mptcp::${parentType}$${type}::${name}`;
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
async function loadProgram(): Promise<Record<string, unknown>> {
  if (process.env.VITEST) {
    const { vi } = await import("vitest");
    vi.resetModules();
    return import("../../index");
  }
  for (const file of Object.keys(require.cache)) {
    if (file === resolve(ROOT, "index.ts") || file.startsWith(resolve(ROOT, "components") + "/")) delete require.cache[file];
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require("../../index");
}

/** Runs index.ts once under mocks. Throws what the program throws (e.g. a validation error). */
export async function runProgram(config: StackConfig, opts: { preview?: boolean; privateKey?: string; stack?: string; stdout?: (name: string) => string | undefined } = {}): Promise<ProgramRun> {
  const resources: RecordedResource[] = [];
  const logs: string[] = [];
  const pending = new Map<string, Omit<RecordedResource, "inputs">>();
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const meta = pending.get(`${args.type}::${args.name}`);
        resources.push({ ...(meta ?? { type: args.type, name: args.name, custom: !!args.custom, parent: "", dependencies: [], deleteBeforeReplace: false, urn: "" }), inputs: args.inputs });
        const copy = args.type === "command:remote:CopyToRemote";
        const state = opts.preview || copy ? { ...args.inputs } : { ...args.inputs, stdout: opts.stdout?.(args.name) ?? `${args.name}: applied`, stderr: "" };
        return { id: `${args.name}-id`, state };
      },
      call(args) {
        throw new Error(`unexpected provider call ${args.token}`);
      },
    },
    "mptcp",
    opts.stack ?? "test",
    !!opts.preview,
  );
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const settings = require("@pulumi/pulumi/runtime/settings");
  const monitor = settings.getMonitor();
  const register = monitor.registerResource.bind(monitor);
  // the engine's URN of each URN the mock monitor handed out (they differ below a component's child)
  const engineUrn = new Map<string, string>();
  const stack = opts.stack ?? "test";
  monitor.registerResource = (req: any, cb: any) => {
    const mockParent = req.getParent() as string;
    const parent = engineUrn.get(mockParent) ?? mockParent;
    const urn = urnOf(stack, req.getType(), req.getName(), parent);
    engineUrn.set(mockUrnOf(stack, req.getType(), req.getName(), mockParent), urn);
    pending.set(`${req.getType()}::${req.getName()}`, {
      type: req.getType(),
      name: req.getName(),
      custom: req.getCustom(),
      parent,
      dependencies: (req.getDependenciesList() as string[]).map((u) => engineUrn.get(u) ?? u),
      deleteBeforeReplace: req.getDeletebeforereplace(),
      urn,
    });
    return register(req, cb);
  };
  const values: Record<string, string> = {
    "mptcp:hosts": JSON.stringify(config.hosts),
    "mptcp:links": JSON.stringify(config.links ?? []),
  };
  if (opts.privateKey) values["mptcp:sshPrivateKey"] = opts.privateKey;
  pulumi.runtime.setAllConfig(values, opts.privateKey ? ["mptcp:sshPrivateKey"] : []);

  const warn = pulumi.log.warn;
  pulumi.log.warn = async (msg: string) => void logs.push(msg);
  let program: Record<string, unknown>;
  try {
    program = await loadProgram();
    await settings.waitForRPCs();
  } finally {
    pulumi.log.warn = warn;
  }
  const outputs: Record<string, unknown> = {};
  if (!opts.preview) {
    // every stack output, resolved as `pulumi stack output --json` shows it
    for (const [name, value] of Object.entries(program)) {
      outputs[name] = await new Promise((resolve) => (pulumi.output(value) as pulumi.Output<unknown>).apply((v: unknown) => { resolve(v); return v; }));
    }
  }
  const byUrn = new Map(resources.map((r) => [r.urn, r]));
  const copies = resources.filter((r) => r.type === "command:remote:CopyToRemote");
  // every script a copy of this run delivers, by its SHA-256 (the runner texts name them so)
  const staged = new Map<string, string>();
  const dirs = new Map<string, { dir: string; hash: string }>();
  for (const r of copies) {
    const dir = await archivePath(r.inputs.source);
    const files = readDirectory(dir);
    dirs.set(r.urn, { dir, hash: filesHash(files) });
    for (const [f, data] of files) staged.set(f.replace(/\.sh$/, ""), data.toString("utf8"));
  }
  const effective = (inputs: Record<string, any>, text: string | undefined, name: string): string | undefined => {
    if (text === undefined) return undefined;
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
        return { name: r.name, urn: r.urn, triggers: inputs.triggers, connection: inputs.connection, dependsOn, deleteBeforeReplace: r.deleteBeforeReplace, copy: { dir, remotePath: inputs.remotePath, hash }, inputs: { ...rest, source: { hash } } };
      }
      return {
        name: r.name,
        urn: r.urn,
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
  return { resources, commands, outputs, logs };
}

/** The path of a FileArchive as the mock monitor hands it over (deserialized: its path a promise). */
async function archivePath(source: any): Promise<string> {
  const path = source instanceof pulumi.asset.FileArchive ? await source.path : undefined;
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
