import { getFreePort, type MockUpstream, startMockUpstream, waitFor } from "@aigw/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import {
  AigwError,
  Cancellation,
  createOpenAICompatible,
  type OpenAICompatibleOptions,
  type Provider,
  type ProviderResponse,
  type ProviderStream,
  type SseEvent,
  withRetry,
} from "../src/index.js";

const API_KEY = "sk-test-provider-key";
let mock: MockUpstream;
let provider: Provider;
const extraProviders: Provider[] = [];

function createProvider(options: Partial<OpenAICompatibleOptions> = {}): Provider {
  const created = createOpenAICompatible({ baseURL: mock.baseURL, apiKey: API_KEY, ...options });
  extraProviders.push(created);
  return created;
}

function jsonOf(response: ProviderResponse) {
  if (response.kind !== "json") throw new Error(`expected JSON, got a ${response.kind}`);
  return JSON.parse(Buffer.from(response.body).toString("utf8"));
}

function streamOf(response: ProviderResponse): ProviderStream {
  if (response.kind !== "stream") throw new Error(`expected a stream, got ${response.kind}`);
  return response.events;
}

async function collect(events: ProviderStream): Promise<SseEvent[]> {
  const collected: SseEvent[] = [];
  for await (const event of events) collected.push(event);
  return collected;
}

async function failure(promise: Promise<unknown>): Promise<AigwError> {
  try {
    await promise;
  } catch (error) {
    if (AigwError.isInstance(error)) return error;
    throw error;
  }
  throw new Error("expected the promise to reject");
}

const chat = (content: string, extra: Record<string, unknown> = {}) => ({
  endpoint: "chat/completions" as const,
  body: { model: "gpt-4o-mini", messages: [{ role: "user", content }], ...extra },
});

beforeAll(async () => {
  mock = await startMockUpstream({ apiKey: API_KEY });
  provider = createOpenAICompatible({ baseURL: mock.baseURL, apiKey: API_KEY });
});

afterEach(async () => {
  await Promise.all(extraProviders.splice(0).map((created) => created.close()));
  mock.reset();
});

afterAll(async () => {
  await provider.close();
  await mock.close();
});

describe("JSON endpoints", () => {
  it("sends a chat completion and returns the upstream's bytes with usage", async () => {
    const request = chat("hello world");
    const response = await provider.send(request);
    expect(response).toMatchObject({ kind: "json", status: 200 });
    expect(response.upstreamRequestId).toMatch(/^req_mock_\d+$/);
    expect(jsonOf(response).choices[0].message.content).toBe("mock: hello world");
    expect(response.kind === "json" && response.usage).toMatchObject({ outputTokens: 3 });
    expect(response.kind === "json" && response.usage?.estimated).toBeUndefined();
    expect(Object.keys(response.headers)).toEqual(["content-type"]);

    const [received] = mock.requests;
    expect(received).toMatchObject({ method: "POST", path: "/v1/chat/completions" });
    expect(received?.rawBody).toBe(JSON.stringify(request.body));
    expect(received?.headers["content-type"]).toBe("application/json");
    expect(received?.headers.accept).toBe("application/json");
  });

  it("reads usage from each endpoint's own shape", async () => {
    const completions = await provider.send({
      endpoint: "completions",
      body: { model: "gpt-3.5-turbo-instruct", prompt: "say hi" },
    });
    expect(jsonOf(completions).object).toBe("text_completion");
    expect(completions.kind === "json" && completions.usage?.outputTokens).toBeGreaterThan(0);

    const embeddings = await provider.send({
      endpoint: "embeddings",
      body: { model: "text-embedding-3-small", input: "some text" },
    });
    expect(jsonOf(embeddings).data[0].embedding).toHaveLength(8);
    expect(embeddings.kind === "json" && embeddings.usage).toMatchObject({ outputTokens: 0 });

    const responses = await provider.send({
      endpoint: "responses",
      body: { model: "gpt-4o-mini", input: "hi there" },
    });
    expect(jsonOf(responses).object).toBe("response");
    expect(responses.kind === "json" && responses.usage?.outputTokens).toBe(3);

    const images = await provider.send({
      endpoint: "images/generations",
      body: { model: "dall-e-3", prompt: "a cat" },
    });
    expect(jsonOf(images).data).toHaveLength(1);

    const models = await provider.send({ endpoint: "models" });
    expect(jsonOf(models).data.length).toBeGreaterThan(0);
    expect(models.kind === "json" && models.usage).toBeUndefined();
    const modelsRequest = mock.requests.at(-1);
    expect(modelsRequest).toMatchObject({ method: "GET", path: "/v1/models", rawBody: "" });
    expect(modelsRequest?.headers["content-type"]).toBeUndefined();
  });

  it("reads a large float embeddings body's usage without parsing it whole", async () => {
    mock.enqueue({ kind: "largeBody", bytes: 3 * 1024 * 1024 });
    const parse = vi.spyOn(JSON, "parse");
    try {
      const response = await provider.send({
        endpoint: "embeddings",
        body: { model: "text-embedding-3-large", input: "x" },
      });
      expect(response.kind === "json" && response.body.length).toBeGreaterThan(3_000_000);
      expect(response.kind === "json" && response.usage?.inputTokens).toBeGreaterThan(1000);
      for (const [text] of parse.mock.calls) expect(text.length).toBeLessThan(10_000);
    } finally {
      parse.mockRestore();
    }
  });

  it("reuses one connection for sequential requests", async () => {
    const pooled = createProvider();
    const before = mock.openConnections();
    for (let index = 0; index < 5; index++) await pooled.send(chat(`hi ${index}`));
    // undici may open a second one when a request follows the last answer within one tick.
    expect(mock.openConnections()).toBeLessThanOrEqual(before + 2);
  });
});

describe("headers sent upstream", () => {
  it("forwards only allowed client headers and authenticates as the provider", async () => {
    const custom = createProvider({
      forwardHeaders: ["X-Tenant-Tag"],
      headers: { "x-gateway": "aigw" },
    });
    await custom.send({
      ...chat("hi"),
      headers: {
        authorization: "Bearer client-key",
        "x-api-key": "client-key",
        cookie: "session=1",
        connection: "close",
        "proxy-authorization": "Basic abc",
        host: "evil.example",
        "accept-encoding": "gzip",
        "openai-beta": "assistants=v2",
        "openai-organization": "org-1",
        "x-request-id": "client-req-1",
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "x-tenant-tag": "blue",
        "x-not-allowed": "1",
      },
    });
    const headers = { ...mock.requests[0]?.headers };
    expect(headers).toMatchObject({
      authorization: `Bearer ${API_KEY}`,
      "openai-beta": "assistants=v2",
      "x-tenant-tag": "blue",
      "x-gateway": "aigw",
    });
    // Ids and trace context come from the gateway (requestId, traceparent, tracestate), and
    // what the operator's key bills is the operator's choice.
    for (const name of [
      "x-api-key",
      "cookie",
      "proxy-authorization",
      "x-not-allowed",
      "openai-organization",
      "x-request-id",
      "traceparent",
    ]) {
      expect(headers[name], name).toBeUndefined();
    }
    expect(headers.host).not.toBe("evil.example");
    expect(headers["accept-encoding"]).toBeUndefined();
  });

  it("sends the operator's organization and project; a client's only when forwardHeaders allows it", async () => {
    const billed = createProvider({ organization: "org-operator", project: "proj-operator" });
    const clientHeaders = { "openai-organization": "org-client", "openai-project": "proj-client" };
    await billed.send({ ...chat("hi"), headers: clientHeaders });
    expect(mock.requests[0]?.headers).toMatchObject({
      "openai-organization": "org-operator",
      "openai-project": "proj-operator",
    });
    const delegating = createProvider({ forwardHeaders: ["OpenAI-Organization"] });
    await delegating.send({ ...chat("hi"), headers: clientHeaders });
    expect(mock.requests[1]?.headers["openai-organization"]).toBe("org-client");
    expect(mock.requests[1]?.headers["openai-project"]).toBeUndefined();
  });

  it("sends the request id and trace context it is given", async () => {
    await provider.send({
      ...chat("hi"),
      requestId: "gw-req-1",
      traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      tracestate: "vendor=abc",
    });
    expect(mock.requests[0]?.headers).toMatchObject({
      "x-request-id": "gw-req-1",
      traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      tracestate: "vendor=abc",
    });
  });

  it("refuses to forward credentials or hop-by-hop headers", () => {
    for (const name of ["Authorization", "cookie", "proxy-authenticate", "transfer-encoding"]) {
      expect(() => createProvider({ forwardHeaders: [name] }), name).toThrow(TypeError);
    }
  });

  it("sends no authorization without an apiKey", async () => {
    const open = createProvider({ apiKey: undefined });
    const error = await failure(open.send(chat("hi")));
    expect(mock.requests[0]?.headers.authorization).toBeUndefined();
    expect(error.code).toBe("upstream_auth_error");
  });
});

describe("streams", () => {
  it("asks for usage, hides the usage chunk and records usage", async () => {
    const request = chat("one two three", { stream: true });
    const response = await provider.send(request);
    expect(response).toMatchObject({ kind: "stream", status: 200 });
    expect(response.headers["content-type"]).toBe("text/event-stream");
    const events = await collect(streamOf(response));

    expect(request.body).not.toHaveProperty("stream_options");
    expect(mock.requests[0]?.body).toMatchObject({ stream_options: { include_usage: true } });
    expect(mock.requests[0]?.headers.accept).toBe("text/event-stream");
    expect(events.at(-1)?.data).toBe("[DONE]");
    expect(events.some((event) => event.data.includes('"usage"'))).toBe(false);
    const text = events
      .slice(0, -1)
      .map((event) => (event.json() as { choices: { delta: { content?: string } }[] }).choices)
      .map((choices) => choices[0]?.delta.content ?? "")
      .join("");
    expect(text).toBe("mock: one two three");
    expect(streamOf(response).usage).toMatchObject({ outputTokens: 4 });
    expect(streamOf(response).usage?.estimated).toBeUndefined();
  });

  it("keeps the usage chunk when the client asked for it", async () => {
    const response = await provider.send(
      chat("hi", { stream: true, stream_options: { include_usage: true } }),
    );
    const events = await collect(streamOf(response));
    const usageChunk = events.at(-2)?.json() as { choices: unknown[]; usage: unknown };
    expect(usageChunk.choices).toEqual([]);
    expect(usageChunk.usage).toMatchObject({ completion_tokens: 2 });
    expect(streamOf(response).usage).toMatchObject({ outputTokens: 2 });
  });

  it("estimates usage when stream usage is turned off", async () => {
    const plain = createProvider({ includeStreamUsage: false });
    const response = await plain.send(chat("hi", { stream: true }));
    await collect(streamOf(response));
    expect(mock.requests[0]?.body).not.toHaveProperty("stream_options");
    expect(streamOf(response).usage).toMatchObject({ estimated: true });
    expect(streamOf(response).usage?.outputTokens).toBeGreaterThan(0);
  });

  it("streams completions and responses with their usage", async () => {
    const completions = await provider.send({
      endpoint: "completions",
      body: { model: "gpt-3.5-turbo-instruct", prompt: "a b", stream: true },
    });
    const completionEvents = await collect(streamOf(completions));
    expect(completionEvents.at(-1)?.data).toBe("[DONE]");
    expect(completionEvents.some((event) => event.data.includes('"usage"'))).toBe(false);
    expect(streamOf(completions).usage).toMatchObject({ outputTokens: 3 });

    const responses = await provider.send({
      endpoint: "responses",
      body: { model: "gpt-4o-mini", input: "a b", stream: true },
    });
    const responseEvents = await collect(streamOf(responses));
    expect(mock.requests[1]?.body).not.toHaveProperty("stream_options");
    expect(responseEvents.at(-1)?.event).toBe("response.completed");
    expect(streamOf(responses).usage).toMatchObject({ outputTokens: 3 });
  });

  it("yields each event as it arrives", async () => {
    const gate = mock.holdStream();
    const response = await provider.send(chat("one two", { stream: true }));
    const iterator = streamOf(response)[Symbol.asyncIterator]();
    const first = await iterator.next();
    expect(first.done).toBe(false);
    await gate.reached;
    expect(mock.requests[0]?.finished).toBe(false);
    gate.release();
    let count = 1;
    while (!(await iterator.next()).done) count++;
    expect(count).toBe(6); // role, 3 words, stop, [DONE]
  });

  it("closing the iterator early closes the upstream connection", async () => {
    const gate = mock.holdStream();
    const response = await provider.send(chat("one two", { stream: true }));
    const iterator = streamOf(response)[Symbol.asyncIterator]();
    await iterator.next();
    await gate.reached;
    await iterator.return?.();
    await waitFor(() => mock.requests[0]?.clientClosed);
    gate.release();
  });

  it("closing a stream that was never read closes the upstream connection", async () => {
    const gate = mock.holdStream();
    const response = await provider.send(chat("one two", { stream: true }));
    await gate.reached;
    await streamOf(response)[Symbol.asyncIterator]().return?.();
    await waitFor(() => mock.requests[0]?.clientClosed);
    gate.release();
  });

  it("the caller's signal ends the stream with its reason", async () => {
    const gate = mock.holdStream();
    const controller = new AbortController();
    const response = await provider.send(chat("one two", { stream: true }), {
      signal: controller.signal,
    });
    const iterator = streamOf(response)[Symbol.asyncIterator]();
    await iterator.next();
    await gate.reached;
    const reason = new Error("client went away");
    controller.abort(reason);
    await expect(iterator.next()).rejects.toBe(reason);
    await waitFor(() => mock.requests[0]?.clientClosed);
    gate.release();
  });

  it("a stream cut before [DONE] throws stream_interrupted", async () => {
    mock.enqueue({ kind: "cutStream", afterEvents: 2 });
    const response = await provider.send(chat("one two three", { stream: true }));
    const received: SseEvent[] = [];
    const error = await failure(
      (async () => {
        for await (const event of streamOf(response)) received.push(event);
      })(),
    );
    expect(received).toHaveLength(2);
    expect(error).toMatchObject({
      status: 502,
      type: "upstream_error",
      code: "stream_interrupted",
    });
    expect(error.upstreamRequestId).toMatch(/^req_mock_\d+$/);
  });

  it("a stalled stream fails with a 504 after the read timeout", async () => {
    const slow = createProvider({ readTimeout: 1000 });
    mock.enqueue({ kind: "stallStream", afterEvents: 1 });
    const response = await slow.send(chat("one two", { stream: true }));
    const iterator = streamOf(response)[Symbol.asyncIterator]();
    await iterator.next();
    const started = Date.now();
    const error = await failure(iterator.next());
    expect(error).toMatchObject({ status: 504, type: "timeout", code: "timeout" });
    expect(Date.now() - started).toBeLessThan(2500);
    await waitFor(() => mock.requests[0]?.clientClosed);
  });

  it("streamTimeout caps a whole stream", async () => {
    const capped = createProvider({ streamTimeout: 1000 });
    mock.enqueue({ kind: "delayEvents", delayMs: 400 });
    const response = await capped.send(chat("one two three four five", { stream: true }));
    const error = await failure(collect(streamOf(response)));
    expect(error).toMatchObject({ status: 504, code: "timeout" });
  });
});

describe("upstream errors", () => {
  it("passes a 4xx through with the upstream's message", async () => {
    mock.enqueue({
      kind: "status",
      status: 400,
      body: {
        error: {
          message: "bad max_tokens",
          type: "invalid_request_error",
          param: "max_tokens",
          code: null,
        },
      },
    });
    const error = await failure(provider.send(chat("hi")));
    expect(error).toMatchObject({
      status: 400,
      message: "bad max_tokens",
      param: "max_tokens",
      isRetryable: false,
    });
    expect(error.upstreamRequestId).toMatch(/^req_mock_\d+$/);
  });

  it("hides a rejected provider key", async () => {
    const wrongKey = createProvider({ apiKey: "sk-wrong-key-123456" });
    const error = await failure(wrongKey.send(chat("hi")));
    expect(error).toMatchObject({
      status: 502,
      type: "upstream_error",
      code: "upstream_auth_error",
    });
    expect(error.message).not.toContain("sk-wrong");
  });

  it("keeps a 429 with its Retry-After", async () => {
    mock.enqueue({ kind: "status", status: 429, headers: { "retry-after": "3" } });
    const error = await failure(provider.send(chat("hi")));
    expect(error).toMatchObject({
      status: 429,
      type: "rate_limit_error",
      code: "rate_limit_exceeded",
      isRetryable: true,
      retryAfterMs: 3000,
    });
  });

  it("turns a 5xx into a retryable 502", async () => {
    mock.enqueue({ kind: "status", status: 503 });
    const error = await failure(provider.send(chat("hi")));
    expect(error).toMatchObject({ status: 502, type: "upstream_error", isRetryable: true });
    expect(error.message).toContain("503");
  });

  it("turns a 5xx on a stream request into the same error", async () => {
    mock.enqueue({ kind: "status", status: 500 });
    const error = await failure(provider.send(chat("hi", { stream: true })));
    expect(error).toMatchObject({ status: 502, isRetryable: true });
  });

  it("reports malformed JSON", async () => {
    mock.enqueue({ kind: "malformedJson" });
    const error = await failure(provider.send(chat("hi")));
    expect(error).toMatchObject({
      status: 502,
      code: "invalid_upstream_response",
      isRetryable: false,
    });
  });

  it("reports a reset connection and a body cut short as retryable 502s", async () => {
    mock.enqueue({ kind: "reset" });
    const reset = await failure(provider.send(chat("hi")));
    expect(reset).toMatchObject({ status: 502, type: "upstream_error", isRetryable: true });

    mock.enqueue({ kind: "cutStream", afterEvents: 0 });
    const cut = await failure(provider.send(chat("hi")));
    expect(cut).toMatchObject({ status: 502, type: "upstream_error", isRetryable: true });
  });

  it("reports a closed port as unreachable", async () => {
    const port = await getFreePort();
    const nowhere = createProvider({ baseURL: `http://127.0.0.1:${port}/v1` });
    const error = await failure(nowhere.send(chat("hi")));
    expect(error).toMatchObject({ status: 502, code: "upstream_unreachable", isRetryable: true });
  });

  it("times out an attempt whose headers do not come", async () => {
    const quick = createProvider({ timeout: 1000 });
    mock.enqueue({ kind: "stall" });
    const error = await failure(quick.send(chat("hi")));
    expect(error).toMatchObject({ status: 504, type: "timeout", isRetryable: true });
    await waitFor(() => mock.requests[0]?.clientClosed);
  });

  it("times out a JSON body that stops halfway, and honours the deadline", async () => {
    const quick = createProvider({ timeout: 1000 });
    mock.enqueue({ kind: "stallStream", afterEvents: 0 });
    expect(await failure(quick.send(chat("hi")))).toMatchObject({ status: 504 });

    mock.enqueue({ kind: "slowHeaders", delayMs: 3000 });
    const started = Date.now();
    const error = await failure(provider.send(chat("hi"), { deadlineAt: Date.now() + 1000 }));
    expect(error).toMatchObject({ status: 504, code: "timeout" });
    expect(Date.now() - started).toBeLessThan(2500);
    expect(await failure(provider.send(chat("hi"), { deadlineAt: Date.now() - 1 }))).toMatchObject({
      status: 504,
    });
  });

  it("rethrows the caller's abort reason", async () => {
    mock.enqueue({ kind: "stall" });
    const controller = new AbortController();
    const reason = new Error("client went away");
    const sending = provider.send(chat("hi"), { signal: controller.signal });
    await mock.waitForRequests(1);
    controller.abort(reason);
    await expect(sending).rejects.toBe(reason);
    await waitFor(() => mock.requests[0]?.clientClosed);
  });
});

describe("cancellation and limits of JSON requests", () => {
  it("a Cancellation aborts a JSON request, and nothing keeps listening to it afterwards", async () => {
    const done = new Cancellation();
    jsonOf(await provider.send(chat("hi"), { signal: done }));
    expect(done.listenerCount("abort")).toBe(0);

    mock.enqueue({ kind: "stall" });
    const cancelled = new Cancellation();
    const reason = new Error("client went away");
    const sending = provider.send(chat("hi"), { signal: cancelled });
    await mock.waitForRequests(2);
    expect(cancelled.listenerCount("abort")).toBe(1);
    cancelled.abort(reason);
    await expect(sending).rejects.toBe(reason);
    expect(cancelled.listenerCount("abort")).toBe(0);
    await waitFor(() => mock.requests[1]?.clientClosed);
  });

  it("reads only the first 64 KiB of an error body, and the next request still works", async () => {
    mock.enqueue({
      kind: "status",
      status: 500,
      body: { error: { message: "x".repeat(1024 * 1024), type: "server_error" } },
    });
    const error = await failure(provider.send(chat("hi")));
    expect(error).toMatchObject({ status: 502, type: "upstream_error", isRetryable: true });
    expect(error.message.length).toBeLessThan(70 * 1024);
    expect(jsonOf(await provider.send(chat("again"))).choices[0].message.content).toBe(
      "mock: again",
    );
  });
});

describe("with withRetry", () => {
  it("retries a 5xx and returns the next answer", async () => {
    mock.enqueue({ kind: "status", status: 502 }, { kind: "reset" });
    const response = await withRetry(() => provider.send(chat("again")), {
      ...provider.retry,
      initialBackoff: 10,
    });
    expect(jsonOf(response).choices[0].message.content).toBe("mock: again");
    expect(mock.requests).toHaveLength(3);
  });

  it("returns a 429 at once when its Retry-After is too long", async () => {
    mock.enqueue({ kind: "status", status: 429, headers: { "retry-after": "60" } });
    const error = await failure(withRetry(() => provider.send(chat("hi")), provider.retry));
    expect(error.status).toBe(429);
    expect(mock.requests).toHaveLength(1);
  });
});

describe("options", () => {
  it("validates its options", () => {
    expect(() => createOpenAICompatible({ baseURL: "not a url" })).toThrow(/baseURL/);
    expect(() => createOpenAICompatible({ baseURL: "ftp://x" })).toThrow(/baseURL/);
    expect(() => createOpenAICompatible({ baseURL: mock.baseURL, timeout: 0 })).toThrow(/timeout/);
    expect(() => createOpenAICompatible({ baseURL: mock.baseURL, retry: { jitter: 5 } })).toThrow(
      /retry\.jitter/,
    );
  });

  it("exposes its kind, retry and timeout", () => {
    expect(provider).toMatchObject({ kind: "openai", timeout: 600_000 });
    expect(provider.retry.maxRetries).toBe(3);
    expect(createProvider({ kind: "groq", timeout: 5000 })).toMatchObject({
      kind: "groq",
      timeout: 5000,
    });
  });
});
