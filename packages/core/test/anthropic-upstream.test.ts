import { createMemoryCache } from "@aigw/cache";
import { createAnthropic } from "@aigw/provider";
import { createMemoryLimiter } from "@aigw/ratelimit";
import {
  type AnthropicBehaviour,
  type AnthropicMock,
  anthropicModelList,
  startAnthropicMock,
  waitFor,
} from "@aigw/testing";
import OpenAI from "openai";
import type { ChatCompletionChunk } from "openai/resources/chat/completions";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { hashApiKey } from "../src/index.js";
import { type RunningGateway, startGateway } from "./start-gateway.js";

// A.8 of the translation reference, through the gateway, with the openai SDK as the client.
const API_KEY = "sk-ant-upstream-0123456789abcdef0123456789";
let mock: AnthropicMock;
let running: RunningGateway;

beforeAll(async () => {
  mock = await startAnthropicMock({ apiKey: API_KEY });
  running = await startGateway({
    providers: {
      anthropic: createAnthropic({ apiKey: API_KEY, baseURL: `${mock.url}/v1` }),
    },
    models: {
      "claude-*": { provider: "anthropic" },
      lenient: { provider: "anthropic", model: "claude-sonnet-4-5", dropUnsupportedParams: true },
    },
  });
});
afterEach(() => mock.reset());
afterAll(async () => {
  await running?.close();
  await mock?.close();
});

const model = "claude-sonnet-4-5";
const weather = {
  type: "function" as const,
  function: {
    name: "get_weather",
    parameters: { type: "object", properties: { city: { type: "string" } } },
  },
};

type Block = Record<string, unknown>;
/** The body of the last request the upstream received. */
function lastBody<Body>(): Body {
  const request = mock.requests.at(-1);
  if (!request) throw new Error("the upstream received no request");
  return request.body as Body;
}

/** The blocks of each turn the upstream received. */
function sentTurns(): { role: string; content: Block[] }[] {
  return lastBody<{ messages: { role: string; content: Block[] }[] }>().messages;
}

async function chunksOf(stream: AsyncIterable<ChatCompletionChunk>) {
  const chunks: ChatCompletionChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

/** A story streamed while the upstream misbehaves: the chunks that arrived, then the error. */
async function streamFailing(behaviour: AnthropicBehaviour) {
  mock.enqueue(behaviour);
  const chunks: ChatCompletionChunk[] = [];
  const error = await rejection(
    (async () => {
      const stream = await running.client.chat.completions.create({
        model,
        messages: [{ role: "user", content: "Tell me a story" }],
        stream: true,
      });
      for await (const chunk of stream) chunks.push(chunk);
    })(),
  );
  return { chunks, error };
}

async function rejection(promise: Promise<unknown>) {
  try {
    await promise;
  } catch (error) {
    return error as InstanceType<typeof OpenAI.APIError>;
  }
  throw new Error("expected a failure");
}

describe("an Anthropic upstream for OpenAI clients", () => {
  it("answers plain chat, JSON and streamed, with the upstream's key and never the client's", async () => {
    const answer = await running.client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "Hello" }],
    });
    expect(answer.choices[0]?.message.content).toBeTruthy();
    expect(answer.choices[0]?.finish_reason).toBe("stop");
    const chunks = await chunksOf(
      await running.client.chat.completions.create({
        model,
        messages: [{ role: "user", content: "Hello" }],
        stream: true,
        stream_options: { include_usage: true },
      }),
    );
    const text = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? "").join("");
    expect(text).toBe(answer.choices[0]?.message.content);
    expect(chunks.at(-1)?.usage?.prompt_tokens).toBeGreaterThan(0);
    for (const request of mock.requests) {
      expect(request.headers["x-api-key"]).toBe(API_KEY);
      expect(JSON.stringify(request.headers)).not.toContain("sk-client-key");
    }
  });

  it("A.8 #1: two streamed tool calls keep indices 0 and 1, their ids and their own arguments", async () => {
    mock.enqueue({
      kind: "reply",
      content: [
        { type: "text", text: "Checking both." },
        { type: "tool_use", id: "toolu_paris", name: "get_weather", input: { city: "Paris" } },
        { type: "tool_use", id: "toolu_rome", name: "get_weather", input: { city: "Rome" } },
      ],
      stopReason: "tool_use",
    });
    const chunks = await chunksOf(
      await running.client.chat.completions.create({
        model,
        messages: [{ role: "user", content: "Weather in Paris and Rome?" }],
        tools: [weather],
        stream: true,
      }),
    );
    const calls = new Map<number, { id?: string; arguments: string }>();
    for (const chunk of chunks) {
      for (const call of chunk.choices[0]?.delta.tool_calls ?? []) {
        const seen = calls.get(call.index) ?? { arguments: "" };
        if (call.id) seen.id = call.id;
        seen.arguments += call.function?.arguments ?? "";
        calls.set(call.index, seen);
      }
    }
    expect([...calls]).toEqual([
      [0, { id: "toolu_paris", arguments: '{"city":"Paris"}' }],
      [1, { id: "toolu_rome", arguments: '{"city":"Rome"}' }],
    ]);
    expect(chunks.some((chunk) => chunk.choices[0]?.finish_reason === "tool_calls")).toBe(true);
  });

  it("A.8 #2: a tool call with empty input has arguments {}, JSON and streamed", async () => {
    const reply = {
      kind: "reply" as const,
      content: [{ type: "tool_use" as const, id: "toolu_now", name: "now", input: {} }],
      stopReason: "tool_use",
    };
    const request = { model, messages: [{ role: "user" as const, content: "Time?" }] };
    mock.enqueue(reply, reply);
    const answer = await running.client.chat.completions.create(request);
    const call = answer.choices[0]?.message.tool_calls?.[0];
    expect(call?.type === "function" && call.function.arguments).toBe("{}");
    const chunks = await chunksOf(
      await running.client.chat.completions.create({ ...request, stream: true }),
    );
    const streamed = chunks
      .flatMap((chunk) => chunk.choices[0]?.delta.tool_calls ?? [])
      .map((delta) => delta.function?.arguments ?? "")
      .join("");
    expect(streamed).toBe("{}");
  });

  it("A.8 #3: three tool results become one user turn of three tool_result blocks", async () => {
    const call = (id: string, city: string) => ({
      id,
      type: "function" as const,
      function: { name: "get_weather", arguments: JSON.stringify({ city }) },
    });
    await running.client.chat.completions.create({
      model,
      tools: [weather],
      messages: [
        { role: "user", content: "Three cities?" },
        {
          role: "assistant",
          content: null,
          tool_calls: [call("a", "Paris"), call("b", "Rome"), call("c", "Oslo")],
        },
        { role: "tool", tool_call_id: "a", content: "sunny" },
        { role: "tool", tool_call_id: "b", content: "rain" },
        { role: "tool", tool_call_id: "c", content: "snow" },
      ],
    });
    const turns = sentTurns();
    expect(turns.map((turn) => turn.role)).toEqual(["user", "assistant", "user"]);
    expect(turns[2]?.content.map((block) => [block.type, block.tool_use_id])).toEqual([
      ["tool_result", "a"],
      ["tool_result", "b"],
      ["tool_result", "c"],
    ]);
  });

  it("A.8 #4: a tool result with no matching call reaches Anthropic as text", async () => {
    await running.client.chat.completions.create({
      model,
      messages: [
        { role: "user", content: "Hi" },
        { role: "assistant", content: "Hello!" },
        { role: "tool", tool_call_id: "call_lost", content: "42" },
      ],
    });
    expect(sentTurns()[2]?.content).toEqual([
      { type: "text", text: "Tool result (call_lost): 42" },
    ]);
  });

  it("A.8 #5: tool ids with ':' or '.' are normalised alike in call and result", async () => {
    const id = "functions.get_weather:0";
    await running.client.chat.completions.create({
      model,
      tools: [weather],
      messages: [
        { role: "user", content: "Paris?" },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            { id, type: "function", function: { name: "get_weather", arguments: "{}" } },
          ],
        },
        { role: "tool", tool_call_id: id, content: "sunny" },
      ],
    });
    const turns = sentTurns();
    const used = turns[1]?.content[0]?.id as string;
    expect(used).toMatch(/^[a-zA-Z0-9_-]+$/);
    expect(turns[2]?.content[0]).toMatchObject({ type: "tool_result", tool_use_id: used });
  });

  it("A.8 #7: a function with no parameters is sent with an object schema", async () => {
    await running.client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "Time?" }],
      tools: [{ type: "function", function: { name: "now" } }],
    });
    expect(lastBody<{ tools: unknown[] }>().tools).toEqual([
      { name: "now", input_schema: { type: "object", properties: {} } },
    ]);
  });

  it("A.8 #8: a request without max_tokens gets the default, never an upstream 400", async () => {
    await running.client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "Hi" }],
    });
    expect(lastBody<{ max_tokens: number }>().max_tokens).toBe(4096);
  });

  it("A.8 #9 and #10: temperature 1.5 and n 2 are 400s naming the parameter", async () => {
    for (const [param, extra] of [
      ["temperature", { temperature: 1.5 }],
      ["n", { n: 2 }],
    ] as const) {
      const error = await rejection(
        running.client.chat.completions.create({
          model,
          messages: [{ role: "user", content: "Hi" }],
          ...extra,
        }),
      );
      expect(error.status).toBe(400);
      expect(error.type).toBe("invalid_request_error");
      expect(error.param).toBe(param);
    }
    expect(mock.requests).toHaveLength(0);
    // A route may say to leave them out instead.
    await running.client.chat.completions.create({
      model: "lenient",
      messages: [{ role: "user", content: "Hi" }],
      temperature: 1.5,
      n: 2,
    });
    const sent = mock.requests.at(-1)?.body as Record<string, unknown>;
    expect(sent).not.toHaveProperty("temperature");
    expect(sent).not.toHaveProperty("n");
  });

  it("A.8 #11: data URL and https images, and a PDF as a document", async () => {
    await running.client.chat.completions.create({
      model,
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "What are these?" },
            { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
            { type: "image_url", image_url: { url: "https://example.com/cat.jpg" } },
            {
              type: "file",
              file: { filename: "a.pdf", file_data: "data:application/pdf;base64,JVBERi0=" },
            },
          ],
        },
      ],
    });
    expect(sentTurns()[0]?.content.slice(1)).toEqual([
      { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } },
      { type: "image", source: { type: "url", url: "https://example.com/cat.jpg" } },
      {
        type: "document",
        source: { type: "base64", media_type: "application/pdf", data: "JVBERi0=" },
      },
    ]);
  });

  it("A.8 #12: prompt_tokens count cache reads and writes, cached_tokens the reads", async () => {
    const usage = {
      input_tokens: 10,
      output_tokens: 5,
      cache_read_input_tokens: 200,
      cache_creation_input_tokens: 30,
    };
    const reply = {
      kind: "reply" as const,
      content: [{ type: "text" as const, text: "Hi." }],
      usage,
    };
    mock.enqueue(reply, reply);
    const request = { model, messages: [{ role: "user" as const, content: "Hi" }] };
    const answer = await running.client.chat.completions.create(request);
    expect(answer.usage).toMatchObject({
      prompt_tokens: 240,
      completion_tokens: 5,
      total_tokens: 245,
      prompt_tokens_details: { cached_tokens: 200 },
    });
    const chunks = await chunksOf(
      await running.client.chat.completions.create({
        ...request,
        stream: true,
        stream_options: { include_usage: true },
      }),
    );
    expect(chunks.at(-1)?.usage).toMatchObject({
      prompt_tokens: 240,
      prompt_tokens_details: { cached_tokens: 200 },
    });
  });

  it("A.8 #13: a mid-stream overloaded_error is an error to the client, not a finish_reason", async () => {
    const { chunks, error } = await streamFailing({ kind: "midStreamError", afterEvents: 5 });
    expect(chunks.length).toBeGreaterThan(0);
    expect(error.message).toMatch(/overloaded/i);
    expect(chunks.some((chunk) => chunk.choices[0]?.finish_reason)).toBe(false);
  });

  it("A.8 #14: a stream that ends without message_stop is an error, not a success", async () => {
    const { chunks, error } = await streamFailing({ kind: "endWithoutStop" });
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(error.message).toMatch(/ended before it was complete/);
    expect(chunks.length).toBeGreaterThan(0);
    expect(chunks.some((chunk) => chunk.choices[0]?.finish_reason)).toBe(false);
  });

  it("A.8 #15: thinking blocks come back signed, in order, and reach Anthropic again unchanged", async () => {
    const thinking = { type: "thinking", thinking: "Paris is in France.", signature: "c2lnLTE=" };
    const redacted = { type: "redacted_thinking", data: "EmwKAhgBEgy3va3pzix/LafPsn4a" };
    mock.enqueue({
      kind: "reply",
      content: [
        thinking as { type: "thinking"; thinking: string; signature: string },
        redacted as { type: "redacted_thinking"; data: string },
        { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } },
      ],
      stopReason: "tool_use",
    });
    const first = await running.client.chat.completions.create({
      model,
      tools: [weather],
      reasoning_effort: "low",
      messages: [{ role: "user", content: "Weather in Paris?" }],
    });
    const message = first.choices[0]?.message as unknown as Record<string, unknown>;
    expect(message.reasoning_content).toBe("Paris is in France.");
    expect(message.thinking_blocks).toEqual([thinking, redacted]);
    await running.client.chat.completions.create({
      model,
      tools: [weather],
      reasoning_effort: "low",
      messages: [
        { role: "user", content: "Weather in Paris?" },
        first.choices[0]?.message as OpenAI.Chat.ChatCompletionMessageParam,
        { role: "tool", tool_call_id: "toolu_1", content: "sunny" },
      ],
    });
    const sent = sentTurns()[1]?.content;
    expect(sent?.slice(0, 2)).toEqual([thinking, redacted]);
    expect(sent?.[2]).toMatchObject({ type: "tool_use", id: "toolu_1" });
  });

  it("A.8 #20: a matched stop sequence is finish_reason stop", async () => {
    mock.enqueue({
      kind: "reply",
      content: [{ type: "text", text: "1, 2, 3" }],
      stopReason: "stop_sequence",
      stopSequence: "4",
    });
    const answer = await running.client.chat.completions.create({
      model,
      stop: ["4"],
      messages: [{ role: "user", content: "Count" }],
    });
    expect(answer.choices[0]?.finish_reason).toBe("stop");
    expect(lastBody<{ stop_sequences: string[] }>().stop_sequences).toEqual(["4"]);
  });

  it("A.8 #21: an assistant prefill ending in white space is trimmed", async () => {
    await running.client.chat.completions.create({
      model,
      messages: [
        { role: "user", content: "JSON please" },
        { role: "assistant", content: "{\n  " },
      ],
    });
    expect(sentTurns()[1]?.content).toEqual([{ type: "text", text: "{" }]);
  });

  it("lists Anthropic's own models under a wildcard route in GET /v1/models", async () => {
    const ids = [];
    for await (const listed of running.client.models.list()) ids.push(listed.id);
    expect(ids).toEqual(expect.arrayContaining(anthropicModelList.data.map((listed) => listed.id)));
    const one = await running.client.models.retrieve("claude-haiku-4-5-20251001");
    expect(one.created).toBe(Date.parse("2025-10-01T00:00:00Z") / 1000);
  });

  it("caches, counts against a quota and runs hooks for an Anthropic route as for any other", async () => {
    const key = "sk-tenant-anthropic-0123456789";
    const seen: string[] = [];
    const gateway = await startGateway({
      providers: { anthropic: createAnthropic({ apiKey: API_KEY, baseURL: `${mock.url}/v1` }) },
      models: { "claude-*": { provider: "anthropic" } },
      cache: { store: createMemoryCache() },
      tenants: {
        acme: {
          keyHashes: [hashApiKey(key)],
          limiter: createMemoryLimiter({ quota: { limit: 100_000, period: "day" } }),
        },
      },
      hooks: [
        {
          onChunk(event) {
            seen.push("chunk");
            return event;
          },
          afterResponse(response) {
            seen.push(response.stream ? "stream" : "json");
          },
        },
      ],
    });
    try {
      const client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: key, maxRetries: 0 });
      const request = { model, messages: [{ role: "user" as const, content: "Cache me" }] };
      const first = await client.chat.completions.create(request).withResponse();
      const again = await client.chat.completions.create(request).withResponse();
      expect(first.response.headers.get("x-aigw-cache")).toBe("MISS");
      expect(again.response.headers.get("x-aigw-cache")).toBe("HIT");
      expect(again.data).toEqual(first.data);
      // Another prompt: a stream of the same one would be served from the JSON answer's entry.
      const streamed = {
        model,
        messages: [{ role: "user" as const, content: "Stream me" }],
        stream: true as const,
        stream_options: { include_usage: true },
      };
      const live = await chunksOf(await client.chat.completions.create(streamed));
      const replayed = await client.chat.completions.create(streamed).withResponse();
      expect(replayed.response.headers.get("x-aigw-cache")).toBe("HIT");
      const text = (chunks: ChatCompletionChunk[]) =>
        chunks.map((chunk) => chunk.choices[0]?.delta.content ?? "").join("");
      expect(text(await chunksOf(replayed.data))).toBe(text(live));
      expect(mock.requests).toHaveLength(2);
      expect(seen).toContain("json");
      expect(seen).toContain("stream");
      expect(seen).toContain("chunk");

      const reported = first.data.usage?.total_tokens ?? 0;
      const usage = await waitFor(async () => {
        const body = (await (
          await fetch(`${gateway.url}/v1/usage`, { headers: { authorization: `Bearer ${key}` } })
        ).json()) as { quota: { used: number; reserved: number } };
        return body.quota.reserved === 0 ? body.quota : undefined;
      });
      // The JSON miss and the live stream reached the upstream, and are charged what Anthropic
      // reported; the hits are not charged.
      const streamedTokens = live.at(-1)?.usage?.total_tokens ?? 0;
      expect(reported).toBeGreaterThan(0);
      expect(streamedTokens).toBeGreaterThan(0);
      expect(usage.used).toBe(reported + streamedTokens);
    } finally {
      await gateway.close();
    }
  });

  it("a 529 is retried, then answered 503; an unsupported endpoint is a 400", async () => {
    const retrying = await startGateway({
      providers: {
        anthropic: createAnthropic({
          apiKey: API_KEY,
          baseURL: `${mock.url}/v1`,
          retry: { maxRetries: 2, initialBackoff: 1 },
        }),
      },
      models: { "claude-*": { provider: "anthropic" } },
    });
    try {
      mock.enqueue(
        { kind: "status", status: 529 },
        { kind: "status", status: 529 },
        { kind: "status", status: 529 },
      );
      const error = await rejection(
        retrying.client.chat.completions.create({
          model,
          messages: [{ role: "user", content: "Hi" }],
        }),
      );
      expect(error.status).toBe(503);
      expect(mock.requests).toHaveLength(3);
      mock.reset();
      const unsupported = await rejection(retrying.client.embeddings.create({ model, input: "x" }));
      expect(unsupported.status).toBe(400);
      expect(unsupported.code).toBe("unsupported_endpoint");
      expect(mock.requests).toHaveLength(0);
    } finally {
      await retrying.close();
    }
  });
});
