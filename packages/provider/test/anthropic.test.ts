import { type AnthropicMock, startAnthropicMock } from "@aigw/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  AigwError,
  createAnthropic,
  type Provider,
  type ProviderResponse,
  type SseEvent,
} from "../src/index.js";

const API_KEY = "sk-ant-0123456789abcdef0123456789abcdef";
let mock: AnthropicMock;
let provider: Provider;
const dropped: string[] = [];

beforeAll(async () => {
  mock = await startAnthropicMock({ apiKey: API_KEY });
  provider = createAnthropic({
    apiKey: API_KEY,
    baseURL: `${mock.url}/v1`,
    retry: { maxRetries: 0 },
    onDroppedField: (name) => dropped.push(name),
  });
});

afterEach(() => mock.reset());

afterAll(async () => {
  await provider.close();
  await mock.close();
});

const chat = (extra: Record<string, unknown> = {}) => ({
  endpoint: "chat/completions" as const,
  body: {
    model: "claude-sonnet-4-5",
    messages: [{ role: "user", content: "Hello" }],
    ...extra,
  },
});

async function collect(response: ProviderResponse) {
  if (response.kind !== "stream") throw new Error("expected a stream");
  const events: SseEvent[] = [];
  for await (const event of response.events) events.push(event);
  return { events, usage: response.events.usage };
}

async function failure(promise: Promise<unknown>) {
  try {
    await promise;
  } catch (error) {
    if (AigwError.isInstance(error)) return error;
    throw error;
  }
  throw new Error("expected a failure");
}

describe("createAnthropic", () => {
  it("sends Messages with its own key and version, the client's beta, and a max_tokens", async () => {
    const response = await provider.send({
      ...chat({ seed: 1 }),
      headers: { authorization: "Bearer client-key", "anthropic-beta": "prompt-caching" },
    });
    expect(response.kind).toBe("json");
    const [request] = mock.requests;
    expect(request?.path).toBe("/v1/messages");
    expect(request?.headers).toMatchObject({
      "x-api-key": API_KEY,
      "anthropic-version": "2023-06-01",
      "anthropic-beta": "prompt-caching",
    });
    expect(request?.headers.authorization).toBeUndefined();
    expect(request?.body).toEqual({
      model: "claude-sonnet-4-5",
      messages: [{ role: "user", content: [{ type: "text", text: "Hello" }] }],
      max_tokens: 4096,
    });
    expect(dropped).toContain("seed");
    expect(response.upstreamRequestId).toMatch(/^req_mock_/);
  });

  it("takes a base URL without /v1, as the Anthropic SDKs do", async () => {
    const bare = createAnthropic({ apiKey: API_KEY, baseURL: mock.url, retry: { maxRetries: 0 } });
    try {
      const response = await bare.send(chat());
      expect(response.status).toBe(200);
      expect(mock.requests[0]?.path).toBe("/v1/messages");
    } finally {
      await bare.close();
    }
  });

  it("sends the client's anthropic-version instead of its own, never a second one", async () => {
    await provider.send({ ...chat(), headers: { "anthropic-version": "2099-01-01" } });
    expect(mock.requests[0]?.headers["anthropic-version"]).toBe("2099-01-01");
  });

  it("tells at most 100 distinct dropped field names, each cut to 64 characters", async () => {
    const body: Record<string, unknown> = {};
    for (let field = 0; field < 500; field++) body[`made_up_${field}_${"x".repeat(100)}`] = 1;
    await provider.send(chat(body));
    await provider.send(chat(body));
    const madeUp = dropped.filter((name) => name.startsWith("made_up_"));
    expect(madeUp.length).toBeLessThanOrEqual(100);
    expect(new Set(madeUp).size).toBe(madeUp.length);
    expect(Math.max(...madeUp.map((name) => name.length))).toBe(64);
  });

  it("answers a chat completion with the message translated and usage read", async () => {
    mock.enqueue({
      kind: "reply",
      content: [
        { type: "text", text: "Sunny." },
        { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } },
      ],
      stopReason: "tool_use",
      usage: { input_tokens: 12, output_tokens: 8, cache_read_input_tokens: 100 },
    });
    const response = await provider.send(chat());
    if (response.kind !== "json") throw new Error("expected JSON");
    const body = JSON.parse(Buffer.from(response.body).toString("utf8"));
    expect(body).toMatchObject({
      object: "chat.completion",
      model: "claude-sonnet-4-5",
      choices: [
        {
          finish_reason: "tool_calls",
          message: {
            content: "Sunny.",
            tool_calls: [{ id: "toolu_1", function: { arguments: '{"city":"Paris"}' } }],
          },
        },
      ],
      usage: { prompt_tokens: 112, prompt_tokens_details: { cached_tokens: 100 } },
    });
    expect(response.usage).toMatchObject({
      inputTokens: 112,
      outputTokens: 8,
      cacheReadTokens: 100,
    });
  });

  it("streams OpenAI chunks, the role held back until content, and [DONE] after message_stop", async () => {
    const { events: plain } = await collect(await provider.send(chat({ stream: true })));
    expect(plain.some((event) => event.data.includes('"usage"'))).toBe(false);
    const { events, usage } = await collect(
      await provider.send(chat({ stream: true, stream_options: { include_usage: true } })),
    );
    expect(events.at(-1)?.data).toBe("[DONE]");
    const chunks = events.slice(0, -1).map((event) => event.json() as Record<string, never>);
    expect(chunks[0]).toMatchObject({ choices: [{ delta: { role: "assistant" } }] });
    expect(chunks[1]).toMatchObject({ choices: [{ delta: { content: expect.any(String) } }] });
    expect(chunks.at(-2)).toMatchObject({ choices: [{ finish_reason: "stop" }] });
    expect(chunks.at(-1)).toMatchObject({
      choices: [],
      usage: { prompt_tokens: expect.any(Number) },
    });
    expect(usage?.outputTokens).toBeGreaterThan(0);
    expect(usage?.estimated).toBeUndefined();
  });

  it("a 529 is a retryable 503, the mock's message kept and the key never shown", async () => {
    mock.enqueue({ kind: "status", status: 529 });
    const error = await failure(provider.send(chat()));
    expect(error).toMatchObject({ status: 503, isRetryable: true, upstreamStatus: 529 });
    expect(JSON.stringify(error.toBody())).not.toContain(API_KEY);
  });

  it("an error before any content fails the stream before its first event", async () => {
    mock.enqueue({ kind: "midStreamError", afterEvents: 2 });
    const response = await provider.send(chat({ stream: true }));
    if (response.kind !== "stream") throw new Error("expected a stream");
    const iterator = response.events[Symbol.asyncIterator]();
    const error = await failure(iterator.next());
    expect(error).toMatchObject({ status: 503, code: "upstream_overloaded", isRetryable: true });
  });

  it("an error after content, a cut stream, or an end without message_stop is a failure", async () => {
    const behaviours = [
      { kind: "midStreamError", afterEvents: 5 },
      { kind: "cutStream", afterEvents: 5 },
      { kind: "endWithoutStop" },
    ] as const;
    for (const behaviour of behaviours) {
      mock.enqueue(behaviour);
      const response = await provider.send(chat({ stream: true }));
      if (response.kind !== "stream") throw new Error("expected a stream");
      const seen: SseEvent[] = [];
      const error = await failure(
        (async () => {
          for await (const event of response.events) seen.push(event);
        })(),
      );
      expect(seen.length, behaviour.kind).toBeGreaterThan(0);
      expect(
        seen.some((event) => event.data === "[DONE]"),
        behaviour.kind,
      ).toBe(false);
      expect([error.status, error.code], behaviour.kind).toEqual(
        behaviour.kind === "midStreamError"
          ? [503, "upstream_overloaded"]
          : [502, "stream_interrupted"],
      );
    }
  });

  it("passes native Messages requests through, bytes as they came both ways", async () => {
    const rawBody =
      '{"model":"claude-sonnet-4-5","max_tokens":64,  "messages":[{"role":"user","content":"Hi"}],"top_k":3,"future_field":{"x":1}}';
    const json = await provider.send({
      endpoint: "messages",
      body: JSON.parse(rawBody),
      rawBody,
    });
    if (json.kind !== "json") throw new Error("expected JSON");
    expect(mock.requests[0]?.rawBody).toBe(rawBody);
    const message = JSON.parse(Buffer.from(json.body).toString("utf8"));
    expect(message).toMatchObject({ type: "message", role: "assistant" });
    expect(json.usage?.inputTokens).toBe(message.usage.input_tokens);

    const reply = {
      kind: "reply" as const,
      content: [
        { type: "thinking" as const, thinking: "Hmm.", signature: "c2ln" },
        { type: "text" as const, text: "Hello." },
      ],
      usage: { input_tokens: 4, output_tokens: 6, cache_read_input_tokens: 10 },
    };
    mock.enqueue(reply, reply);
    const streamed =
      '{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Hi"}]}';
    const { events, usage } = await collect(
      await provider.send({ endpoint: "messages", body: JSON.parse(streamed), rawBody: streamed }),
    );
    const upstream = await fetch(`${mock.url}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": API_KEY, "anthropic-version": "2023-06-01" },
      body: streamed,
    });
    // The mock's reply to the same request, event for event (ids aside, which count requests).
    const expected = (await upstream.text()).replaceAll(/msg_mock\d+/g, "msg");
    expect(
      events
        .map((event) => event.raw)
        .join("")
        .replaceAll(/msg_mock\d+/g, "msg"),
    ).toBe(expected);
    expect(events.map((event) => event.event)).toContain("message_stop");
    expect(usage).toMatchObject({ inputTokens: 14, outputTokens: 6, cacheReadTokens: 10 });
  });

  it("refuses what it cannot serve without calling the upstream", async () => {
    const unsupported = await failure(
      provider.send({ endpoint: "embeddings", body: { model: "claude", input: "x" } }),
    );
    expect(unsupported).toMatchObject({ status: 400, code: "unsupported_endpoint" });
    const n = await failure(provider.send(chat({ n: 2 })));
    expect(n).toMatchObject({ status: 400, type: "invalid_request_error", param: "n" });
    expect(mock.requests).toHaveLength(0);
  });
});
