#!/usr/bin/env node
// The `aigw` command. It exists before the build (so package managers can link it) and says
// what to do when the build has not run yet.
import { existsSync } from "node:fs";

const cli = new URL("../dist/cli.js", import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write("aigw: not built yet: run `pnpm build` in the repository first\n");
  process.exit(1);
}
await import(cli.href);
