import { defineConfig } from "tsup";
import shared from "../../tsup.config.ts";

export default defineConfig([
  // The `aigw` bin is a launcher in bin/ (linked by package managers before any build), so the
  // entry cannot be derived from package.json: it is the CLI's source. The status page's own
  // build goes beside it, so this one's clean leaves it alone.
  { ...shared, entry: ["src/cli.ts"], clean: ["!status-page/**"] },
  // The status page: one script (uPlot bundled in) and one style sheet, served by the server.
  {
    entry: { app: "src/status-page/app.ts" },
    outDir: "dist/status-page",
    format: ["iife"],
    platform: "browser",
    target: "es2022",
    minify: true,
    clean: true,
    dts: false,
    sourcemap: false,
    noExternal: [/.*/],
    outExtension: () => ({ js: ".js" }),
    tsconfig: "src/status-page/tsconfig.json",
  },
]);
