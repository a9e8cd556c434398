// pnpm bench:instructions: the instructions each request costs the thread that serves it, for
// the pass-through, the gateway and the gateway with the audit log, JSON and streamed, counted
// by valgrind's callgrind. Unlike requests/s on a shared machine, the count for the same build
// and load comes out within about 1% run after run, so changes of a few percent show, provided
// nothing else runs meanwhile (see the README).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import autocannon from "autocannon";
import {
  cleanUp,
  startGateway,
  startScript,
  temporaryFile,
  writeGatewayConfig,
} from "./processes.js";

const warmUp = Number(process.env.BENCH_WARMUP ?? 2000);
const measured = Number(process.env.BENCH_REQUESTS ?? 1000);
// The compilers still work long after the warm-up under valgrind: rounds of `measured` requests
// are counted until two in a row agree within this many percent; the last one is reported.
const settledPercent = Number(process.env.BENCH_SETTLED_PERCENT ?? 2);
const maxRounds = Number(process.env.BENCH_MAX_ROUNDS ?? 8);
// Few connections: under valgrind a process runs about fifty times slower.
const connections = 10;

try {
  execFileSync("valgrind", ["--version"], { stdio: "ignore" });
  execFileSync("callgrind_control", ["--version"], { stdio: "ignore" });
} catch {
  console.error("pnpm bench:instructions needs valgrind (with callgrind_control) on the PATH");
  process.exit(1);
}

function drive(url, stream, amount) {
  return autocannon({
    url: `${url}/v1/chat/completions`,
    method: "POST",
    connections,
    amount,
    timeout: 60,
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: "gpt-4o-mini",
      stream,
      messages: [{ role: "user", content: "Say hello to the benchmark, briefly, in a few words." }],
    }),
  });
}

function callgrindControl(command, pid) {
  execFileSync("callgrind_control", [command, String(pid)], { stdio: "ignore", timeout: 60_000 });
}

/** The instructions thread 1 ran in dump `part` (callgrind numbers a process's dumps from 1). */
function mainThreadCount(directory, part, name) {
  // Thread 1 runs the JavaScript; the others compile, collect garbage, write files (libuv's
  // pool) or run the audit log's worker.
  const file = `${directory}/callgrind.out.${part}-01`;
  if (!existsSync(file)) throw new Error(`${name}: callgrind wrote no dump ${part} of thread 1`);
  const totals = /^(?:summary|totals): (\d+)/m.exec(readFileSync(file, "utf8"));
  if (!totals) throw new Error(`${name}: no totals in ${file}`);
  return Number(totals[1]);
}

/**
 * Starts `start(wrapper)` under callgrind; the main thread's instructions per request once two
 * rounds in a row agree, and how many rounds that took (`settled` false when none did).
 */
async function count(name, stream, start) {
  const directory = temporaryFile(`callgrind-${name}-${stream ? "stream" : "json"}`);
  mkdirSync(directory);
  const target = await start([
    "valgrind",
    "--quiet",
    "--tool=callgrind",
    "--separate-threads=yes",
    `--callgrind-out-file=${directory}/callgrind.out`,
  ]);
  try {
    await drive(target.url, stream, warmUp);
    let previous = 0;
    for (let round = 1; ; round++) {
      callgrindControl("--zero", target.child.pid);
      const result = await drive(target.url, stream, measured);
      callgrindControl("--dump", target.child.pid);
      const failed = result.errors + result.timeouts + result.non2xx;
      if (failed > 0) throw new Error(`${name}: ${failed} of ${measured} requests failed`);
      // Each --dump is a part of its own: this round's is the round's number.
      const perRequest = mainThreadCount(directory, round, name) / measured;
      const settled = round > 1 && Math.abs(perRequest / previous - 1) * 100 <= settledPercent;
      if (settled || round >= maxRounds) return { perRequest, rounds: round, settled };
      previous = perRequest;
    }
  } finally {
    target.child.kill("SIGKILL");
  }
}

const upstream = await startScript(["bench/upstream.js"]);
const gatewayConfig = writeGatewayConfig("default", upstream.url);
const auditConfig = (kind) =>
  writeGatewayConfig(`audit-${kind}`, upstream.url, [
    "audit:",
    "  key: bench-audit-key-0123456789abcdef0123",
    `  file: { path: "${temporaryFile(`audit-${kind}`)}/requests.jsonl", maxBytes: 50000000, maxFiles: 2 }`,
  ]);
const auditConfigs = { json: auditConfig("json"), streamed: auditConfig("streamed") };
const targets = {
  passthrough: (wrapper) => startScript(["bench/passthrough.js", upstream.url], { wrapper }),
  gateway: (wrapper) => startGateway(gatewayConfig, { wrapper, startSeconds: 120 }),
  "gateway+audit": (wrapper, kind) =>
    startGateway(auditConfigs[kind], { wrapper, startSeconds: 120 }),
};

try {
  console.log(
    `instructions per request on the serving thread (callgrind; ${connections} connections; after ${warmUp} requests, rounds of ${measured} until two agree within ${settledPercent}%, ${maxRounds} rounds at most)`,
  );
  console.log(`${"target".padEnd(16)} ${"JSON (rounds)".padEnd(24)} streamed (rounds)`);
  const results = {};
  /** The count in thousands, and the rounds it took; "not settled" when no two rounds agreed. */
  const shown = ({ perRequest, rounds, settled }) =>
    `${(perRequest / 1000).toFixed(1)}k (${settled ? rounds : `${rounds}, not settled`})`;
  for (const [name, start] of Object.entries(targets)) {
    const json = await count(name, false, (wrapper) => start(wrapper, "json"));
    const streamed = await count(name, true, (wrapper) => start(wrapper, "streamed"));
    results[name] = { json: json.perRequest, streamed: streamed.perRequest };
    console.log(`${name.padEnd(16)} ${shown(json).padEnd(24)} ${shown(streamed)}`);
  }
  const ratio = (name, kind) => (results[name][kind] / results.passthrough[kind]).toFixed(2);
  console.log(
    `gateway / pass-through: JSON ${ratio("gateway", "json")}x, streamed ${ratio("gateway", "streamed")}x`,
  );
  for (const kind of ["json", "streamed"]) {
    const added = results["gateway+audit"][kind] / results.gateway[kind] - 1;
    console.log(`the audit log adds ${(added * 100).toFixed(1)}% (${kind})`);
  }
} finally {
  upstream.child.kill("SIGTERM");
  cleanUp();
}
