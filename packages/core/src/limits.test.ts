import { MEDIA_TOKENS } from "@aigw/provider";
import { describe, expect, it } from "vitest";
import { limitKeys, tokenNeed } from "./limits.js";
import { openAIProtocol } from "./protocols/openai/index.js";

const reservedTokens = (endpoint: "chat/completions", body: Record<string, unknown>) =>
  tokenNeed(openAIProtocol, endpoint, body, 4096).tokens;

const request = (user?: string) => ({
  method: "POST",
  path: "/v1/chat/completions",
  headers: user === undefined ? {} : { "x-user-id": user },
});

describe("limitKeys", () => {
  const options = { keyBy: "tenant+user" as const, userHeader: "x-user-id" };

  it("gives every tenant and user pair a key of its own", () => {
    const first = limitKeys(options, { id: "a", options: {} }, false, request("b:c"), undefined);
    const second = limitKeys(options, { id: "a:b", options: {} }, false, request("c"), undefined);
    expect(first.key).toBe("a");
    expect(second.key).toBe("a:b");
    expect(first.userKey).not.toBe(second.userKey);
  });

  it("names no user key when the request names no user", () => {
    expect(limitKeys(options, { id: "a", options: {} }, false, request(), {})).toEqual({
      key: "a",
      userKey: undefined,
    });
  });
});

describe("tokenNeed", () => {
  it("never goes past what a number counts exactly", () => {
    const body = { messages: [], max_tokens: 2 ** 64 };
    expect(reservedTokens("chat/completions", body)).toBe(Number.MAX_SAFE_INTEGER);
  });

  it("counts an image a fixed number of tokens, not its base64 bytes / 4", () => {
    const image = `data:image/png;base64,${"A".repeat(4_000_000)}`;
    const withImage = {
      max_tokens: 10,
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "What is this?" },
            { type: "image_url", image_url: { url: image } },
          ],
        },
      ],
    };
    const textOnly = {
      max_tokens: 10,
      messages: [{ role: "user", content: [{ type: "text", text: "What is this?" }] }],
    };
    const difference =
      reservedTokens("chat/completions", withImage) - reservedTokens("chat/completions", textOnly);
    // The part itself leaves a `null` in the JSON counted.
    expect(difference).toBeGreaterThanOrEqual(MEDIA_TOKENS.image);
    expect(difference).toBeLessThan(MEDIA_TOKENS.image + 5);
  });
});
