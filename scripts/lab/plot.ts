// Benchmark plots: a vega-lite spec compiled to vega and rendered to SVG without a browser.
import { accessSync, constants, mkdirSync, writeFileSync } from "node:fs";

/**
 * A benchmark's --plot DIR, made (with its parents) and checked writable before the benchmark
 * builds anything: one of many minutes must not fail at its end, when it writes the plot (it did,
 * on a directory that did not exist).
 */
export function preparePlotDir(dir: string | undefined): void {
  if (dir === undefined) return;
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch (e) {
    throw new Error(`--plot ${dir}: plots cannot be written there (${(e as Error).message}): give a directory this user can create or write`);
  }
}

/** Writes `spec` (vega-lite, without $schema) as an SVG file. */
export async function writeSvg(file: string, spec: Record<string, unknown>): Promise<void> {
  // ESM-only packages, loaded at run time (this project's TypeScript resolves modules the CommonJS way)
  const [vl, vega] = await Promise.all(["vega-lite", "vega"].map((m) => import(m)));
  const full = { $schema: "https://vega.github.io/schema/vega-lite/v6.json", ...spec };
  const view = new vega.View(vega.parse(vl.compile(full as never).spec), { renderer: "none" });
  writeFileSync(file, await view.toSVG());
  console.log(`wrote ${file}`);
}
