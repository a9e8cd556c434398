import { readFile } from "node:fs/promises";
import { gzipSync } from "node:zlib";
import { hashApiKey } from "@aigw/core";
import { type MockUpstream, startMockUpstream } from "@aigw/testing";
import fc from "fast-check";
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runServer, type ServerProcess, writeConfig } from "./run-server.js";

// A few thousand cases in every `pnpm test`; AIGW_FUZZ_RUNS=100000 for a long run, and
// AIGW_FUZZ_SEED to explore other cases than the fixed ones.
const runs = Number(process.env.AIGW_FUZZ_RUNS ?? 2_000);
const seed = Number(process.env.AIGW_FUZZ_SEED ?? 20_261_130);
const key = "aigw-fuzz-key";
const responseTimeoutMs = 15_000;

let upstream: MockUpstream;
let server: ServerProcess;
const agent = new Agent({
  connections: 4,
  headersTimeout: responseTimeoutMs,
  bodyTimeout: responseTimeoutMs,
});

beforeAll(async () => {
  upstream = await startMockUpstream();
  const file = await writeConfig(
    [
      "gateway: { maxBodyBytes: 1048576, bodyIdleTimeoutMs: 5000 }",
      "providers:",
      `  up: { type: openai-compatible, baseURL: '${upstream.baseURL}', retry: { maxRetries: 0 } }`,
      "  echo: { type: echo }",
      "models:",
      "  m: { provider: up }",
      "  fast: { provider: up, model: m }",
      "  'gpt-*': { provider: up }",
      "  'up/*': { provider: up }",
      "  echo: { provider: echo }",
      "tenants:",
      `  acme: { keys: ['${hashApiKey(key)}'] }`,
      "limits:",
      "  keyBy: tenant+user",
      "  userHeader: x-user-id",
      "  perUser: { requestsPerSecond: 100000, tokensPerMinute: 100000000 }",
      "  default: { requestsPerSecond: 100000, tokensPerMinute: 100000000 }",
      "cache: { maxItems: 1000 }",
    ].join("\n"),
  );
  server = await runServer(["--config", file]);
});

afterAll(async () => {
  await server?.stop();
  await upstream?.close();
  await agent.close();
});

async function rssMiB(): Promise<number> {
  const status = await readFile(`/proc/${server.child.pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]) / 1024;
}

/** Mostly what a client would send, sometimes anything: so most requests get past the first checks. */
function mostly<T>(usual: fc.Arbitrary<T>, unusual: fc.Arbitrary<T>) {
  return fc.oneof({ weight: 8, arbitrary: usual }, { weight: 2, arbitrary: unusual });
}

const printable = fc
  .string({ unit: "grapheme-ascii", maxLength: 300 })
  .map((text) => text.replace(/[^\x20-\x7e]/g, ""));
const anyText = fc.string({ unit: "binary", maxLength: 200 });
const models = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom("m", "fast", "gpt-4o-mini", "up/m", "echo") },
  {
    weight: 2,
    arbitrary: fc.oneof(
      fc.constantFrom("up/", "nope", ""),
      anyText,
      fc.string({ minLength: 250, maxLength: 400 }),
    ),
  },
);

/** Nesting of arrays and objects, sometimes far past any limit. */
const deep = fc
  .tuple(fc.integer({ min: 1, max: 400 }), fc.boolean())
  .map(([depth, arrays]) =>
    arrays
      ? `${"[".repeat(depth)}${"]".repeat(depth)}`
      : `${'{"a":'.repeat(depth)}0${"}".repeat(depth)}`,
  );

const content = fc.oneof(
  anyText,
  fc.array(
    fc.oneof(
      fc.record({ type: fc.constant("text"), text: anyText }),
      fc.record({
        type: fc.constantFrom("image_url", "input_audio", "x"),
        image_url: fc.jsonValue(),
      }),
      fc.jsonValue(),
    ),
    { maxLength: 4 },
  ),
  fc.jsonValue(),
);

const chatBody = fc
  .record(
    {
      model: models,
      messages: fc.oneof(
        { weight: 4, arbitrary: fc.constant([{ role: "user", content: "hello" }]) },
        fc.array(
          fc.record(
            {
              role: fc.oneof(fc.constantFrom("user", "system", "assistant", "tool"), anyText),
              content,
            },
            { requiredKeys: [] },
          ),
          { maxLength: 5 },
        ),
        fc.jsonValue(),
      ),
      stream: mostly(fc.boolean(), fc.jsonValue()),
      stream_options: fc.oneof(fc.record({ include_usage: fc.boolean() }), fc.jsonValue()),
      max_tokens: mostly(
        fc.integer({ min: 1, max: 4096 }),
        fc.oneof(fc.integer(), fc.double(), fc.jsonValue()),
      ),
      user: fc.oneof(anyText, fc.string({ minLength: 250, maxLength: 300 })),
      input: fc.jsonValue(),
      prompt: fc.jsonValue(),
      metadata: fc.jsonValue(),
      tools: fc.jsonValue(),
    },
    { requiredKeys: ["model", "messages"] },
  )
  .map((body) => JSON.stringify(body));

const bodies = fc.oneof(
  { weight: 5, arbitrary: chatBody },
  { weight: 1, arbitrary: fc.json() },
  { weight: 1, arbitrary: anyText },
  {
    weight: 1,
    arbitrary: deep.map(
      (nested) => `{"model":"m","messages":[{"role":"user","content":${nested}}]}`,
    ),
  },
  { weight: 1, arbitrary: fc.constant("") },
);

const modelPaths = [
  "/v1/chat/completions",
  "/v1/completions",
  "/v1/embeddings",
  "/v1/responses",
  "/v1/images/generations",
  "/v1/chat/completions/",
  "/v1/chat/completions?stream=true",
];
const paths = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom(...modelPaths) },
  { weight: 2, arbitrary: fc.constantFrom("/v1/models", "/v1/usage", "/health", "/metrics") },
  { weight: 1, arbitrary: fc.webPath() },
  { weight: 1, arbitrary: printable.map((text) => `/${encodeURIComponent(text)}`) },
);

const headers = fc.record(
  {
    "content-type": mostly(
      fc.constantFrom("application/json", "application/json; charset=utf-8"),
      fc.oneof(
        fc.constantFrom(
          "text/plain",
          "application/x-www-form-urlencoded",
          "application/vnd.api+json",
        ),
        printable,
      ),
    ),
    "content-encoding": mostly(
      fc.constant(undefined),
      fc.constantFrom("gzip", "br", "deflate", "identity", "gzip, gzip", "zstd", "x"),
    ),
    authorization: mostly(
      fc.constant(`Bearer ${key}`),
      fc.oneof(fc.constantFrom(`bearer ${key}`, "Bearer", "Basic abc"), printable),
    ),
    "x-api-key": fc.oneof(fc.constant(key), printable),
    "x-request-id": printable,
    traceparent: fc.oneof(
      fc.constant("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
      printable,
    ),
    tracestate: printable,
    "x-user-id": printable,
    "cache-control": fc.constantFrom("no-cache", "no-store", "max-age=0"),
    "x-aigw-cache-ttl": mostly(
      fc.constant(undefined),
      fc.oneof(fc.constantFrom("1", "60", "0"), printable),
    ),
    origin: printable,
    "openai-organization": printable,
  },
  { requiredKeys: ["content-type", "authorization", "content-encoding", "x-aigw-cache-ttl"] },
);

const requests = fc
  .record({
    path: paths,
    otherMethod: mostly(
      fc.constant(undefined),
      fc.constantFrom("GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS"),
    ),
    headers,
    body: bodies,
    gzipBody: fc.boolean(),
  })
  .map(({ otherMethod, ...sample }) => ({
    ...sample,
    method: otherMethod ?? (modelPaths.includes(sample.path) ? "POST" : "GET"),
  }));

describe("fuzzing the server with bodies, headers and paths", () => {
  it(`${runs} requests: never a 500, never a hang, never a crash, memory flat once warm`, async () => {
    const baseline = await rssMiB();
    let halfway: number | undefined;
    let count = 0;
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(requests, async (sample) => {
        if (++count === Math.floor(runs / 2)) halfway = await rssMiB();
        const hasBody = sample.method !== "GET" && sample.method !== "HEAD";
        const encoded =
          hasBody && sample.gzipBody && sample.headers["content-encoding"] === "gzip"
            ? gzipSync(sample.body)
            : sample.body;
        const response = await request(`${server.url}${sample.path}`, {
          method: sample.method as "POST",
          headers: Object.fromEntries(
            Object.entries(sample.headers).filter(([, value]) => value !== undefined),
          ) as Record<string, string>,
          body: hasBody ? encoded : undefined,
          dispatcher: agent,
        });
        const text = await response.body.text();
        statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
        expect(response.statusCode, text.slice(0, 500)).not.toBe(500);
        expect(text).not.toContain("internal_error");
      }),
      { numRuns: runs, seed, endOnFailure: true },
    );
    expect(server.child.exitCode).toBeNull();
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    // Some of every kind of answer, so the run went past the first checks.
    for (const status of [200, 400, 404, 415])
      expect(statuses.get(status) ?? 0, `${status}`).toBeGreaterThan(0);
    // Memory grows while code warms up and caches fill, then stays: the second half of the run
    // may add little to what the first half took.
    const end = await rssMiB();
    expect(end - baseline).toBeLessThan(200);
    expect(end - (halfway ?? end)).toBeLessThan(40);
  }, 600_000);
});
