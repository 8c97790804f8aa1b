// What `npm run verify` and `npm run check` share: arguments, the stack file's validated model,
// SSH deadlines and connection pool, and SSH sessions to its hosts. Usage errors, an invalid
// stack file and unreachable or stalled hosts exit 2; an internal error (a bug) exits 3.
import { parseArgs } from "node:util";
import { readStackConfig } from "../../components/stackfile";
import { formatErrors, validateConfig } from "../../components/validate";
import { Model } from "../../components/model";
import { connectAll, credentialsFrom, Credentials, DEFAULT_CONNECTIONS, DEFAULT_DEADLINES, Session } from "./ssh";
import { CliExit, CliIo, usageExit } from "../cli-io";

export interface CliRun {
  file: string;
  model: Model;
  json: boolean;
  values: Record<string, string | boolean | undefined>;
  /** The key and the SSH deadlines (--timeout). */
  creds: Credentials;
  /** How many SSH connections may be open at once (--connections; 0: no bound). */
  connections: number;
  /** Open sessions (none when startCli was told not to connect). */
  sessions: Map<string, Session>;
  unreachable: Map<string, string>;
}

/** The options every such CLI takes, for its help. */
export const COMMON_HELP = [
  "  --identity KEY     the SSH private key (else the SSH agent at SSH_AUTH_SOCK)",
  "  --json             the result as JSON on stdout",
  `  --timeout SECONDS  how long each SSH step may take before the host counts as unreachable (default ${DEFAULT_DEADLINES.connect}): the login (TCP, banner, key exchange, authentication) and each command's reply; a command may be silent (no output, no exit) ${DEFAULT_DEADLINES.silence / DEFAULT_DEADLINES.connect} times as long`,
  `  --connections N    SSH connections open at once at most (default ${DEFAULT_CONNECTIONS}; 0: no bound, one per host at once)`,
];

export { usageExit };

/** The longest --timeout: a day (a timer's longest wait, 2^31 ms, is about 25 days; silence is a multiple of it). */
const MAX_TIMEOUT = 86400;

/** A whole number from `min` to `max` from an option's text, else a usage error. */
function wholeNumber(io: CliIo, usage: string, name: string, text: string | undefined, fallback: number, min: number, max = 1e9): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) usageExit(io, usage, `--${name} must be a whole number from ${min} to ${max}`);
  return n;
}

/**
 * Parses the arguments (--help prints `help` and exits 0), validates the stack file and, unless
 * `connect` is false, connects to every host (`connections` at a time).
 */
export async function startCli(
  usage: string,
  argv: string[],
  io: CliIo,
  extra: Record<string, { type: "string" | "boolean" }> = {},
  opts: { help?: string[]; connect?: boolean } = {},
): Promise<CliRun> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { identity: { type: "string" }, json: { type: "boolean" }, timeout: { type: "string" }, connections: { type: "string" }, help: { type: "boolean" }, ...extra },
    });
  } catch (e) {
    usageExit(io, usage, (e as Error).message);
  }
  const { positionals, values } = parsed;
  if (values.help) {
    io.out([`usage: ${usage}`, ...(opts.help ?? COMMON_HELP)].join("\n"));
    throw new CliExit(0);
  }
  if (positionals.length !== 1) usageExit(io, usage);
  const timeout = wholeNumber(io, usage, "timeout", values.timeout as string | undefined, DEFAULT_DEADLINES.connect, 1, MAX_TIMEOUT);
  const connections = wholeNumber(io, usage, "connections", values.connections as string | undefined, DEFAULT_CONNECTIONS, 0);
  const file = positionals[0];
  let raw;
  try {
    raw = readStackConfig(file);
  } catch (e) {
    usageExit(io, usage, `${file}: cannot read: ${(e as Error).message}`);
  }
  const result = validateConfig(raw);
  if (!result.ok) {
    io.err(`${file}: ${formatErrors(result.errors)}`);
    throw new CliExit(2);
  }
  let creds: Credentials;
  try {
    creds = credentialsFrom(values.identity as string | undefined);
  } catch (e) {
    usageExit(io, usage, (e as Error).message);
  }
  creds.deadlines = { connect: timeout, reply: timeout, silence: timeout * (DEFAULT_DEADLINES.silence / DEFAULT_DEADLINES.connect) };
  const { sessions, unreachable } =
    opts.connect === false ? { sessions: new Map<string, Session>(), unreachable: new Map<string, string>() } : await connectAll(result.model.hosts, creds, connections);
  return { file, model: result.model, json: !!values.json, values, creds, connections, sessions, unreachable };
}

export function closeAll(run: CliRun): void {
  // not awaited: each connection ends on its own, within a second
  for (const s of run.sessions.values()) void s.close();
}
