#!/usr/bin/env node
// The `aigw` command. It exists before the build (so package managers can link it) and says
// what to do when the build has not run yet.
import("../dist/cli.js").catch((error) => {
  if (error?.code === "ERR_MODULE_NOT_FOUND" && String(error.message).includes("dist/cli.js")) {
    process.stderr.write("aigw: not built yet: run `pnpm build` in the repository first\n");
    process.exit(1);
  }
  throw error;
});
