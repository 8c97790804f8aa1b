// Reads the mptcp settings out of a Pulumi.<stack>.yaml file, for validation without Pulumi.
import { readFileSync } from "node:fs";
import { parse } from "yaml";

export interface RawMptcpConfig {
  hosts: unknown;
  links?: unknown;
}

/** The `mptcp:hosts` and `mptcp:links` values of a stack file's text; secure values are not needed. */
export function parseStackConfig(text: string): RawMptcpConfig {
  const doc = parse(text) as { config?: Record<string, unknown> } | null;
  const config = doc?.config ?? {};
  return { hosts: config["mptcp:hosts"], links: config["mptcp:links"] };
}

export function readStackConfig(path: string): RawMptcpConfig {
  return parseStackConfig(readFileSync(path, "utf8"));
}
