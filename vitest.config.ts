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
    reporters: ["default", ["json", { outputFile: ".vitest-results.json" }]],
  },
});
