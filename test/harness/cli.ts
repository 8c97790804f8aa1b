// TEST CODE. The project's CLIs started as `npm run NAME` starts them (package.json's scripts:
// node with tsx's CommonJS hook, no tsx CLI in between), without npm itself.
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { CliMain, runCli } from "../../scripts/cli-io";

export const ROOT = resolve(__dirname, "../..");

/** `npm run NAME -- ARGS` as [command, args], to run with cwd ROOT. */
export function npmScript(name: string, ...args: string[]): [string, string[]] {
  const line: string | undefined = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).scripts?.[name];
  const words = line?.split(" ") ?? [];
  if (words[0] !== "node") throw new Error(`package.json: scripts.${name} does not start node (${line})`);
  return [process.execPath, [...words.slice(1), ...args]];
}

/** A TypeScript file of a test's own, run as the CLIs run (cwd ROOT): Node's flags of `npm run lab`. */
export function nodeTs(file: string, ...args: string[]): [string, string[]] {
  const [node, words] = npmScript("lab");
  return [node, [...words.filter((w) => !w.endsWith(".ts")), file, ...args]];
}

/**
 * A CLI's main run in this process as its entry point runs it (runCli), its lines collected
 * instead of printed: a Node process per run costs CPU before its first line (docs/performance.md,
 * "Tools and the harness").
 */
export async function inProcess(name: string, main: CliMain, argv: string[], failCode?: number): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(name, main, argv, { out: (l) => out.push(`${l}\n`), err: (l) => err.push(`${l}\n`) }, failCode);
  return { code, out: out.join(""), err: err.join("") };
}
