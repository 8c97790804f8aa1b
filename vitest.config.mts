import { defineConfig } from "vitest/config";

/** Tests that need neither root nor a lab (schema, validation, rendering, golden files, components, provider simulator): `npm run test:unit`. */
const UNIT = ["test/validate.test.ts", "test/render.test.ts", "test/components.test.ts", "test/provider.test.ts", "test/readme.test.ts", "test/verify.test.ts", "test/fuzz.test.ts", "test/lock.test.ts", "test/topology.test.ts"];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Lab suites build their own namespaces (distinct ids and slots), so files may run in parallel.
    fileParallelism: true,
    projects: [
      { extends: true, test: { name: "unit", include: UNIT } },
      { extends: true, test: { name: "lab", include: ["test/**/*.test.ts"], exclude: UNIT } },
    ],
  },
});
