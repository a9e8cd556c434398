import { waitFor } from "@aigw/testing";
import { describe, expect, it } from "vitest";
import { createRedisTokenBucket, createTokenBucket, type RateLimitResult } from "../src/index.js";
import { client, closeAfterAll, server, uniqueKey } from "./redis-fixture.js";

function createBoth(rate: number, burst: number) {
  const memory = createTokenBucket({ rate, burst });
  const redis = createRedisTokenBucket({ redis: client, rate, burst });
  closeAfterAll(memory, redis);
  return { memory, redis };
}

/** Equal up to the milliseconds that pass between the two stores' calls. */
function expectSameResult(redis: RateLimitResult, memory: RateLimitResult) {
  const { resetMs, retryAfterMs, ...rest } = memory;
  expect(redis).toMatchObject(rest);
  expect(Math.abs(redis.resetMs - resetMs)).toBeLessThan(50);
  if (Number.isFinite(retryAfterMs))
    expect(Math.abs(redis.retryAfterMs - retryAfterMs)).toBeLessThan(50);
  else expect(redis.retryAfterMs).toBe(retryAfterMs);
}

describe("createRedisTokenBucket", () => {
  // One token every 1000 s: the time between calls does not change whole tokens.
  it.each([
    ["a burst, then a denial", 0.001, 3, [1, 1, 1, 1]],
    ["costs above 1", 0.001, 200, [150, 60, 50, 0]],
    ["denials that charge nothing", 0.001, 10, [8, 3, 3, 3, 2, 1]],
    ["a cost above the burst", 0.001, 5, [6, 5, 6]],
    ["a cost of 0", 0.001, 2, [0, 2, 0]],
  ])("answers like the memory bucket: %s", async (_name, rate, burst, costs) => {
    const { memory, redis } = createBoth(rate, burst);
    const key = uniqueKey();
    for (const cost of costs) {
      expectSameResult(await redis.take(key, cost), await memory.take(key, cost));
    }
  });

  it("refills by Redis's clock and tells when to retry", async () => {
    const bucket = createRedisTokenBucket({ redis: client, rate: 20, burst: 2 });
    closeAfterAll(bucket);
    const key = uniqueKey();
    await bucket.take(key, 2);
    // Taken before the call: Redis decides at some moment after it, however late the answer.
    const deniedAt = performance.now();
    const denied = await bucket.take(key);
    expect(denied).toMatchObject({ allowed: false, remaining: 0 });
    expect(denied.retryAfterMs).toBeGreaterThan(30);
    expect(denied.retryAfterMs).toBeLessThanOrEqual(50);
    const allowed = await waitFor(
      async () => {
        const result = await bucket.take(key);
        return result.allowed && result;
      },
      { timeoutMs: 2000, intervalMs: 5 },
    );
    expect(performance.now() - deniedAt).toBeGreaterThanOrEqual(denied.retryAfterMs - 2);
    expect(allowed.remaining).toBe(0);
  });

  it("keeps a bucket in a hash-tagged key that expires once the bucket would be full", async () => {
    const bucket = createRedisTokenBucket({
      redis: client,
      rate: 10,
      burst: 5,
      keyPrefix: "test:",
    });
    closeAfterAll(bucket);
    const key = uniqueKey();
    const { resetMs } = await bucket.take(key, 3);
    const redisKey = `test:{${key}}:requests`;
    expect(resetMs).toBeGreaterThan(250);
    expect(resetMs).toBeLessThanOrEqual(300);
    const ttl = await client.pttl(redisKey);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(resetMs);
    await waitFor(async () => (await client.exists(redisKey)) === 0, { timeoutMs: 2000 });
    expect(await bucket.take(key, 0)).toMatchObject({ remaining: 5, resetMs: 0 });
    expect(await client.exists(redisKey)).toBe(0);
  });

  it("runs its script with EVALSHA, and loads it again after SCRIPT FLUSH", async () => {
    const bucket = createRedisTokenBucket({ redis: client, rate: 0.001, burst: 10 });
    closeAfterAll(bucket);
    const key = uniqueKey();
    await bucket.take(key);
    await bucket.take(key);
    const before = await scriptStats();
    await client.script("FLUSH");
    expect(await bucket.take(key)).toMatchObject({ allowed: true, remaining: 7 });
    expect(await bucket.take(key)).toMatchObject({ allowed: true, remaining: 6 });
    const after = await scriptStats();
    expect(after.evalshaFailed - before.evalshaFailed).toBe(1);
    expect(after.eval - before.eval).toBe(1);
    expect(after.evalsha - before.evalsha).toBe(2);
  });

  it("holds one limit across two gateway instances with their own clients", async () => {
    const instances = [1, 2].map(() =>
      createRedisTokenBucket({ redis: server.url, rate: 1 / 60, burst: 10 }),
    );
    closeAfterAll(...instances);
    const key = uniqueKey();
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, index) => instances[index % 2]?.take(key)),
    );
    expect(results.filter((result) => result?.unavailable)).toHaveLength(0);
    expect(results.filter((result) => result?.allowed)).toHaveLength(10);
  });

  it("rejects invalid options and costs", async () => {
    expect(() => createRedisTokenBucket({ redis: client, rate: 0 })).toThrow(/rate/);
    expect(() => createRedisTokenBucket({ redis: client, keyPrefix: "a{b}" })).toThrow(/keyPrefix/);
    expect(() =>
      createRedisTokenBucket({ redis: client, failurePolicy: "maybe" as "open" }),
    ).toThrow(/failurePolicy/);
    expect(() => createRedisTokenBucket({ redis: client, commandTimeoutMs: 0 })).toThrow(
      /commandTimeoutMs/,
    );
    expect(() => createRedisTokenBucket({ redis: 42 as unknown as string })).toThrow(/redis/);
    const bucket = createRedisTokenBucket({ redis: client });
    closeAfterAll(bucket);
    await expect(bucket.take("key", -1)).rejects.toThrow(/cost/);
  });
});

async function scriptStats() {
  const info = await client.info("commandstats");
  const field = (command: string, name: string) =>
    Number(new RegExp(`cmdstat_${command}:.*\\b${name}=(\\d+)`).exec(info)?.[1] ?? 0);
  return {
    eval: field("eval", "calls"),
    evalsha: field("evalsha", "calls"),
    evalshaFailed: field("evalsha", "failed_calls"),
  };
}
