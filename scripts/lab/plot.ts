// Benchmark plots: a vega-lite spec compiled to vega and rendered to SVG without a browser.
import { writeFileSync } from "node:fs";

/** Writes `spec` (vega-lite, without $schema) as an SVG file. */
export async function writeSvg(file: string, spec: Record<string, unknown>): Promise<void> {
  // ESM-only packages, loaded at run time (this project's TypeScript resolves modules the CommonJS way)
  const [vl, vega] = await Promise.all(["vega-lite", "vega"].map((m) => import(m)));
  const full = { $schema: "https://vega.github.io/schema/vega-lite/v6.json", ...spec };
  const view = new vega.View(vega.parse(vl.compile(full as never).spec), { renderer: "none" });
  writeFileSync(file, await view.toSVG());
  console.log(`wrote ${file}`);
}
