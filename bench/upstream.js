// The mock OpenAI upstream in its own process, so it does not share an event loop with what
// is measured. Prints its base URL on the first line of stdout. BENCH_EVENT_DELAY_MS makes
// every stream wait that long between its events (bench/memory.js holds streams open so).
import { startMockUpstream } from "@aigw/testing";

const delayMs = Number(process.env.BENCH_EVENT_DELAY_MS ?? 0);
const upstream = await startMockUpstream({
  // Over a benchmark's millions of requests, recording them would grow without bound.
  recordRequests: false,
  ...(delayMs > 0 ? { defaultBehaviour: { kind: "delayEvents", delayMs } } : {}),
});
process.stdout.write(`${upstream.url}\n`);
process.on("SIGTERM", () => upstream.close().then(() => process.exit(0)));
