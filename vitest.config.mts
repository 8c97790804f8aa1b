import { resolve } from "node:path";
import { defineConfig } from "vitest/config";

/** Tests that need neither root nor a lab (schema, validation, rendering, golden files, components, provider simulator): `npm run test:unit`. */
const UNIT = [
  "test/validate.test.ts",
  "test/render.test.ts",
  "test/components.test.ts",
  "test/provider.test.ts",
  "test/engine-sim.test.ts",
  "test/readme.test.ts",
  "test/verify.test.ts",
  "test/fuzz.test.ts",
  "test/lock.test.ts",
  "test/topology.test.ts",
  "test/netstack.test.ts",
  "test/identity-names.test.ts",
  "test/stage.test.ts",
  "test/schema.test.ts",
  "test/inputs.test.ts",
  "test/concerns.test.ts",
  "test/watch.test.ts",
];

export default defineConfig({
  // the package's own name, as examples/ import it (tsconfig.json's paths for the type check)
  resolve: { alias: { "mptcp-pulumi": resolve("components/index.ts") } },
  test: {
    // a safety net for hangs, not a speed check (docs/performance.md, "vitest.config.mts")
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Lab suites build their own namespaces (distinct ids and slots), so files may run in parallel.
    // Three at a time on this 2-core machine: lab files spend most of their time waiting (boots,
    // timers, paced transfers), and more than three at once only adds contention
    // (docs/performance.md, "vitest.config.mts").
    fileParallelism: true,
    maxWorkers: 3,
    projects: [
      // Unit files share their workers too (isolate: false): a fresh module graph per file costs
      // imports (docs/performance.md, "vitest.config.mts"). They keep no state in modules; three
      // shuffled orders passed.
      { extends: true, test: { name: "unit", include: UNIT, isolate: false } },
      // A worker runs several lab files one after another without starting afresh (isolate: false):
      // a fresh worker per file costs CPU before its first test (Node, vitest, Pulumi;
      // docs/performance.md, "vitest.config.mts"). The lab files share no state through modules: each starts its own lab, and the
      // program is loaded afresh for every run (test/harness/program.ts).
      { extends: true, test: { name: "lab", include: ["test/**/*.test.ts"], exclude: UNIT, isolate: false } },
    ],
  },
});
