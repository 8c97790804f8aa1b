// npm run verify -- Pulumi.<stack>.yaml [--identity KEY] [--json] [--bytes N]
// For every link: a real MPTCP transfer over SSH, joins, subflows and bytes per interface against
// the config's prediction. Exits 0 when every link matches, 1 on a mismatch, 2 when a host cannot
// be reached (or on usage errors). See README, "Verifying a stack".
import { shq } from "../components/shell";
import { CliIo, processIo, runCli } from "./cli-io";
import { closeAll, startCli, usageExit } from "./verify/cli";
import { DEFAULT_BYTES, formatReports, verifyLinks } from "./verify/verify";

const USAGE = "npm run verify -- Pulumi.<stack>.yaml [--identity KEY] [--json] [--bytes N]";

/** npm run verify with these arguments: its exit code. */
export async function verifyMain(argv: string[], io: CliIo): Promise<number> {
  const run = await startCli(USAGE, argv, io, { bytes: { type: "string" } });
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

if (require.main === module) runCli("verify", verifyMain, process.argv.slice(2), processIo).then((code) => process.exit(code));
