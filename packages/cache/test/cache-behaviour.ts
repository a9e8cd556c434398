import { waitFor } from "@aigw/testing";
import { expect, it } from "vitest";
import type { Cache } from "../src/index.js";

/** Makes a new, empty cache that shares no entries with caches made before. */
export type CreateStore = (options?: { ttlMs?: number }) => Promise<Cache>;

const bytes = (text: string) => new TextEncoder().encode(text);

/** The behaviour every store behind the `Cache` interface shares; call inside a describe. */
export function itBehavesLikeACache(createStore: CreateStore): void {
  it("returns what was stored, with its times", async () => {
    const cache = await createStore({ ttlMs: 60_000 });
    const before = Date.now();
    await cache.set("key", bytes("hello"));
    const entry = await cache.get("key");
    expect(entry?.value).toEqual(bytes("hello"));
    expect(entry?.storedAt).toBeGreaterThanOrEqual(before);
    expect(entry?.storedAt).toBeLessThanOrEqual(Date.now());
    expect(entry && entry.expiresAt - entry.storedAt).toBe(60_000);
  });

  it("keeps every byte value intact", async () => {
    const cache = await createStore();
    const value = Uint8Array.from({ length: 512 }, (_, index) => index % 256);
    await cache.set("binary", value);
    expect((await cache.get("binary"))?.value).toEqual(value);
  });

  it("stores an empty value under an empty key", async () => {
    const cache = await createStore();
    await cache.set("", new Uint8Array(0));
    expect((await cache.get(""))?.value.byteLength).toBe(0);
  });

  it("replaces a value set again", async () => {
    const cache = await createStore();
    await cache.set("key", bytes("first"));
    await cache.set("key", bytes("second"));
    expect((await cache.get("key"))?.value).toEqual(bytes("second"));
  });

  it("counts hits and misses", async () => {
    const cache = await createStore();
    await cache.set("present", bytes("x"));
    await cache.get("present");
    await cache.get("present");
    await cache.get("absent");
    expect(cache.stats()).toMatchObject({ hits: 2, misses: 1 });
  });

  it("reports items and bytes of values plus keys", async () => {
    const cache = await createStore();
    await cache.set("ab", new Uint8Array(10));
    await cache.set("cde", new Uint8Array(20));
    expect(cache.stats()).toMatchObject({ items: 2, bytes: 35, evictions: 0 });
    await cache.set("ab", new Uint8Array(4));
    expect(cache.stats()).toMatchObject({ items: 2, bytes: 29, evictions: 0 });
  });

  it("never returns an expired entry and counts it as a miss", async () => {
    const cache = await createStore({ ttlMs: 30 });
    await cache.set("short", bytes("x"));
    await cache.set("long", bytes("y"), { ttlMs: 60_000 });
    expect(await cache.get("short")).toBeDefined();
    await waitFor(async () => (await cache.get("short")) === undefined);
    expect(await cache.get("long")).toBeDefined();
    const { hits, misses } = cache.stats();
    expect(hits).toBeGreaterThanOrEqual(2);
    expect(misses).toBeGreaterThanOrEqual(1);
    expect(cache.stats()).toMatchObject({ items: 1, evictions: 0 });
  });

  it("excludes expired entries that were never read from items and bytes", async () => {
    const cache = await createStore();
    await cache.set("short", new Uint8Array(10), { ttlMs: 5 });
    await waitFor(() => cache.stats().items === 0);
    expect(cache.stats()).toMatchObject({ items: 0, bytes: 0, evictions: 0 });
  });

  it("deletes and clears", async () => {
    const cache = await createStore();
    await cache.set("a", bytes("1"));
    await cache.set("b", bytes("2"));
    await cache.delete("a");
    await cache.delete("never-stored");
    expect(await cache.get("a")).toBeUndefined();
    expect(await cache.get("b")).toBeDefined();
    await cache.clear();
    expect(await cache.get("b")).toBeUndefined();
    expect(cache.stats()).toMatchObject({ items: 0, bytes: 0, evictions: 0 });
  });

  it("keeps two caches apart", async () => {
    const first = await createStore();
    const second = await createStore();
    await first.set("key", bytes("x"));
    expect(await second.get("key")).toBeUndefined();
    await second.clear();
    expect(await first.get("key")).toBeDefined();
  });

  it("rejects an invalid ttlMs on set", async () => {
    const cache = await createStore();
    await expect(cache.set("key", bytes("x"), { ttlMs: -5 })).rejects.toThrow(TypeError);
    await expect(cache.set("key", bytes("x"), { ttlMs: 1.5 })).rejects.toThrow(/ttlMs/);
  });
}
