import { describe, expect, it } from "vitest";
import { AigwError } from "../errors.js";
import { createSecretScrubber } from "../secrets.js";
import { chatToGemini, geminiSchema } from "./chat-to-gemini.js";
import { createGeminiFormat } from "./format.js";
import { GeminiStreamTranslator, geminiToChat, usageOfGemini } from "./gemini-to-chat.js";
import { createGemini } from "./provider.js";
import { decodeToolCallId, encodeToolCallId } from "./tool-call-id.js";

const secrets = createSecretScrubber(["AIzaSy-secret-key-0123456789"]);
const user = (content: unknown) => ({ role: "user", content });

function refusal(body: Record<string, unknown>, options = {}) {
  try {
    chatToGemini(body, options);
  } catch (error) {
    if (!AigwError.isInstance(error)) throw error;
    return { status: error.status, code: error.code, param: error.param, message: error.message };
  }
  throw new Error("expected a refusal");
}

describe("chatToGemini", () => {
  it("cleans schemas to what Gemini's Schema takes, at every depth", () => {
    expect(
      geminiSchema({
        $schema: "http://json-schema.org/draft-07/schema#",
        type: "object",
        additionalProperties: false,
        properties: {
          tags: { type: "array", items: { type: "string", pattern: "^[a-z]+$", $comment: "x" } },
          extra: { type: "object", properties: {} },
          either: { anyOf: [{ type: "string" }, { type: "integer", exclusiveMinimum: 0 }] },
          maybe: { type: ["number", "null"] },
        },
        required: ["tags"],
      }),
    ).toEqual({
      type: "object",
      properties: {
        tags: { type: "array", items: { type: "string", pattern: "^[a-z]+$" } },
        extra: { type: "object" },
        either: { anyOf: [{ type: "string" }, { type: "integer" }] },
        maybe: { type: "number", nullable: true },
      },
      required: ["tags"],
    });
  });

  it("writes $refs out, turns oneOf and const into what Gemini takes, drops enums and formats it refuses", () => {
    expect(
      geminiSchema({
        type: "object",
        $defs: {
          Point: { type: "object", properties: { x: { type: "number", format: "double" } } },
          Node: { type: "object", properties: { next: { $ref: "#/$defs/Node" } } },
        },
        properties: {
          at: { $ref: "#/$defs/Point", description: "where" },
          chain: { $ref: "#/$defs/Node" },
          level: { type: "integer", enum: [1, 2, 3] },
          site: { type: "string", format: "uri" },
          kind: { const: "point" },
          either: { oneOf: [{ type: "string" }, { type: "number" }] },
        },
      }),
    ).toEqual({
      type: "object",
      properties: {
        at: {
          type: "object",
          properties: { x: { type: "number", format: "double" } },
          description: "where",
        },
        chain: { type: "object", properties: { next: { type: "object" } } },
        level: { type: "integer" },
        site: { type: "string" },
        kind: { type: "string", enum: ["point"] },
        either: { anyOf: [{ type: "string" }, { type: "number" }] },
      },
    });
  });

  it("refuses a schema whose $refs would grow it past 10,000 nodes", () => {
    const $defs: Record<string, unknown> = { L0: { type: "string" } };
    for (let level = 1; level <= 12; level++) {
      const ref = { $ref: `#/$defs/L${level - 1}` };
      $defs[`L${level}`] = { type: "object", properties: { a: ref, b: ref, c: ref } };
    }
    expect(() => geminiSchema({ $defs, $ref: "#/$defs/L12" })).toThrow(/10000 nodes/);
  });

  it("gives another provider's calls the signature Gemini 3 takes in its place", () => {
    const body = chatToGemini({
      messages: [
        user("Weather?"),
        {
          role: "assistant",
          tool_calls: [
            { id: "call_a", type: "function", function: { name: "f", arguments: "{}" } },
            { id: "call_b", type: "function", function: { name: "f", arguments: "{}" } },
          ],
        },
        { role: "tool", tool_call_id: "call_a", content: "1" },
        { role: "tool", tool_call_id: "call_b", content: "2" },
      ],
    });
    const [first, second] = ((body.contents as { parts: Record<string, unknown>[] }[])[1]?.parts ??
      []) as Record<string, unknown>[];
    expect(first?.thoughtSignature).toBe("skip_thought_signature_validator");
    expect(second).not.toHaveProperty("thoughtSignature");
  });

  it("sends a tool result's image after its response, in the same content", () => {
    const body = chatToGemini({
      messages: [
        user("Screenshot?"),
        {
          role: "assistant",
          tool_calls: [
            { id: "fc_1", type: "function", function: { name: "shot", arguments: "{}" } },
          ],
        },
        {
          role: "tool",
          tool_call_id: "fc_1",
          content: [
            { type: "text", text: "Here" },
            { type: "image_url", image_url: { url: "data:image/png;base64,iVBO" } },
          ],
        },
      ],
    });
    expect((body.contents as unknown[])[2]).toEqual({
      role: "user",
      parts: [
        { functionResponse: { name: "shot", response: { content: "Here" }, id: "fc_1" } },
        { inlineData: { mimeType: "image/png", data: "iVBO" } },
      ],
    });
  });

  it("is not fooled by keys every object inherits", () => {
    expect(
      chatToGemini({ messages: [user("Hi")], reasoning_effort: "constructor" }),
    ).not.toHaveProperty("generationConfig");
    expect(refusal({ messages: [user("Hi")], tool_choice: "constructor" }).param).toBe(
      "tool_choice",
    );
  });

  it("sends a tool result with no earlier call as text, since Gemini needs the function's name", () => {
    const body = chatToGemini({
      messages: [user("Hi"), { role: "tool", tool_call_id: "call_9", content: "42" }],
    });
    expect(body.contents).toEqual([
      { role: "user", parts: [{ text: "Hi" }, { text: "Tool result (call_9): 42" }] },
    ]);
  });

  it("refuses logprobs by name, or leaves them out when told", () => {
    const body = { messages: [user("Hi")], logprobs: true, top_logprobs: 2 };
    expect(refusal(body)).toMatchObject({
      status: 400,
      code: "unsupported_parameter",
      param: "logprobs",
    });
    const dropped: string[] = [];
    const sent = chatToGemini(body, {
      dropUnsupported: true,
      onDroppedField: (name) => dropped.push(name),
    });
    expect(sent).not.toHaveProperty("generationConfig");
    expect(dropped).toContain("logprobs");
  });

  it("refuses what Gemini cannot take: non-function tools, OpenAI file ids, URLs of unknown type, no turns", () => {
    expect(refusal({ messages: [user("Hi")], tools: [{ type: "web_search" }] }).param).toBe(
      "tools[0].type",
    );
    expect(
      refusal({ messages: [user([{ type: "file", file: { file_id: "file-1" } }])] }).param,
    ).toBe("messages[0].content[0].file.file_id");
    expect(
      refusal({
        messages: [user([{ type: "image_url", image_url: { url: "https://x.test/img" } }])],
      }).code,
    ).toBe("unsupported_parameter");
    expect(refusal({ messages: [{ role: "system", content: "Only this" }] }).param).toBe(
      "messages",
    );
  });

  it("turns thinking off for reasoning_effort none, and asks for thoughts otherwise", () => {
    const config = (effort: string) =>
      chatToGemini({ messages: [user("Hi")], reasoning_effort: effort }).generationConfig;
    expect(config("none")).toEqual({
      thinkingConfig: { thinkingBudget: 0, includeThoughts: false },
    });
    expect(config("high")).toEqual({
      thinkingConfig: { thinkingBudget: 24_576, includeThoughts: true },
    });
  });
});

describe("Gemini answers as OpenAI's", () => {
  it("gives one choice per candidate, by its index", () => {
    const chat = geminiToChat(
      {
        candidates: [
          { index: 0, content: { parts: [{ text: "One" }] }, finishReason: "STOP" },
          { index: 1, content: { parts: [{ text: "Two" }] }, finishReason: "MAX_TOKENS" },
        ],
        usageMetadata: { promptTokenCount: 3, candidatesTokenCount: 2, totalTokenCount: 5 },
      },
      "gemini-2.5-flash",
      0,
    );
    expect(chat.choices).toMatchObject([
      { index: 0, message: { content: "One" }, finish_reason: "stop" },
      { index: 1, message: { content: "Two" }, finish_reason: "length" },
    ]);
    expect(chat.model).toBe("gemini-2.5-flash");
  });

  it("fails an answer without candidates, and one that stopped on its own fault having said nothing", () => {
    expect(() => geminiToChat({ usageMetadata: {} }, "m", 0)).toThrow(/no candidates/);
    let caught: unknown;
    try {
      geminiToChat(
        { candidates: [{ content: { parts: [] }, finishReason: "MALFORMED_FUNCTION_CALL" }] },
        "m",
        0,
      );
    } catch (error) {
      caught = error;
    }
    expect(caught).toMatchObject({ status: 502, isRetryable: true });
    expect((caught as Error).message).toContain("MALFORMED_FUNCTION_CALL");
  });

  it("counts tool-use prompt tokens as input, thoughts as output and as reasoning", () => {
    expect(
      usageOfGemini({
        promptTokenCount: 10,
        toolUsePromptTokenCount: 4,
        candidatesTokenCount: 5,
        thoughtsTokenCount: 7,
        cachedContentTokenCount: 6,
        totalTokenCount: 26,
      }),
    ).toEqual({
      inputTokens: 14,
      outputTokens: 12,
      totalTokens: 26,
      cacheReadTokens: 6,
      reasoningTokens: 7,
    });
  });

  it("ends a stream of two candidates once both finished, even when the second starts late", () => {
    const stream = new GeminiStreamTranslator("m", 0, secrets, true, 2);
    const event = (index: number, text: string, finishReason?: string) => ({
      candidates: [
        { index, content: { parts: [{ text }] }, ...(finishReason ? { finishReason } : {}) },
      ],
    });
    stream.push(event(0, "a"));
    stream.push(event(0, "c", "STOP"));
    expect(stream.done).toBe(false);
    stream.push(event(1, "b"));
    expect(stream.done).toBe(false);
    stream.push({
      ...event(1, "d", "STOP"),
      usageMetadata: { promptTokenCount: 1, candidatesTokenCount: 4 },
    });
    expect(stream.done).toBe(true);
    expect(stream.end()[0]?.usage).toMatchObject({ prompt_tokens: 1, completion_tokens: 4 });
  });

  it("fails on an error event, never relaying the key it may quote", () => {
    const stream = new GeminiStreamTranslator("m", 0, secrets, false);
    let caught: unknown;
    try {
      stream.push({
        error: {
          code: 429,
          message: "Quota for AIzaSy-secret-key-0123456789",
          status: "RESOURCE_EXHAUSTED",
        },
      });
    } catch (error) {
      caught = error;
    }
    expect(caught).toMatchObject({ status: 429, isRetryable: true });
    expect((caught as Error).message).not.toContain("AIzaSy-secret-key-0123456789");
  });
});

describe("tool call ids", () => {
  it("carry Gemini's id and thought signature, and made ids stay home", () => {
    const id = encodeToolCallId("fc_1", "c2lnbmF0dXJl+/8=");
    expect(id).toMatch(/^fc_1__ts_[A-Za-z0-9_-]+$/);
    expect(decodeToolCallId(id)).toEqual({ id: "fc_1", thoughtSignature: "c2lnbmF0dXJl+/8=" });
    expect(decodeToolCallId(encodeToolCallId(undefined, undefined))).toEqual({});
    expect(decodeToolCallId("call_from_openai")).toEqual({ id: "call_from_openai" });
  });
});

describe("Gemini's errors", () => {
  it("count as a bad key only from Google's ErrorInfo, never from a message quoting the client", () => {
    const format = createGeminiFormat({});
    const bad = JSON.stringify({
      error: {
        code: 400,
        message: "API key not valid.",
        status: "INVALID_ARGUMENT",
        details: [
          { "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "API_KEY_INVALID" },
        ],
      },
    });
    const quoting = JSON.stringify({
      error: {
        code: 400,
        message: "Invalid value at 'type', \"API_KEY_INVALID\"",
        status: "INVALID_ARGUMENT",
      },
    });
    expect(format.errorStatus?.(400, bad)).toBe(401);
    expect(format.errorStatus?.(400, quoting)).toBe(400);
  });
});

describe("createGemini", () => {
  it("refuses a baseURL that carries the key", () => {
    expect(() =>
      createGemini({
        apiKey: "k",
        baseURL: "https://generativelanguage.googleapis.com/v1beta?key=k",
      }),
    ).toThrow(/must not carry the API key/);
  });
});
