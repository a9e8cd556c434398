import { randomUUID } from "node:crypto";
import type { Bucket } from "./bucket.js";
import {
  assertSettlement,
  budgetUsageOf,
  createLimiterConfig,
  deniedRetryAfterMs,
  normalizeRequest,
  quotaResult,
} from "./limiter-config.js";
import type { QuotaCalendar } from "./quota-period.js";
import { admitScript, settleScript, usageScript } from "./redis-scripts.js";
import { createRedisStore, type RedisStoreOptions, type ScriptDefinition } from "./redis-store.js";
import type { Admission, BudgetUsage, Limiter, LimiterOptions, QuotaUsage } from "./types.js";

export interface RedisLimiterOptions extends LimiterOptions, RedisStoreOptions {}

const admitCommand: ScriptDefinition = {
  name: "aigwRateLimitAdmit",
  lua: admitScript,
  numberOfKeys: 6,
};
const settleCommand: ScriptDefinition = {
  name: "aigwRateLimitSettle",
  lua: settleScript,
  numberOfKeys: 5,
};
const usageCommand: ScriptDefinition = {
  name: "aigwRateLimitUsage",
  lua: usageScript,
  numberOfKeys: 2,
};

/** A failed Redis call under the "closed" policy suggests retrying after this long. */
const unavailableRetryAfterMs = 1000;

/** A reservation in a quota's or budget's sorted set: "<amount>:<id>". */
const reservationMember = (amount: number, id: string): string => `${amount}:${id}`;

/**
 * The current period and its neighbours, from the host's clock: the script picks among them by
 * Redis's clock.
 */
function createBoundaries(calendar: QuotaCalendar): () => number[] {
  let cached: { start: number; end: number; boundaries: number[] } | undefined;
  return () => {
    const at = Date.now();
    if (cached === undefined || at < cached.start || at >= cached.end) {
      const current = calendar.periodAt(at);
      const previous = calendar.periodAt(current.start - 1);
      const next = calendar.periodAt(current.end);
      cached = {
        ...current,
        boundaries: [previous.start, current.start, current.end, next.end],
      };
    }
    return cached.boundaries;
  };
}

const bucketArguments = (bucket: Bucket | undefined, cost: number): Array<string | number> =>
  bucket === undefined ? [0, 0, 0] : [bucket.rate / 1000, bucket.burst, cost];

const noBoundaries = [0, 0, 0, 0];

/**
 * Request bucket, token bucket, quota and budget per key in Redis, shared by every gateway instance that
 * uses the same Redis and key prefix. Each admission is one Lua script over keys that share the
 * `{key}` hash tag, so it is atomic on Redis Cluster too.
 */
export function createRedisLimiter(options: RedisLimiterOptions): Limiter {
  const config = createLimiterConfig(options);
  const store = createRedisStore(options, [admitCommand, settleCommand, usageCommand]);
  const quotaBoundaries = config.quota && createBoundaries(config.quota.calendar);
  const budgetBoundaries = config.budget && createBoundaries(config.budget.calendar);
  const keysOf = (key: string) => {
    const tagged = `${store.keyPrefix}{${key}}`;
    return {
      requests: `${tagged}:requests`,
      tokens: `${tagged}:tokens`,
      quota: `${tagged}:quota`,
      reservations: `${tagged}:reservations`,
      budget: `${tagged}:budget`,
      budgetReservations: `${tagged}:budget-reservations`,
    };
  };
  const readAllowance = async (hashKey: string, reservationsKey: string, bounds: number[]) => {
    const reply = (await store.run(usageCommand, [hashKey, reservationsKey], bounds)) as unknown[];
    const [used = 0, reserved = 0, resetMs = 0, periodStart = 0, periodEnd = 0] = reply.map(
      Number,
    ) as number[];
    return { used, reserved, resetMs, periodStart, periodEnd };
  };
  const unavailable = (): Admission => ({
    allowed: store.failurePolicy === "open",
    retryAfterMs: store.failurePolicy === "open" ? 0 : unavailableRetryAfterMs,
    unavailable: true,
  });

  return {
    async admit(key, request = {}): Promise<Admission> {
      const { requests, tokens: estimate, cost } = normalizeRequest(request);
      const keys = keysOf(key);
      const id = randomUUID();
      const reply = await store
        .run(
          admitCommand,
          [
            keys.requests,
            keys.tokens,
            keys.quota,
            keys.reservations,
            keys.budget,
            keys.budgetReservations,
          ],
          [
            ...bucketArguments(config.requests, requests),
            ...bucketArguments(config.tokens, estimate),
            config.quota?.limit ?? -1,
            reservationMember(estimate, id),
            estimate,
            config.reservationTtlMs,
            ...(quotaBoundaries?.() ?? noBoundaries),
            config.budget === undefined ? 0 : 1,
            config.budget?.limit ?? -1,
            reservationMember(cost, id),
            cost,
            ...(budgetBoundaries?.() ?? noBoundaries),
          ],
        )
        .catch(() => undefined);
      if (!Array.isArray(reply)) return unavailable();
      const [
        allowedFlag,
        requestsAllowed,
        requestsLeft = 0,
        tokensAllowed,
        tokensLeft = 0,
        quotaAllowed,
        used = 0,
        reserved = 0,
        resetMs = 0,
        periodStart = 0,
        periodEnd = 0,
        expiresAt = 0,
        budgetAllowed,
        spent = 0,
        costReserved = 0,
        budgetResetMs = 0,
        budgetStart = 0,
        budgetEnd = 0,
      ] = reply.map(Number);
      const allowed = allowedFlag === 1;
      const admission: Admission = { allowed, retryAfterMs: 0 };
      if (config.requests !== undefined) {
        admission.requests = config.requests.result(requestsLeft, requests, requestsAllowed === 1);
      }
      if (config.tokens !== undefined) {
        admission.tokens = config.tokens.result(tokensLeft, estimate, tokensAllowed === 1);
      }
      if (config.quota !== undefined) {
        admission.quota = quotaResult(
          config.quota.limit,
          { used, reserved, periodStart, periodEnd },
          estimate,
          quotaAllowed === 1,
          resetMs,
        );
      }
      if (config.budget !== undefined) {
        admission.budget = quotaResult(
          config.budget.limit ?? Number.POSITIVE_INFINITY,
          { used: spent, reserved: costReserved, periodStart: budgetStart, periodEnd: budgetEnd },
          cost,
          budgetAllowed === 1,
          budgetResetMs,
        );
      }
      if (allowed) {
        admission.reservation = { id, key, estimate, cost, expiresAt };
      } else {
        admission.retryAfterMs = deniedRetryAfterMs(admission);
      }
      return admission;
    },

    async settle(reservation, actualTokens, actualCost = 0) {
      assertSettlement(reservation, actualTokens, actualCost);
      const { budget } = config;
      if (config.tokens === undefined && config.quota === undefined && budget === undefined) {
        return;
      }
      const keys = keysOf(reservation.key);
      const reservedCost = reservation.cost ?? 0;
      // A failed settlement is reported; the reservation lapses on its own.
      const reply = await store
        .run(
          settleCommand,
          [keys.tokens, keys.quota, keys.reservations, keys.budget, keys.budgetReservations],
          [
            config.tokens === undefined ? 0 : config.tokens.rate / 1000,
            config.tokens?.burst ?? 0,
            reservation.estimate,
            actualTokens,
            config.quota === undefined ? 0 : 1,
            reservationMember(reservation.estimate, reservation.id),
            ...(quotaBoundaries?.() ?? noBoundaries),
            budget === undefined ? 0 : 1,
            reservationMember(reservedCost, reservation.id),
            reservedCost,
            actualCost,
            ...(budgetBoundaries?.() ?? noBoundaries),
            ...(budget?.thresholds ?? []),
          ],
        )
        .catch(() => undefined);
      if (budget === undefined || !Array.isArray(reply)) return;
      const [spent = 0, periodStart = 0, periodEnd = 0, ...reached] = reply.map(Number);
      for (const threshold of reached) {
        config.onBudgetThreshold({
          key: reservation.key,
          threshold,
          spent,
          limit: budget.limit,
          periodStart,
          periodEnd,
        });
      }
    },

    async usage(key): Promise<QuotaUsage | undefined> {
      if (config.quota === undefined || quotaBoundaries === undefined) return undefined;
      const keys = keysOf(key);
      const state = await readAllowance(keys.quota, keys.reservations, quotaBoundaries());
      const { limit } = config.quota;
      return { limit, ...state, remaining: Math.max(0, limit - state.used - state.reserved) };
    },

    async budgetUsage(key): Promise<BudgetUsage | undefined> {
      if (config.budget === undefined || budgetBoundaries === undefined) return undefined;
      const keys = keysOf(key);
      const { used, ...state } = await readAllowance(
        keys.budget,
        keys.budgetReservations,
        budgetBoundaries(),
      );
      return budgetUsageOf(config.budget, used, state);
    },

    close: () => store.close(),
  };
}
