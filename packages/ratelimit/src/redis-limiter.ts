import { randomUUID } from "node:crypto";
import type { Bucket } from "./bucket.js";
import {
  assertSettlement,
  createLimiterConfig,
  deniedRetryAfterMs,
  normalizeRequest,
  quotaResult,
} from "./limiter-config.js";
import type { QuotaCalendar } from "./quota-period.js";
import { admitScript, settleScript, usageScript } from "./redis-scripts.js";
import { createRedisStore, type RedisStoreOptions, type ScriptDefinition } from "./redis-store.js";
import type { Admission, Limiter, LimiterOptions, QuotaUsage, Reservation } from "./types.js";

export interface RedisLimiterOptions extends LimiterOptions, RedisStoreOptions {}

const admitCommand: ScriptDefinition = {
  name: "aigwRateLimitAdmit",
  lua: admitScript,
  numberOfKeys: 4,
};
const settleCommand: ScriptDefinition = {
  name: "aigwRateLimitSettle",
  lua: settleScript,
  numberOfKeys: 3,
};
const usageCommand: ScriptDefinition = {
  name: "aigwRateLimitUsage",
  lua: usageScript,
  numberOfKeys: 2,
};

/** A failed Redis call under the "closed" policy suggests retrying after this long. */
const unavailableRetryAfterMs = 1000;

const reservationMember = (reservation: Pick<Reservation, "id" | "estimate">): string =>
  `${reservation.estimate}:${reservation.id}`;

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

/**
 * Request bucket, token bucket and quota per key in Redis, shared by every gateway instance that
 * uses the same Redis and key prefix. Each admission is one Lua script over keys that share the
 * `{key}` hash tag, so it is atomic on Redis Cluster too.
 */
export function createRedisLimiter(options: RedisLimiterOptions): Limiter {
  const config = createLimiterConfig(options);
  const store = createRedisStore(options, [admitCommand, settleCommand, usageCommand]);
  const boundaries = config.quota && createBoundaries(config.quota.calendar);
  const keysOf = (key: string) => {
    const tagged = `${store.keyPrefix}{${key}}`;
    return {
      requests: `${tagged}:requests`,
      tokens: `${tagged}:tokens`,
      quota: `${tagged}:quota`,
      reservations: `${tagged}:reservations`,
    };
  };
  const unavailable = (): Admission => ({
    allowed: store.failurePolicy === "open",
    retryAfterMs: store.failurePolicy === "open" ? 0 : unavailableRetryAfterMs,
    unavailable: true,
  });

  return {
    async admit(key, request = {}): Promise<Admission> {
      const { requests, tokens: estimate } = normalizeRequest(request);
      const keys = keysOf(key);
      const id = randomUUID();
      const reply = await store
        .run(
          admitCommand,
          [keys.requests, keys.tokens, keys.quota, keys.reservations],
          [
            ...bucketArguments(config.requests, requests),
            ...bucketArguments(config.tokens, estimate),
            config.quota?.limit ?? -1,
            reservationMember({ id, estimate }),
            estimate,
            config.reservationTtlMs,
            ...(boundaries?.() ?? [0, 0, 0, 0]),
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
      if (allowed) {
        admission.reservation = { id, key, estimate, expiresAt };
      } else {
        admission.retryAfterMs = deniedRetryAfterMs(admission);
      }
      return admission;
    },

    async settle(reservation, actualTokens) {
      assertSettlement(reservation, actualTokens);
      if (config.tokens === undefined && config.quota === undefined) return;
      const keys = keysOf(reservation.key);
      // A failed settlement is reported; the reservation lapses on its own.
      await store
        .run(
          settleCommand,
          [keys.tokens, keys.quota, keys.reservations],
          [
            config.tokens === undefined ? 0 : config.tokens.rate / 1000,
            config.tokens?.burst ?? 0,
            reservation.estimate,
            actualTokens,
            config.quota === undefined ? 0 : 1,
            reservationMember(reservation),
            ...(boundaries?.() ?? [0, 0, 0, 0]),
          ],
        )
        .catch(() => undefined);
    },

    async usage(key): Promise<QuotaUsage | undefined> {
      if (config.quota === undefined || boundaries === undefined) return undefined;
      const keys = keysOf(key);
      const reply = (await store.run(
        usageCommand,
        [keys.quota, keys.reservations],
        boundaries(),
      )) as unknown[];
      const [used = 0, reserved = 0, resetMs = 0, periodStart = 0, periodEnd = 0] = reply.map(
        Number,
      ) as number[];
      const { limit } = config.quota;
      return {
        limit,
        used,
        reserved,
        remaining: Math.max(0, limit - used - reserved),
        periodStart,
        periodEnd,
        resetMs,
      };
    },

    close: () => store.close(),
  };
}
