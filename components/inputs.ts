// From a component's args (components/args.ts) to the validated model: the args become the raw
// config the stack config would hold, and go through the same validation (components/validate.ts),
// with every error's path named as the args' (`args.limits.subflows`, `args.hosts[1].ssh.host`).
//
// Inputs that come from other resources are not known while the component is constructed, and
// during a preview they may not be known at all. So validation runs twice: at once, on the args
// with each such Input replaced by a placeholder that passes its field checks and collides with
// nothing (what can be checked now fails now, before any resource is registered), and again with
// the real values when they are known; until then the model is not known, and neither is anything
// a command of the host is registered with.
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, ConfigValidationError, renamePaths, validateConfig } from "./validate";
import { Model } from "./model";

/** Where a value that is not known at construction sits in the raw config, and what it is. */
export interface Deferred {
  /** Path in the raw config: ["hosts", 0, "ssh", "host"]. */
  path: (string | number)[];
  value: pulumi.Input<unknown>;
}

/** Whether an Input is not a plain value (an Output or a promise). */
export const isDeferred = (v: unknown): boolean => pulumi.Output.isInstance(v) || (typeof v === "object" && v !== null && typeof (v as { then?: unknown }).then === "function");

/**
 * Whether an Output's value is known. The SDK keeps it on the Output (OutputImpl.isKnown in
 * sdk/nodejs/output.ts at v3.248.0) without declaring it in its types; a preview leaves the outputs
 * of resources not yet created unknown.
 */
export async function isKnown(value: pulumi.Input<unknown>): Promise<boolean> {
  const known = (pulumi.output(value) as unknown as { isKnown?: Promise<boolean> }).isKnown;
  if (known === undefined) throw new Error("@pulumi/pulumi no longer has Output.isKnown: update components/inputs.ts");
  return known;
}

/** A placeholder ed25519 key line: its blob names its type, so it passes the hostKey checks. */
const PLACEHOLDER_KEY = (() => {
  const type = Buffer.from("ssh-ed25519");
  const blob = Buffer.alloc(4 + type.length + 4 + 32);
  blob.writeUInt32BE(type.length, 0);
  type.copy(blob, 4);
  blob.writeUInt32BE(32, 4 + type.length);
  return `ssh-ed25519 ${blob.toString("base64")}`;
})();

/**
 * A placeholder for a deferred value, by the key that holds it: valid for its field and distinct
 * for each `n` (documentation ranges, the .invalid domain: never dialled, never sent to a host).
 */
function placeholder(key: string | number, n: number): unknown {
  switch (key) {
    case "host":
      return `unknown-${n}.invalid`;
    case "port":
      return 22;
    case "hostKey":
      return PLACEHOLDER_KEY;
    case "gateway":
      return `198.51.100.${1 + (n % 254)}`;
    default:
      // an address: of an endpoint, of a link, or one a link reaches
      return `2001:db8:ffff::${(n + 1).toString(16)}`;
  }
}

/** Keys whose values may be Inputs (components/args.ts); any other value must be plain. */
export const INPUT_KEYS: ReadonlySet<string> = new Set(["host", "port", "hostKey", "privateKey", "address", "gateway", "reaches"]);

/**
 * The raw config of the args with every deferred Input replaced by a placeholder, and where those
 * were. `ssh.privateKey` is left out: it is not part of the config (the stack config keeps it as a
 * secret of its own). A deferred value where the args take only plain ones is an error at its path
 * (`mptcp:` paths, renamed by checkNow as the others).
 */
export function withPlaceholders(args: unknown): { raw: unknown; deferred: Deferred[]; errors: ConfigError[] } {
  const deferred: Deferred[] = [];
  const errors: ConfigError[] = [];
  const walk = (v: unknown, path: (string | number)[]): unknown => {
    const key = path[path.length - 1];
    const inputKey = typeof key === "number" ? path[path.length - 2] : key;
    if (isDeferred(v)) {
      if (!INPUT_KEYS.has(String(inputKey))) {
        errors.push({ path: `mptcp:${pathText(path)}`, message: "must be a plain value, not an Output or a promise: it decides which resources the host gets, which a preview must know" });
        return undefined;
      }
      deferred.push({ path, value: v as pulumi.Input<unknown> });
      // a whole list as one output (other languages' SDKs allow it): an empty one until known
      if (key === "reaches") return [];
      return placeholder(inputKey, deferred.length);
    }
    if (Array.isArray(v)) return v.map((x, i) => walk(x, [...path, i]));
    if (v && typeof v === "object" && !(v instanceof pulumi.Resource)) {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        if (path.length >= 1 && path[path.length - 1] === "ssh" && k === "privateKey") continue;
        if (x !== undefined) out[k] = walk(x, [...path, k]);
      }
      return out;
    }
    return v;
  };
  const raw = walk(args, []);
  return { raw, deferred, errors };
}

/** ["hosts", 1, "ssh", "host"] -> hosts[1].ssh.host */
function pathText(path: (string | number)[]): string {
  return path.map((s, i) => (typeof s === "number" ? `[${s}]` : i === 0 ? s : `.${s}`)).join("");
}

/** The raw config with each deferred value put back at its path. */
export function fill(raw: unknown, deferred: Deferred[], values: unknown[]): unknown {
  const copy = structuredClone(raw) as Record<string | number, unknown>;
  deferred.forEach((d, i) => {
    let at = copy as Record<string | number, unknown>;
    for (const k of d.path.slice(0, -1)) at = at[k] as Record<string | number, unknown>;
    at[d.path[d.path.length - 1]] = values[i];
  });
  return copy;
}

/** Renames one config's errors for a component: its `mptcp:` paths become the args'. */
export type PathRename = (text: string) => string;

/** For MptcpNetwork: mptcp:hosts[1].limits -> args.hosts[1].limits. */
export const networkPaths: PathRename = (text) => text.replace(/\bmptcp:(hosts|links)\b/g, "args.$1");

/** For MptcpHost, validated as the only host of a config: mptcp:hosts[0].limits -> args.limits; its name is the resource's. */
export const hostPaths: PathRename = (text) => text.replace(/\bmptcp:hosts\[0\]\.name\b/g, "name (the resource name)").replace(/\bmptcp:hosts\[0\]\.?/g, (m) => (m.endsWith(".") ? "args." : "args"));

/**
 * Validates a config (hosts and links, raw) whose deferred values are placeholders: the rules
 * that compare addresses across a link whose addresses are not all known are left for later.
 * Returns the errors, renamed.
 */
export function checkNow(raw: { hosts: unknown; links?: unknown }, deferred: Deferred[], rename: PathRename, extra: ConfigError[] = []): ConfigError[] {
  const result = validateConfig(raw, { links: linksWithDeferred(raw, deferred), targets: targetsWithDeferred(deferred) });
  return renamePaths([...extra, ...(result.ok ? [] : result.errors)], rename);
}

/** Hosts whose SSH host or port is not known yet: their placeholders must not be compared with other hosts' targets. */
export function targetsWithDeferred(deferred: Deferred[]): Set<number> {
  return new Set(deferred.filter((d) => d.path[0] === "hosts" && d.path[2] === "ssh" && (d.path[3] === "host" || d.path[3] === "port")).map((d) => d.path[1] as number));
}

/**
 * Links whose checks need a value not known yet: their own address or reaches, the address of an
 * endpoint of either end, or the server's ssh.host where the link gives no address.
 */
export function linksWithDeferred(raw: { hosts: unknown; links?: unknown }, deferred: Deferred[]): Set<number> {
  const out = new Set<number>();
  const hosts = Array.isArray(raw.hosts) ? (raw.hosts as { name?: unknown }[]) : [];
  const links = Array.isArray(raw.links) ? (raw.links as { client?: unknown; server?: unknown; address?: unknown }[]) : [];
  const hostIndex = (name: unknown) => hosts.findIndex((h) => h?.name === name);
  const deferredAt = (prefix: (string | number)[], key?: string) => deferred.some((d) => prefix.every((p, i) => d.path[i] === p) && (key === undefined || d.path.includes(key)));
  links.forEach((l, i) => {
    if (deferredAt(["links", i])) out.add(i);
    for (const end of [l?.client, l?.server]) {
      const h = hostIndex(end);
      if (h >= 0 && deferredAt(["hosts", h, "endpoints"], "address")) out.add(i);
    }
    const s = hostIndex(l?.server);
    if (l?.address === undefined && s >= 0 && deferredAt(["hosts", s, "ssh", "host"])) out.add(i);
  });
  return out;
}

/**
 * The model, validated again with every deferred value known (an Output: unknown until they are).
 * An error rejects it with the renamed errors, so nothing registered with it reaches a host.
 */
export function checkWhenKnown(raw: { hosts: unknown; links?: unknown }, deferred: Deferred[], rename: PathRename, where: string, resource: pulumi.Resource): pulumi.Output<Model> {
  return pulumi.all(deferred.map((d) => d.value)).apply((values) => {
    const full = fill(raw, deferred, values) as { hosts: unknown; links?: unknown };
    const result = validateConfig(full);
    if (!result.ok) throw new pulumi.ResourceError(new ConfigValidationError(renamePaths(result.errors, rename), where).message, resource, true);
    return result.model;
  });
}

/**
 * During a preview, says which args are not known yet, so not checked: their field checks and the
 * rules comparing them run when they are known, before anything registered with them runs.
 */
export function reportUnknown(deferred: Deferred[], rename: PathRename, resource: pulumi.Resource): void {
  unknownOnes(deferred, rename, resource).catch((e: Error) => void pulumi.log.warn(`could not tell which args are not known yet: ${e.message}`, resource));
}

async function unknownOnes(deferred: Deferred[], rename: PathRename, resource: pulumi.Resource): Promise<void> {
  if (!pulumi.runtime.isDryRun() || deferred.length === 0) return;
  const unknown: string[] = [];
  for (const d of deferred) if (!(await isKnown(d.value))) unknown.push(rename(`mptcp:${pathText(d.path)}`));
  if (unknown.length === 0) return;
  await pulumi.log.info(
    `not known until the update, so not checked yet: ${unknown.join(", ")} (they are checked, with the rules that compare them to other hosts and links, as soon as they are known and before any command runs)`,
    resource,
  );
}
