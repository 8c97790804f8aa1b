// What `npm run verify` and `npm run check` share: arguments, the stack file's validated model,
// and SSH sessions to its hosts. Usage errors, an invalid stack file and unreachable hosts exit 2.
import { parseArgs } from "node:util";
import { readStackConfig } from "../../components/stackfile";
import { formatErrors, validateConfig } from "../../components/validate";
import { Model } from "../../components/model";
import { connectAll, credentialsFrom, Session } from "./ssh";

export interface CliRun {
  file: string;
  model: Model;
  json: boolean;
  values: Record<string, string | boolean | undefined>;
  sessions: Map<string, Session>;
  unreachable: Map<string, string>;
}

export function usageExit(usage: string, message?: string): never {
  if (message) console.error(message);
  console.error(`usage: ${usage}`);
  process.exit(2);
}

/** Parses the arguments, validates the stack file and connects to every host (in parallel). */
export async function startCli(usage: string, extra: Record<string, { type: "string" | "boolean" }> = {}): Promise<CliRun> {
  let parsed;
  try {
    parsed = parseArgs({ allowPositionals: true, options: { identity: { type: "string" }, json: { type: "boolean" }, ...extra } });
  } catch (e) {
    usageExit(usage, (e as Error).message);
  }
  const { positionals, values } = parsed;
  if (positionals.length !== 1) usageExit(usage);
  const file = positionals[0];
  let raw;
  try {
    raw = readStackConfig(file);
  } catch (e) {
    usageExit(usage, `${file}: cannot read: ${(e as Error).message}`);
  }
  const result = validateConfig(raw);
  if (!result.ok) {
    console.error(`${file}: ${formatErrors(result.errors)}`);
    process.exit(2);
  }
  let creds;
  try {
    creds = credentialsFrom(values.identity as string | undefined);
  } catch (e) {
    usageExit(usage, (e as Error).message);
  }
  const { sessions, unreachable } = await connectAll(result.model.hosts, creds);
  return { file, model: result.model, json: !!values.json, values, sessions, unreachable };
}

export function closeAll(run: CliRun): void {
  for (const s of run.sessions.values()) s.close();
}
