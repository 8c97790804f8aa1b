// npm run verify -- Pulumi.<stack>.yaml [--identity KEY] [--json] [--bytes N]
// For every link: a real MPTCP transfer over SSH, joins, subflows and bytes per interface against
// the config's prediction. Exits 0 when every link matches, 1 on a mismatch, 2 when a host cannot
// be reached (or on usage errors). See README, "Verifying a stack".
import { closeAll, startCli, usageExit } from "./verify/cli";
import { DEFAULT_BYTES, formatReports, verifyLinks } from "./verify/verify";

const USAGE = "npm run verify -- Pulumi.<stack>.yaml [--identity KEY] [--json] [--bytes N]";

async function main(): Promise<number> {
  const run = await startCli(USAGE, { bytes: { type: "string" } });
  const bytes = run.values.bytes === undefined ? DEFAULT_BYTES : Number(run.values.bytes);
  if (!Number.isInteger(bytes) || bytes < 65536) usageExit(USAGE, "--bytes must be a whole number of at least 65536");
  try {
    if (run.model.links.length === 0) {
      console.error(`${run.file}: no mptcp:links: nothing to verify (a link names the client and server of a connection)`);
      return 2;
    }
    const reports = await verifyLinks(run.model, run.sessions, { bytes });
    const unreachable = Object.fromEntries(run.unreachable);
    if (run.json) console.log(JSON.stringify({ ok: reports.every((r) => r.ok) && run.unreachable.size === 0, unreachable, links: reports }, null, 2));
    else {
      for (const msg of run.unreachable.values()) console.log(`unreachable: ${msg}`);
      console.log(formatReports(reports));
    }
    if (run.unreachable.size) return 2;
    return reports.every((r) => r.ok) ? 0 : 1;
  } finally {
    closeAll(run);
  }
}

main().then((code) => process.exit(code), (e: Error) => {
  console.error(`verify: ${e.message}`);
  process.exit(2);
});
