import { getFreePort, waitFor } from "@aigw/testing";
import { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import {
  type Admission,
  createRedisLimiter,
  createRedisTokenBucket,
  type Limiter,
  quotaPeriodAt,
  RateLimitStoreError,
  type RedisLimiterOptions,
} from "../src/index.js";
import { client, closeAfterAll, server, uniqueKey } from "./redis-fixture.js";

function createLimiter(
  options: Omit<RedisLimiterOptions, "redis"> & Partial<RedisLimiterOptions>,
): Limiter {
  const limiter = createRedisLimiter({ redis: client, ...options });
  closeAfterAll(limiter);
  return limiter;
}

const commandTimeoutMs = 200;
// What a call may take beyond the command timeout on a loaded two-core machine.
const slackMs = 400;

describe("createRedisLimiter", () => {
  it("keeps a key's limits under one hash tag, expiring with their buckets and period", async () => {
    const limiter = createLimiter({
      requests: { rate: 1, burst: 10 },
      tokens: { perMinute: 600 },
      quota: { limit: 10_000, period: "week", timeZone: "Asia/Tokyo" },
    });
    const key = uniqueKey();
    const admission = await limiter.admit(key, { tokens: 60 });
    const period = quotaPeriodAt(Date.now(), "week", "Asia/Tokyo");
    expect(admission.quota).toMatchObject({ periodStart: period.start, periodEnd: period.end });

    const keys = (await client.keys(`*${key}*`)).sort();
    expect(keys).toEqual(
      [
        `aigw:rl:{${key}}:requests`,
        `aigw:rl:{${key}}:reservations`,
        `aigw:rl:{${key}}:quota`,
        `aigw:rl:{${key}}:tokens`,
      ].sort(),
    );
    const ttl = async (name: string) => client.pttl(`aigw:rl:{${key}}:${name}`);
    expect(await ttl("requests")).toBeLessThanOrEqual(1000);
    expect(await ttl("tokens")).toBeLessThanOrEqual(6000);
    expect(await ttl("tokens")).toBeGreaterThan(5000);
    for (const name of ["quota", "reservations"]) {
      expect(Math.abs(Date.now() + (await ttl(name)) - period.end)).toBeLessThan(1000);
    }
  });

  it("shares a budget between instances: each threshold is reported by one of them, once", async () => {
    const reached: { instance: number; threshold: number; spent: number }[] = [];
    const instances = [1, 2].map((instance) =>
      createLimiter({
        budget: { limit: 10_000, thresholds: [1_000, 2_500], period: "month" },
        onBudgetThreshold: ({ threshold, spent }) => reached.push({ instance, threshold, spent }),
      }),
    );
    const key = uniqueKey();
    await Promise.all(
      Array.from({ length: 40 }, async (_, index) => {
        const limiter = instances[index % 2] as Limiter;
        const admission = await limiter.admit(key, { cost: 200 });
        await limiter.settle(admission.reservation ?? expect.fail("no reservation"), 0, 100);
      }),
    );
    expect(reached.map(({ threshold }) => threshold).sort()).toEqual([1_000, 2_500]);
    for (const { threshold, spent } of reached) expect(spent).toBeGreaterThanOrEqual(threshold);
    expect(await instances[0]?.budgetUsage(key)).toMatchObject({ spent: 4_000, reserved: 0 });
    const period = quotaPeriodAt(Date.now(), "month");
    const ttl = await client.pttl(`aigw:rl:{${key}}:budget`);
    expect(Math.abs(Date.now() + ttl - period.end)).toBeLessThan(1000);
    expect(await client.exists(`aigw:rl:{${key}}:budget-reservations`)).toBe(0);
  });

  it("creates and quits its own client from a URL", async () => {
    const limiter = createRedisLimiter({ redis: server.url, quota: { limit: 100, period: "day" } });
    const key = uniqueKey();
    expect((await limiter.admit(key, { tokens: 10 })).allowed).toBe(true);
    expect(await limiter.usage(key)).toMatchObject({ reserved: 10 });
    const before = Number(/connected_clients:(\d+)/.exec(await client.info("clients"))?.[1]);
    await limiter.close();
    await waitFor(
      async () =>
        Number(/connected_clients:(\d+)/.exec(await client.info("clients"))?.[1]) === before - 1,
    );
  });
});

describe("when Redis does not answer", () => {
  /** Admits in a loop from several callers, pausing Redis for a while in the middle. */
  async function trafficThroughPause(admit: () => Promise<Admission>) {
    const calls: Array<{ admission: Admission; durationMs: number; duringPause: boolean }> = [];
    let paused = false;
    let stopped = false;
    const caller = async () => {
      while (!stopped) {
        const duringPause = paused;
        const started = performance.now();
        const admission = await admit();
        calls.push({ admission, durationMs: performance.now() - started, duringPause });
      }
    };
    const callers = Array.from({ length: 4 }, caller);
    try {
      await waitFor(() => calls.length >= 20);
      server.pause();
      paused = true;
      await waitFor(() => calls.filter((call) => call.duringPause).length >= 8, {
        timeoutMs: 5000,
      });
    } finally {
      paused = false;
      server.resume();
    }
    const resumedAt = calls.length;
    await waitFor(() => calls.slice(resumedAt).some((call) => !call.admission.unavailable), {
      timeoutMs: 5000,
    });
    stopped = true;
    await Promise.all(callers);
    return calls;
  }

  it('fails open within the command timeout, reporting each failure, under "open"', async () => {
    const errors: RateLimitStoreError[] = [];
    const limiter = createRedisLimiter({
      redis: server.url,
      commandTimeoutMs,
      // Every call goes to Redis here: the cooldown has its own test.
      cooldownMs: 0,
      requests: { rate: 1000, burst: 1000 },
      quota: { limit: 1_000_000, period: "day" },
      onStoreError: (error) => errors.push(error),
    });
    closeAfterAll(limiter);
    const key = uniqueKey();
    const calls = await trafficThroughPause(() => limiter.admit(key, { tokens: 1 }));

    const unavailable = calls.filter((call) => call.admission.unavailable);
    expect(unavailable.length).toBeGreaterThanOrEqual(8);
    for (const call of unavailable) {
      expect(call.admission).toEqual({ allowed: true, retryAfterMs: 0, unavailable: true });
    }
    expect(calls.every((call) => call.admission.allowed)).toBe(true);
    expect(Math.max(...calls.map((call) => call.durationMs))).toBeLessThan(
      commandTimeoutMs + slackMs,
    );
    expect(errors).toHaveLength(unavailable.length);
    expect(errors[0]).toBeInstanceOf(RateLimitStoreError);
    expect(errors[0]?.message).toMatch(/timed out|did not answer/);
  });

  it('denies as unavailable under "closed", and recovers when Redis is back', async () => {
    const limiter = createRedisLimiter({
      redis: server.url,
      commandTimeoutMs,
      cooldownMs: 0,
      failurePolicy: "closed",
      requests: { rate: 1000, burst: 1000 },
    });
    closeAfterAll(limiter);
    const key = uniqueKey();
    const calls = await trafficThroughPause(() => limiter.admit(key));

    const unavailable = calls.filter((call) => call.admission.unavailable);
    expect(unavailable.length).toBeGreaterThanOrEqual(8);
    for (const call of unavailable) {
      expect(call.admission).toEqual({ allowed: false, retryAfterMs: 1000, unavailable: true });
    }
    expect(Math.max(...calls.map((call) => call.durationMs))).toBeLessThan(
      commandTimeoutMs + slackMs,
    );
    expect(calls.at(-1)?.admission).toMatchObject({ allowed: true, requests: { limit: 1000 } });
  });

  it("after one timeout, fails at once for the cooldown instead of waiting on Redis again", async () => {
    const limiter = createLimiter({
      commandTimeoutMs,
      cooldownMs: 60_000,
      requests: { rate: 1000, burst: 1000 },
    });
    const key = uniqueKey();
    expect((await limiter.admit(key)).allowed).toBe(true);
    server.pause();
    try {
      const first = performance.now();
      expect(await limiter.admit(key)).toMatchObject({ unavailable: true });
      expect(performance.now() - first).toBeGreaterThanOrEqual(commandTimeoutMs - 50);
      const next = performance.now();
      const during = await Promise.all(Array.from({ length: 10 }, () => limiter.admit(key)));
      expect(performance.now() - next).toBeLessThan(commandTimeoutMs / 2);
      expect(during.every((admission) => admission.unavailable)).toBe(true);
    } finally {
      server.resume();
    }
  });

  it("bounds calls on a client passed in without a command timeout", async () => {
    const patient = new Redis(server.port); // offline queue on, no commandTimeout
    const errors: RateLimitStoreError[] = [];
    const bucket = createRedisTokenBucket({
      redis: patient,
      commandTimeoutMs,
      failurePolicy: "closed",
      onStoreError: (error) => errors.push(error),
    });
    const limiter = createLimiter({
      redis: patient,
      commandTimeoutMs,
      tokens: { perMinute: 1000 },
      quota: { limit: 1000, period: "day" },
      onStoreError: (error) => errors.push(error),
    });
    const key = uniqueKey();
    const admission = await limiter.admit(key, { tokens: 10 });
    expect(await bucket.take(key)).toMatchObject({ allowed: true, remaining: 199 });
    server.pause();
    try {
      const started = performance.now();
      const [taken, settled, usage] = await Promise.allSettled([
        bucket.take(key),
        limiter.settle(admission.reservation ?? expect.fail("no reservation"), 5),
        limiter.usage(key),
      ]);
      expect(performance.now() - started).toBeLessThan(commandTimeoutMs + slackMs);
      expect(taken).toEqual({
        status: "fulfilled",
        value: {
          allowed: false,
          limit: 200,
          remaining: 0,
          resetMs: 0,
          retryAfterMs: 1000,
          unavailable: true,
        },
      });
      // A settlement that fails is reported, not thrown: the reservation lapses on its own.
      expect(settled.status).toBe("fulfilled");
      expect(usage.status).toBe("rejected");
      expect((usage as PromiseRejectedResult).reason).toBeInstanceOf(RateLimitStoreError);
      expect(errors).toHaveLength(3);
    } finally {
      server.resume();
    }
    await bucket.close();
    patient.disconnect();
  });

  it("fails fast while Redis is unreachable, and closes without waiting for it", async () => {
    const port = await getFreePort();
    const errors: RateLimitStoreError[] = [];
    const options = {
      redis: { host: "127.0.0.1", port },
      commandTimeoutMs,
      requests: { rate: 1, burst: 1 },
      onStoreError: (error: RateLimitStoreError) => errors.push(error),
    };
    const open = createRedisLimiter(options);
    const closed = createRedisLimiter({ ...options, failurePolicy: "closed" });
    const started = performance.now();
    const [allowed, denied] = await Promise.all([open.admit("key"), closed.admit("key")]);
    expect(allowed).toEqual({ allowed: true, retryAfterMs: 0, unavailable: true });
    expect(denied).toEqual({ allowed: false, retryAfterMs: 1000, unavailable: true });
    expect(errors).toHaveLength(2);
    await Promise.all([open.close(), closed.close()]);
    expect(performance.now() - started).toBeLessThan(commandTimeoutMs + slackMs);
  });
});
