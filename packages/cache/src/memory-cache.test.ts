import { describe, expect, it } from "vitest";
import { createMemoryCache } from "./index.js";

const bytes = (text: string) => new TextEncoder().encode(text);

describe("createMemoryCache", () => {
  it("evicts the least recently used entry beyond maxItems", async () => {
    const cache = createMemoryCache({ maxItems: 2 });
    await cache.set("a", bytes("1"));
    await cache.set("b", bytes("2"));
    await cache.get("a");
    await cache.set("c", bytes("3"));
    expect(await cache.get("b")).toBeUndefined();
    expect(await cache.get("a")).toBeDefined();
    expect(await cache.get("c")).toBeDefined();
    expect(cache.stats()).toMatchObject({ items: 2, evictions: 1 });
  });

  it("evicts the least recently used entries beyond maxSize bytes", async () => {
    const cache = createMemoryCache({ maxSize: 100 });
    await cache.set("a", new Uint8Array(39));
    await cache.set("b", new Uint8Array(39));
    await cache.set("c", new Uint8Array(61));
    expect(await cache.get("a")).toBeUndefined();
    expect(await cache.get("b")).toBeUndefined();
    expect(await cache.get("c")).toBeDefined();
    expect(cache.stats()).toMatchObject({ items: 1, bytes: 62, evictions: 2 });
  });

  it("does not store a value larger than maxSize", async () => {
    const cache = createMemoryCache({ maxSize: 100 });
    await cache.set("small", new Uint8Array(10));
    await cache.set("huge", new Uint8Array(100));
    expect(await cache.get("huge")).toBeUndefined();
    expect(await cache.get("small")).toBeDefined();
    expect(cache.stats()).toMatchObject({ items: 1, evictions: 0 });
  });

  it("empties on close", async () => {
    const cache = createMemoryCache();
    await cache.set("a", bytes("1"));
    await cache.close();
    expect(cache.stats().items).toBe(0);
  });

  it.each([
    ["maxSize", { maxSize: 0 }],
    ["maxSize", { maxSize: 1.5 }],
    ["maxItems", { maxItems: -1 }],
    ["maxItems", { maxItems: Number.NaN }],
    ["ttlMs", { ttlMs: 0 }],
    ["ttlMs", { ttlMs: Number.POSITIVE_INFINITY }],
  ])("rejects an invalid %s", (field, options) => {
    expect(() => createMemoryCache(options)).toThrow(TypeError);
    expect(() => createMemoryCache(options)).toThrow(field);
  });
});
