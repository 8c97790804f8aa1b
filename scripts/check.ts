// npm run check -- Pulumi.<stack>.yaml [--identity KEY] [--json]
// Drift: each host's live MPTCP state (knobs, limits, endpoints, hook files, routing, service
// drop-ins) against the config, read-only. `pulumi up` cannot see a change made by hand (command
// resources are not refreshed); this can. It also names what pulumi up would still apply or
// revert (a concern not applied yet, changed since, or dropped from the config), which is not for
// --replace. Exits 0 when every host is in step, 1 on drift, 2 when a host cannot be reached or
// stalls (or on usage errors), 3 on an internal error (a bug). At most --connections hosts are
// checked at once, each SSH step under --timeout. See README, "Drift".
import { readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { parse } from "yaml";
import { commandName, stackCommandUrn, Concern, CONCERNS, concernOfPath, configPathOfKey, renderCheck, STATE_DIR } from "../components/render";
import { CliIo, exitWith } from "./cli-io";
import { closeAll, COMMON_HELP, startCli } from "./verify/cli";
import { connect, pooled, UnreachableError } from "./verify/ssh";

const USAGE = "npm run check -- Pulumi.<stack>.yaml [--identity KEY] [--json] [--timeout SECONDS] [--connections N]";
const HELP = [
  ...COMMON_HELP,
  "exit codes: 0 every host in step; 1 drift (a difference, or a concern pulumi up would still apply or revert); 2 a host unreachable, stalled or its check failed, or a usage error; 3 an internal error (a bug in mptcp-pulumi)",
];

export interface HostDrift {
  host: string;
  /** unreachable: could not connect; error: the check itself failed. */
  status: "in step" | "drift" | "unreachable" | "error";
  differences: { path: string; message: string }[];
  /** The concerns of the config this host entry has no completed apply of on the host (components/sh/lib/owners.sh): the stack holds no command for them. */
  unapplied: Concern[];
  /** The concerns whose last apply on the host is not the one pulumi up would run now (the config, or mptcp-pulumi, changed since). */
  pending: Concern[];
  /** The concerns this host entry applied on the host that the config no longer sets: pulumi up reverts them. */
  removed: Concern[];
  /** What else configures the host's network (NetworkManager, dhcpcd, networkd, mptcpd ...), a line each. */
  stack: string[];
  error?: string;
}

/** The project (Pulumi.yaml) and the stack a stack file is named for (Pulumi.<stack>.yaml), if it is. */
function stackOf(file: string): { project: string; stack?: string } {
  const project = (parse(readFileSync(join(__dirname, "..", "Pulumi.yaml"), "utf8")) as { name: string }).name;
  return { project, stack: /^Pulumi\.(.+)\.ya?ml$/.exec(basename(file))?.[1] };
}

/**
 * What repairs the drift: the commands to replace, and whether a plain pulumi up has work. A
 * drifted concern whose command pulumi up would not run is repaired by replacing that command
 * (revert, then apply). An unapplied or pending one is left to pulumi up, which runs its apply
 * anyway (an unapplied one's command is not in the stack, and the engine refuses a --replace of a
 * URN its stack does not hold, "could not be found in the stack", before the program runs); a
 * removed one too, which pulumi up reverts.
 */
function repairOf(results: HostDrift[], { project, stack = "STACK" }: { project: string; stack?: string }): { replace: string[]; up: boolean } {
  const urns = new Set<string>();
  for (const r of results) {
    for (const d of r.differences) {
      const concern = concernOfPath(d.path);
      if (concern && ![...r.unapplied, ...r.pending, ...r.removed].includes(concern)) urns.add(stackCommandUrn(stack, project, commandName(r.host, concern)));
    }
  }
  return { replace: [...urns], up: results.some((r) => r.unapplied.length || r.pending.length || r.removed.length) };
}

/** The repair, as text. */
function repairText(results: HostDrift[], { replace }: { replace: string[] }): string {
  const out: string[] = [];
  if (replace.length) out.push(`To repair, re-run the drifted commands (revert, then apply):\n  pulumi up ${replace.map((u) => `--replace '${u}'`).join(" \\\n    ")}`);
  const list = (key: "unapplied" | "pending" | "removed") =>
    results
      .filter((r) => r[key].length)
      .map((r) => `${r.host} (${r[key].join(", ")})`)
      .join("; ");
  const [unapplied, pending, removed] = [list("unapplied"), list("pending"), list("removed")];
  if (unapplied || pending || removed) {
    const what = [unapplied && `not applied yet: ${unapplied}`, pending && `changed since their last apply (the config, or mptcp-pulumi): ${pending}`, removed && `no longer in the config: ${removed}`]
      .filter((x) => x)
      .join("; ");
    out.push(
      `${what[0].toUpperCase()}${what.slice(1)}. pulumi up ${removed ? (unapplied || pending ? "applies or reverts" : "reverts") : "applies"} them, so there is nothing to replace${replace.length ? " (the pulumi up above does it too)." : ":\n  pulumi up"}`,
    );
  }
  if (unapplied)
    out.push(
      `If pulumi up finds nothing to do for the ones not applied, the stack holds their commands but the host lost their state (reinstalled, or ${STATE_DIR} removed by hand): pulumi state delete each command's URN, then pulumi up.`,
    );
  return out.join("\n");
}

/** npm run check with these arguments: its exit code. */
export async function checkMain(argv: string[], io: CliIo): Promise<number> {
  // each host connected, checked and disconnected in turn, --connections at a time: a thousand
  // hosts at once ran out of file descriptors (EMFILE)
  const run = await startCli(USAGE, argv, io, {}, { help: HELP, connect: false });
  // which host entry's applies are ours to check (lib/owners.sh): the stack as the program names it
  const ids = stackOf(run.file);
  const { project, stack } = ids;
  try {
    const results: HostDrift[] = await pooled(run.model.hosts, run.connections, async (h): Promise<HostDrift> => {
      const failed = (status: "unreachable" | "error", error?: string): HostDrift => ({ host: h.name, status, differences: [], unapplied: [], pending: [], removed: [], stack: [], error });
      let r;
      try {
        const s = await connect(h, run.creds);
        run.sessions.set(h.name, s);
        try {
          r = await s.script(renderCheck({ ...h, stack: stack && `${project}/${stack}` }));
        } finally {
          // the connection's socket closed before the next host's opens (--connections)
          await s.close();
          run.sessions.delete(h.name);
        }
      } catch (e) {
        if (e instanceof UnreachableError) return failed("unreachable", e.message);
        throw e;
      }
      if (r.code !== 0) return failed("error", r.stderr.trim() || `exit ${r.code}`);
      const lines = r.stdout.split("\n");
      const stackLines = lines.filter((l) => l.startsWith("stack ")).map((l) => l.slice("stack ".length));
      // the host names a key of its entry (limits.subflows, services[iperf3.service]); the person
      // reading this edits the config, so each is shown as its config path
      const differences = lines.filter((l) => l.includes("|") && !l.startsWith("stack ")).map((l) => ({ path: configPathOfKey(h, l.slice(0, l.indexOf("|"))), message: l.slice(l.indexOf("|") + 1) }));
      const named = (what: string) => CONCERNS.filter((c) => lines.includes(`${what} ${c}`));
      return { host: h.name, status: differences.length ? "drift" : "in step", differences, unapplied: named("unapplied"), pending: named("pending"), removed: named("removed"), stack: stackLines };
    });
    const repair = repairOf(results, ids);
    if (run.json) io.out(JSON.stringify({ inStep: results.every((r) => r.status === "in step"), hosts: results, repair }, null, 2));
    else {
      for (const r of results) {
        io.out(`${r.host}: ${r.status}${r.status === "drift" ? ` (${r.differences.length} difference${r.differences.length === 1 ? "" : "s"})` : ""}`);
        for (const d of r.differences) io.out(`  ${d.path}: ${d.message}`);
        for (const s of r.stack) io.out(`  network stack: ${s}`);
        if (r.error) io.out(`  ${r.error}`);
      }
      const text = repairText(results, repair);
      if (text) io.out(`\n${text}`);
    }
    if (results.some((r) => r.status === "unreachable" || r.status === "error")) return 2;
    return results.some((r) => r.status === "drift") ? 1 : 0;
  } finally {
    closeAll(run);
  }
}

if (require.main === module) exitWith("check", checkMain);
