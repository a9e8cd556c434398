import { createMemoryCache } from "@aigw/cache";
import { createAnthropic, createOpenAICompatible } from "@aigw/provider";
import {
  type AnthropicMock,
  type MockUpstream,
  startAnthropicMock,
  startMockUpstream,
} from "@aigw/testing";
import Anthropic from "@anthropic-ai/sdk";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { hashApiKey } from "../src/index.js";
import { type RunningGateway, startGateway } from "./start-gateway.js";

// The Anthropic Messages API on the gateway, with the official Anthropic SDK as the client.
const upstreamKey = "sk-ant-upstream-0123456789abcdef0123456789";
const clientKey = "aigw-anthropic-client-key";
let mock: AnthropicMock;
let openai: MockUpstream;
let running: RunningGateway;
let client: Anthropic;

beforeAll(async () => {
  mock = await startAnthropicMock({ apiKey: upstreamKey });
  openai = await startMockUpstream();
  running = await startGateway({
    providers: {
      anthropic: createAnthropic({
        apiKey: upstreamKey,
        baseURL: `${mock.url}/v1`,
        retry: { maxRetries: 0 },
      }),
      openai: createOpenAICompatible({ baseURL: openai.baseURL, retry: { maxRetries: 0 } }),
    },
    models: {
      "claude-*": { provider: "anthropic" },
      cached: { provider: "anthropic", model: "claude-sonnet-4-5", cache: true },
      "gpt-*": { provider: "openai" },
      resilient: {
        provider: "anthropic",
        model: "claude-sonnet-4-5",
        fallbacks: ["gpt-4o-mini"],
      },
      "gpt-4o-mini": { provider: "openai" },
      // The OpenAI target first: a request it cannot take moves on to the Anthropic one.
      mixed: {
        strategy: "priority",
        targets: [
          { provider: "openai", model: "gpt-4o-mini" },
          { provider: "anthropic", model: "claude-sonnet-4-5" },
        ],
      },
    },
    tenants: { team: { keyHashes: [hashApiKey(clientKey)] } },
    cache: { store: createMemoryCache(), enabled: false },
  });
  client = new Anthropic({ baseURL: running.url, apiKey: clientKey, maxRetries: 0 });
});
afterEach(() => {
  mock.reset();
  openai.reset();
});
afterAll(async () => {
  await running?.close();
  await mock?.close();
  await openai?.close();
});

const model = "claude-sonnet-4-5";
const hello = [{ role: "user" as const, content: "Hello" }];

describe("POST /v1/messages to an Anthropic upstream", () => {
  it("answers the SDK's messages.create as the upstream did, with the gateway's key kept home", async () => {
    const message = await client.messages.create({ model, max_tokens: 64, messages: hello });
    expect(message.type).toBe("message");
    expect(message.content[0]?.type).toBe("text");
    expect(message.usage.input_tokens).toBeGreaterThan(0);
    const sent = mock.requests[0];
    expect(sent?.path).toBe("/v1/messages");
    expect(sent?.headers["x-api-key"]).toBe(upstreamKey);
    expect(JSON.stringify(sent?.headers)).not.toContain(clientKey);
  });

  it("sends the client's body byte for byte: thinking with its signature, cache_control with its ttl, unknown fields", async () => {
    const body = `{"model":"${model}","max_tokens":64,"messages":[{"role":"user","content":[{"type":"text","text":"Hi","cache_control":{"type":"ephemeral","ttl":"1h"}}]},{"role":"assistant","content":[{"type":"thinking","thinking":"Let me see.","signature":"sig-1=="},{"type":"text","text":"Hello"}]},{"role":"user","content":"Again"}],"seed":9007199254740993,"future_field":{"x":1}}`;
    const response = await fetch(`${running.url}/v1/messages`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-api-key": clientKey,
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "extended-cache-ttl-2025-04-11",
      },
      body,
    });
    expect(response.status).toBe(200);
    await response.text();
    expect(mock.requests[0]?.rawBody).toBe(body);
    expect(mock.requests[0]?.headers["anthropic-beta"]).toBe("extended-cache-ttl-2025-04-11");
  });

  it("leaves out thinking that another provider's answer brought without a signature", async () => {
    const unsigned = { type: "thinking", thinking: "From gpt.", signature: "" } as const;
    const signed = { type: "thinking", thinking: "From Claude.", signature: "sig-2==" } as const;
    await client.messages.create({
      model,
      max_tokens: 64,
      messages: [
        { role: "user", content: "Hi" },
        { role: "assistant", content: [unsigned, { type: "text", text: "Hello" }] },
        { role: "user", content: "Again" },
        { role: "assistant", content: [signed, { type: "text", text: "Hello again" }] },
        { role: "user", content: "Once more" },
      ],
    });
    const sent = mock.requests[0]?.body as { messages: { content: unknown }[] };
    expect(sent.messages[1]?.content).toEqual([{ type: "text", text: "Hello" }]);
    expect(sent.messages[3]?.content).toEqual([signed, { type: "text", text: "Hello again" }]);

    // A turn of unsigned thinking alone goes; so does thinking, when the tool-calling turn
    // it would have to open lost its own.
    const call = { type: "tool_use", id: "toolu_1", name: "lookup", input: {} } as const;
    await client.messages.create({
      model,
      max_tokens: 2048,
      thinking: { type: "enabled", budget_tokens: 1024 },
      tools: [{ name: "lookup", input_schema: { type: "object" } }],
      messages: [
        { role: "user", content: "Hi" },
        { role: "assistant", content: [unsigned] },
        { role: "user", content: "Look it up" },
        { role: "assistant", content: [unsigned, call] },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "42" }] },
      ],
    } as Anthropic.MessageCreateParamsNonStreaming);
    const second = mock.requests[1]?.body as { messages: { role: string; content: unknown }[] };
    expect(second.messages.map((message) => message.role)).toEqual([
      "user",
      "user",
      "assistant",
      "user",
    ]);
    expect(second.messages[2]?.content).toEqual([call]);
    expect(second).not.toHaveProperty("thinking");
  });

  it("passes the client's anthropic-version on, and the provider's own when it sends none", async () => {
    await client.messages.create(
      { model, max_tokens: 64, messages: hello },
      { headers: { "anthropic-version": "2099-01-01" } },
    );
    expect(mock.requests[0]?.headers["anthropic-version"]).toBe("2099-01-01");
    const response = await fetch(`${running.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": clientKey },
      body: JSON.stringify({ model, max_tokens: 64, messages: hello }),
    });
    await response.text();
    expect(mock.requests[1]?.headers["anthropic-version"]).toBe("2023-06-01");
  });

  it("names a gateway's own 415 invalid_request_error, as Anthropic would", async () => {
    const response = await fetch(`${running.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "text/plain", "x-api-key": clientKey },
      body: "hello",
    });
    expect(response.status).toBe(415);
    expect(await response.json()).toMatchObject({
      type: "error",
      error: { type: "invalid_request_error" },
    });
  });

  it("allows the Anthropic SDK's headers in a browser's preflight", async () => {
    const browserRun = await startGateway({
      providers: { anthropic: createAnthropic({ apiKey: upstreamKey, baseURL: `${mock.url}/v1` }) },
      models: { "claude-*": { provider: "anthropic" } },
      cors: { origins: ["https://app.example"] },
    });
    try {
      const asked =
        "x-api-key, anthropic-version, anthropic-beta, anthropic-dangerous-direct-browser-access, content-type";
      const preflight = await fetch(`${browserRun.url}/v1/messages`, {
        method: "OPTIONS",
        headers: {
          origin: "https://app.example",
          "access-control-request-method": "POST",
          "access-control-request-headers": asked,
        },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get("access-control-allow-origin")).toBe("https://app.example");
      expect(preflight.headers.get("access-control-allow-headers")).toBe(asked);
    } finally {
      await browserRun.close();
    }
  });

  it("streams in Anthropic's events, which the SDK's stream helper assembles", async () => {
    const stream = client.messages.stream({ model, max_tokens: 64, messages: hello });
    const texts: string[] = [];
    stream.on("text", (text) => texts.push(text));
    const message = await stream.finalMessage();
    expect(message.stop_reason).toBe("end_turn");
    const text = message.content.find((block) => block.type === "text");
    expect(texts.join("")).toBe(text?.type === "text" ? text.text : "");
    expect(texts.length).toBeGreaterThan(1);
  });

  it("gives errors in Anthropic's envelope, which the SDK raises as its own classes", async () => {
    await expect(
      client.messages.create({ model: "nothing-routes-here", max_tokens: 8, messages: hello }),
    ).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    const anonymous = new Anthropic({ baseURL: running.url, apiKey: "wrong", maxRetries: 0 });
    await expect(
      anonymous.messages.create({ model, max_tokens: 8, messages: hello }),
    ).rejects.toBeInstanceOf(Anthropic.AuthenticationError);
    mock.enqueue({ kind: "status", status: 529 });
    const overloaded = await client.messages
      .create({ model, max_tokens: 8, messages: hello })
      .catch((error: unknown) => error);
    expect(overloaded).toBeInstanceOf(Anthropic.APIError);
    expect((overloaded as { error: { error: { type: string } } }).error.error.type).toBe(
      "overloaded_error",
    );
    const response = await fetch(`${running.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": clientKey },
      body: JSON.stringify({ model, messages: hello }),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      type: "error",
      error: { type: "invalid_request_error", message: "max_tokens: Field required" },
    });
  });

  it("ends a stream that fails midway with an error event, and nothing after it", async () => {
    mock.enqueue({ kind: "midStreamError", afterEvents: 4 });
    const response = await fetch(`${running.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": clientKey },
      body: JSON.stringify({ model, max_tokens: 64, stream: true, messages: hello }),
    });
    const text = await response.text();
    expect(text).toContain("event: error");
    expect(text.trimEnd().split("\n\n").at(-1)).toContain("event: error");
  });

  it("counts tokens: Anthropic's own count from Anthropic targets, a local estimate that says so otherwise", async () => {
    const counted = await client.messages.countTokens({ model, messages: hello });
    expect(counted.input_tokens).toBeGreaterThan(0);
    expect(mock.requests[0]?.path).toBe("/v1/messages/count_tokens");
    const estimated = (await client.messages.countTokens({
      model: "gpt-4o-mini",
      messages: hello,
    })) as { input_tokens: number; estimated?: boolean };
    expect(estimated.input_tokens).toBeGreaterThan(0);
    expect(estimated.estimated).toBe(true);
    expect(openai.requests.length).toBe(0);
  });

  it("answers again from the response cache, JSON and streams, whatever the metadata", async () => {
    const first = await client.messages.create({
      model: "cached",
      max_tokens: 64,
      messages: hello,
    });
    const again = await client.messages
      .create({ model: "cached", max_tokens: 64, messages: hello, metadata: { user_id: "u-2" } })
      .withResponse();
    expect(again.response.headers.get("x-aigw-cache")).toBe("HIT");
    expect(again.data).toEqual(first);
    expect(mock.requests.length).toBe(1);
    // The same request streamed is answered from the entry, in Anthropic's events.
    const replayed = client.messages.stream({ model: "cached", max_tokens: 64, messages: hello });
    expect(await replayed.finalMessage()).toMatchObject(first);
    expect(mock.requests.length).toBe(1);
  });

  it("keeps a streamed answer (thinking and its signature, tool input) for JSON and stream requests alike", async () => {
    const thinking = { type: "thinking" as const, thinking: "Mull it over.", signature: "sig-9==" };
    const tool = {
      type: "tool_use" as const,
      id: "toolu_9",
      name: "weather",
      input: { city: "Oslo" },
    };
    mock.enqueue({ kind: "reply", content: [thinking, { type: "text", text: "Hm." }, tool] });
    const request = {
      model: "cached",
      max_tokens: 2_048,
      messages: [{ role: "user" as const, content: "Weather in Oslo?" }],
    };
    const streamed = await client.messages.stream(request).finalMessage();
    expect(streamed.content[0]).toMatchObject(thinking);
    expect(streamed.content[1]).toMatchObject({ type: "text", text: "Hm." });
    expect(streamed.content[2]).toMatchObject(tool);
    const stored = await client.messages.create(request).withResponse();
    expect(stored.response.headers.get("x-aigw-cache")).toBe("HIT");
    expect(stored.data.content).toEqual(streamed.content);
    expect(stored.data.stop_reason).toBe("tool_use");
    const replayed = await client.messages.stream(request).finalMessage();
    expect(replayed.content).toEqual(streamed.content);
    expect(mock.requests.length).toBe(1);
  });
});

type ChatBody = {
  messages: { role: string; content: unknown; tool_calls?: unknown[]; tool_call_id?: string }[];
  tools?: { function: { name: string } }[];
  [field: string]: unknown;
};
const sentChat = () => openai.requests.at(-1)?.body as ChatBody;
const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
  id: "chatcmpl-1",
  object: "chat.completion.chunk",
  created: 1,
  model: "gpt-4o-mini",
  choices: [{ index: 0, delta, finish_reason: finish }],
});
const toolCall = (index: number, extra: Record<string, unknown>, args: string) => ({
  tool_calls: [{ index, ...extra, function: { ...(extra.function as object), arguments: args } }],
});

describe("POST /v1/messages to an OpenAI-compatible upstream", () => {
  it("translates the request (system first, metadata.user_id as user) and the answer", async () => {
    const message = await client.messages.create({
      model: "gpt-4o-mini",
      max_tokens: 64,
      system: [{ type: "text", text: "Be brief." }],
      stop_sequences: ["END"],
      metadata: { user_id: "u-7" },
      messages: hello,
    });
    expect(message.type).toBe("message");
    expect(message.content[0]?.type).toBe("text");
    expect(message.stop_reason).toBe("end_turn");
    expect(message.usage.input_tokens).toBeGreaterThan(0);
    const sent = sentChat();
    expect(sent.messages[0]).toEqual({ role: "system", content: "Be brief." });
    expect(sent.messages[1]).toEqual({ role: "user", content: "Hello" });
    expect(sent).toMatchObject({ max_completion_tokens: 64, stop: ["END"], user: "u-7" });
  });

  it("A.8 #16: streams in Anthropic's grammar: message_start first with usage and empty content, contiguous blocks, message_stop last", async () => {
    const stream = client.messages.stream({
      model: "gpt-4o-mini",
      max_tokens: 64,
      messages: hello,
    });
    const types: string[] = [];
    stream.on("streamEvent", (event) => types.push(event.type));
    const message = await stream.finalMessage();
    expect(types[0]).toBe("message_start");
    expect(types.at(-1)).toBe("message_stop");
    expect(types.at(-2)).toBe("message_delta");
    expect(message.content.length).toBe(1);
    expect(message.usage.output_tokens).toBeGreaterThan(0);
    expect(sentChat().stream_options).toEqual({ include_usage: true });
  });

  it("A.8 #6: puts interleaved tool-call deltas each in its own block, and restores long tool names", async () => {
    const longName = `lookup_${"x".repeat(80)}`;
    const shortened = `${longName.slice(0, 55)}_`;
    openai.enqueue({
      kind: "events",
      events: [
        chunk({ role: "assistant", content: "" }),
        chunk({ content: "Let me look." }),
        chunk(toolCall(0, { id: "call_a", type: "function", function: { name: "time" } }, "")),
        chunk(
          toolCall(1, { id: "call_b", type: "function", function: { name: "pending" } }, '{"q"'),
        ),
        chunk(toolCall(0, {}, '{"zone":')),
        chunk(toolCall(1, {}, ':"x"}')),
        chunk(toolCall(0, {}, '"UTC"}')),
        chunk({}, "tool_calls"),
        {
          ...chunk({}),
          choices: [],
          usage: { prompt_tokens: 9, completion_tokens: 5, total_tokens: 14 },
        },
        "[DONE]",
      ],
    });
    const stream = client.messages.stream({
      model: "gpt-4o-mini",
      max_tokens: 64,
      messages: hello,
      tools: [
        { name: "time", input_schema: { type: "object" } },
        { name: longName, input_schema: { type: "object" } },
      ],
    });
    const indices: number[] = [];
    stream.on("streamEvent", (event) => {
      if (event.type === "content_block_start") indices.push(event.index);
    });
    const message = await stream.finalMessage();
    expect(indices).toEqual([0, 1, 2]);
    expect(message.content.map((block) => block.type)).toEqual(["text", "tool_use", "tool_use"]);
    expect(message.content[1]).toMatchObject({
      id: "call_a",
      name: "time",
      input: { zone: "UTC" },
    });
    expect(message.content[2]).toMatchObject({ id: "call_b", name: "pending", input: { q: "x" } });
    expect(message.stop_reason).toBe("tool_use");
    expect(message.usage).toMatchObject({ input_tokens: 9, output_tokens: 5 });
    const sentName = sentChat().tools?.[1]?.function.name ?? "";
    expect(sentName.startsWith(shortened)).toBe(true);
    expect(sentName.length).toBe(64);

    // The answer names the shortened tool: the client sees its own name back.
    openai.enqueue({
      kind: "status",
      status: 200,
      body: {
        id: "chatcmpl-2",
        object: "chat.completion",
        created: 1,
        model: "gpt-4o-mini",
        choices: [
          {
            index: 0,
            message: {
              role: "assistant",
              content: null,
              tool_calls: [
                { id: "call_c", type: "function", function: { name: sentName, arguments: "{}" } },
              ],
            },
            finish_reason: "tool_calls",
          },
        ],
        usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
      },
    });
    const answer = await client.messages.create({
      model: "gpt-4o-mini",
      max_tokens: 64,
      messages: hello,
      tools: [{ name: longName, input_schema: { type: "object" } }],
    });
    expect(answer.content[0]).toMatchObject({ type: "tool_use", name: longName, id: "call_c" });
  });

  it("keeps a stream alive with Anthropic's ping while the model thinks, and the SDK reads on", async () => {
    openai.enqueue({ kind: "slowFirstEvent", delayMs: 2_600 });
    const response = await client.messages
      .create({ model: "gpt-4o-mini", max_tokens: 64, messages: hello, stream: true })
      .asResponse();
    const text = await response.text();
    expect(text.startsWith('event: ping\ndata: {"type":"ping"}')).toBe(true);
    expect(text).toContain("event: message_stop");
    openai.enqueue({ kind: "slowFirstEvent", delayMs: 2_600 });
    const message = await client.messages
      .stream({ model: "gpt-4o-mini", max_tokens: 64, messages: hello })
      .finalMessage();
    expect(message.content[0]?.type).toBe("text");
  });

  it("answers the Anthropic SDK in Anthropic's form from an OpenAI fallback when the Anthropic target fails", async () => {
    mock.enqueue({ kind: "status", status: 529 });
    const message = await client.messages.create({
      model: "resilient",
      max_tokens: 64,
      messages: hello,
    });
    expect(message.type).toBe("message");
    expect(message.content[0]?.type).toBe("text");
    expect(mock.requests.length).toBe(1);
    expect(openai.requests.length).toBe(1);
  });

  it("ends with Anthropic's error event, never message_stop, when the upstream's stream fails", async () => {
    openai.enqueue({
      kind: "events",
      events: [
        chunk({ role: "assistant", content: "" }),
        chunk({ content: "Hel" }),
        { error: { message: "The server is overloaded", type: "server_error" } },
      ],
    });
    const response = await fetch(`${running.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": clientKey },
      body: JSON.stringify({ model: "gpt-4o-mini", max_tokens: 64, stream: true, messages: hello }),
    });
    const text = await response.text();
    expect(text).toContain("event: content_block_delta");
    expect(text).not.toContain("message_stop");
    expect(text.trimEnd().split("\n\n").at(-1)).toContain("event: error");
  });

  it("keeps two tool calls apart when an upstream gives both the same index with new ids", async () => {
    openai.enqueue({
      kind: "events",
      events: [
        chunk(
          toolCall(0, { id: "call_1", type: "function", function: { name: "first" } }, '{"a":1}'),
        ),
        chunk(
          toolCall(0, { id: "call_2", type: "function", function: { name: "second" } }, '{"b":2}'),
        ),
        chunk({}, "tool_calls"),
        "[DONE]",
      ],
    });
    const message = await client.messages
      .stream({ model: "gpt-4o-mini", max_tokens: 64, messages: hello })
      .finalMessage();
    expect(message.content).toEqual([
      expect.objectContaining({ type: "tool_use", id: "call_1", name: "first", input: { a: 1 } }),
      expect.objectContaining({ type: "tool_use", id: "call_2", name: "second", input: { b: 2 } }),
    ]);
  });

  it("sends a tool's image as the user's, after the results, and leaves out turns of thinking alone", async () => {
    const png = "iVBORw0KGgo=";
    await client.messages.create({
      model: "gpt-4o-mini",
      max_tokens: 64,
      messages: [
        { role: "user", content: "Show me the screen." },
        {
          role: "assistant",
          content: [{ type: "tool_use", id: "toolu_s", name: "screenshot", input: {} }],
        },
        {
          role: "user",
          content: [
            {
              type: "tool_result",
              tool_use_id: "toolu_s",
              content: [
                { type: "text", text: "Here it is." },
                { type: "image", source: { type: "base64", media_type: "image/png", data: png } },
              ],
            },
          ],
        },
        { role: "assistant", content: [{ type: "thinking", thinking: "Hm.", signature: "s" }] },
        { role: "user", content: "And now?" },
      ],
    });
    const { messages } = sentChat();
    expect(messages.map((message) => message.role)).toEqual([
      "user",
      "assistant",
      "tool",
      "user",
      "user",
    ]);
    expect(messages[2]).toEqual({ role: "tool", tool_call_id: "toolu_s", content: "Here it is." });
    expect(messages[3]?.content).toEqual([
      { type: "image_url", image_url: { url: `data:image/png;base64,${png}` } },
    ]);
  });

  it("sends tool results right after the call, one tool message each, before the user's own text", async () => {
    await client.messages.create({
      model: "gpt-4o-mini",
      max_tokens: 64,
      messages: [
        { role: "user", content: "Weather in Paris and Oslo?" },
        {
          role: "assistant",
          content: [
            { type: "text", text: "Checking." },
            { type: "tool_use", id: "toolu_1", name: "weather", input: { city: "Paris" } },
            { type: "tool_use", id: "toolu_2", name: "weather", input: { city: "Oslo" } },
          ],
        },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "toolu_1", content: "Sunny" },
            {
              type: "tool_result",
              tool_use_id: "toolu_2",
              content: [{ type: "text", text: "Rain" }],
            },
            { type: "text", text: "Thanks." },
          ],
        },
      ],
    });
    const { messages } = sentChat();
    expect(messages.map((message) => message.role)).toEqual([
      "user",
      "assistant",
      "tool",
      "tool",
      "user",
    ]);
    expect(messages[1]?.tool_calls).toEqual([
      {
        id: "toolu_1",
        type: "function",
        function: { name: "weather", arguments: '{"city":"Paris"}' },
      },
      {
        id: "toolu_2",
        type: "function",
        function: { name: "weather", arguments: '{"city":"Oslo"}' },
      },
    ]);
    expect(messages[2]).toEqual({ role: "tool", tool_call_id: "toolu_1", content: "Sunny" });
    expect(messages[3]).toEqual({ role: "tool", tool_call_id: "toolu_2", content: "Rain" });
    expect(messages[4]).toEqual({ role: "user", content: "Thanks." });
  });

  it("A.8 #20: sends structured output, images and documents, and names the stop sequence the upstream matched", async () => {
    const png = "iVBORw0KGgo=";
    const pdf = "JVBERi0xLjQ=";
    openai.enqueue({
      kind: "status",
      status: 200,
      body: {
        id: "chatcmpl-s",
        object: "chat.completion",
        created: 1,
        model: "gpt-4o-mini",
        choices: [
          {
            index: 0,
            message: { role: "assistant", content: '{"city":"Paris"}' },
            finish_reason: "stop",
            stop_reason: "END",
          },
        ],
        usage: { prompt_tokens: 30, completion_tokens: 6, total_tokens: 36 },
      },
    });
    const schema = { type: "object", properties: { city: { type: "string" } } };
    const message = await client.messages.create({
      model: "gpt-4o-mini",
      max_tokens: 64,
      stop_sequences: ["END"],
      output_config: { format: { type: "json_schema", schema } },
      messages: [
        {
          role: "user",
          content: [
            { type: "image", source: { type: "base64", media_type: "image/png", data: png } },
            { type: "image", source: { type: "url", url: "https://example.com/cat.jpg" } },
            {
              type: "document",
              source: { type: "base64", media_type: "application/pdf", data: pdf },
            },
            { type: "document", source: { type: "text", media_type: "text/plain", data: "Notes" } },
            { type: "text", text: "Where is this?" },
          ],
        },
      ],
    } as Anthropic.MessageCreateParamsNonStreaming);
    expect(message).toMatchObject({ stop_reason: "stop_sequence", stop_sequence: "END" });
    expect(message.content).toEqual([{ type: "text", text: '{"city":"Paris"}' }]);
    const sent = sentChat();
    expect(sent.response_format).toEqual({
      type: "json_schema",
      json_schema: {
        name: "structured_output",
        strict: true,
        schema: {
          type: "object",
          properties: { city: { type: ["string", "null"] } },
          additionalProperties: false,
          required: ["city"],
        },
      },
    });
    expect(sent.messages[0]?.content).toEqual([
      { type: "image_url", image_url: { url: `data:image/png;base64,${png}` } },
      { type: "image_url", image_url: { url: "https://example.com/cat.jpg" } },
      { type: "file", file: { file_data: `data:application/pdf;base64,${pdf}` } },
      { type: "text", text: "Notes" },
      { type: "text", text: "Where is this?" },
    ]);
  });

  it("moves a request with Anthropic's server tools past OpenAI targets, and refuses it on a route of them alone", async () => {
    const tools = [{ type: "web_search_20250305", name: "web_search", max_uses: 2 }] as const;
    const message = await client.messages.create({
      model: "mixed",
      max_tokens: 64,
      messages: hello,
      tools: [...tools],
    });
    expect(message.type).toBe("message");
    expect(openai.requests.length).toBe(0);
    expect(mock.requests.length).toBe(1);
    const refused = await client.messages
      .create({ model: "gpt-4o-mini", max_tokens: 64, messages: hello, tools: [...tools] })
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(Anthropic.BadRequestError);
    expect((refused as Error).message).toContain("web_search_20250305");
    expect(openai.requests.length).toBe(0);
  });
});
