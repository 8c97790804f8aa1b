// How a host's scripts reach it: once per host and version, as files, instead of inside every
// command's inputs. Each rendered script is a file named by its SHA-256 in a local directory that
// one `remote.CopyToRemote` per host copies (SFTP) to the SSH user's home; each command's `create`
// and `delete` is then a few lines that check that file's hash and run it. Pulumi's state holds
// the directory's path and hash (the engine hashes a directory archive by its files' names and
// contents) and those few lines: a fully configured host registers a small fraction of what it did
// when every command carried its whole script, library included (docs/performance.md, "What a
// host registers").
//
// The files are content-addressed and never rewritten, so a command stored by an older version of
// the project (a delete pulumi runs later) still finds its own script: each copy adds files and
// removes none. A command of its own, `<host>-scripts-cleanup`, created right after the copy and so
// deleted after every command that runs a script, removes the whole directory (cleanupText): also
// after a first up that failed at the host, where no command of ours but it is in the state.
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { HostModel } from "./model";
import { hostData } from "./script";
import { shq } from "./shell";

/** A script's file name in the staged directory: its SHA-256, so the host can check what it runs. */
export const stagedName = (text: string): string => `${createHash("sha256").update(text).digest("hex")}.sh`;

/** Where in the SSH user's home the scripts are copied (the copy's `remotePath`), each host entry's in a directory of its own. */
export const STAGE_ROOT = ".mptcp-pulumi";

/** A host entry's directory name: project, stack and host, each reduced to safe characters. */
export function stageEntry(stack: string | undefined, host: string): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9_.-]/g, "_").replace(/^\.+/, "_");
  return [...(stack ?? "-").split("/"), host].map(safe).join(".");
}

/**
 * The remote directory of a host entry's scripts, relative to the SSH user's home: the copy puts
 * the local directory named ENTRY into STAGE_ROOT (sftpCopy: a source directory without a
 * trailing slash is copied as dest/<its name>).
 */
export const stageRemote = (entry: string) => `${STAGE_ROOT}/${entry}`;

/**
 * The local directory the copy reads: `base/ENTRY/SET/ENTRY`, SET the hash of the set of files,
 * written once (to a temporary name, then renamed) so programs run side by side never see a half
 * written one. Sets of the same entry older than a day are removed: the engine hashes the
 * directory when the program registers the copy and the provider reads it in the same update.
 */
export function stageLocal(entry: string, scripts: string[], base = stageBase()): string {
  const files = new Map(scripts.map((s) => [stagedName(s), s]));
  const names = [...files.keys()].sort();
  const set = createHash("sha256")
    .update([entry, ...names].join("\n"))
    .digest("hex")
    .slice(0, 16);
  const parent = join(base, entry);
  const dir = join(parent, set, entry);
  if (!existsSync(dir)) {
    const tmp = join(parent, `.${set}.${process.pid}.${Math.random().toString(16).slice(2)}`);
    mkdirSync(join(tmp, entry), { recursive: true, mode: 0o755 });
    for (const n of names) writeFileSync(join(tmp, entry, n), files.get(n)!, { mode: 0o644 });
    try {
      renameSync(tmp, join(parent, set));
    } catch (e) {
      // another program wrote the same set meanwhile: its files are these files
      rmSync(tmp, { recursive: true, force: true });
      if (!existsSync(dir)) throw e;
    }
  }
  const dayAgo = Date.now() - 24 * 3600 * 1000;
  for (const other of readdirSync(parent)) {
    if (other === set || other.startsWith(".")) continue;
    const p = join(parent, other);
    if (statSync(p).mtimeMs < dayAgo) rmSync(p, { recursive: true, force: true });
  }
  return dir;
}

/** The local base directory: MPTCP_PULUMI_STAGE_DIR, else `.mptcp-pulumi` in the program's directory. */
export function stageBase(env: NodeJS.ProcessEnv = process.env): string {
  return env.MPTCP_PULUMI_STAGE_DIR || join(process.cwd(), ".mptcp-pulumi");
}

export interface RunnerOptions {
  user: string;
  host: string;
  /** The entry's remote directory (stageRemote), relative to the SSH user's home. */
  remote: string;
  /** The copy resource's name, for the fix when the file is missing. */
  copy: string;
  /** Comment lines shown in `pulumi preview --diff` (what the script is, the data it carries). */
  about: string[];
}

/**
 * The command text that runs a staged script: it checks that $HOME/REMOTE/SHA.sh is the
 * script (its SHA-256), then runs it with sh, through `sudo -n` for a user other than root.
 * Failing the check changes nothing and says how to copy the scripts again.
 */
export function runnerText(script: string, o: RunnerOptions): string {
  const sha = stagedName(script).slice(0, -3);
  for (const l of o.about) if (!l.startsWith("#") || l.includes("\n")) throw new Error(`runner comment is not one comment line: ${l}`);
  // (names of safe characters go in double quotes as they are: a shorter text in every command)
  const safe = /^[A-Za-z0-9_.-]+$/;
  const missing =
    safe.test(o.host) && safe.test(o.copy)
      ? `echo "mptcp-pulumi[${o.host}]: error: $f missing or changed: pulumi up --replace '**::${o.copy}'" >&2; exit 1`
      : `echo ${shq(`mptcp-pulumi[${o.host}]: error: `)}"$f"${shq(` missing or changed: pulumi up --replace '**::${o.copy}'`)} >&2; exit 1`;
  const sudo = shq(`mptcp-pulumi[${o.host}]: error: user ${o.user} cannot run sudo without a password: add a NOPASSWD sudoers rule for it (sudo -n true must succeed), or connect as root`);
  return [
    ...o.about,
    ...(o.user === "root" ? [] : [`sudo -n true 2>/dev/null || { echo ${sudo} >&2; exit 1; }`]),
    `h=${sha} f="$HOME/${o.remote}/$h.sh"`,
    `[ "$(sha256sum 2>/dev/null <"$f")" = "$h  -" ] || { ${missing}; }`,
    o.user === "root" ? `exec sh "$f" </dev/null` : `exec sudo -n sh "$f" </dev/null`,
    "",
  ].join("\n");
}

/**
 * The delete of a host entry's cleanup command: removes the entry's staged directory from the SSH
 * user's home, and STAGE_ROOT too when that leaves it empty. It runs as the SSH user (the files
 * are theirs: the copy wrote them), needs no script of its own and changes nothing else.
 */
export function cleanupText(remote: string, host: string): string {
  if (!/^[A-Za-z0-9_./-]+$/.test(remote) || remote.split("/").some((p) => p === "" || p === "." || p === "..")) throw new Error(`not a staged directory: ${remote}`);
  return [`# mptcp-pulumi: host ${host}, the scripts copied for it`, `rm -rf -- "$HOME"/${shq(remote)} && { rmdir -- "$HOME"/${shq(STAGE_ROOT)} 2>/dev/null || true; }`, ""].join("\n");
}

/** The SHA-256 a runner text checks (undefined for any other text). */
export function runnerSha(text: string): string | undefined {
  return /^h=([0-9a-f]{64}) f="\$HOME\//m.exec(text)?.[1];
}

/** The data a host's config decides (hostData's settings; its values are only computed when rendered). */
const SETTINGS = new Set(
  hostData({} as HostModel)
    .filter((d) => d.setting)
    .map((d) => d.name),
);

/**
 * The data lines of a rendered script (its `# ---- data` section) that come from the host's
 * config, as comments for a runner: what `pulumi preview --diff` shows of a changed setting.
 */
export function dataComments(script: string): string[] {
  const lines = script.split("\n");
  const at = lines.findIndex((l) => l.startsWith("# ---- data"));
  if (at < 0) return [];
  const out: string[] = [];
  let keep = false;
  for (const l of lines.slice(at + 1)) {
    if (l === "" || l.startsWith("# ----")) break;
    if (l.startsWith("# ")) continue;
    // a line that starts a variable decides; the lines of a multi-line value follow their variable
    const name = /^([A-Z_][A-Z0-9_]*)=/.exec(l)?.[1];
    if (name !== undefined) keep = SETTINGS.has(name);
    if (keep) out.push(`# ${l}`);
  }
  return out;
}
