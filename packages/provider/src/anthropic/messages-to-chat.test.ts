import { describe, expect, it } from "vitest";
import { AigwError } from "../errors.js";
import { createSecretScrubber } from "../secrets.js";
import {
  finishReason,
  MessagesStreamTranslator,
  messagesToChat,
  streamErrorOf,
  usageOfMessage,
} from "./messages-to-chat.js";

const secrets = createSecretScrubber(["sk-ant-secret-key-0123456789"]);
const created = 1_700_000_000;

function translateStream(events: [string, Record<string, unknown>][]) {
  const translator = new MessagesStreamTranslator(created, secrets, true);
  const chunks = events.flatMap(([event, data]) => translator.push(event, data));
  return { translator, chunks: chunks as { choices: { delta: Record<string, unknown> }[] }[] };
}

const start = (usage: Record<string, unknown> = { input_tokens: 10, output_tokens: 1 }) =>
  [
    "message_start",
    {
      type: "message_start",
      message: { id: "msg_1", model: "claude-sonnet-4-5", content: [], usage },
    },
  ] as [string, Record<string, unknown>];
const blockStart = (index: number, block: Record<string, unknown>) =>
  ["content_block_start", { index, content_block: block }] as [string, Record<string, unknown>];
const delta = (index: number, value: Record<string, unknown>) =>
  ["content_block_delta", { index, delta: value }] as [string, Record<string, unknown>];
const stop = (index: number) =>
  ["content_block_stop", { index }] as [string, Record<string, unknown>];

describe("messagesToChat", () => {
  it("joins text, turns tool_use into tool_calls, keeps thinking blocks signed and in order", () => {
    const thinking = { type: "thinking", thinking: "Paris.", signature: "sig" };
    const redacted = { type: "redacted_thinking", data: "opaque==" };
    const chat = messagesToChat(
      {
        id: "msg_1",
        model: "claude-sonnet-4-5",
        content: [
          thinking,
          redacted,
          { type: "text", text: "Let me " },
          { type: "text", text: "check." },
          { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } },
          { type: "tool_use", id: "toolu_2", name: "now", input: {} },
        ],
        stop_reason: "tool_use",
        usage: { input_tokens: 5, output_tokens: 9 },
      },
      created,
    );
    expect(chat).toMatchObject({
      id: "msg_1",
      object: "chat.completion",
      created,
      model: "claude-sonnet-4-5",
      choices: [
        {
          index: 0,
          finish_reason: "tool_calls",
          message: {
            role: "assistant",
            content: "Let me check.",
            reasoning_content: "Paris.",
            thinking_blocks: [thinking, redacted],
            tool_calls: [
              {
                id: "toolu_1",
                type: "function",
                function: { name: "get_weather", arguments: '{"city":"Paris"}' },
              },
              { id: "toolu_2", type: "function", function: { name: "now", arguments: "{}" } },
            ],
          },
        },
      ],
    });
  });

  it("maps every stop_reason", () => {
    expect(
      ["end_turn", "stop_sequence", "pause_turn", "max_tokens", "tool_use", "refusal", "new"].map(
        finishReason,
      ),
    ).toEqual(["stop", "stop", "stop", "length", "tool_calls", "content_filter", "stop"]);
  });

  it("A.8 #12: prompt_tokens counts cache reads and writes; cached_tokens the reads", () => {
    const usage = {
      input_tokens: 10,
      output_tokens: 20,
      cache_read_input_tokens: 300,
      cache_creation_input_tokens: 50,
      cache_creation: { ephemeral_5m_input_tokens: 20, ephemeral_1h_input_tokens: 30 },
    };
    expect(usageOfMessage(usage)).toEqual({
      inputTokens: 360,
      outputTokens: 20,
      totalTokens: 380,
      cacheReadTokens: 300,
      cacheWriteTokens: { fiveMinutes: 20, oneHour: 30 },
    });
    const chat = messagesToChat({ id: "m", content: [], usage }, created);
    expect(chat.usage).toEqual({
      prompt_tokens: 360,
      completion_tokens: 20,
      total_tokens: 380,
      prompt_tokens_details: { cached_tokens: 300 },
    });
    // Without the split, writes are 5-minute ones.
    expect(
      usageOfMessage({ input_tokens: 1, cache_creation_input_tokens: 8 }).cacheWriteTokens,
    ).toEqual({ fiveMinutes: 8, oneHour: 0 });
  });
});

describe("MessagesStreamTranslator", () => {
  it("A.8 #1: two tool calls get OpenAI indices 0 and 1, their ids, their own arguments", () => {
    const { chunks, translator } = translateStream([
      start(),
      ["ping", { type: "ping" }],
      blockStart(0, { type: "text", text: "" }),
      delta(0, { type: "text_delta", text: "Checking." }),
      stop(0),
      blockStart(1, { type: "tool_use", id: "toolu_a", name: "get_weather", input: {} }),
      delta(1, { type: "input_json_delta", partial_json: '{"city":' }),
      blockStart(2, { type: "tool_use", id: "toolu_b", name: "get_weather", input: {} }),
      delta(2, { type: "input_json_delta", partial_json: '{"city":"Rome"}' }),
      delta(1, { type: "input_json_delta", partial_json: '"Paris"}' }),
      stop(1),
      stop(2),
      ["message_delta", { delta: { stop_reason: "tool_use" }, usage: { output_tokens: 30 } }],
      ["message_stop", { type: "message_stop" }],
    ]);
    const deltas = chunks.map((chunk) => chunk.choices[0]?.delta);
    expect(deltas[0]).toEqual({ role: "assistant", content: "" });
    expect(deltas[1]).toEqual({ content: "Checking." });
    const calls = deltas.flatMap((value) => (value?.tool_calls as unknown[]) ?? []);
    expect(calls).toEqual([
      {
        index: 0,
        id: "toolu_a",
        type: "function",
        function: { name: "get_weather", arguments: "" },
      },
      { index: 0, function: { arguments: '{"city":' } },
      {
        index: 1,
        id: "toolu_b",
        type: "function",
        function: { name: "get_weather", arguments: "" },
      },
      { index: 1, function: { arguments: '{"city":"Rome"}' } },
      { index: 0, function: { arguments: '"Paris"}' } },
    ]);
    expect(chunks.at(-2)?.choices[0]).toMatchObject({ finish_reason: "tool_calls" });
    expect(chunks.at(-1)).toMatchObject({
      choices: [],
      usage: { prompt_tokens: 10, completion_tokens: 30, total_tokens: 40 },
    });
    expect(translator.done).toBe(true);
    for (const chunk of chunks) {
      expect(translator.serialize(chunk)).toBe(JSON.stringify(chunk));
    }
  });

  it("A.8 #2: a tool call with no input deltas gets arguments {}", () => {
    const { chunks } = translateStream([
      start(),
      blockStart(0, { type: "tool_use", id: "toolu_a", name: "now", input: {} }),
      stop(0),
    ]);
    expect(chunks.at(-1)?.choices[0]?.delta).toEqual({
      tool_calls: [{ index: 0, function: { arguments: "{}" } }],
    });
  });

  it("A.8 #15: thinking goes to reasoning_content, and each block whole with its signature", () => {
    const { chunks } = translateStream([
      start(),
      blockStart(0, { type: "thinking", thinking: "" }),
      delta(0, { type: "thinking_delta", thinking: "Paris " }),
      delta(0, { type: "thinking_delta", thinking: "is in France." }),
      delta(0, { type: "signature_delta", signature: "sig-abc" }),
      stop(0),
      blockStart(1, { type: "redacted_thinking", data: "opaque==" }),
      stop(1),
      blockStart(2, { type: "text", text: "" }),
      delta(2, { type: "text_delta", text: "Sunny." }),
    ]);
    expect(chunks.slice(1).map((chunk) => chunk.choices[0]?.delta)).toEqual([
      { reasoning_content: "Paris " },
      { reasoning_content: "is in France." },
      {
        thinking_blocks: [
          { type: "thinking", thinking: "Paris is in France.", signature: "sig-abc" },
        ],
      },
      { thinking_blocks: [{ type: "redacted_thinking", data: "opaque==" }] },
      { content: "Sunny." },
    ]);
  });

  it("sends the usage chunk only when the client asked, and nothing after message_stop", () => {
    const events: [string, Record<string, unknown>][] = [
      start(),
      blockStart(0, { type: "text", text: "" }),
      delta(0, { type: "text_delta", text: "Hi." }),
      ["message_delta", { delta: { stop_reason: "end_turn" }, usage: { output_tokens: 2 } }],
      ["message_stop", {}],
      delta(0, { type: "text_delta", text: "late" }),
      ["message_stop", {}],
    ];
    const asked = new MessagesStreamTranslator(created, secrets, true);
    const notAsked = new MessagesStreamTranslator(created, secrets, false);
    const withUsage = events.flatMap(([event, data]) => asked.push(event, data));
    const without = events.flatMap(([event, data]) => notAsked.push(event, data));
    expect(withUsage).toHaveLength(without.length + 1);
    expect(withUsage.at(-1)).toMatchObject({ choices: [], usage: { completion_tokens: 2 } });
    expect(JSON.stringify(without)).not.toContain("late");
    expect(notAsked.usage).toMatchObject({ outputTokens: 2 });
  });

  it("bills a stream cut before message_delta at least a token per delta, marked estimated", () => {
    const { translator } = translateStream([
      start({ input_tokens: 7, output_tokens: 1 }),
      blockStart(0, { type: "text", text: "" }),
      delta(0, { type: "text_delta", text: "a" }),
      delta(0, { type: "text_delta", text: "b" }),
      delta(0, { type: "text_delta", text: "c" }),
    ]);
    expect(translator.usage).toMatchObject({ inputTokens: 7, outputTokens: 3, estimated: true });
  });

  it("uses a tool's input given at its start, and never gives two calls one index", () => {
    const { chunks } = translateStream([
      start(),
      blockStart(0, { type: "tool_use", id: "toolu_a", name: "f", input: { x: 1 } }),
      stop(0),
      blockStart(0, { type: "tool_use", id: "toolu_b", name: "g", input: {} }),
      delta(0, { type: "input_json_delta", partial_json: '{"y":2}' }),
      stop(0),
    ]);
    const calls = chunks.flatMap(
      (chunk) => (chunk.choices[0]?.delta.tool_calls as unknown[]) ?? [],
    );
    expect(calls).toEqual([
      { index: 0, id: "toolu_a", type: "function", function: { name: "f", arguments: "" } },
      { index: 0, function: { arguments: '{"x":1}' } },
      { index: 1, id: "toolu_b", type: "function", function: { name: "g", arguments: "" } },
      { index: 1, function: { arguments: '{"y":2}' } },
    ]);
  });

  it("reads cache usage from message_start and from message_delta", () => {
    const { translator } = translateStream([
      start({ input_tokens: 5, cache_read_input_tokens: 100, output_tokens: 1 }),
      [
        "message_delta",
        { delta: {}, usage: { output_tokens: 7, cache_creation_input_tokens: 40 } },
      ],
    ]);
    expect(translator.usage).toEqual({
      inputTokens: 145,
      outputTokens: 7,
      totalTokens: 152,
      cacheReadTokens: 100,
      cacheWriteTokens: { fiveMinutes: 40, oneHour: 0 },
    });
    expect(translator.done).toBe(false);
  });

  it("A.8 #13: a mid-stream overloaded_error is an error, not a finish_reason", () => {
    const translator = new MessagesStreamTranslator(created, secrets, true);
    translator.push(...start());
    let thrown: unknown;
    try {
      translator.push("error", {
        type: "error",
        error: { type: "overloaded_error", message: "Overloaded for sk-ant-secret-key-0123456789" },
      });
    } catch (error) {
      thrown = error;
    }
    expect(AigwError.isInstance(thrown)).toBe(true);
    expect(thrown).toMatchObject({ status: 503, type: "upstream_error", isRetryable: true });
    expect((thrown as Error).message).not.toContain("secret-key");
    expect(thrown).toMatchObject({ status: 503, code: "upstream_overloaded" });
    const mapped = (type: string) => {
      const { status, type: openAIType, code, isRetryable } = streamErrorOf({ type }, secrets);
      return [status, openAIType, code, isRetryable];
    };
    expect(mapped("timeout_error")).toEqual([504, "timeout", "timeout", true]);
    expect(mapped("billing_error")).toEqual([
      502,
      "upstream_error",
      "upstream_billing_error",
      false,
    ]);
    expect(mapped("rate_limit_error")).toEqual([
      429,
      "rate_limit_error",
      "rate_limit_exceeded",
      true,
    ]);
    expect(mapped("something_new")).toEqual([502, "upstream_error", "upstream_error", true]);
  });
});
