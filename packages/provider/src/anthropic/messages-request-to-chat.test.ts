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
              type: "array",
              items: {
                type: "object",
                properties: { label: { type: "string" } },
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
