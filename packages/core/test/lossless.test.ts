import { createMemoryCache } from "@aigw/cache";
import { createOpenAICompatible, type Provider } from "@aigw/provider";
import { type MockUpstream, readSse, startMockUpstream } from "@aigw/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { GatewayOptions } from "../src/index.js";
import { type RunningGateway, startGateway } from "./start-gateway.js";

let upstream: MockUpstream;
let running: RunningGateway | undefined;

beforeAll(async () => {
  upstream = await startMockUpstream();
});
afterAll(() => upstream?.close());
afterEach(async () => {
  await running?.close();
  running = undefined;
  upstream.reset();
});

function start(extra: Partial<GatewayOptions> = {}) {
  return startGateway({
    providers: {
      mock: createOpenAICompatible({ baseURL: upstream.baseURL, retry: { maxRetries: 0 } }),
    },
    models: {
      "gpt-*": { provider: "mock" },
      fast: { provider: "mock", model: "gpt-4o-mini" },
      "mock/*": { provider: "mock" },
    },
    ...extra,
  });
}

function post(text: string, path = "/v1/chat/completions") {
  return fetch(`${running?.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: text,
  });
}

const seedBody = (model: string, seed: string, stream = false) =>
  `{"model":"${model}","seed":${seed},"stream":${stream},"messages":[{"role":"user","content":"exact"}]}`;

describe("numbers JSON cannot hold exactly", () => {
  it.each([
    ["an alias", "fast", false],
    ["a provider prefix", "mock/gpt-4o-mini", false],
    ["a stream (the gateway adds stream_options)", "gpt-4o-mini", true],
    ["an aliased stream", "fast", true],
  ] as const)("reach the upstream as written through %s", async (_route, model, stream) => {
    running = await start();
    const response = await post(seedBody(model, "9007199254740993", stream));
    expect(response.status).toBe(200);
    await response.text();
    const sent = upstream.requests[0]?.rawBody ?? "";
    expect(sent).toContain('"seed":9007199254740993');
    expect(JSON.parse(sent).model).toBe("gpt-4o-mini");
  });

  it("give different cache keys: seed ...993 is not answered from seed ...992's entry", async () => {
    running = await start({ cache: { store: createMemoryCache() } });
    const first = await post(seedBody("gpt-4o-mini", "9007199254740992"));
    expect(first.headers.get("x-aigw-cache")).toBe("MISS");
    await first.text();
    const other = await post(seedBody("gpt-4o-mini", "9007199254740993"));
    expect(other.headers.get("x-aigw-cache")).toBe("MISS");
    await other.text();
    const again = await post(seedBody("gpt-4o-mini", "9007199254740993"));
    expect(again.headers.get("x-aigw-cache")).toBe("HIT");
    expect(upstream.requests).toHaveLength(2);
  });
});

describe("the protocol seam", () => {
  it("sends the client's own text only to a target that speaks the client's protocol", async () => {
    const openai = createOpenAICompatible({ baseURL: upstream.baseURL, retry: { maxRetries: 0 } });
    // The same upstream, declared as speaking another protocol: it is sent the canonical body.
    const foreign: Provider = {
      ...openai,
      protocols: ["another"],
      send: (request, options) => openai.send(request, options),
    };
    running = await startGateway({
      providers: { openai, foreign },
      models: { native: { provider: "openai" }, translated: { provider: "foreign" } },
    });
    for (const model of ["native", "translated"]) {
      const response = await post(seedBody(model, "9007199254740993"));
      expect(response.status).toBe(200);
      await response.text();
    }
    const [native, translated] = upstream.requests.map((request) => request.rawBody);
    expect(native).toContain('"seed":9007199254740993');
    expect(translated).toContain('"seed":9007199254740992');
  });
});

describe("compressed upstream answers", () => {
  it.each(["gzip", "deflate", "br"] as const)(
    "are decoded: %s JSON with its usage",
    async (encoding) => {
      running = await start();
      upstream.enqueue({ kind: "compressed", encoding });
      const response = await post(seedBody("gpt-4o-mini", "1"));
      expect(response.status).toBe(200);
      const body = (await response.json()) as {
        choices: { message: { content: string } }[];
        usage: object;
      };
      expect(body.choices[0]?.message.content).toBe("mock: exact");
      expect(body.usage).toBeDefined();
      expect(response.headers.get("content-encoding")).toBeNull();
    },
  );

  it("keep an error's message when the error is compressed", async () => {
    running = await start();
    upstream.enqueue({
      kind: "status",
      status: 400,
      encoding: "gzip",
      body: { error: { message: "max_tokens is too large", type: "invalid_request_error" } },
    });
    const response = await post(seedBody("gpt-4o-mini", "1"));
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { message: string } }).error.message).toBe(
      "max_tokens is too large",
    );
  });

  it("still reach the client event by event when the stream is compressed", async () => {
    running = await start();
    upstream.enqueue({ kind: "compressed", encoding: "gzip", delayMs: 150 });
    const started = performance.now();
    const response = await post(seedBody("gpt-4o-mini", "1", true));
    const arrivals: number[] = [];
    let text = "";
    for await (const event of readSse(response)) {
      arrivals.push(performance.now() - started);
      const chunk = event.data === "[DONE]" ? undefined : JSON.parse(event.data);
      text += chunk?.choices?.[0]?.delta?.content ?? "";
    }
    expect(text).toBe("mock: exact");
    // Events came as they were sent, not all at the end.
    expect((arrivals.at(-1) ?? 0) - (arrivals[0] ?? 0)).toBeGreaterThan(300);
  });
});

describe("what the gateway adds on its own", () => {
  it("never fails a request with an attempt to spare: an upstream that refuses stream_options gets the client's request, and never the field again", async () => {
    running = await start({ models: { "gpt-*": { provider: "mock", maxAttempts: 2 } } });
    upstream.enqueue({
      kind: "status",
      status: 400,
      body: {
        error: {
          message: "Unrecognized request argument supplied: stream_options",
          type: "invalid_request_error",
        },
      },
    });
    const stream = seedBody("gpt-4o-mini", "1", true);
    const first = await post(stream);
    expect(first.status).toBe(200);
    // The second call counts in the request's attempt budget.
    expect(first.headers.get("x-aigw-attempts")).toBe("2");
    expect(await first.text()).toContain("[DONE]");
    const [refused, plain] = upstream.requests;
    expect(JSON.parse(refused?.rawBody ?? "{}").stream_options).toEqual({ include_usage: true });
    expect(JSON.parse(plain?.rawBody ?? "{}").stream_options).toBeUndefined();
    expect(await (await post(stream)).text()).toContain("[DONE]");
    expect(JSON.parse(upstream.requests[2]?.rawBody ?? "{}").stream_options).toBeUndefined();
  });
});

// biome-ignore lint/suspicious/noExplicitAny: answers are read field by field.
type Json = Record<string, any>;

const logprob = (token: string, value: number) => ({
  token,
  logprob: value,
  bytes: [...Buffer.from(token)],
  top_logprobs: [{ token, logprob: value, bytes: [...Buffer.from(token)] }],
});

const chatChunk = (choice: Json | undefined, extra: Json = {}) => ({
  id: "chatcmpl-exact",
  object: "chat.completion.chunk",
  created: 1764460800,
  model: "gpt-4o-mini",
  system_fingerprint: "fp_exact",
  x_vendor_trace: "kept",
  choices: choice ? [choice] : [],
  ...extra,
});

/** Two choices with reasoning, logprobs and fields no OpenAI type has, interleaved as OpenAI sends them. */
const twoChoiceStream = [
  chatChunk({
    index: 0,
    delta: { role: "assistant", content: "" },
    logprobs: null,
    finish_reason: null,
  }),
  chatChunk({
    index: 1,
    delta: { role: "assistant", content: "" },
    logprobs: null,
    finish_reason: null,
  }),
  chatChunk({ index: 0, delta: { reasoning_content: "Let me think. " }, finish_reason: null }),
  chatChunk({ index: 0, delta: { reasoning_content: "6*7." }, finish_reason: null }),
  chatChunk({
    index: 0,
    delta: { content: "4" },
    logprobs: { content: [logprob("4", -0.1)], refusal: null },
  }),
  chatChunk({
    index: 1,
    delta: { content: "Forty" },
    logprobs: { content: [logprob("Forty", -0.5)], refusal: null },
  }),
  chatChunk({
    index: 0,
    delta: { content: "2" },
    logprobs: { content: [logprob("2", -0.2)], refusal: null },
  }),
  chatChunk({
    index: 1,
    delta: { content: "-two", x_vendor_score: { safe: true } },
    logprobs: { content: [logprob("-two", -0.6)], refusal: null },
  }),
  chatChunk({ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }),
  chatChunk({ index: 1, delta: {}, logprobs: null, finish_reason: "length", stop_reason: 128 }),
  chatChunk(undefined, { usage: { prompt_tokens: 9, completion_tokens: 6, total_tokens: 15 } }),
  "[DONE]",
];

/** What a client learns from each choice of a chat stream, in index order. */
function readChoices(chunks: Json[]) {
  const choices: Json[] = [];
  for (const chunk of chunks) {
    for (const part of chunk.choices ?? []) {
      choices[part.index] ??= { content: "", reasoning: "", tokens: [], vendor: [] };
      const seen = choices[part.index] as Json;
      seen.content += part.delta?.content ?? "";
      seen.reasoning += part.delta?.reasoning_content ?? "";
      seen.tokens.push(...(part.logprobs?.content ?? []));
      if (part.delta?.x_vendor_score) seen.vendor.push(part.delta.x_vendor_score);
      if (part.finish_reason) seen.finish = part.finish_reason;
      if (part.stop_reason !== undefined && part.stop_reason !== null) seen.stop = part.stop_reason;
    }
  }
  return choices;
}

async function streamChunks(body: Json, path = "/v1/chat/completions") {
  const response = await post(JSON.stringify({ ...body, stream: true }), path);
  const chunks: Json[] = [];
  for await (const event of readSse(response)) {
    if (event.data !== "[DONE]") chunks.push(JSON.parse(event.data));
  }
  return { cache: response.headers.get("x-aigw-cache"), chunks };
}

async function answer(body: Json, path = "/v1/chat/completions") {
  const response = await post(JSON.stringify(body), path);
  return { cache: response.headers.get("x-aigw-cache"), body: (await response.json()) as Json };
}

describe("answers from the cache", () => {
  const question = {
    model: "gpt-4o-mini",
    n: 2,
    logprobs: true,
    top_logprobs: 1,
    messages: [{ role: "user", content: "What is 6*7?" }],
  };

  it("replay a stream's every field, as a stream and as JSON: logprobs per choice, reasoning, unknown fields", async () => {
    running = await start({ cache: { store: createMemoryCache() } });
    upstream.enqueue({ kind: "events", events: twoChoiceStream });
    const live = await streamChunks(question);
    expect(live.cache).toBe("MISS");
    const sent = readChoices(live.chunks);
    expect(sent[0]).toMatchObject({ content: "42", reasoning: "Let me think. 6*7." });
    expect(sent[0]?.tokens).toHaveLength(2);

    const replayed = await streamChunks(question);
    expect(replayed.cache).toBe("HIT");
    expect(readChoices(replayed.chunks)).toEqual(sent);
    expect(replayed.chunks.every((chunk) => chunk.x_vendor_trace === "kept")).toBe(true);

    const json = await answer(question);
    expect(json.cache).toBe("HIT");
    expect(json.body).toMatchObject({
      id: "chatcmpl-exact",
      object: "chat.completion",
      system_fingerprint: "fp_exact",
      x_vendor_trace: "kept",
      usage: { prompt_tokens: 9, completion_tokens: 6 },
    });
    const [first, second] = json.body.choices;
    expect(first).toEqual({
      index: 0,
      message: {
        role: "assistant",
        content: "42",
        refusal: null,
        reasoning_content: "Let me think. 6*7.",
      },
      logprobs: { content: sent[0]?.tokens, refusal: null },
      finish_reason: "stop",
    });
    expect(second).toMatchObject({
      message: { content: "Forty-two", x_vendor_score: { safe: true } },
      logprobs: { content: sent[1]?.tokens },
      finish_reason: "length",
      stop_reason: 128,
    });
    expect(upstream.requests).toHaveLength(1);
  });

  it("replay a JSON answer's every field as a stream", async () => {
    running = await start({ cache: { store: createMemoryCache() } });
    const choice = (index: number, content: string, tokens: Json[]) => ({
      index,
      message: {
        role: "assistant",
        content,
        refusal: null,
        reasoning_content: `thought ${index}`,
        annotations: [],
        x_vendor_score: { index },
      },
      logprobs: { content: tokens, refusal: null },
      finish_reason: "stop",
    });
    const stored = {
      id: "chatcmpl-json",
      object: "chat.completion",
      created: 1764460800,
      model: "gpt-4o-mini",
      choices: [
        choice(0, "42", [logprob("42", -0.1)]),
        choice(1, "Forty-two", [logprob("Forty", -0.5), logprob("-two", -0.6)]),
      ],
      usage: { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 },
      x_vendor_trace: "kept",
    };
    upstream.enqueue({ kind: "status", status: 200, body: stored });
    expect((await answer(question)).body).toEqual(stored);

    const replayed = await streamChunks(question);
    expect(replayed.cache).toBe("HIT");
    expect(readChoices(replayed.chunks)).toEqual([
      {
        content: "42",
        reasoning: "thought 0",
        tokens: stored.choices[0]?.logprobs.content,
        vendor: [{ index: 0 }],
        finish: "stop",
      },
      {
        content: "Forty-two",
        reasoning: "thought 1",
        tokens: stored.choices[1]?.logprobs.content,
        vendor: [{ index: 1 }],
        finish: "stop",
      },
    ]);
    expect(replayed.chunks[0]?.x_vendor_trace).toBe("kept");
    expect(upstream.requests).toHaveLength(1);
  });

  it("keep legacy completions' logprobs: tokens, token_logprobs, top_logprobs and text_offset", async () => {
    running = await start({ cache: { store: createMemoryCache() } });
    const part = (text: string, offset: number, value: number, finish: string | null = null) => ({
      id: "cmpl-exact",
      object: "text_completion",
      created: 1764460800,
      model: "gpt-3.5-turbo-instruct",
      choices: [
        {
          text,
          index: 0,
          logprobs: {
            tokens: [text],
            token_logprobs: [value],
            top_logprobs: [{ [text]: value }],
            text_offset: [offset],
          },
          finish_reason: finish,
        },
      ],
    });
    upstream.enqueue({
      kind: "events",
      events: [part(" 4", 8, -0.1), part("2", 10, -0.2), part(".", 11, -0.3, "stop"), "[DONE]"],
    });
    const prompt = { model: "gpt-3.5-turbo-instruct", prompt: "6*7 is", logprobs: 1 };
    const live = await streamChunks(prompt, "/v1/completions");
    expect(live.cache).toBe("MISS");

    const json = await answer(prompt, "/v1/completions");
    expect(json.cache).toBe("HIT");
    expect(json.body.choices).toEqual([
      {
        text: " 42.",
        index: 0,
        logprobs: {
          tokens: [" 4", "2", "."],
          token_logprobs: [-0.1, -0.2, -0.3],
          top_logprobs: [{ " 4": -0.1 }, { "2": -0.2 }, { ".": -0.3 }],
          text_offset: [8, 10, 11],
        },
        finish_reason: "stop",
      },
    ]);

    const replayed = await streamChunks(prompt, "/v1/completions");
    expect(replayed.cache).toBe("HIT");
    const tokens = replayed.chunks.flatMap((chunk) => chunk.choices[0]?.logprobs?.tokens ?? []);
    expect(tokens).toEqual([" 4", "2", "."]);
    expect(replayed.chunks.map((chunk) => chunk.choices[0]?.text ?? "").join("")).toBe(" 42.");
    expect(upstream.requests).toHaveLength(1);
  });
});
