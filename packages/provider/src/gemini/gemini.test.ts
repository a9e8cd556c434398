import { describe, expect, it } from "vitest";
import { AigwError } from "../errors.js";
import { createSecretScrubber } from "../secrets.js";
import { chatToGemini, geminiSchema } from "./chat-to-gemini.js";
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

  it("ends a stream of two candidates once both finished", () => {
    const stream = new GeminiStreamTranslator("m", 0, secrets, true);
    const event = (index: number, text: string, finishReason?: string) => ({
      candidates: [
        { index, content: { parts: [{ text }] }, ...(finishReason ? { finishReason } : {}) },
      ],
    });
    stream.push(event(0, "a"));
    stream.push(event(1, "b"));
    stream.push(event(0, "c", "STOP"));
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
