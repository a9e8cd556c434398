import { type RedisServer, startRedis } from "@aigw/testing";
import { afterAll, afterEach, beforeAll, describe } from "vitest";
import { type Cache, createMemoryCache, createRedisCache } from "../src/index.js";
import { itBehavesLikeACache } from "./cache-behaviour.js";

describe("createMemoryCache behaves like a cache", () => {
  itBehavesLikeACache(async (options) => createMemoryCache(options));
});

describe("createRedisCache behaves like a cache", () => {
  let server: RedisServer;
  let created: Cache[] = [];
  let prefixes = 0;

  beforeAll(async () => {
    server = await startRedis();
  });
  afterEach(async () => {
    await Promise.all(created.map((cache) => cache.close()));
    created = [];
  });
  afterAll(async () => {
    await server?.stop();
  });

  itBehavesLikeACache(async (options) => {
    prefixes += 1;
    const cache = await createRedisCache({
      redis: server.url,
      keyPrefix: `behaviour:${prefixes}:`,
      ...options,
    });
    created.push(cache);
    return cache;
  });
});
