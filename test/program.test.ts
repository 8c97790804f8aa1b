// The test harness's runProgram outside vitest (the scale benchmark runs it from tsx): each run
// loads index.ts afresh, so a second run registers the second config's commands, and the
// program's warnings are captured. Negative control: without dropping the cached modules, a
// further run registers nothing.
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
 * Three runs through runProgram in one process started as the CLIs are (VITEST unset; a process
 * with Pulumi loaded is dear: docs/performance.md, "Tools and the harness"): one host, then two (loaded afresh each time), then
 * two again after the program's modules were hidden from the loop that drops them (made
 * non-enumerable in require.cache), so they stay cached. The command names and warning count of each.
 */
let runs: { commands: string[]; warnings: number }[] | undefined;
function threeRuns(): { commands: string[]; warnings: number }[] {
  if (runs) return runs;
  const script = join(dir, "runs.ts");
  const two = `[${JSON.stringify(host("one", 1))}, ${JSON.stringify(host("two", 2))}]`;
  writeFileSync(
    script,
    `import { runProgram } from ${JSON.stringify(join(ROOT, "test", "harness", "program"))};
(async () => {
  const out = [];
  for (const [hosts, hide] of [[[${JSON.stringify(host("one", 1))}], false], [${two}, true], [${two}, false]]) {
    const r = await runProgram({ hosts, links: [] });
    out.push({ commands: r.commands.map((c) => c.name), warnings: r.logs.length });
    if (hide) for (const k of Object.keys(require.cache)) if (k.startsWith(${JSON.stringify(ROOT + "/index")}) || k.startsWith(${JSON.stringify(ROOT + "/components/")})) Object.defineProperty(require.cache, k, { enumerable: false });
  }
  console.log(JSON.stringify(out));
})();
`,
  );
  const env = { ...process.env };
  delete env.VITEST;
  const r = spawnSync(...nodeTs(script), { encoding: "utf8", env, cwd: ROOT });
  expect(r.status, r.stderr).toBe(0);
  runs = JSON.parse(r.stdout.trim().split("\n").pop()!);
  return runs!;
}

describe("runProgram outside vitest", () => {
  it("loads the program afresh for each run and captures its warnings", () => {
    expect(threeRuns().slice(0, 2)).toEqual([
      { commands: ["one-scripts", "one-scripts-cleanup", "one-anchor", "one-sysctl"], warnings: 1 },
      { commands: ["one-scripts", "two-scripts", "one-scripts-cleanup", "two-scripts-cleanup", "one-anchor", "two-anchor", "one-sysctl", "two-sysctl"], warnings: 2 },
    ]);
  });

  it("control: with the program's modules left cached, a further run registers nothing", () => {
    expect(threeRuns()[2]).toEqual({ commands: [], warnings: 0 });
  });
});
