// Renders host-side scripts from the shell sources under components/sh/. The shell lives in
// `.sh` files that an editor and shellcheck read as they are: a library of small named functions
// (sh/lib/*.sh: only comments and function definitions) and one body per script (sh/*.sh).
// A rendered script is, top to bottom:
//   a title line naming the host, the script and the config it came from; the body's leading
//   comment (what the script does); the prologue (set -eu ...); the host's data, only the
//   variables the chosen code references, each shell-quoted; the library functions the body
//   calls, directly or through other functions (found by reading the code, not from a list);
//   the body.
// TypeScript decides which values go in; it holds no shell of its own.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { endpointKey, HostModel } from "./model";
import type { Concern } from "./concerns";
import { shq } from "./shell";

export const SH_DIR = join(__dirname, "sh");
export const STATE_DIR = "/var/lib/mptcp-pulumi";
export const SYSCTL_CONF = "/etc/sysctl.d/99-mptcp-pulumi.conf";
/** Serializes applies and hooks on a host; lives exactly as long as STATE_DIR. */
export const LOCK_FILE = "/run/mptcp-pulumi.lock";
export const SYNC_PATH = "/usr/local/sbin/mptcp-pulumi-sync";
export const UNIT_NAME = "mptcp-pulumi.service";
/** Our systemd-networkd drop-in (components/sh/networkd.conf). */
export const NETWORKD_CONF = "/etc/systemd/networkd.conf.d/mptcp-pulumi.conf";
/** Our drop-in in /etc/systemd/system/UNIT.d/: sorts after `systemctl edit`'s override.conf. */
export const SERVICE_DROPIN = "zz-mptcp-pulumi.conf";
/** Our NetworkManager conf.d file: read after the admin's usual names, its section name our own. */
export const NM_CONF = "/etc/NetworkManager/conf.d/zz-mptcp-pulumi.conf";

/**
 * The components' type tokens: PACKAGE:index:CLASS, PACKAGE the npm package's name, as the SDK's
 * component provider requires for other languages (provider/experimental/provider.ts construct
 * at v3.248.0 takes the class name from the token's third part).
 */
export const HOST_TYPE = "mptcp-pulumi:index:MptcpHost";
export const NETWORK_TYPE = "mptcp-pulumi:index:MptcpNetwork";
/** The type the stack program registered its hosts with before MptcpNetwork (top level): MptcpHost aliases it. */
export const LEGACY_HOST_TYPE = "mptcp:index:Host";
/** The resource name of the stack program's MptcpNetwork (index.ts). */
export const STACK_NETWORK = "mptcp";

/** The URN of a host's command in the stack program (index.ts): MptcpNetwork > MptcpHost > command. */
export const stackCommandUrn = (stack: string, project: string, command: string) => `urn:pulumi:${stack}::${project}::${NETWORK_TYPE}$${HOST_TYPE}$command:remote:Command::${command}`;

/** The name of a host's anchor command: created before its concerns' commands, deleted after them (sh/anchor.revert.sh). */
export const anchorName = (host: string) => `${host}-anchor`;

/**
 * The config path of a key as the host's scripts name it (components/sh: `limits.subflows`,
 * `endpoints[eth1 10.0.1.2].address`, `services[iperf3.service]`; empty: the host entry), for the
 * person editing the config: mptcp:hosts[1].limits.subflows. An item the entry no longer has
 * keeps its name.
 */
export function configPathOfKey(host: Pick<HostModel, "index" | "endpoints" | "services">, key: string): string {
  const at = `mptcp:hosts[${host.index}]`;
  if (key === "") return at;
  const m = /^(endpoints|services)\[([^\]]*)\](.*)$/.exec(key);
  if (!m) return `${at}.${key}`;
  const i = m[1] === "endpoints" ? host.endpoints.findIndex((e) => endpointKey(e) === m[2]) : host.services.findIndex((s) => s.unit === m[2]);
  return `${at}.${m[1]}[${i >= 0 ? i : m[2]}]${m[3]}`;
}

export interface ConcernScripts {
  concern: Concern;
  apply: string;
  revert: string;
  /** Guarded concerns: the command that confirms the apply over a new connection, and its delete. */
  confirm?: { create: string; delete: string };
}

// ---------------------------------------------------------------- reading the shell sources

export interface ShellFunction {
  name: string;
  /** Library file, relative to SH_DIR. */
  file: string;
  /** The definition with the comment lines directly above it. */
  text: string;
  /** Library functions its code names. */
  calls: string[];
}

const DEFINITION = /^([a-z_][a-z0-9_]*)\(\) \{(.*)$/;

/**
 * The functions of one library file. A library file holds only comments, blank lines and function
 * definitions: `name() { ...; }` on one line, or `name() {` up to a line that is `}` alone.
 * Anything else at the top level would silently never reach a host, so it is an error.
 */
export function parseLibrary(file: string, text: string): Omit<ShellFunction, "calls">[] {
  const lines = text.split("\n");
  const out: Omit<ShellFunction, "calls">[] = [];
  let doc: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith("#")) {
      doc.push(line);
      continue;
    }
    if (line.trim() === "") {
      doc = [];
      continue;
    }
    const m = DEFINITION.exec(line);
    if (!m) throw new Error(`${file}:${i + 1}: a library file holds only comments and function definitions, found: ${line}`);
    const body = [line];
    if (!m[2].trimEnd().endsWith("}")) {
      while (++i < lines.length && lines[i] !== "}") body.push(lines[i]);
      if (i === lines.length) throw new Error(`${file}: function ${m[1]} has no closing "}" line`);
      body.push("}");
    }
    out.push({ name: m[1], file, text: [...doc.filter((l) => !l.startsWith("# shellcheck shell=")), ...body].join("\n") });
    doc = [];
  }
  return out;
}

/** The code of a shell text without comments: what is scanned for calls and variable references. */
export function codeOf(text: string): string {
  return text
    .split("\n")
    .filter((l) => !l.trimStart().startsWith("#"))
    .map((l) => l.replace(/\s+#\s.*$/, ""))
    .join("\n");
}

const wordsOf = (text: string) => new Set(codeOf(text).match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? []);

/** Every library function, in library order (base.sh first, then by file name). */
export function loadLibrary(dir = join(SH_DIR, "lib")): ShellFunction[] {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".sh"))
    .sort((a, b) => (a === "base.sh" ? -1 : b === "base.sh" ? 1 : a.localeCompare(b)));
  const fns = files.flatMap((f) => parseLibrary(`lib/${f}`, readFileSync(join(dir, f), "utf8")));
  const names = new Set<string>();
  for (const f of fns) {
    if (names.has(f.name)) throw new Error(`${f.file}: function ${f.name} is defined twice in the library`);
    names.add(f.name);
  }
  return fns.map((f) => ({ ...f, calls: [...wordsOf(f.text)].filter((w) => w !== f.name && names.has(w)) }));
}

let cachedLibrary: ShellFunction[] | undefined;
const library = () => (cachedLibrary ??= loadLibrary());

/** The library functions `code` calls, directly or through each other, in library order. */
export function functionsFor(code: string, lib: ShellFunction[] = library()): ShellFunction[] {
  const byName = new Map(lib.map((f) => [f.name, f]));
  const needed = new Set<string>();
  const visit = (name: string) => {
    if (needed.has(name)) return;
    needed.add(name);
    byName.get(name)!.calls.forEach(visit);
  };
  for (const w of wordsOf(code)) if (byName.has(w)) visit(w);
  return lib.filter((f) => needed.has(f.name));
}

/** A body source: its leading comment block (what it does) and the rest. */
export function readSource(name: string, text = readFileSync(join(SH_DIR, name), "utf8")): { about: string[]; code: string } {
  const lines = text.replace(/\n$/, "").split("\n");
  const n = lines.findIndex((l) => !l.startsWith("#"));
  const at = n < 0 ? lines.length : n;
  return { about: lines.slice(0, at), code: lines.slice(at).join("\n") };
}

// ---------------------------------------------------------------- the host's data

export interface DataVar {
  name: string;
  /** The value (rendered only when the script references the variable). */
  value: () => string;
  /** A comment line above the assignment. */
  note?: string;
  /** Decided by the host's config (not a path of ours, the host's name or data derived from other data): a runner shows it (components/stage.ts dataComments), what `pulumi preview --diff` shows of a changed setting. */
  setting?: boolean;
}

const line = (...fields: (string | number | undefined)[]) => fields.map((f) => f ?? "").join("|");

/** Items in order of their names (C order): what reaches a host never depends on the order of a config list. */
const byName = <T>(items: T[], name: (item: T) => string): T[] => [...items].sort((a, b) => (name(a) < name(b) ? -1 : name(a) > name(b) ? 1 : 0));

/** Every value a host's scripts may reference; a script gets the ones its code names. */
export function hostData(host: HostModel): DataVar[] {
  const e = (name: string, value: () => string, note?: string): DataVar => ({ name, value, note });
  // a setting: decided by the host's config
  const c = (name: string, value: () => string, note?: string): DataVar => ({ name, value, note, setting: true });
  return [
    e("HOST", () => host.name),
    e("STACK", () => host.stack ?? "", "the Pulumi project/stack that manages this host"),
    e("TARGET", () => `${host.ssh.user}@${host.ssh.host}:${host.ssh.port}`, "how the stack reaches it"),
    e("STATE_DIR", () => STATE_DIR),
    e("LOCK_FILE", () => LOCK_FILE),
    e("SYSCTL_CONF", () => SYSCTL_CONF),
    e("MPTCP_PULUMI_SYNC", () => SYNC_PATH),
    e("UNIT_NAME", () => UNIT_NAME),
    e("NM_CONF", () => NM_CONF),
    e("NETWORKD_CONF", () => NETWORKD_CONF),
    c("KNOBS", () => host.sysctl.map((s) => line(s.knob, s.key, s.value)).join("\n"), "sysctl: KNOB|CONFIG KEY|VALUE"),
    c("SUBFLOWS", () => String(host.limits.subflows ?? ""), "limits (empty: keep the host's original)"),
    c("ADD_ADDR_ACCEPTED", () => String(host.limits.addAddrAccepted ?? "")),
    c("HOOKS", () => (host.hooks ? "1" : "0"), "interface hooks installed (1) or not (0)"),
    c("ENDPOINT_OWNER", () => host.endpointOwner, "who makes the MPTCP endpoints: mptcp-pulumi or networkmanager"),
    c(
      "ENDPOINTS",
      () =>
        byName(host.endpoints, endpointKey)
          .map((p) => line(endpointKey(p), p.interface, p.address, endpointArgs(p)))
          .join("\n"),
      "endpoints: NAME (INTERFACE [ADDRESS])|INTERFACE|ADDRESS (empty: its current one)|ARGS of ip mptcp endpoint add",
    ),
    c("CONFIRM_TIMEOUT", () => String(host.confirmTimeout), "seconds within which an apply must be confirmed, else it is undone (0: off)"),
    e("DROPIN", () => SERVICE_DROPIN),
    c(
      "SERVICES",
      () =>
        byName(host.services, (s) => s.unit)
          .map((s) => line(s.unit, s.mode, s.restart))
          .join("\n"),
      "services: UNIT|MODE|RESTART",
    ),
    c(
      "ROUTING",
      () =>
        byName(host.routing, (r) => r.interface)
          .map((r) => line(r.interface, r.mode, r.table, r.priority, r.gateway))
          .join("\n"),
      "routing: INTERFACE|MODE|TABLE|PRIORITY|GATEWAY",
    ),
  ];
}

/** The words of `ip mptcp endpoint add` besides the address and dev. */
export function endpointArgs(p: HostModel["endpoints"][number]): string {
  return [`id ${p.id}`, ...(p.port !== undefined ? [`port ${p.port}`] : []), ...p.flags].join(" ");
}

const references = (code: string, name: string) => new RegExp(`\\$\\{?${name}(?![A-Za-z0-9_])`).test(code);

// ---------------------------------------------------------------- rendering

export interface ScriptOptions {
  host: HostModel;
  /** What the script is, for its title line: "endpoints apply", "ifupdown if-up hook". */
  title: string;
  /** Body source under components/sh/. */
  source: string;
  /** The body's text instead of the file's (tests render single functions this way). */
  text?: string;
  /** Prologue (set -eu, umask, LC_ALL=C). Default true. */
  strict?: boolean;
  /** A #!/bin/sh line and a note that we installed the file. */
  installed?: boolean;
  /** Data only this script has (e.g. the hooks apply's file list). */
  data?: DataVar[];
  /** Code placed between the functions and the body (e.g. the content of files to install). */
  code?: string;
}

/** One host-side script, rendered from its body source. */
export function renderScript(o: ScriptOptions): string {
  const { about, code: body } = readSource(o.source, o.text);
  // `code` (file contents in quoted heredocs) is text to install, not code that runs here: it
  // neither calls library functions nor reads the host's data
  const extra = o.code ?? "";
  const fns = functionsFor(body);
  const code = codeOf([body, ...fns.map((f) => f.text)].join("\n"));
  const data = [...hostData(o.host), ...(o.data ?? [])].filter((d) => references(code, d.name));
  const out: string[] = [];
  if (o.installed) out.push("#!/bin/sh");
  out.push(...titleLines(o.host, o.title, !!o.installed), ...about);
  if (o.strict ?? true) out.push(readSource("prologue.sh").code);
  const sections = fns.length > 0 || extra !== "";
  if (data.length) {
    if (sections) out.push("", "# ---- data (from the host's entry in mptcp:hosts)");
    for (const d of data) out.push(...(d.note ? [`# ${d.note}`] : []), `${d.name}=${shq(d.value())}`);
  }
  if (fns.length) out.push("", "# ---- functions (components/sh/lib)", fns.map((f) => f.text).join("\n\n"));
  if (extra) out.push("", extra);
  if (sections) out.push("", `# ---- ${o.title} (components/sh/${o.source})`);
  out.push(body);
  return out.join("\n") + "\n";
}

/**
 * Shell functions that print texts (files to install, scripts to keep on the host), each a quoted
 * heredoc ending in MARK: nothing in them is expanded. Texts nest when each level has its own MARK.
 */
export function contentFunctions(items: { fn: string; content: string }[], mark: string): string {
  for (const i of items) if (i.content.split("\n").includes(mark)) throw new Error(`${i.fn}: its text contains ${mark}`);
  return items.map((i) => `${i.fn}() { cat <<'${mark}'\n${asPrinted(i.content)}${mark}\n}`).join("\n");
}

/** A text as its content function prints it (a heredoc ends in a newline). */
export const asPrinted = (text: string): string => (text.endsWith("\n") ? text : `${text}\n`);

export const SELF_MARK = "MPTCP_PULUMI_SELF";

/**
 * A script that knows its own text: it runs `script` from the variable MPTCP_PULUMI_SELF, so an
 * apply can keep itself on the host as the last completed apply (sh/lib/txn.sh) without carrying
 * its text twice. Its first line is the script's title line.
 */
export function selfKeeping(script: string): string {
  if (script.split("\n").includes(SELF_MARK)) throw new Error(`script contains ${SELF_MARK}`);
  const title = script.slice(0, script.indexOf("\n"));
  return [
    title,
    "# The script below is kept in MPTCP_PULUMI_SELF and run from there, so it can keep its own text.",
    `MPTCP_PULUMI_SELF=$(cat <<'${SELF_MARK}'`,
    script.replace(/\n$/, ""),
    SELF_MARK,
    ")",
    'eval "$MPTCP_PULUMI_SELF"',
    "",
  ].join("\n");
}

/** The script a selfKeeping text runs. */
export function selfText(wrapped: string): string {
  const start = wrapped.indexOf(`<<'${SELF_MARK}'\n`);
  if (start < 0) return wrapped;
  const from = start + SELF_MARK.length + 5;
  return wrapped.slice(from, wrapped.indexOf(`\n${SELF_MARK}\n`, from)) + "\n";
}

/** The first comment lines of every rendered file: host, what it is, the config it came from. */
function titleLines(host: HostModel, title: string, installed: boolean): string[] {
  return [`# mptcp-pulumi: host ${host.name}, ${title}, generated from its entry in mptcp:hosts`, ...(installed ? ["# Installed by mptcp-pulumi; pulumi destroy removes it."] : [])];
}

/**
 * A non-shell file from components/sh/ with @NAME@ replaced by the host's data. `neutral`: its
 * title names no host (a file whose change restarts a service must not change with a rename).
 */
export function renderTemplate(host: HostModel, title: string, source: string, neutral = false): string {
  const data = new Map(hostData(host).map((d) => [d.name, d]));
  const text = readFileSync(join(SH_DIR, source), "utf8").replace(/@([A-Z_]+)@/g, (_, name: string) => {
    const d = data.get(name);
    if (!d) throw new Error(`${source}: @${name}@ is not a host data variable`);
    return d.value();
  });
  const titles = neutral ? [`# mptcp-pulumi: ${title}`, "# Installed by mptcp-pulumi; pulumi destroy removes it."] : titleLines(host, title, true);
  return [...titles, text].join("\n");
}
