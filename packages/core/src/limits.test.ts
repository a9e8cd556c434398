import { describe, expect, it } from "vitest";
import { limitKeys, reservedTokens } from "./limits.js";

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

describe("reservedTokens", () => {
  it("never goes past what a number counts exactly", () => {
    const body = { messages: [], max_tokens: 2 ** 64 };
    expect(reservedTokens("chat/completions", body)).toBe(Number.MAX_SAFE_INTEGER);
  });
});
