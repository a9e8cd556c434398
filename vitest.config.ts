import { defineConfig } from "vitest/config";

// Suites start real servers (mock upstream, gateways, redis-server), so files run one at a
// time on these 2-core machines, with generous timeouts.
export default defineConfig({
  test: {
    include: [
      "{packages,apps}/*/{src,test}/**/*.test.ts",
      "examples/**/*.test.ts",
      "scripts/**/*.test.ts",
    ],
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // .ci/run names another report file for the runs on other Node versions.
    reporters: [
      "default",
      // biome-ignore lint/suspicious/noUndeclaredEnvVars: vitest runs outside turbo
      ["json", { outputFile: process.env.VITEST_RESULTS_FILE ?? ".vitest-results.json" }],
    ],
  },
});
