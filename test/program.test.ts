// The test harness's runProgram outside vitest (the scale benchmark runs it from tsx): each run
// loads index.ts afresh, so a second run registers the second config's commands, and the
// program's warnings are captured. Negative control: without dropping the cached modules, the
// second run registers nothing.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { nodeTs, ROOT } from "./harness/cli";

const dir = mkdtempSync(join(tmpdir(), "mptcp-program-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const host = (name: string, n: number) => ({ name, ssh: { host: `203.0.113.${n}`, insecureIgnoreHostKey: true }, sysctl: { enabled: true } });

/**
 * Runs two configs through runProgram in one process started as the CLIs are (VITEST unset); the command names and
 * warning count of each. `hideCache`: after the first run, the program's modules are hidden from
 * the loop that drops them (made non-enumerable in require.cache), so they stay cached.
 */
function twoRuns(opts: { hideCache?: boolean } = {}): { commands: string[]; warnings: number }[] {
  const script = join(dir, `run-${opts.hideCache ? "cached" : "fresh"}.ts`);
  const hide = `for (const k of Object.keys(require.cache)) if (k.startsWith(${JSON.stringify(ROOT + "/index")}) || k.startsWith(${JSON.stringify(ROOT + "/components/")})) Object.defineProperty(require.cache, k, { enumerable: false });`;
  writeFileSync(
    script,
    `import { runProgram } from ${JSON.stringify(join(ROOT, "test", "harness", "program"))};
(async () => {
  const out = [];
  for (const hosts of [[${JSON.stringify(host("one", 1))}], [${JSON.stringify(host("one", 1))}, ${JSON.stringify(host("two", 2))}]]) {
    const r = await runProgram({ hosts, links: [] });
    out.push({ commands: r.commands.map((c) => c.name), warnings: r.logs.length });
    ${opts.hideCache ? hide : ""}
  }
  console.log(JSON.stringify(out));
})();
`,
  );
  const env = { ...process.env };
  delete env.VITEST;
  const r = spawnSync(...nodeTs(script), { encoding: "utf8", env, cwd: ROOT });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

describe("runProgram outside vitest", () => {
  it("loads the program afresh for each run and captures its warnings", () => {
    expect(twoRuns()).toEqual([
      { commands: ["one-sysctl"], warnings: 1 },
      { commands: ["one-sysctl", "two-sysctl"], warnings: 2 },
    ]);
  });

  it("control: with the program's modules left cached, the second run registers nothing", () => {
    expect(twoRuns({ hideCache: true })[1]).toEqual({ commands: [], warnings: 0 });
  });
});
