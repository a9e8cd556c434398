import { getFreePort, type RedisServer, startRedis, waitFor } from "@aigw/testing";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { type Cache, createRedisCache, type RedisCacheOptions } from "../src/index.js";

const bytes = (text: string) => new TextEncoder().encode(text);

describe("createRedisCache", () => {
  let server: RedisServer;
  let inspector: Redis;
  let created: Cache[] = [];

  const open = async (options: Partial<RedisCacheOptions> = {}) => {
    const cache = await createRedisCache({ redis: server.url, ...options });
    created.push(cache);
    return cache;
  };

  beforeAll(async () => {
    server = await startRedis();
    inspector = new Redis(server.url);
  });
  afterEach(async () => {
    await Promise.all(created.map((cache) => cache.close()));
    created = [];
    await inspector.flushdb();
  });
  afterAll(async () => {
    inspector?.disconnect();
    await server?.stop();
  });

  it("leaves the time to live to Redis, 5 minutes by default", async () => {
    const cache = await open();
    await cache.set("default", bytes("x"));
    await cache.set("short", bytes("y"), { ttlMs: 50 });
    const defaultTtl = await inspector.pttl("aigw:cache:default");
    expect(defaultTtl).toBeGreaterThan(299_000);
    expect(defaultTtl).toBeLessThanOrEqual(300_000);
    expect(await inspector.pttl("aigw:cache:short")).toBeLessThanOrEqual(50);
    await waitFor(async () => (await inspector.exists("aigw:cache:short")) === 0);
    expect(await cache.get("short")).toBeUndefined();
    expect(await cache.get("default")).toBeDefined();
  });

  it("keeps two prefixes on one Redis apart", async () => {
    const tenantA = await open({ keyPrefix: "tenant-a:" });
    const tenantB = await open({ keyPrefix: "tenant-b:" });
    await tenantA.set("key", bytes("a"));
    await tenantB.set("key", bytes("b"));
    expect((await tenantA.get("key"))?.value).toEqual(bytes("a"));
    expect((await tenantB.get("key"))?.value).toEqual(bytes("b"));
    expect((await inspector.keys("*")).sort()).toEqual(["tenant-a:key", "tenant-b:key"]);
    await tenantA.delete("key");
    expect(await tenantB.get("key")).toBeDefined();
  });

  it("clears only its own prefix, in batches, even with glob characters in it", async () => {
    const starred = await open({ keyPrefix: "a*b:" });
    const lookalike = await open({ keyPrefix: "axb:" });
    await Promise.all(
      Array.from({ length: 2500 }, (_, index) => starred.set(`key-${index}`, bytes("v"))),
    );
    await lookalike.set("key-1", bytes("kept"));
    await inspector.set("unrelated", "kept");
    await starred.clear();
    expect(await inspector.dbsize()).toBe(2);
    expect(await lookalike.get("key-1")).toBeDefined();
    expect(await inspector.get("unrelated")).toBe("kept");
    expect(starred.stats()).toMatchObject({ items: 0, bytes: 0 });
  });

  it("shares entries between two instances with their own clients", async () => {
    const first = await open();
    const second = await open();
    await first.set("shared", bytes("from the first"));
    expect((await second.get("shared"))?.value).toEqual(bytes("from the first"));
    await second.delete("shared");
    expect(await first.get("shared")).toBeUndefined();
    expect(first.stats()).toMatchObject({ hits: 0, misses: 1 });
    expect(second.stats()).toMatchObject({ hits: 1, misses: 0 });
  });

  it("uses a client it is given and leaves it open on close", async () => {
    const client = new Redis(server.url);
    try {
      const cache = await createRedisCache({ redis: client });
      await cache.set("key", bytes("x"));
      await cache.close();
      expect(await client.exists("aigw:cache:key")).toBe(1);
      expect(client.status).toBe("ready");
    } finally {
      client.disconnect();
    }
  });

  it("connects from ioredis options", async () => {
    const cache = await open({ redis: { host: "127.0.0.1", port: server.port } });
    await cache.set("key", bytes("x"));
    expect(await inspector.exists("aigw:cache:key")).toBe(1);
  });

  it("treats a value it did not write as a miss", async () => {
    const cache = await open();
    await inspector.set("aigw:cache:foreign", "plain text");
    expect(await cache.get("foreign")).toBeUndefined();
    expect(cache.stats()).toMatchObject({ hits: 0, misses: 1 });
  });

  it.each([
    ["keyPrefix", { keyPrefix: "" }],
    ["ttlMs", { ttlMs: 0 }],
    ["commandTimeoutMs", { commandTimeoutMs: 2.5 }],
    ["onError", { onError: "log" as unknown as () => void }],
    ["redis", { redis: undefined as unknown as string }],
    ["keyPrefix", { redis: { keyPrefix: "ioredis:" } }],
  ])("rejects an invalid %s", async (field, options) => {
    await expect(createRedisCache({ redis: server.url, ...options })).rejects.toThrow(TypeError);
    await expect(createRedisCache({ redis: server.url, ...options })).rejects.toThrow(field);
  });

  it("degrades to misses while Redis does not answer, reporting each outage once", async () => {
    const onError = vi.fn();
    const commandTimeoutMs = 200;
    const cache = await open({ commandTimeoutMs, onError });
    await cache.set("key", bytes("x"));
    try {
      server.pause();
      let startedAt = Date.now();
      expect(await cache.get("key")).toBeUndefined();
      expect(Date.now() - startedAt).toBeLessThan(commandTimeoutMs + 400);
      startedAt = Date.now();
      await expect(cache.set("other", bytes("y"))).resolves.toBeUndefined();
      // A timed-out command still runs once Redis answers again, so this one leaves "key" be.
      await expect(cache.delete("other")).resolves.toBeUndefined();
      expect(Date.now() - startedAt).toBeLessThan(2 * (commandTimeoutMs + 400));
      expect(onError).toHaveBeenCalledTimes(1);
      expect(onError.mock.calls[0]?.[0]).toBeInstanceOf(Error);

      server.resume();
      await waitFor(async () => (await cache.get("key")) !== undefined);
      expect(onError).toHaveBeenCalledTimes(1);

      server.pause();
      expect(await cache.get("key")).toBeUndefined();
      expect(onError).toHaveBeenCalledTimes(2);
      expect(cache.stats().misses).toBeGreaterThanOrEqual(2);

      startedAt = Date.now();
      await cache.close();
      expect(Date.now() - startedAt).toBeLessThan(commandTimeoutMs + 400);
    } finally {
      server.resume();
    }
  });

  it("degrades to misses when Redis is not there at all", async () => {
    const onError = vi.fn();
    const port = await getFreePort();
    const cache = await open({ redis: { host: "127.0.0.1", port }, onError });
    const startedAt = Date.now();
    expect(await cache.get("key")).toBeUndefined();
    await expect(cache.set("key", bytes("x"))).resolves.toBeUndefined();
    await expect(cache.delete("key")).resolves.toBeUndefined();
    expect(await cache.get("key")).toBeUndefined();
    expect(Date.now() - startedAt).toBeLessThan(2000);
    expect(onError).toHaveBeenCalledTimes(1);
    expect(cache.stats()).toMatchObject({ hits: 0, misses: 2, items: 0 });
    await expect(cache.clear()).rejects.toThrow();
  });

  it("does not let a throwing onError fail a lookup", async () => {
    const port = await getFreePort();
    const cache = await open({
      redis: { host: "127.0.0.1", port },
      onError: () => {
        throw new Error("broken callback");
      },
    });
    expect(await cache.get("key")).toBeUndefined();
  });
});
