import { afterEach, describe, expect, it, vi } from "vitest";
import { AigwError } from "./errors.js";
import {
  estimatePromptTokens,
  estimateTokens,
  LARGE_BODY_BYTES,
  MEDIA_TOKENS,
  readUsage,
  usageFromObject,
} from "./usage.js";

const bytes = (value: unknown) =>
  Buffer.from(typeof value === "string" ? value : JSON.stringify(value));

/** An embeddings-like body of about `size` bytes with `usage` at its end. */
function largeBody(size: number, usage: unknown = { prompt_tokens: 7, total_tokens: 7 }): Buffer {
  const item = JSON.stringify({ object: "embedding", embedding: Array(64).fill(0.0123456) });
  const count = Math.ceil(size / item.length);
  return Buffer.from(
    `{"object":"list","data":[${Array(count).fill(item).join(",")}],"model":"m","usage":${JSON.stringify(usage)}}`,
  );
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("estimatePromptTokens", () => {
  it("counts media parts of every protocol a fixed number, and the rest as its JSON", () => {
    const data = "B".repeat(100_000);
    const prompt = [
      {
        role: "user",
        content: [{ type: "image_url", image_url: { url: `data:;base64,${data}` } }],
      },
      { role: "user", content: [{ type: "input_image", image_url: `data:;base64,${data}` }] },
      { role: "user", content: [{ type: "image", source: { type: "base64", data } }] },
      { role: "user", content: [{ type: "document", source: { type: "base64", data } }] },
      { role: "user", content: [{ type: "file", file: { file_data: data } }] },
    ];
    // Each part leaves a `null` in the JSON counted.
    const withoutMedia = prompt.map((message) => ({ ...message, content: [null] }));
    expect(estimatePromptTokens(prompt)).toBe(
      estimateTokens(JSON.stringify(withoutMedia)) +
        3 * MEDIA_TOKENS.image +
        2 * MEDIA_TOKENS.document,
    );
    expect(estimatePromptTokens("twelve chars")).toBe(3);
  });
});

describe("usageFromObject", () => {
  it("reads both naming schemes", () => {
    expect(usageFromObject({ prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 })).toEqual({
      inputTokens: 3,
      outputTokens: 4,
      totalTokens: 7,
    });
    expect(usageFromObject({ input_tokens: 5, output_tokens: 6 })).toEqual({
      inputTokens: 5,
      outputTokens: 6,
      totalTokens: 11,
    });
    expect(usageFromObject(null)).toBeUndefined();
  });

  it("reads cached and reasoning tokens from either scheme's details", () => {
    expect(
      usageFromObject({
        prompt_tokens: 100,
        completion_tokens: 40,
        total_tokens: 140,
        prompt_tokens_details: { cached_tokens: 64 },
        completion_tokens_details: { reasoning_tokens: 30 },
      }),
    ).toEqual({
      inputTokens: 100,
      outputTokens: 40,
      totalTokens: 140,
      cacheReadTokens: 64,
      reasoningTokens: 30,
    });
    expect(
      usageFromObject({
        input_tokens: 10,
        output_tokens: 5,
        input_tokens_details: { cached_tokens: 0 },
        output_tokens_details: { reasoning_tokens: "many" },
      }),
    ).toEqual({ inputTokens: 10, outputTokens: 5, totalTokens: 15, cacheReadTokens: 0 });
    expect(usageFromObject({ foo: 1 })).toBeUndefined();
  });
});

describe("readUsage", () => {
  it("reads usage from chat and responses bodies", () => {
    const chat = {
      choices: [],
      usage: { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 },
    };
    expect(readUsage(bytes(chat))).toEqual({ inputTokens: 9, outputTokens: 2, totalTokens: 11 });
    const response = { output: [], usage: { input_tokens: 4, output_tokens: 1, total_tokens: 5 } };
    expect(readUsage(bytes(response))).toEqual({ inputTokens: 4, outputTokens: 1, totalTokens: 5 });
  });

  it("estimates from the request and the output text when there is no usage", () => {
    const body = { choices: [{ message: { content: "12345678" } }] };
    expect(readUsage(bytes(body), { requestBody: "abcd" })).toEqual({
      inputTokens: 1,
      outputTokens: 2,
      totalTokens: 3,
      estimated: true,
    });
    expect(readUsage(bytes({ data: [] }))).toBeUndefined();
  });

  it("throws a 502 invalid_upstream_response on malformed JSON", () => {
    let thrown: unknown;
    try {
      readUsage(bytes('{"choices": ['), { upstreamRequestId: "req_3" });
    } catch (error) {
      thrown = error;
    }
    expect(AigwError.isInstance(thrown)).toBe(true);
    expect(thrown).toMatchObject({
      status: 502,
      type: "upstream_error",
      code: "invalid_upstream_response",
      isRetryable: false,
      upstreamRequestId: "req_3",
    });
  });

  it("reads a large body's usage without parsing the body", () => {
    const body = largeBody(3 * 1024 * 1024, {
      prompt_tokens: 7,
      total_tokens: 7,
      details: { nested: "}" },
    });
    expect(body.length).toBeGreaterThan(LARGE_BODY_BYTES);
    const parse = vi.spyOn(JSON, "parse");
    expect(readUsage(body)).toEqual({ inputTokens: 7, outputTokens: 0, totalTokens: 7 });
    for (const [text] of parse.mock.calls) expect(text.length).toBeLessThan(1000);
  });

  it("rejects a large body that is cut short", () => {
    const body = largeBody(2 * 1024 * 1024);
    expect(() => readUsage(body.subarray(0, body.length - 10))).toThrow(AigwError);
    expect(() => readUsage(body.subarray(5))).toThrow(AigwError);
  });

  it("returns no usage for a large body without any", () => {
    const body = Buffer.from(`{"data":"${"x".repeat(LARGE_BODY_BYTES)}"}`);
    expect(readUsage(body)).toBeUndefined();
  });
});

describe("estimateTokens", () => {
  it("counts a token per four bytes of UTF-8", () => {
    expect(estimateTokens("")).toBe(0);
    expect(estimateTokens("abcde")).toBe(2);
    expect(estimateTokens("éé")).toBe(1);
  });
});
