import { describe, expect, it } from "vitest";
import { type CacheKeyParts, cacheKey } from "./index.js";

const request: CacheKeyParts = {
  tenant: "acme",
  endpoint: "/v1/chat/completions",
  upstream: "openai",
  model: "gpt-4o-mini",
  body: {
    model: "gpt-4o-mini",
    messages: [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hello" },
    ],
    temperature: 0.2,
    response_format: { type: "json_schema", json_schema: { name: "answer", strict: true } },
  },
};

const withBody = (body: Record<string, unknown>): CacheKeyParts => ({ ...request, body });
const baseBody = request.body as Record<string, unknown>;

describe("cacheKey", () => {
  it("is a hex sha256", () => {
    expect(cacheKey(request)).toMatch(/^[0-9a-f]{64}$/);
  });

  it("does not depend on the order of object keys at any depth", () => {
    const reordered = withBody({
      response_format: { json_schema: { strict: true, name: "answer" }, type: "json_schema" },
      temperature: 0.2,
      messages: [
        { content: "Be brief.", role: "system" },
        { content: "Hello", role: "user" },
      ],
      model: "gpt-4o-mini",
    });
    expect(cacheKey(reordered)).toBe(cacheKey(request));
  });

  it("leaves out stream, stream_options and user at the top level only", () => {
    const streamed = withBody({
      ...baseBody,
      stream: true,
      stream_options: { include_usage: true },
      user: "user-123",
    });
    expect(cacheKey(streamed)).toBe(cacheKey(request));
    const nested = withBody({ ...baseBody, metadata: { user: "user-123" } });
    expect(cacheKey(nested)).not.toBe(cacheKey(withBody({ ...baseBody, metadata: {} })));
  });

  it("leaves out the delivery fields it is given instead", () => {
    const anthropic = (body: Record<string, unknown>) => ({
      ...withBody(body),
      deliveryFields: new Set(["stream", "metadata"]),
    });
    const tagged = anthropic({ ...baseBody, stream: true, metadata: { user_id: "u-1" } });
    expect(cacheKey(tagged)).toBe(cacheKey(anthropic(baseBody)));
    const withUser = anthropic({ ...baseBody, user: "u-1" });
    expect(cacheKey(withUser)).not.toBe(cacheKey(anthropic(baseBody)));
  });

  it("changes with any parameter", () => {
    const variants: Record<string, unknown>[] = [
      { ...baseBody, temperature: 0.3 },
      { ...baseBody, seed: 7 },
      { ...baseBody, max_tokens: 100 },
      { ...baseBody, tools: [{ type: "function", function: { name: "lookup" } }] },
      { ...baseBody, messages: [{ role: "user", content: "Hello" }] },
      { ...baseBody, messages: [...(baseBody.messages as unknown[])].reverse() },
      { ...baseBody, response_format: { type: "json_object" } },
      { ...baseBody, temperature: "0.2" },
      { ...baseBody, stop: null },
    ];
    const keys = new Set([cacheKey(request), ...variants.map((body) => cacheKey(withBody(body)))]);
    expect(keys.size).toBe(variants.length + 1);
  });

  it("changes with the tenant, endpoint, upstream and model", () => {
    const keys = new Set([
      cacheKey(request),
      cacheKey({ ...request, tenant: "other" }),
      cacheKey({ ...request, endpoint: "/v1/completions" }),
      cacheKey({ ...request, upstream: "azure" }),
      cacheKey({ ...request, model: "gpt-4o" }),
    ]);
    expect(keys.size).toBe(5);
  });

  it("cannot be confused by a separator inside a part", () => {
    const first = cacheKey({ ...request, tenant: "a", endpoint: "b/c" });
    const second = cacheKey({ ...request, tenant: "a/b", endpoint: "c" });
    expect(first).not.toBe(second);
  });

  it("treats an undefined field as absent, as JSON does", () => {
    expect(cacheKey(withBody({ ...baseBody, seed: undefined }))).toBe(cacheKey(request));
  });

  it("hashes bodies that are not objects", () => {
    const texts = withBody({});
    expect(cacheKey({ ...texts, body: ["a", "b"] })).not.toBe(
      cacheKey({ ...texts, body: ["b", "a"] }),
    );
    expect(cacheKey({ ...texts, body: "text" })).toMatch(/^[0-9a-f]{64}$/);
  });
});
