import { afterEach, describe, expect, it, vi } from "vitest";
import { createMemoryLimiter, type MemoryLimiterOptions } from "./index.js";

function createClock(iso: string) {
  let milliseconds = Date.parse(iso);
  return {
    now: () => milliseconds,
    advance: (by: number) => {
      milliseconds += by;
    },
    set: (next: string) => {
      milliseconds = Date.parse(next);
    },
  };
}

function createLimiter(options: MemoryLimiterOptions, start = "2024-06-15T12:00:00Z") {
  const clock = createClock(start);
  const limiter = createMemoryLimiter({ now: clock.now, ...options });
  return { clock, limiter };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("createMemoryLimiter", () => {
  it("resets a daily quota at midnight UTC", async () => {
    const { clock, limiter } = createLimiter(
      { quota: { limit: 100, period: "day" } },
      "2024-06-30T23:59:00Z",
    );
    expect((await limiter.admit("tenant", { tokens: 100 })).allowed).toBe(true);
    const denied = await limiter.admit("tenant", { tokens: 1 });
    expect(denied).toMatchObject({ allowed: false, retryAfterMs: 60_000 });
    expect(denied.quota).toMatchObject({
      allowed: false,
      limit: 100,
      remaining: 0,
      reserved: 100,
      resetMs: 60_000,
      periodEnd: Date.parse("2024-07-01T00:00:00Z"),
    });

    clock.advance(59_999);
    expect((await limiter.admit("tenant", { tokens: 1 })).allowed).toBe(false);
    clock.advance(1);
    const next = await limiter.admit("tenant", { tokens: 1 });
    expect(next.allowed).toBe(true);
    expect(await limiter.usage("tenant")).toEqual({
      limit: 100,
      used: 0,
      reserved: 1,
      remaining: 99,
      periodStart: Date.parse("2024-07-01T00:00:00Z"),
      periodEnd: Date.parse("2024-07-02T00:00:00Z"),
      resetMs: 86_400_000,
    });
    await limiter.close();
  });

  it("follows the calendar of the configured time zone", async () => {
    const { clock, limiter } = createLimiter(
      { quota: { limit: 10, period: "day", timeZone: "America/New_York" } },
      "2024-06-30T23:30:00Z", // 19:30 in New York
    );
    const admission = await limiter.admit("tenant", { tokens: 10 });
    await limiter.settle(admission.reservation ?? expect.fail("no reservation"), 10);
    clock.set("2024-07-01T00:30:00Z"); // a new UTC day, but still 30 June in New York
    expect((await limiter.admit("tenant", { tokens: 1 })).allowed).toBe(false);
    clock.set("2024-07-01T04:00:00Z"); // midnight in New York
    expect((await limiter.admit("tenant", { tokens: 1 })).allowed).toBe(true);
    expect(await limiter.usage("tenant")).toMatchObject({
      used: 0,
      reserved: 1,
      periodStart: Date.parse("2024-07-01T04:00:00Z"),
      periodEnd: Date.parse("2024-07-02T04:00:00Z"),
    });
    await limiter.close();
  });

  it("keeps a monthly quota across days, and starts the next month afresh", async () => {
    const { clock, limiter } = createLimiter(
      { quota: { limit: 1000, period: "month", timeZone: "Asia/Tokyo" } },
      "2024-06-01T00:00:00Z", // 09:00 on 1 June in Tokyo
    );
    for (let day = 0; day < 3; day++) {
      const admission = await limiter.admit("tenant", { tokens: 100 });
      await limiter.settle(admission.reservation ?? expect.fail("no reservation"), 100);
      clock.advance(86_400_000);
    }
    expect(await limiter.usage("tenant")).toMatchObject({ used: 300, remaining: 700 });
    clock.set("2024-06-30T15:00:00Z"); // midnight of 1 July in Tokyo
    expect(await limiter.usage("tenant")).toMatchObject({
      used: 0,
      remaining: 1000,
      periodStart: Date.parse("2024-06-30T15:00:00Z"),
    });
    await limiter.close();
  });

  it("refills a tokens-per-minute bucket at perMinute / 60 per second", async () => {
    const { clock, limiter } = createLimiter({ tokens: { perMinute: 600 } });
    expect((await limiter.admit("tenant", { tokens: 600 })).tokens).toMatchObject({
      allowed: true,
      limit: 600,
      remaining: 0,
      resetMs: 60_000,
    });
    const denied = await limiter.admit("tenant", { tokens: 50 });
    expect(denied).toMatchObject({ allowed: false, retryAfterMs: 5_000 });
    clock.advance(5_000);
    expect((await limiter.admit("tenant", { tokens: 50 })).allowed).toBe(true);
    await limiter.close();
  });

  it("refunds an overestimate to the token bucket and charges an overrun as bounded debt", async () => {
    const { clock, limiter } = createLimiter({ tokens: { perMinute: 120 } });
    const first = await limiter.admit("tenant", { tokens: 100 });
    await limiter.settle(first.reservation ?? expect.fail("no reservation"), 40);
    expect((await limiter.admit("tenant", { tokens: 0 })).tokens?.remaining).toBe(80);

    const second = await limiter.admit("tenant", { tokens: 80 });
    await limiter.settle(second.reservation ?? expect.fail("no reservation"), 140);
    // 60 tokens of debt at 2 tokens per second: 30.5 s until one token is back.
    const denied = await limiter.admit("tenant", { tokens: 1 });
    expect(denied).toMatchObject({ allowed: false, retryAfterMs: 30_500 });
    expect(denied.tokens?.remaining).toBe(0);

    const third = await limiter.admit("other", { tokens: 10 });
    await limiter.settle(third.reservation ?? expect.fail("no reservation"), 10_000);
    // The debt is capped at one burst: 240 tokens to recover at 2 per second.
    expect((await limiter.admit("other", { tokens: 0 })).tokens?.resetMs).toBe(120_000);
    clock.advance(60_500);
    expect((await limiter.admit("other", { tokens: 1 })).allowed).toBe(true);
    await limiter.close();
  });

  it("releases a reservation that was never settled once it expires", async () => {
    const { clock, limiter } = createLimiter({
      quota: { limit: 100, period: "day" },
      reservationTtlMs: 30_000,
    });
    const admission = await limiter.admit("tenant", { tokens: 80 });
    expect(admission.reservation?.expiresAt).toBe(clock.now() + 30_000);
    expect((await limiter.admit("tenant", { tokens: 30 })).allowed).toBe(false);
    clock.advance(29_999);
    expect(await limiter.usage("tenant")).toMatchObject({ used: 0, reserved: 80 });
    clock.advance(1);
    expect(await limiter.usage("tenant")).toMatchObject({ used: 0, reserved: 0, remaining: 100 });
    // A late settlement still records what was used, without releasing the reservation twice.
    await limiter.settle(admission.reservation ?? expect.fail("no reservation"), 70);
    expect(await limiter.usage("tenant")).toMatchObject({ used: 70, reserved: 0, remaining: 30 });
    await limiter.close();
  });

  it("runs one unref'd sweep timer, which close() clears", async () => {
    vi.useFakeTimers();
    const before = vi.getTimerCount();
    const limiter = createMemoryLimiter({ requests: { rate: 1, burst: 1 } });
    expect(vi.getTimerCount()).toBe(before + 1);
    await limiter.close();
    expect(vi.getTimerCount()).toBe(before);
  });

  it("sweeps full buckets and past periods without changing what the limits say", async () => {
    vi.useFakeTimers();
    const { clock, limiter } = createLimiter(
      {
        requests: { rate: 1, burst: 2 },
        quota: { limit: 10, period: "hour" },
        idleTimeoutMs: 1_000,
      },
      "2024-06-15T12:59:00Z",
    );
    await limiter.admit("tenant", { requests: 2, tokens: 10 });
    clock.advance(2_000);
    vi.advanceTimersByTime(1_000);
    expect((await limiter.admit("tenant", { requests: 2, tokens: 0 })).requests?.remaining).toBe(0);
    expect((await limiter.admit("tenant", { requests: 0, tokens: 1 })).allowed).toBe(false);
    clock.advance(60_000);
    vi.advanceTimersByTime(1_000);
    expect(await limiter.usage("tenant")).toMatchObject({ used: 0, reserved: 0 });
    await limiter.close();
  });

  it.each([
    ["at least one", {}],
    ["requests.rate", { requests: { rate: 0, burst: 1 } }],
    ["requests.burst", { requests: { rate: 1, burst: 1.5 } }],
    ["tokens.perMinute", { tokens: { perMinute: -5 } }],
    ["tokens", { tokens: 5 as unknown as { perMinute: number } }],
    ["quota.limit", { quota: { limit: 0, period: "day" } }],
    ["quota.period", { quota: { limit: 10, period: "year" } }],
    ["quota.timeZone", { quota: { limit: 10, period: "day", timeZone: "Nowhere/Land" } }],
    ["reservationTtlMs", { requests: { perMinute: 1 }, reservationTtlMs: 0 }],
    ["idleTimeoutMs", { requests: { perMinute: 1 }, idleTimeoutMs: -1 }],
  ])("rejects invalid options: %s", (field, options) => {
    expect(() => createMemoryLimiter(options as MemoryLimiterOptions)).toThrow(TypeError);
    expect(() => createMemoryLimiter(options as MemoryLimiterOptions)).toThrow(field);
  });

  it("rejects invalid admissions and settlements", async () => {
    const { limiter } = createLimiter({ tokens: { perMinute: 100 } });
    await expect(limiter.admit("tenant", { requests: -1 })).rejects.toThrow(/requests/);
    await expect(limiter.admit("tenant", { tokens: 1.5 })).rejects.toThrow(/tokens/);
    const admission = await limiter.admit("tenant", { tokens: 1 });
    const reservation = admission.reservation ?? expect.fail("no reservation");
    await expect(limiter.settle(reservation, -1)).rejects.toThrow(/actualTokens/);
    await expect(limiter.settle({} as typeof reservation, 1)).rejects.toThrow(/reservation/);
    await limiter.close();
  });
});
