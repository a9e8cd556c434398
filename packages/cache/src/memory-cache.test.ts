import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { createMemoryCache } from "./index.js";

const bytes = (text: string) => new TextEncoder().encode(text);

describe("createMemoryCache", () => {
  it("returns what was stored, with its times", async () => {
    const cache = createMemoryCache({ ttlMs: 60_000 });
    const before = Date.now();
    await cache.set("key", bytes("hello"));
    const entry = await cache.get("key");
    expect(entry?.value).toEqual(bytes("hello"));
    expect(entry?.storedAt).toBeGreaterThanOrEqual(before);
    expect(entry?.storedAt).toBeLessThanOrEqual(Date.now());
    expect(entry && entry.expiresAt - entry.storedAt).toBe(60_000);
  });

  it("counts hits and misses", async () => {
    const cache = createMemoryCache();
    await cache.set("present", bytes("x"));
    await cache.get("present");
    await cache.get("present");
    await cache.get("absent");
    expect(cache.stats()).toMatchObject({ hits: 2, misses: 1 });
  });

  it("reports items and bytes of values plus keys", async () => {
    const cache = createMemoryCache();
    await cache.set("ab", new Uint8Array(10));
    await cache.set("cde", new Uint8Array(20));
    expect(cache.stats()).toMatchObject({ items: 2, bytes: 35, evictions: 0 });
    await cache.set("ab", new Uint8Array(4));
    expect(cache.stats()).toMatchObject({ items: 2, bytes: 29, evictions: 0 });
  });

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

  it("stores an empty value", async () => {
    const cache = createMemoryCache();
    await cache.set("", new Uint8Array(0));
    expect((await cache.get(""))?.value.byteLength).toBe(0);
  });

  it("never returns an expired entry and counts it as a miss", async () => {
    const cache = createMemoryCache({ ttlMs: 10 });
    await cache.set("short", bytes("x"));
    await cache.set("long", bytes("y"), { ttlMs: 60_000 });
    expect(await cache.get("short")).toBeDefined();
    await sleep(25);
    expect(await cache.get("short")).toBeUndefined();
    expect(await cache.get("long")).toBeDefined();
    expect(cache.stats()).toMatchObject({ hits: 2, misses: 1, items: 1, evictions: 0 });
  });

  it("excludes expired entries that were never read from items and bytes", async () => {
    const cache = createMemoryCache();
    await cache.set("short", new Uint8Array(10), { ttlMs: 5 });
    await sleep(20);
    expect(cache.stats()).toMatchObject({ items: 0, bytes: 0, evictions: 0 });
  });

  it("deletes and clears", async () => {
    const cache = createMemoryCache();
    await cache.set("a", bytes("1"));
    await cache.set("b", bytes("2"));
    await cache.delete("a");
    expect(await cache.get("a")).toBeUndefined();
    expect(await cache.get("b")).toBeDefined();
    await cache.clear();
    expect(await cache.get("b")).toBeUndefined();
    expect(cache.stats()).toMatchObject({ items: 0, bytes: 0, evictions: 0 });
  });

  it("empties on close", async () => {
    const cache = createMemoryCache();
    await cache.set("a", bytes("1"));
    await cache.close();
    expect(cache.stats().items).toBe(0);
  });

  it("keeps two caches apart", async () => {
    const first = createMemoryCache();
    const second = createMemoryCache();
    await first.set("key", bytes("x"));
    expect(await second.get("key")).toBeUndefined();
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

  it("rejects an invalid ttlMs on set", async () => {
    const cache = createMemoryCache();
    await expect(cache.set("key", bytes("x"), { ttlMs: -5 })).rejects.toThrow(/ttlMs/);
  });
});
