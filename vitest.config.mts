import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Lab suites build their own namespaces (distinct ids and slots), so files may run in parallel.
    fileParallelism: true,
  },
});
