// What `npm run verify` and `npm run check` share: arguments, the stack file's validated model,
// and SSH sessions to its hosts. Usage errors, an invalid stack file and unreachable hosts exit 2.
import { parseArgs } from "node:util";
import { readStackConfig } from "../../components/stackfile";
import { formatErrors, validateConfig } from "../../components/validate";
import { Model } from "../../components/model";
import { connectAll, credentialsFrom, Session } from "./ssh";
import { CliExit, CliIo } from "../cli-io";

export interface CliRun {
  file: string;
  model: Model;
  json: boolean;
  values: Record<string, string | boolean | undefined>;
  sessions: Map<string, Session>;
  unreachable: Map<string, string>;
}

export function usageExit(io: CliIo, usage: string, message?: string): never {
  if (message) io.err(message);
  io.err(`usage: ${usage}`);
  throw new CliExit(2);
}

/** Parses the arguments, validates the stack file and connects to every host (in parallel). */
export async function startCli(usage: string, argv: string[], io: CliIo, extra: Record<string, { type: "string" | "boolean" }> = {}): Promise<CliRun> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { identity: { type: "string" }, json: { type: "boolean" }, ...extra } });
  } catch (e) {
    usageExit(io, usage, (e as Error).message);
  }
  const { positionals, values } = parsed;
  if (positionals.length !== 1) usageExit(io, usage);
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
  let creds;
  try {
    creds = credentialsFrom(values.identity as string | undefined);
  } catch (e) {
    usageExit(io, usage, (e as Error).message);
  }
  const { sessions, unreachable } = await connectAll(result.model.hosts, creds);
  return { file, model: result.model, json: !!values.json, values, sessions, unreachable };
}

export function closeAll(run: CliRun): void {
  for (const s of run.sessions.values()) s.close();
}
