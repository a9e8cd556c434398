import { describe, expect, it } from "vitest";
import { AigwError } from "../errors.js";
import { ChatToMessagesStream, chatAnswerToMessage } from "./chat-to-messages-answer.js";
import { messagesRequestToChat } from "./messages-request-to-chat.js";

const request = (extra: Record<string, unknown>) => ({
  model: "claude-sonnet-4-5",
  max_tokens: 100,
  messages: [{ role: "user", content: "Hi" }],
  ...extra,
});

const answer = (choice: Record<string, unknown>, usage: Record<string, unknown> = {}) => ({
  id: "chatcmpl-1",
  model: "gpt-4o-mini",
  choices: [{ index: 0, message: { role: "assistant", content: "Hi" }, ...choice }],
  usage: { prompt_tokens: 100, completion_tokens: 5, ...usage },
});

describe("messagesRequestToChat", () => {
  it("turns output_config.format and output_format into a strict json_schema response_format", () => {
    const schema = {
      type: "object",
      properties: {
        name: { type: "string" },
        tags: {
          type: "array",
          items: { type: "object", properties: { label: { type: "string" } } },
        },
      },
      required: ["name"],
    };
    const expected = {
      type: "json_schema",
      json_schema: {
        name: "structured_output",
        strict: true,
        schema: {
          type: "object",
          properties: {
            name: { type: "string" },
            tags: {
              type: ["array", "null"],
              items: {
                type: "object",
                properties: { label: { type: ["string", "null"] } },
                additionalProperties: false,
                required: ["label"],
              },
            },
          },
          required: ["name", "tags"],
          additionalProperties: false,
        },
      },
    };
    const format = { type: "json_schema", schema };
    expect(
      messagesRequestToChat(request({ output_config: { format } })).body.response_format,
    ).toEqual(expected);
    expect(messagesRequestToChat(request({ output_format: format })).body.response_format).toEqual(
      expected,
    );
    expect(schema.properties.tags.items).not.toHaveProperty("additionalProperties");
  });

  it("rewrites only subschemas: a property named properties and const values stay, optional ones take null", () => {
    const schema = {
      type: "object",
      properties: {
        properties: { type: "string" },
        kind: { const: { type: "object" } },
        note: { anyOf: [{ type: "string" }, { type: "number" }] },
      },
      required: ["properties", "kind"],
    };
    const sent = messagesRequestToChat(request({ output_format: { type: "json_schema", schema } }))
      .body.response_format as { json_schema: { schema: unknown } };
    expect(sent.json_schema.schema).toEqual({
      type: "object",
      properties: {
        properties: { type: "string" },
        kind: { const: { type: "object" } },
        note: { anyOf: [{ type: "string" }, { type: "number" }, { type: "null" }] },
      },
      required: ["properties", "kind", "note"],
      additionalProperties: false,
    });
  });

  it("sends max_tokens as max_completion_tokens, which OpenAI's reasoning models take", () => {
    const { body } = messagesRequestToChat(request({}));
    expect(body.max_completion_tokens).toBe(100);
    expect(body).not.toHaveProperty("max_tokens");
  });

  it("sends a user_id over OpenAI's 64 characters as its SHA-256", () => {
    const long = `user_${"a".repeat(100)}_account_x_session_y`;
    const user = messagesRequestToChat(request({ metadata: { user_id: long } })).body.user;
    expect(user).toMatch(/^[0-9a-f]{64}$/);
    expect(messagesRequestToChat(request({ metadata: { user_id: long } })).body.user).toBe(user);
    expect(messagesRequestToChat(request({ metadata: { user_id: "u-1" } })).body.user).toBe("u-1");
  });

  it("sends a tool result that answers no call of the turn before as the user's text", () => {
    const { body } = messagesRequestToChat(
      request({
        messages: [
          { role: "user", content: "Hi" },
          {
            role: "assistant",
            content: [{ type: "tool_use", id: "toolu_1", name: "f", input: {} }],
          },
          {
            role: "user",
            content: [
              { type: "tool_result", tool_use_id: "toolu_1", content: "one" },
              { type: "tool_result", tool_use_id: "toolu_1", content: "again" },
              { type: "tool_result", tool_use_id: "toolu_9", content: "stray" },
            ],
          },
        ],
      }),
    );
    expect((body.messages as unknown[]).slice(2)).toEqual([
      { role: "tool", tool_call_id: "toolu_1", content: "one" },
      {
        role: "user",
        content: [
          { type: "text", text: "Tool result (toolu_1): again" },
          { type: "text", text: "Tool result (toolu_9): stray" },
        ],
      },
    ]);
  });

  it("leaves out a tool_choice whose tools were all left out", () => {
    const tools = [{ type: "web_search_20250305", name: "web_search" }];
    for (const tool_choice of [{ type: "any" }, { type: "tool", name: "web_search" }]) {
      const { body } = messagesRequestToChat(request({ tools, tool_choice }), {
        dropUnsupported: true,
      });
      expect(body).not.toHaveProperty("tool_choice");
      expect(body).not.toHaveProperty("tools");
    }
  });

  it("takes 150,000 blocks in one tool result without running out of stack", () => {
    const image = { type: "image", source: { type: "url", url: "https://example.com/a.png" } };
    const { body } = messagesRequestToChat(
      request({
        messages: [
          { role: "user", content: "Hi" },
          { role: "assistant", content: [{ type: "tool_use", id: "t", name: "f", input: {} }] },
          {
            role: "user",
            content: [
              { type: "tool_result", tool_use_id: "t", content: Array(150_000).fill(image) },
            ],
          },
        ],
      }),
    );
    expect(((body.messages as { content: unknown[] }[])[3]?.content ?? []).length).toBe(150_000);
  });

  it("maps thinking budgets, adaptive thinking and output_config.effort to reasoning_effort", () => {
    const effort = (extra: Record<string, unknown>) =>
      messagesRequestToChat(request(extra)).body.reasoning_effort;
    expect(effort({ thinking: { type: "enabled", budget_tokens: 1024 } })).toBe("low");
    expect(effort({ thinking: { type: "enabled", budget_tokens: 2048 } })).toBe("medium");
    expect(effort({ thinking: { type: "enabled", budget_tokens: 10_000 } })).toBe("high");
    expect(effort({ thinking: { type: "adaptive" } })).toBe("medium");
    expect(effort({ thinking: { type: "adaptive" }, output_config: { effort: "low" } })).toBe(
      "low",
    );
    expect(effort({ thinking: { type: "disabled" } })).toBeUndefined();
    expect(effort({})).toBeUndefined();
  });

  it("refuses Anthropic's server tools by name, or leaves them out when told to", () => {
    const tools = [
      { name: "lookup", input_schema: { type: "object" } },
      { type: "web_search_20250305", name: "web_search", max_uses: 3 },
    ];
    try {
      messagesRequestToChat(request({ tools }));
      expect.unreachable();
    } catch (error) {
      expect(AigwError.isInstance(error)).toBe(true);
      expect(error).toMatchObject({ status: 400, code: "unsupported_parameter", param: "tools.1" });
      expect((error as Error).message).toContain("web_search_20250305");
    }
    const dropped = messagesRequestToChat(request({ tools }), { dropUnsupported: true }).body;
    expect(dropped.tools).toEqual([
      { type: "function", function: { name: "lookup", parameters: { type: "object" } } },
    ]);
    const onlyServer = messagesRequestToChat(request({ tools: tools.slice(1) }), {
      dropUnsupported: true,
    }).body;
    expect(onlyServer).not.toHaveProperty("tools");
  });

  it("sends stop_sequences as stop", () => {
    const { body, stopSequences } = messagesRequestToChat(
      request({ stop_sequences: ["END", "##"] }),
    );
    expect(body.stop).toEqual(["END", "##"]);
    expect(stopSequences).toEqual(["END", "##"]);
  });
});

describe("answers translated back", () => {
  const facts = { toolNames: new Map<string, string>(), stopSequences: ["END"] };

  it("A.8 #20: names the stop sequence an upstream says it matched; a bare stop is end_turn", () => {
    const matched = chatAnswerToMessage(
      answer({ finish_reason: "stop", stop_reason: "END" }),
      facts,
    );
    expect(matched).toMatchObject({ stop_reason: "stop_sequence", stop_sequence: "END" });
    const bare = chatAnswerToMessage(answer({ finish_reason: "stop" }), facts);
    expect(bare).toMatchObject({ stop_reason: "end_turn", stop_sequence: null });
    const other = chatAnswerToMessage(
      answer({ finish_reason: "stop", stop_reason: 128009 }),
      facts,
    );
    expect(other).toMatchObject({ stop_reason: "end_turn", stop_sequence: null });
  });

  it("leaves cache reads and writes out of input_tokens and reports both", () => {
    const usage = {
      prompt_tokens: 1000,
      prompt_tokens_details: { cached_tokens: 600 },
      cache_creation_input_tokens: 300,
    };
    expect(chatAnswerToMessage(answer({ finish_reason: "stop" }, usage), facts).usage).toEqual({
      input_tokens: 100,
      output_tokens: 5,
      cache_creation_input_tokens: 300,
      cache_read_input_tokens: 600,
    });
    const written = { prompt_tokens: 1000, prompt_tokens_details: { cache_write_tokens: 1000 } };
    expect(chatAnswerToMessage(answer({}, written), facts).usage).toMatchObject({
      input_tokens: 0,
      cache_creation_input_tokens: 1000,
    });
  });

  it("answers a refusal as text with stop_reason refusal, JSON and streamed", () => {
    const refusal = answer({
      message: { role: "assistant", content: null, refusal: "I can't help with that." },
      finish_reason: "stop",
    });
    expect(chatAnswerToMessage(refusal, facts)).toMatchObject({
      content: [{ type: "text", text: "I can't help with that." }],
      stop_reason: "refusal",
    });
    const stream = new ChatToMessagesStream(facts);
    const events = [
      ...stream.push({ id: "1", model: "m", choices: [{ index: 0, delta: { refusal: "No." } }] }),
      ...stream.push({ choices: [{ index: 0, delta: {}, finish_reason: "stop" }] }),
      ...stream.end(),
    ].map((event) => JSON.parse(event.data));
    expect(events.find((event) => event.type === "content_block_delta")?.delta).toEqual({
      type: "text_delta",
      text: "No.",
    });
    expect(events.find((event) => event.type === "message_delta")?.delta.stop_reason).toBe(
      "refusal",
    );
  });

  it("keeps a call's deltas in its block when a server repeats an empty id", () => {
    const stream = new ChatToMessagesStream(facts);
    const call = (id: string, args: string, name?: string) => ({
      choices: [
        {
          index: 0,
          delta: {
            tool_calls: [
              { index: 0, id, function: { ...(name ? { name } : {}), arguments: args } },
            ],
          },
        },
      ],
    });
    const events = [
      ...stream.push(call("call_1", '{"a"', "f")),
      ...stream.push(call("", ":1}")),
      ...stream.end(),
    ].map((event) => JSON.parse(event.data));
    const starts = events.filter((event) => event.type === "content_block_start");
    expect(starts).toHaveLength(1);
    expect(starts[0]?.content_block).toMatchObject({ id: "call_1", name: "f" });
  });

  it("fails a stream that ended before any chunk, rather than answer nothing", () => {
    expect(() => new ChatToMessagesStream(facts).end()).toThrow(/ended without an answer/);
  });

  it("streams the matched stop sequence and the cache usage in message_delta", () => {
    const stream = new ChatToMessagesStream(facts);
    stream.push({ id: "1", model: "m", choices: [{ index: 0, delta: { content: "Hi" } }] });
    stream.push({ choices: [{ index: 0, delta: {}, finish_reason: "stop", stop_reason: "END" }] });
    stream.push({
      choices: [],
      usage: {
        prompt_tokens: 10,
        completion_tokens: 2,
        prompt_tokens_details: { cached_tokens: 4, cache_write_tokens: 3 },
      },
    });
    const delta = JSON.parse(stream.end()[0]?.data ?? "{}");
    expect(delta).toEqual({
      type: "message_delta",
      delta: { stop_reason: "stop_sequence", stop_sequence: "END" },
      usage: {
        output_tokens: 2,
        input_tokens: 3,
        cache_creation_input_tokens: 3,
        cache_read_input_tokens: 4,
      },
    });
  });
});
