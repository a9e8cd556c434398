// A package's type declarations may import only what its users are sure to have: its own
// files, Node's modules, its dependencies and its required peers. An optional peer (ioredis)
// or a dev dependency in a .d.ts breaks every user who compiles with skipLibCheck off and
// does not install it (TS2307).
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const root = new URL("..", import.meta.url).pathname;
const packages = readdirSync(join(root, "packages")).filter((name) => {
  const manifest = JSON.parse(readFileSync(join(root, "packages", name, "package.json"), "utf8"));
  return !manifest.private;
});

/** The bare package name of a module specifier (`@scope/name/sub` → `@scope/name`). */
const packageOf = (specifier: string) =>
  specifier
    .split("/")
    .slice(0, specifier.startsWith("@") ? 2 : 1)
    .join("/");

describe("published type declarations", () => {
  it.each(packages)("of @aigw/%s import only dependencies and required peers", (name) => {
    const directory = join(root, "packages", name);
    const manifest = JSON.parse(readFileSync(join(directory, "package.json"), "utf8"));
    const optional = new Set(
      Object.entries(manifest.peerDependenciesMeta ?? {})
        .filter(([, meta]) => (meta as { optional?: boolean }).optional)
        .map(([peer]) => peer),
    );
    const allowed = new Set(
      [
        ...Object.keys(manifest.dependencies ?? {}),
        ...Object.keys(manifest.peerDependencies ?? {}),
      ].filter((dependency) => !optional.has(dependency)),
    );
    const declarations = readdirSync(join(directory, "dist")).filter((file) =>
      /\.d\.c?ts$/.test(file),
    );
    expect(declarations.length).toBeGreaterThan(0);
    const imported = new Set<string>();
    for (const file of declarations) {
      const text = readFileSync(join(directory, "dist", file), "utf8");
      for (const [, specifier] of text.matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)) {
        if (!specifier || specifier.startsWith(".") || specifier.startsWith("node:")) continue;
        imported.add(packageOf(specifier));
      }
    }
    expect([...imported].filter((module) => !allowed.has(module))).toEqual([]);
  });
});
