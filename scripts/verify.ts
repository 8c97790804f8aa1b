// npm run verify -- Pulumi.<stack>.yaml [--identity KEY] [--json] [--bytes N]
// For every link: a real MPTCP transfer over SSH, joins, subflows and bytes per interface against
// the config's prediction. Exits 0 when every link matches, 1 on a mismatch, 2 when a host cannot
// be reached or stalls (or on usage errors), 3 on an internal error (a bug). Each SSH step under
// --timeout; at most --connections logins at once. See README, "Verifying a stack".
import { shq } from "../components/shell";
import { CliIo, exitWith } from "./cli-io";
import { closeAll, COMMON_HELP, startCli, usageExit } from "./verify/cli";
import { DEFAULT_BYTES, formatReports, verifyLinks } from "./verify/verify";

const USAGE = "npm run verify -- Pulumi.<stack>.yaml [--identity KEY] [--json] [--bytes N] [--timeout SECONDS] [--connections N]";
const HELP = [
  ...COMMON_HELP,
  `  --bytes N          bytes each link's transfer sends (default ${DEFAULT_BYTES}, at least 65536)`,
  "exit codes: 0 every link as the config predicts; 1 a mismatch; 2 a host unreachable or stalled, or a usage error; 3 an internal error (a bug in mptcp-pulumi)",
];

/** npm run verify with these arguments: its exit code. */
export async function verifyMain(argv: string[], io: CliIo): Promise<number> {
  const run = await startCli(USAGE, argv, io, { bytes: { type: "string" } }, { help: HELP });
  const bytes = run.values.bytes === undefined ? DEFAULT_BYTES : Number(run.values.bytes);
  if (!Number.isInteger(bytes) || bytes < 65536) {
    closeAll(run);
    usageExit(io, USAGE, "--bytes must be a whole number of at least 65536");
  }
  try {
    if (run.model.links.length === 0) {
      io.err(`${run.file}: no mptcp:links: nothing to verify (a link names the client and server of a connection)`);
      return 2;
    }
    const reports = await verifyLinks(run.model, run.sessions, { bytes });
    // a host that stopped answering on the way (a deadline passed) is unreachable too
    for (const [name, s] of run.sessions) if (s.lost && !run.unreachable.has(name) && !s.lost.endsWith(": the session was closed")) run.unreachable.set(name, s.lost);
    const unreachable = Object.fromEntries(run.unreachable);
    if (run.json) io.out(JSON.stringify({ ok: reports.every((r) => r.ok) && run.unreachable.size === 0, unreachable, links: reports }, null, 2));
    else {
      for (const msg of run.unreachable.values()) io.out(`unreachable: ${msg}`);
      io.out(formatReports(reports));
      // where a mismatch usually comes from: a host not applied, or changed by hand since
      if (!reports.every((r) => r.ok)) {
        const identity = run.values.identity === undefined ? "" : ` --identity ${shq(String(run.values.identity))}`;
        io.out(`\nnpm run check -- ${shq(run.file)}${identity} compares each host with the config: not applied yet, or a limit, endpoint or route changed since.`);
      }
    }
    if (run.unreachable.size) return 2;
    return reports.every((r) => r.ok) ? 0 : 1;
  } finally {
    closeAll(run);
  }
}

if (require.main === module) exitWith("verify", verifyMain);
