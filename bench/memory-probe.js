// Loaded into a measured process with `node --expose-gc --import`: on SIGUSR2 it collects
// garbage and appends the process's memory usage, as one JSON line, to BENCH_PROBE_FILE.
import { appendFileSync } from "node:fs";

process.on("SIGUSR2", () => {
  globalThis.gc();
  globalThis.gc();
  const { rss, heapUsed } = process.memoryUsage();
  appendFileSync(process.env.BENCH_PROBE_FILE, `${JSON.stringify({ rss, heapUsed })}\n`);
});
