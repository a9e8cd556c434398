import { afterEach, describe, expect, it, vi } from "vitest";
import { createTokenBucket, type TokenBucketOptions } from "./index.js";

function createClock() {
  let milliseconds = 1_000_000;
  return {
    now: () => milliseconds,
    advance: (by: number) => {
      milliseconds += by;
    },
  };
}

function createLimiter(options: TokenBucketOptions = {}) {
  const clock = createClock();
  const limiter = createTokenBucket({ now: clock.now, ...options });
  return { clock, limiter };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("createTokenBucket", () => {
  it("allows a burst, then denies", async () => {
    const { limiter } = createLimiter({ rate: 10, burst: 3 });
    const results = [];
    for (let take = 0; take < 4; take++) results.push(await limiter.take("tenant"));
    expect(results.map((result) => result.allowed)).toEqual([true, true, true, false]);
    expect(results.map((result) => result.remaining)).toEqual([2, 1, 0, 0]);
    expect(results[0]).toEqual({
      allowed: true,
      limit: 3,
      remaining: 2,
      resetMs: 100,
      retryAfterMs: 0,
    });
    expect(results[3]).toEqual({
      allowed: false,
      limit: 3,
      remaining: 0,
      resetMs: 300,
      retryAfterMs: 100,
    });
    await limiter.close();
  });

  it("keeps keys apart", async () => {
    const { limiter } = createLimiter({ rate: 1, burst: 1 });
    expect((await limiter.take("first")).allowed).toBe(true);
    expect((await limiter.take("first")).allowed).toBe(false);
    expect((await limiter.take("second")).allowed).toBe(true);
    await limiter.close();
  });

  it("refills from elapsed time, up to the burst", async () => {
    const { clock, limiter } = createLimiter({ rate: 10, burst: 5 });
    expect((await limiter.take("key", 5)).remaining).toBe(0);
    clock.advance(250);
    expect(await limiter.take("key", 0)).toMatchObject({ allowed: true, remaining: 2 });
    clock.advance(60_000);
    expect(await limiter.take("key")).toMatchObject({ remaining: 4, resetMs: 100 });
    await limiter.close();
  });

  it("takes a cost above 1", async () => {
    const { limiter } = createLimiter({ rate: 100, burst: 200 });
    expect(await limiter.take("key", 150)).toMatchObject({ allowed: true, remaining: 50 });
    expect(await limiter.take("key", 60)).toMatchObject({
      allowed: false,
      remaining: 50,
      retryAfterMs: 100,
    });
    expect(await limiter.take("key", 50)).toMatchObject({ allowed: true, remaining: 0 });
    await limiter.close();
  });

  it("charges nothing for a denied take", async () => {
    const { clock, limiter } = createLimiter({ rate: 1, burst: 10 });
    await limiter.take("key", 8);
    for (let attempt = 0; attempt < 5; attempt++) {
      expect((await limiter.take("key", 3)).allowed).toBe(false);
    }
    expect(await limiter.take("key", 2)).toMatchObject({ allowed: true, remaining: 0 });
    clock.advance(1000);
    expect((await limiter.take("key")).allowed).toBe(true);
    await limiter.close();
  });

  it("never allows a cost above the burst", async () => {
    const { clock, limiter } = createLimiter({ rate: 10, burst: 5 });
    const result = await limiter.take("key", 6);
    expect(result).toEqual({
      allowed: false,
      limit: 5,
      remaining: 5,
      resetMs: 0,
      retryAfterMs: Number.POSITIVE_INFINITY,
    });
    clock.advance(3_600_000);
    expect((await limiter.take("key", 6)).allowed).toBe(false);
    expect(await limiter.take("key", 5)).toMatchObject({ allowed: true, remaining: 0 });
    await limiter.close();
  });

  // `elapsed` leaves a fraction of a token in the bucket before the denied take.
  it.each([
    { rate: 100, burst: 200, cost: 1, elapsed: 3 },
    { rate: 7, burst: 10, cost: 3, elapsed: 101 },
    { rate: 3, burst: 3, cost: 1, elapsed: 1 },
    { rate: 0.5, burst: 2, cost: 2, elapsed: 1234 },
    { rate: 1000, burst: 1, cost: 1, elapsed: 0 },
  ])("tells exactly when to retry (rate $rate, burst $burst, cost $cost)", async (setting) => {
    const { clock, limiter } = createLimiter(setting);
    while ((await limiter.take("key", setting.cost)).allowed);
    clock.advance(setting.elapsed);
    const denied = await limiter.take("key", setting.cost);
    expect(denied.allowed).toBe(false);
    expect(denied.retryAfterMs).toBeGreaterThan(0);

    clock.advance(denied.retryAfterMs - 1);
    expect((await limiter.take("key", setting.cost)).allowed).toBe(false);
    clock.advance(1);
    expect((await limiter.take("key", setting.cost)).allowed).toBe(true);
    await limiter.close();
  });

  it("tells when the bucket is full again", async () => {
    const { clock, limiter } = createLimiter({ rate: 4, burst: 8 });
    const { resetMs } = await limiter.take("key", 6);
    expect(resetMs).toBe(1500);
    clock.advance(resetMs);
    expect(await limiter.take("key", 0)).toMatchObject({ remaining: 8, resetMs: 0 });
    await limiter.close();
  });

  it("holds only buckets that are not full, and sweeps those that refilled", async () => {
    vi.useFakeTimers();
    const { clock, limiter } = createLimiter({ rate: 10, burst: 10, idleTimeoutMs: 5_000 });
    await limiter.take("idle", 10);
    await limiter.take("busy", 10);
    await limiter.take("untouched", 0);
    expect(limiter.size).toBe(2);

    clock.advance(1_000);
    await limiter.take("busy", 10);
    vi.advanceTimersByTime(5_000);
    expect(limiter.size).toBe(1);

    clock.advance(1_000);
    vi.advanceTimersByTime(5_000);
    expect(limiter.size).toBe(0);
    await limiter.close();
  });

  it("runs one unref'd sweep timer, which close() clears", async () => {
    vi.useFakeTimers();
    const before = vi.getTimerCount();
    const limiter = createTokenBucket();
    expect(vi.getTimerCount()).toBe(before + 1);
    await limiter.take("key");
    await limiter.close();
    expect(vi.getTimerCount()).toBe(before);
    expect(limiter.size).toBe(0);
  });

  it("does not keep the process alive", () => {
    const setIntervalSpy = vi.spyOn(globalThis, "setInterval");
    const limiter = createTokenBucket();
    const timer = setIntervalSpy.mock.results[0]?.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    setIntervalSpy.mockRestore();
    return limiter.close();
  });

  it("uses the real clock by default", async () => {
    const limiter = createTokenBucket();
    expect(await limiter.take("key")).toMatchObject({ allowed: true, limit: 200, remaining: 199 });
    await limiter.close();
  });

  it.each([
    ["rate", { rate: 0 }],
    ["rate", { rate: Number.POSITIVE_INFINITY }],
    ["burst", { burst: 2.5 }],
    ["burst", { burst: -1 }],
    ["idleTimeoutMs", { idleTimeoutMs: 0 }],
    ["now", { now: 5 as unknown as () => number }],
  ])("rejects an invalid %s", (field, options) => {
    expect(() => createTokenBucket(options)).toThrow(TypeError);
    expect(() => createTokenBucket(options)).toThrow(field);
  });

  it("rejects an invalid cost", async () => {
    const { limiter } = createLimiter();
    await expect(limiter.take("key", -1)).rejects.toThrow(/cost/);
    await expect(limiter.take("key", Number.NaN)).rejects.toThrow(TypeError);
    await limiter.close();
  });
});
