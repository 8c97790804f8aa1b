// npm run verify -- Pulumi.<stack>.yaml [--identity KEY] [--json] [--bytes N | --throughput [--seconds N]]
// For every link: a real MPTCP transfer over SSH, joins, subflows and bytes per interface against
// the config's prediction. Exits 0 when every link matches, 1 on a mismatch, 2 when a host cannot
// be reached or stalls (or on usage errors), 3 on an internal error (a bug). Each SSH step under
// --timeout; at most --connections logins at once. See README, "Verifying a stack".
// --throughput instead: per link, MPTCP's rate against plain TCP on each path alone
// (scripts/verify/throughput.ts); exit 1 when MPTCP is below the best single path.
import { shq } from "../components/shell";
import { CliIo, exitWith } from "./cli-io";
import { closeAll, CliRun, COMMON_HELP, startCli, usageExit } from "./verify/cli";
import { DEFAULT_BYTES, formatReports, verifyLinks } from "./verify/verify";
import { DEFAULT_SECONDS, formatThroughput, throughputLinks } from "./verify/throughput";

const USAGE = "npm run verify -- Pulumi.<stack>.yaml [--identity KEY] [--json] [--bytes N | --throughput [--seconds N]] [--timeout SECONDS] [--connections N]";
const MAX_SECONDS = 300;
const HELP = [
  ...COMMON_HELP,
  `  --bytes N          bytes each link's transfer sends (default ${DEFAULT_BYTES}, at least 65536)`,
  "  --throughput       instead: per link, a saturating MPTCP transfer and a plain TCP transfer on each path alone, one after another;",
  "                     the verdict: MPTCP's rate against the best single path and the sum of the paths, and when it is below the",
  "                     best single path, the path that holds it back and the config change (its backup flag)",
  `  --seconds N        with --throughput: seconds each transfer sends (default ${DEFAULT_SECONDS}, 1 to ${MAX_SECONDS})`,
  "exit codes: 0 every link as the config predicts (--throughput: MPTCP at least as fast as the best single path); 1 a mismatch (--throughput: MPTCP below the best single path, or a transfer failed); 2 a host unreachable or stalled, or a usage error; 3 an internal error (a bug in mptcp-pulumi)",
];

/** npm run verify with these arguments: its exit code. */
export async function verifyMain(argv: string[], io: CliIo): Promise<number> {
  const run = await startCli(USAGE, argv, io, { bytes: { type: "string" }, throughput: { type: "boolean" }, seconds: { type: "string" } }, { help: HELP });
  const bytes = run.values.bytes === undefined ? DEFAULT_BYTES : Number(run.values.bytes);
  const usage = (why: string) => {
    closeAll(run);
    usageExit(io, USAGE, why);
  };
  if (!Number.isInteger(bytes) || bytes < 65536) usage("--bytes must be a whole number of at least 65536");
  if (run.values.throughput && run.values.bytes !== undefined) usage("--bytes and --throughput: a throughput transfer runs for --seconds, not for a number of bytes");
  if (!run.values.throughput && run.values.seconds !== undefined) usage("--seconds goes with --throughput");
  const secondsText = run.values.seconds === undefined ? String(DEFAULT_SECONDS) : String(run.values.seconds);
  const seconds = Number(secondsText);
  if (!/^\d+$/.test(secondsText) || seconds < 1 || seconds > MAX_SECONDS) usage(`--seconds must be a whole number from 1 to ${MAX_SECONDS}`);
  try {
    if (run.model.links.length === 0) {
      io.err(`${run.file}: no mptcp:links: nothing to verify (a link names the client and server of a connection)`);
      return 2;
    }
    if (run.values.throughput) return await throughput(run, io, seconds);
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

/** --throughput: the reports, and the exit code (0 every verdict ok, 1 one is not, 2 a host unreachable). */
async function throughput(run: CliRun, io: CliIo, seconds: number): Promise<number> {
  const reports = await throughputLinks(run.model, run.sessions, seconds);
  for (const [name, s] of run.sessions) if (s.lost && !run.unreachable.has(name) && !s.lost.endsWith(": the session was closed")) run.unreachable.set(name, s.lost);
  const ok = reports.every((r) => r.ok);
  if (run.json) io.out(JSON.stringify({ ok: ok && run.unreachable.size === 0, unreachable: Object.fromEntries(run.unreachable), links: reports }, null, 2));
  else {
    for (const msg of run.unreachable.values()) io.out(`unreachable: ${msg}`);
    io.out(formatThroughput(reports));
  }
  if (run.unreachable.size) return 2;
  return ok ? 0 : 1;
}

if (require.main === module) exitWith("verify", verifyMain);
