// pnpm bench:memory: memory per open stream. Holds BENCH_STREAMS (1,000) slow streams open at
// once through the bare undici pass-through and through the gateway as apps/server ships it,
// each really open upstream, and reports RSS and heapUsed per stream after a forced GC, against
// the same process idle. Each round starts fresh processes: RSS never shrinks back.
import { readFileSync, writeFileSync } from "node:fs";
import { setTimeout as delay } from "node:timers/promises";
import { Agent, request } from "undici";
import {
  cleanUp,
  median,
  startGateway,
  startScript,
  temporaryFile,
  writeGatewayConfig,
} from "./processes.js";

const streams = Number(process.env.BENCH_STREAMS ?? 1000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
// Long enough that no stream ends while the others are still being opened and measured.
const eventDelayMs = 4000;
const probed = ["--expose-gc", "--import", "./bench/memory-probe.js"];
const client = new Agent({ connections: null, pipelining: 0 });
const body = JSON.stringify({
  model: "gpt-4o-mini",
  stream: true,
  messages: [{ role: "user", content: "Say hello to the benchmark, briefly, in a few words." }],
});

const upstream = await startScript(["bench/upstream.js"], {
  env: { BENCH_EVENT_DELAY_MS: String(eventDelayMs) },
});
const config = writeGatewayConfig("memory", upstream.url);

/** Collects garbage in the target and reads its memory usage. */
async function probe(target) {
  writeFileSync(target.probeFile, "");
  target.child.kill("SIGUSR2");
  for (let tries = 0; tries < 200; tries++) {
    const text = readFileSync(target.probeFile, "utf8");
    if (text.endsWith("\n")) return JSON.parse(text);
    await delay(25);
  }
  throw new Error("the probe did not answer");
}

/** Opens `count` streams and resolves once each has received its first bytes. */
async function openStreams(url, count) {
  const controllers = [];
  const opened = Array.from({ length: count }, async () => {
    const controller = new AbortController();
    controllers.push(controller);
    const response = await request(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
      dispatcher: client,
      signal: controller.signal,
    });
    if (response.statusCode !== 200) throw new Error(`status ${response.statusCode}`);
    const reader = response.body[Symbol.asyncIterator]();
    await reader.next();
    // Keep reading, as a client would, until the stream is aborted.
    (async () => {
      for (;;) if ((await reader.next()).done) break;
    })().catch(() => {});
  });
  await Promise.all(opened);
  return () => {
    for (const controller of controllers) controller.abort();
  };
}

/** Memory each of `streams` open streams adds, against the process just before they opened. */
async function streamCost(target) {
  const before = await probe(target);
  const close = await openStreams(target.url, streams);
  const open = await probe(target);
  close();
  return {
    before,
    rss: (open.rss - before.rss) / streams,
    heap: (open.heapUsed - before.heapUsed) / streams,
  };
}

async function measure(name, start) {
  const probeFile = temporaryFile(`${name}.probe`);
  const target = { ...(await start(probeFile)), probeFile };
  const startup = await probe(target);
  (await openStreams(target.url, 50))();
  await delay(1000);
  // The first streams also grow what a process grows once (V8's young generation, pools);
  // the same number again, once those are closed, costs only what each stream holds.
  const cold = await streamCost(target);
  await delay(1000);
  const warm = await streamCost(target);
  target.child.kill("SIGTERM");
  return {
    startupRss: startup.rss,
    idleRss: cold.before.rss,
    coldRss: cold.rss,
    coldHeap: cold.heap,
    warmRss: warm.rss,
    warmHeap: warm.heap,
  };
}

const targets = {
  passthrough: (probeFile) =>
    startScript(["bench/passthrough.js", upstream.url], {
      env: { BENCH_PROBE_FILE: probeFile },
      nodeArgs: probed,
    }),
  gateway: (probeFile) =>
    startGateway(config, { env: { BENCH_PROBE_FILE: probeFile }, nodeArgs: probed }),
};

const kib = (bytes) => (bytes / 1024).toFixed(1);
const mib = (bytes) => (bytes / 2 ** 20).toFixed(1);
console.log(`${streams} streams open at once, ${rounds} rounds, fresh processes each`);
const rows = Object.fromEntries(Object.keys(targets).map((name) => [name, []]));
console.log(
  "round target         startup  idle RSS | per stream, first: RSS  heap | again: RSS  heap",
);
for (let round = 1; round <= rounds; round++) {
  for (const [name, start] of Object.entries(targets)) {
    const row = await measure(`${name}-${round}`, start);
    rows[name].push(row);
    console.log(
      `${String(round).padEnd(5)} ${name.padEnd(13)} ${mib(row.startupRss).padStart(6)} MiB ${mib(row.idleRss).padStart(5)} MiB | ${kib(row.coldRss).padStart(15)} KiB ${kib(row.coldHeap).padStart(5)} KiB | ${kib(row.warmRss).padStart(6)} KiB ${kib(row.warmHeap).padStart(5)} KiB`,
    );
  }
}
const medianOf = (name, field) => median(rows[name].map((row) => row[field]));
console.log("\nmedians, gateway against pass-through:");
console.log(
  `  first streams: RSS ${kib(medianOf("gateway", "coldRss"))} against ${kib(medianOf("passthrough", "coldRss"))} KiB per stream, heap ${kib(medianOf("gateway", "coldHeap"))} against ${kib(medianOf("passthrough", "coldHeap"))} KiB`,
);
console.log(
  `  again:         RSS ${kib(medianOf("gateway", "warmRss"))} against ${kib(medianOf("passthrough", "warmRss"))} KiB per stream, heap ${kib(medianOf("gateway", "warmHeap"))} against ${kib(medianOf("passthrough", "warmHeap"))} KiB`,
);
console.log(
  `  idle RSS ${mib(medianOf("gateway", "idleRss"))} against ${mib(medianOf("passthrough", "idleRss"))} MiB, at startup ${mib(medianOf("gateway", "startupRss"))} against ${mib(medianOf("passthrough", "startupRss"))} MiB`,
);

upstream.child.kill("SIGTERM");
await client.close();
cleanUp();
