import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type AnthropicMock, anthropicModelList, startAnthropicMock } from "./anthropic-mock.js";
import type { AnthropicContentBlock } from "./anthropic-replies.js";
import { readSse, type SseEvent } from "./sse.js";
import { waitFor } from "./wait-for.js";

// biome-ignore lint/suspicious/noExplicitAny: the assertions walk the returned JSON freely
type Json = any;

let mock: AnthropicMock;

beforeAll(async () => {
  mock = await startAnthropicMock();
});
afterEach(() => mock.reset());
afterAll(() => mock.close());

const messages = [{ role: "user", content: "hello there" }];
const request = { model: "claude-sonnet-4-5", max_tokens: 100, messages };

function post(
  body: unknown,
  { headers = {}, signal }: { headers?: Record<string, string>; signal?: AbortSignal } = {},
  target: AnthropicMock = mock,
) {
  return fetch(`${target.url}/v1/messages`, {
    method: "POST",
    headers: { "content-type": "application/json", "anthropic-version": "2023-06-01", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal: signal ?? null,
  });
}

/** Reads events until the body ends or fails; `error` is set when it fails. */
async function drain(response: Response, events: SseEvent[] = []) {
  try {
    for await (const event of readSse(response)) events.push(event);
    return { events, error: undefined };
  } catch (error) {
    return { events, error };
  }
}

const names = (events: SseEvent[]) => events.map((event) => event.event);
const data = (events: SseEvent[]): Json[] => events.map((event) => JSON.parse(event.data));

const scripted: AnthropicContentBlock[] = [
  { type: "thinking", thinking: "Let me think.", signature: "sig_abc" },
  { type: "redacted_thinking", data: "opaque==" },
  { type: "text", text: "First part." },
  { type: "text", text: "Second part." },
  { type: "tool_use", id: "toolu_01", name: "get_weather", input: { city: "Paris", unit: "c" } },
  { type: "tool_use", id: "toolu_02", name: "get_time", input: {} },
];

describe("default reply", () => {
  it("answers a Messages JSON body and records the request", async () => {
    const response = await post(request, { headers: { "X-Custom": "yes" } });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/json");
    expect(response.headers.get("request-id")).toMatch(/^req_mock_\d+$/);
    const body: Json = await response.json();
    expect(body).toEqual({
      id: expect.stringMatching(/^msg_/),
      type: "message",
      role: "assistant",
      model: "claude-sonnet-4-5",
      content: [{ type: "text", text: "mock: hello there" }],
      stop_reason: "end_turn",
      stop_sequence: null,
      usage: {
        input_tokens: Math.ceil(JSON.stringify(messages).length / 4),
        output_tokens: 3,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
      },
    });
    expect(mock.requests).toHaveLength(1);
    expect(mock.requests[0]).toMatchObject({
      method: "POST",
      path: "/v1/messages",
      headers: { "x-custom": "yes", "anthropic-version": "2023-06-01" },
      body: request,
      rawBody: JSON.stringify(request),
      finished: true,
    });
  });

  it("streams the real event sequence, without [DONE]", async () => {
    const response = await post({ ...request, stream: true });
    expect(response.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const { events, error } = await drain(response);
    expect(error).toBeUndefined();
    expect(names(events)).toEqual([
      "message_start",
      "ping",
      "content_block_start",
      "content_block_delta",
      "content_block_delta",
      "content_block_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    const parsed = data(events);
    expect(parsed.map((event) => event.type)).toEqual(names(events));
    expect(parsed[0].message).toMatchObject({
      type: "message",
      role: "assistant",
      model: "claude-sonnet-4-5",
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
    });
    expect(parsed[2]).toEqual({
      type: "content_block_start",
      index: 0,
      content_block: { type: "text", text: "" },
    });
    const text = parsed
      .filter((event) => event.type === "content_block_delta")
      .map((event) => event.delta.text)
      .join("");
    expect(text).toBe("mock: hello there");
    expect(parsed[7]).toEqual({
      type: "message_delta",
      delta: { stop_reason: "end_turn", stop_sequence: null },
      usage: { output_tokens: 3 },
    });
    expect(events.map((event) => event.data)).not.toContain("[DONE]");
    await waitFor(() => mock.requests[0]?.finished);
    expect(mock.requests[0]?.eventsWritten).toBe(9);
  });

  it("records nothing with recordRequests: false", async () => {
    const own = await startAnthropicMock({ recordRequests: false });
    expect((await post(request, {}, own)).status).toBe(200);
    expect(own.requests).toHaveLength(0);
    await own.close();
  });
});

describe("scripted replies", () => {
  const usage = {
    input_tokens: 12,
    output_tokens: 40,
    cache_creation_input_tokens: 30,
    cache_read_input_tokens: 500,
    cache_creation: { ephemeral_5m_input_tokens: 10, ephemeral_1h_input_tokens: 20 },
  };

  it("answers JSON with the scripted blocks, stop reason and usage", async () => {
    mock.enqueue({ kind: "reply", content: scripted, usage });
    const body: Json = await (await post(request)).json();
    expect(body).toMatchObject({ content: scripted, stop_reason: "tool_use", usage });
    mock.enqueue({
      kind: "reply",
      content: [{ type: "text", text: "1, 2, 3" }],
      stopReason: "stop_sequence",
      stopSequence: "4",
      usage: { output_tokens: 7 },
    });
    const stopped: Json = await (await post(request)).json();
    expect(stopped).toMatchObject({ stop_reason: "stop_sequence", stop_sequence: "4" });
    expect(stopped.usage).toMatchObject({ output_tokens: 7, cache_read_input_tokens: 0 });
  });

  it("streams thinking, redacted thinking, text and tool_use blocks", async () => {
    mock.enqueue({ kind: "reply", content: scripted, usage });
    const parsed = data((await drain(await post({ ...request, stream: true }))).events);
    expect(parsed[0].message.usage).toEqual({ ...usage, output_tokens: 1 });
    const byBlock = (index: number) => parsed.filter((event) => event.index === index);

    const thinking = byBlock(0);
    expect(thinking[0].content_block).toEqual({ type: "thinking", thinking: "" });
    const thinkingDeltas = thinking.filter((event) => event.delta?.type === "thinking_delta");
    expect(thinkingDeltas.length).toBeGreaterThan(1);
    expect(thinkingDeltas.map((event) => event.delta.thinking).join("")).toBe("Let me think.");
    expect(thinking.at(-2).delta).toEqual({ type: "signature_delta", signature: "sig_abc" });
    expect(thinking.at(-1).type).toBe("content_block_stop");

    expect(byBlock(1).map((event) => event.type)).toEqual([
      "content_block_start",
      "content_block_stop",
    ]);
    expect(byBlock(1)[0].content_block).toEqual(scripted[1]);
    expect(byBlock(3)[0].content_block).toEqual({ type: "text", text: "" });

    const tool = byBlock(4);
    expect(tool[0].content_block).toEqual({
      type: "tool_use",
      id: "toolu_01",
      name: "get_weather",
      input: {},
    });
    const pieces = tool.slice(1, -1).map((event) => event.delta);
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.every((delta) => delta.type === "input_json_delta")).toBe(true);
    expect(JSON.parse(pieces.map((delta) => delta.partial_json).join(""))).toEqual({
      city: "Paris",
      unit: "c",
    });
    expect(byBlock(5).map((event) => event.type)).toEqual([
      "content_block_start",
      "content_block_stop",
    ]);

    expect(parsed.at(-2)).toEqual({
      type: "message_delta",
      delta: { stop_reason: "tool_use", stop_sequence: null },
      usage: { output_tokens: 40 },
    });
    expect(parsed.at(-1)).toEqual({ type: "message_stop" });
  });
});

describe("faults", () => {
  it("answers a status with Anthropic's envelope and the given headers", async () => {
    mock.enqueue(
      { kind: "status", status: 529 },
      { kind: "status", status: 429, headers: { "retry-after": "3" } },
      { kind: "status", status: 503, body: "down" },
    );
    const overloaded = await post(request);
    expect(overloaded.status).toBe(529);
    expect(await overloaded.json()).toEqual({
      type: "error",
      error: { type: "overloaded_error", message: "Overloaded" },
      request_id: expect.stringMatching(/^req_mock_/),
    });
    const limited = await post(request);
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("3");
    expect(((await limited.json()) as Json).error.type).toBe("rate_limit_error");
    const down = await post(request);
    expect(down.status).toBe(503);
    expect(await down.text()).toBe("down");
    expect((await post(request)).status).toBe(200);
  });

  it("sends an error event mid-stream, then ends the stream", async () => {
    mock.enqueue({ kind: "midStreamError", afterEvents: 3 });
    const { events, error } = await drain(await post({ ...request, stream: true }));
    expect(error).toBeUndefined();
    expect(names(events)).toEqual(["message_start", "ping", "content_block_start", "error"]);
    expect(JSON.parse(events[3]?.data ?? "")).toEqual({
      type: "error",
      error: { type: "overloaded_error", message: "Overloaded" },
    });
  });

  it("answers a JSON request of midStreamError with the error's status", async () => {
    mock.enqueue({ kind: "midStreamError", afterEvents: 3 });
    const response = await post(request);
    expect(response.status).toBe(529);
    expect(((await response.json()) as Json).error.type).toBe("overloaded_error");
  });

  it("cuts a stream after some events, and a JSON reply halfway", async () => {
    mock.enqueue({ kind: "cutStream", afterEvents: 4 }, { kind: "cutStream", afterEvents: 0 });
    const { events, error } = await drain(await post({ ...request, stream: true }));
    expect(events).toHaveLength(4);
    expect(names(events)).not.toContain("message_stop");
    expect(error).toBeDefined();
    expect(mock.requests[0]).toMatchObject({ clientClosed: false, finished: false });
    const json = await post(request);
    expect(json.status).toBe(200);
    await expect(json.text()).rejects.toThrow();
  });

  it("ends a stream cleanly without message_stop", async () => {
    mock.enqueue({ kind: "endWithoutStop", reply: { content: scripted.slice(4) } });
    const { events, error } = await drain(await post({ ...request, stream: true }));
    expect(error).toBeUndefined();
    expect(names(events).at(-1)).toBe("message_delta");
    expect(names(events)).not.toContain("message_stop");
    await waitFor(() => mock.requests[0]?.finished);
  });

  it("stalls until the client gives up", async () => {
    mock.enqueue({ kind: "stall" });
    await expect(post(request, { signal: AbortSignal.timeout(100) })).rejects.toThrow();
    await waitFor(() => mock.requests[0]?.clientClosed);
    expect(mock.requests[0]?.finished).toBe(false);
  });

  it("stalls a stream after some events", async () => {
    mock.enqueue({ kind: "stall", afterEvents: 2 });
    const controller = new AbortController();
    const events: SseEvent[] = [];
    const drained = drain(
      await post({ ...request, stream: true }, { signal: controller.signal }),
      events,
    );
    await waitFor(() => events.length === 2);
    expect(mock.requests[0]).toMatchObject({ eventsWritten: 2, finished: false });
    controller.abort();
    expect((await drained).error).toBeDefined();
    await waitFor(() => mock.requests[0]?.clientClosed);
  });

  it("waits between events with delayEvents", async () => {
    mock.enqueue({ kind: "delayEvents", delayMs: 20 });
    const startedAt = performance.now();
    const { events } = await drain(await post({ ...request, stream: true }));
    // 9 events: 8 waits.
    expect(events).toHaveLength(9);
    expect(performance.now() - startedAt).toBeGreaterThanOrEqual(150);
  });

  it("closes with a stalled request open", async () => {
    const own = await startAnthropicMock();
    own.enqueue({ kind: "stall" });
    const pending = post(request, {}, own).catch((error: unknown) => error);
    await own.waitForRequests(1);
    expect(own.openConnections()).toBe(1);
    await own.close();
    expect(await pending).toBeInstanceOf(Error);
  });
});

describe("refusals", () => {
  const assistantToolUse = {
    role: "assistant",
    content: [{ type: "tool_use", id: "toolu_1", name: "f", input: {} }],
  };
  const result = (id: string) => ({ type: "tool_result", tool_use_id: id, content: "ok" });

  it.each([
    ["no max_tokens", { model: "m", messages }, /^max_tokens: Field required/],
    ["messages not an array", { ...request, messages: "hi" }, /^messages: Input should be/],
    [
      "a bad tool_use id",
      {
        ...request,
        messages: [
          ...messages,
          {
            role: "assistant",
            content: [{ type: "tool_use", id: "call.1", name: "f", input: {} }],
          },
        ],
      },
      /^messages\.1\.content\.0\.tool_use\.id: String should match/,
    ],
    [
      "a tool_result answering no tool_use",
      {
        ...request,
        messages: [...messages, assistantToolUse, { role: "user", content: [result("toolu_2")] }],
      },
      /unexpected `tool_use_id` found in `tool_result` blocks: toolu_2/,
    ],
    [
      "a tool_result answering a turn before the previous one",
      {
        ...request,
        messages: [
          ...messages,
          assistantToolUse,
          { role: "user", content: [result("toolu_1")] },
          { role: "assistant", content: "done" },
          { role: "user", content: [result("toolu_1")] },
        ],
      },
      /^messages\.4\.content\.0: unexpected `tool_use_id`/,
    ],
    [
      "two tool_results for one id",
      {
        ...request,
        messages: [
          ...messages,
          assistantToolUse,
          { role: "user", content: [result("toolu_1"), result("toolu_1")] },
        ],
      },
      /each tool_use must have a single result/,
    ],
    [
      "an empty text block",
      { ...request, messages: [{ role: "user", content: [{ type: "text", text: "" }] }] },
      /^messages\.0\.content\.0\.text: text content blocks must be non-empty/,
    ],
    ["temperature above 1", { ...request, temperature: 1.5 }, /^temperature: /],
    ["a body that is not JSON", "{", /not valid JSON/],
  ])("refuses %s with a 400", async (_name, body, message) => {
    mock.enqueue({ kind: "reply", content: [{ type: "text", text: "never sent" }] });
    const response = await post(body);
    expect(response.status).toBe(400);
    const error: Json = await response.json();
    expect(error).toMatchObject({ type: "error", error: { type: "invalid_request_error" } });
    expect(error.error.message).toMatch(message);
  });

  it("accepts tool results answering the previous assistant turn", async () => {
    const body = {
      ...request,
      temperature: 1,
      messages: [...messages, assistantToolUse, { role: "user", content: [result("toolu_1")] }],
    };
    expect((await post(body)).status).toBe(200);
  });

  it("requires x-api-key and anthropic-version when apiKey is set", async () => {
    const own = await startAnthropicMock({ apiKey: "sk-ant-test" });
    const envelope = (message: string) => ({
      type: "error",
      error: { type: "authentication_error", message },
      request_id: expect.stringMatching(/^req_mock_/),
    });
    const missing = await post(request, {}, own);
    expect(missing.status).toBe(401);
    expect(await missing.json()).toEqual(envelope("x-api-key header is required"));
    const wrong = await post(request, { headers: { "x-api-key": "sk-ant-wrong" } }, own);
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toEqual(envelope("invalid x-api-key"));
    const noVersion = await fetch(`${own.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": "sk-ant-test" },
      body: JSON.stringify(request),
    });
    expect(noVersion.status).toBe(401);
    expect(((await noVersion.json()) as Json).error.message).toMatch(/anthropic-version/);
    expect((await post(request, { headers: { "x-api-key": "sk-ant-test" } }, own)).status).toBe(
      200,
    );
    await own.close();
  });

  it("lists its models in Anthropic's shape", async () => {
    const response = await fetch(`${mock.url}/v1/models`, {
      headers: { "x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01" },
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual(anthropicModelList);
  });

  it("answers other paths with a 404 not_found_error", async () => {
    const response = await fetch(`${mock.url}/v1/complete`, { method: "POST", body: "{}" });
    expect(response.status).toBe(404);
    expect(((await response.json()) as Json).error.type).toBe("not_found_error");
  });
});
