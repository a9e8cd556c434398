import { waitFor } from "@aigw/testing";
import { describe, expect, it } from "vitest";
import {
  createMemoryLimiter,
  createRedisLimiter,
  type Limiter,
  type LimiterOptions,
  quotaPeriodAt,
  type Reservation,
} from "../src/index.js";
import { client, closeAfterAll, uniqueKey } from "./redis-fixture.js";

// The same behaviour from both stores, on the real clock.

const stores: Array<[string, (options: LimiterOptions) => Limiter]> = [
  ["memory", (options) => createMemoryLimiter(options)],
  ["redis", (options) => createRedisLimiter({ redis: client, ...options })],
];

const reservationOf = (admission: { reservation?: Reservation }): Reservation =>
  admission.reservation ?? expect.fail("expected a reservation");

describe.each(stores)("a %s limiter", (_store, create) => {
  const createLimiter = (options: LimiterOptions) => {
    const limiter = create(options);
    closeAfterAll(limiter);
    return limiter;
  };
  const allLimits: LimiterOptions = {
    requests: { rate: 1 / 60, burst: 3 },
    tokens: { perMinute: 100 },
    quota: { limit: 1000, period: "month" },
  };

  it("reports each limit, and charges all of them when all allow", async () => {
    const limiter = createLimiter(allLimits);
    const key = uniqueKey();
    const admission = await limiter.admit(key, { requests: 1, tokens: 40 });
    const period = quotaPeriodAt(Date.now(), "month");
    expect(admission).toMatchObject({
      allowed: true,
      retryAfterMs: 0,
      requests: { allowed: true, limit: 3, remaining: 2, retryAfterMs: 0 },
      tokens: { allowed: true, limit: 100, remaining: 60, retryAfterMs: 0 },
      quota: {
        allowed: true,
        limit: 1000,
        remaining: 960,
        used: 0,
        reserved: 40,
        retryAfterMs: 0,
        periodStart: period.start,
        periodEnd: period.end,
      },
      reservation: { key, estimate: 40 },
    });
    expect(admission.requests?.resetMs).toBeGreaterThan(59_000);
    expect(admission.tokens?.resetMs).toBeGreaterThan(23_000);
    expect(admission.quota?.resetMs).toBeLessThanOrEqual(period.end - period.start);
    expect(await limiter.usage(key)).toMatchObject({
      limit: 1000,
      used: 0,
      reserved: 40,
      remaining: 960,
    });
  });

  it("charges nothing when the request bucket denies", async () => {
    const limiter = createLimiter(allLimits);
    const key = uniqueKey();
    for (let request = 0; request < 3; request++) await limiter.admit(key, { tokens: 10 });
    const denied = await limiter.admit(key, { tokens: 10 });
    expect(denied.allowed).toBe(false);
    expect(denied.reservation).toBeUndefined();
    expect(denied.requests).toMatchObject({ allowed: false, remaining: 0 });
    expect(denied.tokens).toMatchObject({ allowed: true, remaining: 70 });
    expect(denied.quota).toMatchObject({ allowed: true, reserved: 30 });
    expect(denied.retryAfterMs).toBe(denied.requests?.retryAfterMs);
    expect(denied.retryAfterMs).toBeGreaterThan(59_000);
    expect(await limiter.usage(key)).toMatchObject({ used: 0, reserved: 30 });
    const probe = await limiter.admit(key, { requests: 0, tokens: 0 });
    expect(probe.tokens?.remaining).toBe(70);
  });

  it("charges nothing when the token bucket denies, and never allows an estimate above its burst", async () => {
    const limiter = createLimiter(allLimits);
    const key = uniqueKey();
    const denied = await limiter.admit(key, { tokens: 101 });
    expect(denied).toMatchObject({
      allowed: false,
      retryAfterMs: Number.POSITIVE_INFINITY,
      requests: { allowed: true, remaining: 3 },
      tokens: { allowed: false, remaining: 100, retryAfterMs: Number.POSITIVE_INFINITY },
      quota: { allowed: true, reserved: 0 },
    });
    await limiter.admit(key, { tokens: 90 });
    const short = await limiter.admit(key, { tokens: 20 });
    expect(short).toMatchObject({ allowed: false, tokens: { allowed: false, remaining: 10 } });
    // 10 missing tokens at 100 per minute.
    expect(short.retryAfterMs).toBeGreaterThan(5_900);
    expect(short.retryAfterMs).toBeLessThanOrEqual(6_000);
    expect((await limiter.admit(key, { requests: 0 })).requests?.remaining).toBe(2);
    expect(await limiter.usage(key)).toMatchObject({ used: 0, reserved: 90 });
  });

  it("charges nothing when the quota denies", async () => {
    const limiter = createLimiter({ ...allLimits, tokens: { perMinute: 10_000 } });
    const key = uniqueKey();
    await limiter.settle(reservationOf(await limiter.admit(key, { tokens: 950 })), 950);
    const denied = await limiter.admit(key, { tokens: 60 });
    const period = quotaPeriodAt(Date.now(), "month");
    expect(denied).toMatchObject({
      allowed: false,
      requests: { allowed: true, remaining: 2 },
      tokens: { allowed: true },
      quota: { allowed: false, used: 950, reserved: 0, remaining: 50 },
    });
    expect(denied.retryAfterMs).toBe(denied.quota?.resetMs);
    expect(denied.retryAfterMs).toBeLessThanOrEqual(period.end - Date.now() + 1000);
    expect((await limiter.admit(key, { tokens: 1001 })).retryAfterMs).toBe(
      Number.POSITIVE_INFINITY,
    );
    const allowed = await limiter.admit(key, { tokens: 50 });
    expect(allowed).toMatchObject({
      allowed: true,
      requests: { remaining: 1 },
      quota: { remaining: 0 },
    });
  });

  it("turns a reservation into usage on settlement", async () => {
    const limiter = createLimiter({
      tokens: { perMinute: 1000 },
      quota: { limit: 500, period: "week" },
    });
    const key = uniqueKey();
    const first = await limiter.admit(key, { tokens: 200 });
    const second = await limiter.admit(key, { tokens: 100 });
    expect(await limiter.usage(key)).toMatchObject({ used: 0, reserved: 300, remaining: 200 });
    await limiter.settle(reservationOf(first), 120);
    expect(await limiter.usage(key)).toMatchObject({ used: 120, reserved: 100, remaining: 280 });
    await limiter.settle(reservationOf(second), 0);
    expect(await limiter.usage(key)).toMatchObject({ used: 120, reserved: 0, remaining: 380 });
    // The token bucket got back what was not used: 1000 - 300 + 80 + 100.
    expect((await limiter.admit(key, { tokens: 0 })).tokens?.remaining).toBeGreaterThanOrEqual(880);
  });

  it("releases a reservation that is never settled", async () => {
    const limiter = createLimiter({ quota: { limit: 100, period: "day" }, reservationTtlMs: 150 });
    const key = uniqueKey();
    const admission = await limiter.admit(key, { tokens: 80 });
    expect(admission.reservation?.expiresAt).toBeGreaterThan(Date.now() - 1000);
    expect((await limiter.admit(key, { tokens: 30 })).allowed).toBe(false);
    await waitFor(async () => (await limiter.usage(key))?.reserved === 0, { timeoutMs: 3000 });
    expect(await limiter.usage(key)).toMatchObject({ used: 0, reserved: 0, remaining: 100 });
    // A late settlement still records what was used, without releasing the reservation twice.
    await limiter.settle(reservationOf(admission), 70);
    expect(await limiter.usage(key)).toMatchObject({ used: 70, reserved: 0, remaining: 30 });
    expect((await limiter.admit(key, { tokens: 30 })).allowed).toBe(true);
  });

  it("admits 20 concurrent reservations near the end of a quota only as far as it goes", async () => {
    const limiter = createLimiter({
      requests: { rate: 100, burst: 100 },
      quota: { limit: 1000, period: "month" },
    });
    const key = uniqueKey();
    await limiter.settle(reservationOf(await limiter.admit(key, { tokens: 905 })), 905);
    const admissions = await Promise.all(
      Array.from({ length: 20 }, () => limiter.admit(key, { tokens: 10 })),
    );
    const admitted = admissions.filter((admission) => admission.allowed);
    expect(admitted).toHaveLength(9);
    expect(await limiter.usage(key)).toMatchObject({ used: 905, reserved: 90, remaining: 5 });
    for (const denied of admissions.filter((admission) => !admission.allowed)) {
      expect(denied.quota).toMatchObject({ allowed: false });
    }
    await Promise.all(
      admitted.map((admission, index) => limiter.settle(reservationOf(admission), index)),
    );
    const settled = admitted.reduce((sum, _admission, index) => sum + index, 0);
    expect(await limiter.usage(key)).toMatchObject({ used: 905 + settled, reserved: 0 });
  });

  it("keeps keys apart and works with only a request bucket", async () => {
    const limiter = createLimiter({ requests: { perMinute: 1 } });
    expect(await limiter.usage("anyone")).toBeUndefined();
    const first = await limiter.admit(uniqueKey());
    const other = uniqueKey();
    expect((await limiter.admit(other)).allowed).toBe(true);
    expect((await limiter.admit(other)).allowed).toBe(false);
    expect(first).toMatchObject({ allowed: true, requests: { limit: 1, remaining: 0 } });
    expect(first.tokens).toBeUndefined();
    expect(first.quota).toBeUndefined();
    await limiter.settle(reservationOf(first), 5);
  });

  describe("a budget", () => {
    it("reserves each admission's cost and refuses one that would pass the limit, charging nothing", async () => {
      const limiter = createLimiter({
        requests: { perMinute: 100 },
        budget: { limit: 1_000, period: "day", timeZone: "Europe/Berlin" },
      });
      const key = uniqueKey();
      const first = await limiter.admit(key, { cost: 400 });
      const period = quotaPeriodAt(Date.now(), "day", "Europe/Berlin");
      expect(first).toMatchObject({
        allowed: true,
        budget: {
          allowed: true,
          limit: 1_000,
          used: 0,
          reserved: 400,
          remaining: 600,
          periodStart: period.start,
          periodEnd: period.end,
        },
        reservation: { key, cost: 400, estimate: 0 },
      });
      await limiter.admit(key, { cost: 400 });
      const denied = await limiter.admit(key, { cost: 300 });
      expect(denied).toMatchObject({
        allowed: false,
        budget: { allowed: false, reserved: 800, remaining: 200 },
        requests: { allowed: true, remaining: 98 },
      });
      expect(denied.retryAfterMs).toBe(denied.budget?.resetMs);
      expect(denied.reservation).toBeUndefined();
      expect((await limiter.admit(key, { cost: 1_001 })).retryAfterMs).toBe(
        Number.POSITIVE_INFINITY,
      );
      // The first request cost less than it reserved: what it gave back fits the third.
      await limiter.settle(reservationOf(first), 10, 150);
      expect(await limiter.budgetUsage(key)).toMatchObject({
        limit: 1_000,
        spent: 150,
        reserved: 400,
        remaining: 450,
        periodStart: period.start,
      });
      expect((await limiter.admit(key, { cost: 300 })).allowed).toBe(true);
      expect(await limiter.usage(key)).toBeUndefined();
    });

    it("adds amounts past 14 digits exactly (nano-dollars of large budgets)", async () => {
      const limiter = createLimiter({
        budget: { limit: Number.MAX_SAFE_INTEGER - 1, period: "month" },
      });
      const key = uniqueKey();
      const amounts = [123_456_789_012_345, 987_654_321_098_765, 1, 4_503_599_627_370_497];
      for (const amount of amounts) {
        const admission = await limiter.admit(key, { cost: amount + 7 });
        await limiter.settle(reservationOf(admission), 0, amount);
      }
      const spent = amounts.reduce((sum, amount) => sum + amount, 0);
      expect(Number.isSafeInteger(spent)).toBe(true);
      expect(await limiter.budgetUsage(key)).toMatchObject({ spent, reserved: 0 });
    });

    it("admits 50 concurrent reservations only as far as the limit goes", async () => {
      const limiter = createLimiter({ budget: { limit: 1_000, period: "month" } });
      const key = uniqueKey();
      const admissions = await Promise.all(
        Array.from({ length: 50 }, () => limiter.admit(key, { cost: 95 })),
      );
      expect(admissions.filter((admission) => admission.allowed)).toHaveLength(10);
      expect(await limiter.budgetUsage(key)).toMatchObject({ reserved: 950, remaining: 50 });
    });

    it("reports each soft threshold once per period, and a budget without a limit allows all", async () => {
      const reached: number[] = [];
      const limiter = createLimiter({
        budget: { thresholds: [200, 100], period: "month" },
        onBudgetThreshold: (event) => {
          expect(event).toMatchObject({ limit: undefined, spent: expect.any(Number) });
          reached.push(event.threshold);
        },
      });
      const key = uniqueKey();
      const spend = async (cost: number) => {
        const admission = await limiter.admit(key, { cost });
        expect(admission.budget).toMatchObject({ allowed: true, limit: Number.POSITIVE_INFINITY });
        await limiter.settle(reservationOf(admission), 0, cost);
      };
      await spend(150);
      expect(reached).toEqual([100]);
      await spend(10);
      await spend(0);
      expect(reached).toEqual([100]);
      await spend(500);
      expect(reached).toEqual([100, 200]);
      await spend(500);
      expect(reached).toEqual([100, 200]);
      expect(await limiter.budgetUsage(uniqueKey())).toMatchObject({
        limit: undefined,
        thresholds: [100, 200],
        spent: 0,
        remaining: undefined,
      });
    });

    it("refuses budgets that cannot work, and one with neither limit nor thresholds only counts", async () => {
      const counting = createLimiter({ budget: { period: "month" } });
      const key = uniqueKey();
      const admission = await counting.admit(key, { cost: 1e12 });
      await counting.settle(reservationOf(admission), 0, 1e12);
      expect(await counting.budgetUsage(key)).toMatchObject({ limit: undefined, spent: 1e12 });
      expect(() => create({ budget: { limit: 1.5, period: "month" } })).toThrow(/budget.limit/);
      expect(() => create({ budget: { thresholds: [0], period: "month" } })).toThrow(/thresholds/);
      const limiter = createLimiter({ budget: { limit: 10, period: "day" } });
      return expect(limiter.admit("key", { cost: 0.5 })).rejects.toThrow(/cost/);
    });
  });
});
