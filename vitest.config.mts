import { resolve } from "node:path";
import { defineConfig } from "vitest/config";

/** Tests that need neither root nor a lab (schema, validation, rendering, golden files, components, provider simulator): `npm run test:unit`. */
const UNIT = ["test/validate.test.ts", "test/render.test.ts", "test/components.test.ts", "test/provider.test.ts", "test/engine-sim.test.ts", "test/readme.test.ts", "test/verify.test.ts", "test/fuzz.test.ts", "test/lock.test.ts", "test/topology.test.ts", "test/netstack.test.ts", "test/identity-names.test.ts", "test/stage.test.ts", "test/schema.test.ts", "test/inputs.test.ts", "test/concerns.test.ts"];

export default defineConfig({
  // the package's own name, as examples/ import it (tsconfig.json's paths for the type check)
  resolve: { alias: { "mptcp-pulumi": resolve("components/index.ts") } },
  test: {
    // a safety net for hangs, not a speed check: with three lab files side by side the longest
    // test took 45 s; with six, lab boots in hooks passed 60 s
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Lab suites build their own namespaces (distinct ids and slots), so files may run in parallel.
    // Three at a time on this 2-core machine: lab files spend most of their time waiting (boots,
    // timers, paced transfers), and more than three at once only adds contention (measured in
    // README: 1 worker 9-10 min, 3 workers about 5 min, 4 and 6 workers slower, with timeouts).
    fileParallelism: true,
    maxWorkers: 3,
    projects: [
      // Unit files share their workers too (isolate: false): each fresh module graph cost about
      // 0.3 s of imports per file, and on two workers the tier went from 17.0-18.1 to 15.8-17.1 s
      // wall. They keep no state in modules; three shuffled orders passed.
      { extends: true, test: { name: "unit", include: UNIT, isolate: false } },
      // A worker runs several lab files one after another without starting afresh (isolate: false):
      // a fresh worker per file cost about 1.8 s of CPU before its first test (Node, vitest,
      // Pulumi). The lab files share no state through modules: each starts its own lab, and the
      // program is loaded afresh for every run (test/harness/program.ts).
      { extends: true, test: { name: "lab", include: ["test/**/*.test.ts"], exclude: UNIT, isolate: false } },
    ],
  },
});
