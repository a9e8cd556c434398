import { readFileSync } from "node:fs";
import { defineConfig } from "tsup";

// One build for every package: each key of package.json "exports" ("." or "./name")
// maps to src/index.ts or src/name.ts, emitted as ESM + CJS + declarations.
const manifest = JSON.parse(readFileSync("package.json", "utf8")) as {
  exports?: Record<string, unknown>;
};
const exportEntries = Object.keys(manifest.exports ?? { ".": null })
  .filter((key) => !key.endsWith(".json"))
  .map((key) => (key === "." ? "src/index.ts" : `src/${key.slice(2)}.ts`));

export default defineConfig({
  entry: exportEntries,
  format: manifest.exports ? ["esm", "cjs"] : ["esm"],
  dts: Boolean(manifest.exports),
  clean: true,
  sourcemap: true,
  target: "node20",
  splitting: false,
  treeshake: true,
});
