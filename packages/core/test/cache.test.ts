import { setTimeout as delay } from "node:timers/promises";
import { type Cache, createMemoryCache, createRedisCache } from "@aigw/cache";
import { createMetrics } from "@aigw/metrics";
import { createOpenAICompatible } from "@aigw/provider";
import { createMemoryLimiter } from "@aigw/ratelimit";
import {
  type MockUpstream,
  type RedisServer,
  readChatStream,
  readSse,
  startMockUpstream,
  startRedis,
  waitFor,
} from "@aigw/testing";
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type GatewayCacheOptions, type GatewayOptions, hashApiKey } from "../src/index.js";
import { type RunningGateway, startGateway } from "./start-gateway.js";

let upstream: MockUpstream;
let redis: RedisServer;
let running: RunningGateway | undefined;
let store: Cache | undefined;
let prefixes = 0;

beforeAll(async () => {
  upstream = await startMockUpstream();
  redis = await startRedis();
});
afterAll(async () => {
  await upstream?.close();
  await redis?.stop();
});
afterEach(async () => {
  await running?.close();
  running = undefined;
  await store?.close();
  store = undefined;
  upstream.reset();
});

const stores: Record<string, () => Promise<Cache>> = {
  memory: async () => createMemoryCache(),
  redis: () =>
    createRedisCache({
      redis: redis.url,
      keyPrefix: `aigw:test:${process.pid}:${++prefixes}:`,
      commandTimeoutMs: 200,
    }),
};

const hello = {
  model: "gpt-4o-mini",
  messages: [
    { role: "system" as const, content: "Be brief." },
    { role: "user" as const, content: "hello there" },
  ],
  temperature: 0.2,
};

// biome-ignore lint/suspicious/noExplicitAny: response bodies are read field by field.
type Json = Record<string, any>;

interface Sent {
  status: number;
  cache: string | null;
  age: string | null;
  body: Json;
}

describe.each(Object.keys(stores))("response cache (%s store)", (storeName) => {
  async function start(
    cache: Partial<GatewayCacheOptions> = {},
    extra: Partial<GatewayOptions> = {},
  ): Promise<RunningGateway> {
    store = await (stores[storeName] as () => Promise<Cache>)();
    running = await startGateway({
      providers: {
        mock: createOpenAICompatible({ baseURL: upstream.baseURL, retry: { maxRetries: 0 } }),
      },
      models: {
        "gpt-*": { provider: "mock" },
        "text-embedding-*": { provider: "mock" },
        "dall-e-3": { provider: "mock" },
      },
      ...extra,
      cache: { store, ...cache },
    });
    return running;
  }

  async function post(
    path: string,
    body: unknown,
    headers: Record<string, string> = {},
    signal?: AbortSignal,
  ): Promise<Response> {
    return fetch(`${running?.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
      signal,
    });
  }

  async function send(path: string, body: unknown, headers?: Record<string, string>) {
    const response = await post(path, body, headers);
    return {
      status: response.status,
      cache: response.headers.get("x-aigw-cache"),
      age: response.headers.get("age"),
      body: (await response.json()) as Json,
    } satisfies Sent;
  }

  async function chat(body: OpenAI.ChatCompletionCreateParamsNonStreaming, client?: OpenAI) {
    const { data, response } = await (client ?? (running as RunningGateway).client).chat.completions
      .create(body)
      .withResponse();
    return { data, cache: response.headers.get("x-aigw-cache"), age: response.headers.get("age") };
  }

  async function streamEvents(body: unknown, headers?: Record<string, string>) {
    const response = await post("/v1/chat/completions", body, headers);
    const events: { event?: string; data: string }[] = [];
    for await (const event of readSse(response)) events.push(event);
    return { response, events };
  }

  it("serves the same request with its keys in another order as a HIT, without the upstream", async () => {
    await start();
    const first = await chat(hello);
    expect(first.cache).toBe("MISS");
    const reordered = {
      temperature: 0.2,
      messages: [
        { content: "Be brief.", role: "system" as const },
        { content: "hello there", role: "user" as const },
      ],
      model: "gpt-4o-mini",
    };
    const second = await chat(reordered);
    expect(second.cache).toBe("HIT");
    expect(second.age).toBe("0");
    expect(second.data).toEqual(first.data);
    expect(second.data.choices[0]?.message.content).toBe("mock: hello there");
    expect(upstream.requests).toHaveLength(1);
  });

  it("any change of the messages, temperature, tools or seed is a MISS", async () => {
    await start();
    const variants: OpenAI.ChatCompletionCreateParamsNonStreaming[] = [
      hello,
      { ...hello, messages: [{ role: "user", content: "hello there!" }] },
      { ...hello, temperature: 0.3 },
      { ...hello, seed: 7 },
      {
        ...hello,
        tools: [{ type: "function", function: { name: "lookup", parameters: { type: "object" } } }],
      },
    ];
    for (const variant of variants) expect((await chat(variant)).cache).toBe("MISS");
    expect(upstream.requests).toHaveLength(variants.length);
    for (const variant of variants) expect((await chat(variant)).cache).toBe("HIT");
    expect(upstream.requests).toHaveLength(variants.length);
  });

  it("keeps entries per tenant unless the route is shared", async () => {
    const tenants = {
      acme: { keyHashes: [hashApiKey("aigw-acme")] },
      globex: { keyHashes: [hashApiKey("aigw-globex")] },
    };
    await start(
      {},
      {
        tenants,
        models: {
          "gpt-4o-mini": { provider: "mock" },
          "gpt-shared": { provider: "mock", model: "gpt-4o-mini", cache: { shared: true } },
        },
      },
    );
    const client = (key: string) =>
      new OpenAI({ baseURL: `${running?.url}/v1`, apiKey: key, maxRetries: 0 });
    const [acme, globex] = [client("aigw-acme"), client("aigw-globex")];
    expect((await chat(hello, acme)).cache).toBe("MISS");
    expect((await chat(hello, acme)).cache).toBe("HIT");
    expect((await chat(hello, globex)).cache).toBe("MISS");
    const shared = { ...hello, model: "gpt-shared" };
    expect((await chat(shared, acme)).cache).toBe("MISS");
    expect((await chat(shared, globex)).cache).toBe("HIT");
    expect(upstream.requests).toHaveLength(3);
  });

  it("caches legacy completions and embeddings, never responses or images", async () => {
    await start();
    const embeddings = { model: "text-embedding-3-small", input: ["a", "b"] };
    const completions = { model: "gpt-3.5-turbo-instruct", prompt: "Say this" };
    const responses = { model: "gpt-4o-mini", input: "hi" };
    const images = { model: "dall-e-3", prompt: "a cat" };
    for (const [path, body] of [
      ["/v1/embeddings", embeddings],
      ["/v1/completions", completions],
    ] as const) {
      const miss = await send(path, body);
      const hit = await send(path, body);
      expect([miss.cache, hit.cache]).toEqual(["MISS", "HIT"]);
      expect(hit.body).toEqual(miss.body);
    }
    expect(upstream.requests).toHaveLength(2);
    for (const [path, body] of [
      ["/v1/responses", responses],
      ["/v1/images/generations", images],
    ] as const) {
      expect((await send(path, body)).cache).toBe("BYPASS");
      expect((await send(path, body)).cache).toBe("BYPASS");
    }
    expect(upstream.requests).toHaveLength(6);
  });

  it("never stores an error", async () => {
    await start();
    upstream.enqueue(
      { kind: "status", status: 500 },
      { kind: "status", status: 400 },
      { kind: "malformedJson" },
    );
    expect((await send("/v1/chat/completions", hello)).status).toBe(502);
    expect((await send("/v1/chat/completions", hello)).status).toBe(400);
    expect((await send("/v1/chat/completions", hello)).status).toBe(502);
    const after = await send("/v1/chat/completions", hello);
    expect([after.status, after.cache]).toEqual([200, "MISS"]);
    expect(upstream.requests).toHaveLength(4);
  });

  it("never stores a stream that was cut", async () => {
    await start();
    upstream.enqueue({ kind: "cutStream", afterEvents: 2 });
    const cut = await streamEvents({ ...hello, stream: true });
    expect(cut.response.headers.get("x-aigw-cache")).toBe("MISS");
    expect(JSON.parse(cut.events.at(-1)?.data ?? "{}").error).toBeDefined();
    const after = await streamEvents({ ...hello, stream: true });
    expect(after.response.headers.get("x-aigw-cache")).toBe("MISS");
    expect(after.events.at(-1)?.data).toBe("[DONE]");
    expect(upstream.requests).toHaveLength(2);
  });

  it("never stores a stream whose client went away", async () => {
    await start();
    const gate = upstream.holdStream();
    const controller = new AbortController();
    const response = await post(
      "/v1/chat/completions",
      { ...hello, stream: true },
      {},
      controller.signal,
    );
    const reader = readSse(response);
    await reader.next();
    await gate.reached;
    controller.abort();
    await waitFor(() => upstream.requests[0]?.clientClosed);
    gate.release();
    expect((await send("/v1/chat/completions", hello)).cache).toBe("MISS");
    expect(upstream.requests).toHaveLength(2);
  });

  it("stores a complete stream, replayed as a valid stream (usage only when asked) or as JSON", async () => {
    await start();
    const stream = await (running as RunningGateway).client.chat.completions.create({
      ...hello,
      stream: true,
    });
    const { text } = await readChatStream(stream);
    expect(text).toBe("mock: hello there");

    const replayed = await streamEvents({ ...hello, stream: true });
    expect(replayed.response.headers.get("x-aigw-cache")).toBe("HIT");
    expect(replayed.response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const data = replayed.events.map((event) => event.data);
    expect(data.at(-1)).toBe("[DONE]");
    const chunks = data.slice(0, -1).map((item) => JSON.parse(item));
    expect(chunks[0].choices[0].delta.role).toBe("assistant");
    expect(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? "").join("")).toBe(text);
    expect(chunks.at(-1).choices[0].finish_reason).toBe("stop");
    expect(chunks.every((chunk) => chunk.object === "chat.completion.chunk")).toBe(true);
    expect(chunks.some((chunk) => chunk.usage)).toBe(false);

    const withUsage = await streamEvents({
      ...hello,
      stream: true,
      stream_options: { include_usage: true },
    });
    const usageChunk = JSON.parse(withUsage.events.at(-2)?.data ?? "{}");
    expect(usageChunk.choices).toEqual([]);
    expect(usageChunk.usage.completion_tokens).toBe(3);

    const json = await chat(hello);
    expect(json.cache).toBe("HIT");
    expect(json.data.object).toBe("chat.completion");
    expect(json.data.choices[0]?.message).toMatchObject({ role: "assistant", content: text });
    expect(json.data.choices[0]?.finish_reason).toBe("stop");
    expect(json.data.usage?.completion_tokens).toBe(3);
    expect(upstream.requests).toHaveLength(1);
  });

  it("replays a JSON entry as a stream the SDK reads, for chat and legacy completions", async () => {
    await start();
    const first = await chat(hello);
    const stream = await (running as RunningGateway).client.chat.completions
      .create({ ...hello, stream: true, stream_options: { include_usage: true } })
      .withResponse();
    expect(stream.response.headers.get("x-aigw-cache")).toBe("HIT");
    const { text, usage } = await readChatStream(stream.data);
    expect(text).toBe(first.data.choices[0]?.message.content);
    expect(usage).toEqual(first.data.usage);

    const prompt = { model: "gpt-3.5-turbo-instruct", prompt: "Say this" };
    const completion = await (running as RunningGateway).client.completions.create(prompt);
    const completionStream = await (running as RunningGateway).client.completions.create({
      ...prompt,
      stream: true,
    });
    let completionText = "";
    for await (const chunk of completionStream) completionText += chunk.choices[0]?.text ?? "";
    expect(completionText).toBe(completion.choices[0]?.text);
    expect(upstream.requests).toHaveLength(2);
  });

  it("Cache-Control: no-cache skips the lookup but stores; no-store does neither", async () => {
    await start();
    expect((await send("/v1/chat/completions", hello)).cache).toBe("MISS");
    const refreshed = await send("/v1/chat/completions", hello, { "cache-control": "no-cache" });
    expect(refreshed.cache).toBe("BYPASS");
    expect(upstream.requests).toHaveLength(2);
    const hit = await send("/v1/chat/completions", hello);
    expect(hit.cache).toBe("HIT");
    expect(hit.body.id).toBe(refreshed.body.id);

    const other = { ...hello, temperature: 1 };
    const unstored = await send("/v1/chat/completions", other, { "cache-control": "no-store" });
    expect(unstored.cache).toBe("BYPASS");
    expect((await send("/v1/chat/completions", other)).cache).toBe("MISS");
    expect(upstream.requests).toHaveLength(4);
  });

  it("Age counts the seconds since the entry was stored", async () => {
    await start();
    await send("/v1/chat/completions", hello);
    await delay(1100);
    const hit = await send("/v1/chat/completions", hello);
    expect([hit.cache, hit.age]).toEqual(["HIT", "1"]);
  });

  it("x-aigw-cache-ttl sets the entry's time to live, capped by maxTtlMs", async () => {
    await start({ ttlMs: 60_000, maxTtlMs: 60_000 });
    await send("/v1/chat/completions", hello, { "x-aigw-cache-ttl": "1" });
    expect((await send("/v1/chat/completions", hello)).cache).toBe("HIT");
    await delay(1100);
    expect((await send("/v1/chat/completions", hello)).cache).toBe("MISS");
    const invalid = await send("/v1/chat/completions", hello, { "x-aigw-cache-ttl": "soon" });
    expect([invalid.status, invalid.body.error.code]).toEqual([400, "invalid_cache_ttl"]);

    await running?.close();
    await store?.close();
    // The default TTL is 200 ms; a request may ask for more, but no more than 600 ms.
    await start({ ttlMs: 200, maxTtlMs: 600 });
    const capped = { ...hello, temperature: 0.9 };
    await send("/v1/chat/completions", capped, { "x-aigw-cache-ttl": "3600" });
    await delay(350);
    expect((await send("/v1/chat/completions", capped)).cache).toBe("HIT");
    await delay(400);
    expect((await send("/v1/chat/completions", capped)).cache).toBe("MISS");
  });

  it("coalesces identical concurrent misses into one upstream call", async () => {
    await start();
    upstream.enqueue({ kind: "slowHeaders", delayMs: 300 });
    const results = await Promise.all(Array.from({ length: 5 }, () => chat(hello)));
    expect(upstream.requests).toHaveLength(1);
    expect(results.map((result) => result.cache).sort()).toEqual([
      "HIT",
      "HIT",
      "HIT",
      "HIT",
      "MISS",
    ]);
    for (const result of results) expect(result.data).toEqual(results[0]?.data);
  });

  it("beyond maxWaiters, requests make their own call", async () => {
    await start({ maxWaiters: 1 });
    upstream.enqueue({ kind: "slowHeaders", delayMs: 300 }, { kind: "slowHeaders", delayMs: 300 });
    await Promise.all(Array.from({ length: 3 }, () => chat(hello)));
    expect(upstream.requests).toHaveLength(2);
  });

  it("keeps the call going when the leader's client leaves while another waits, and stores it", async () => {
    let arrived = 0;
    await start({}, { hooks: [{ beforeRequest: () => void arrived++ }] });
    const gate = upstream.holdStream();
    const leaving = new AbortController();
    const leader = await post(
      "/v1/chat/completions",
      { ...hello, stream: true },
      {},
      leaving.signal,
    );
    expect(leader.headers.get("x-aigw-cache")).toBe("MISS");
    await readSse(leader).next();
    await gate.reached;
    const waiting = send("/v1/chat/completions", hello);
    await waitFor(() => arrived === 2);
    await delay(100); // the waiter's lookup, then joining the call in flight
    leaving.abort();
    await delay(200);
    expect(upstream.requests[0]?.clientClosed).toBe(false);
    gate.release();
    const waiter = await waiting;
    expect([waiter.status, waiter.cache]).toEqual([200, "HIT"]);
    expect(waiter.body.choices[0].message.content).toBe("mock: hello there");
    expect((await send("/v1/chat/completions", hello)).cache).toBe("HIT");
    expect(upstream.requests).toHaveLength(1);
  });

  it("cancels the call once every waiter, the leader's client included, is gone", async () => {
    let arrived = 0;
    await start({}, { hooks: [{ beforeRequest: () => void arrived++ }] });
    upstream.enqueue({ kind: "stall" });
    const controllers = [new AbortController(), new AbortController()];
    const requests = controllers.map((controller) =>
      post("/v1/chat/completions", hello, {}, controller.signal).catch(() => undefined),
    );
    await waitFor(() => arrived === 2 && upstream.requests.length === 1);
    await delay(100);
    controllers[0]?.abort();
    await delay(200);
    expect(upstream.requests[0]?.clientClosed).toBe(false);
    controllers[1]?.abort();
    await waitFor(() => upstream.requests[0]?.clientClosed);
    await Promise.all(requests);
    expect(upstream.requests).toHaveLength(1);
  });

  it("counts hits and misses per endpoint", async () => {
    const metrics = createMetrics();
    await start({}, { metrics });
    await send("/v1/chat/completions", hello);
    await send("/v1/chat/completions", hello);
    await send("/v1/chat/completions", hello);
    await send("/v1/chat/completions", hello, { "cache-control": "no-store" });
    const exposition = await metrics.expose();
    expect(exposition).toContain('aigw_cache_hits_total{endpoint="chat/completions"} 2');
    expect(exposition).toContain('aigw_cache_misses_total{endpoint="chat/completions"} 1');
    // Two answers came from upstream and two from the cache: their tokens are counted apart.
    const tokens = (metric: string) =>
      Number(
        new RegExp(`^${metric}\\{model="gpt-4o-mini",type="total"\\} (\\d+)$`, "m").exec(
          exposition,
        )?.[1],
      );
    expect(tokens("aigw_tokens_used_total")).toBeGreaterThan(0);
    expect(tokens("aigw_cache_tokens_served_total")).toBe(tokens("aigw_tokens_used_total"));
  });

  it("does not charge hits against quotas, unless chargeHits is on", async () => {
    for (const chargeHits of [false, true]) {
      const limiter = createMemoryLimiter({ quota: { limit: 1_000_000, period: "day" } });
      await start({ chargeHits }, { limits: { limiter } });
      const used = async () => {
        const response = await fetch(`${running?.url}/v1/usage`);
        return ((await response.json()) as Json).quota.used as number;
      };
      const miss = await chat(hello);
      const tokens = miss.data.usage?.total_tokens ?? 0;
      expect(tokens).toBeGreaterThan(0);
      await waitFor(async () => (await used()) === tokens);
      expect((await chat(hello)).cache).toBe("HIT");
      await delay(50);
      expect(await used()).toBe(chargeHits ? 2 * tokens : tokens);
      await running?.close();
      running = undefined;
      await store?.close();
      await limiter.close();
    }
  });

  it("hits skip the request loop; response hooks run on them, over what the upstream sent", async () => {
    const attempts: number[] = [];
    const seen: string[] = [];
    await start(
      {},
      {
        hooks: [
          {
            onAttempt: (event) => void attempts.push(event.attempt),
            afterResponse(response) {
              if (response.stream) return;
              const body = JSON.parse(Buffer.from(response.body as Uint8Array).toString());
              seen.push(body.choices[0].message.content);
              body.choices[0].message.content = body.choices[0].message.content.toUpperCase();
              response.body = JSON.stringify(body);
            },
            onChunk(event) {
              return event.data.includes("mock:")
                ? { ...event, raw: event.raw.replace("mock:", "MOCK:") }
                : event;
            },
          },
        ],
      },
    );
    expect((await chat(hello)).data.choices[0]?.message.content).toBe("MOCK: HELLO THERE");
    const hit = await chat(hello);
    expect([hit.cache, hit.data.choices[0]?.message.content]).toEqual(["HIT", "MOCK: HELLO THERE"]);
    expect(seen).toEqual(["mock: hello there", "mock: hello there"]);
    const replayed = await streamEvents({ ...hello, stream: true });
    expect(replayed.events.map((event) => event.data).join("")).toContain("MOCK: hello there");
    expect(attempts).toEqual([1]);
  });

  it("writes the cache status into the access log", async () => {
    const lines: Json[] = [];
    const logger = {
      info: (line: object) => void lines.push(line),
      warn: (line: object) => void lines.push(line),
      error: (line: object) => void lines.push(line),
    };
    await start({}, { logger });
    await send("/v1/chat/completions", hello);
    await send("/v1/chat/completions", hello);
    await send("/v1/responses", { model: "gpt-4o-mini", input: "hi" });
    expect(lines.map((line) => line.cache)).toEqual(["MISS", "HIT", "BYPASS"]);
  });

  it("is turned on per route, and off per route", async () => {
    await start(
      { enabled: false },
      {
        models: {
          "gpt-4o-mini": { provider: "mock", cache: true },
          "gpt-4o": { provider: "mock" },
        },
      },
    );
    await send("/v1/chat/completions", hello);
    expect((await send("/v1/chat/completions", hello)).cache).toBe("HIT");
    const other = { ...hello, model: "gpt-4o" };
    expect((await send("/v1/chat/completions", other)).cache).toBe("BYPASS");
    await running?.close();
    await store?.close();

    await start({}, { models: { "gpt-*": { provider: "mock", cache: false } } });
    await send("/v1/chat/completions", hello);
    expect((await send("/v1/chat/completions", hello)).cache).toBe("BYPASS");
    expect(upstream.requests).toHaveLength(4);
  });

  if (storeName === "redis") {
    it("a Redis that stopped answering turns lookups into misses without stalling requests", async () => {
      await start();
      redis.pause();
      try {
        const startedAt = Date.now();
        const answer = await chat(hello);
        expect(answer.cache).toBe("MISS");
        expect(Date.now() - startedAt).toBeLessThan(2_000);
      } finally {
        redis.resume();
      }
      await waitFor(async () => (await chat(hello)).cache === "HIT", { timeoutMs: 10_000 });
    });
  }
});

describe("response cache off", () => {
  it("is off without the cache option: no x-aigw-cache header, every request goes upstream", async () => {
    running = await startGateway({
      providers: { mock: createOpenAICompatible({ baseURL: upstream.baseURL }) },
      models: { "gpt-*": { provider: "mock" } },
    });
    for (let index = 0; index < 2; index++) {
      const { response } = await running.client.chat.completions.create(hello).withResponse();
      expect(response.headers.get("x-aigw-cache")).toBeNull();
    }
    expect(upstream.requests).toHaveLength(2);
  });
});
