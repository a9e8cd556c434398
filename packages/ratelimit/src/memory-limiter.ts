import { randomUUID } from "node:crypto";
import { type Bucket, type BucketState, tolerance } from "./bucket.js";
import {
  assertSettlement,
  createLimiterConfig,
  deniedRetryAfterMs,
  normalizeRequest,
  quotaResult,
} from "./limiter-config.js";
import type { Admission, Limiter, LimiterOptions, QuotaUsage } from "./types.js";
import { assertPositive } from "./validate.js";

export interface MemoryLimiterOptions extends LimiterOptions {
  /** How often full buckets, past periods and lapsed reservations are dropped. Default 60,000. */
  idleTimeoutMs?: number;
  /** Wall clock in milliseconds since the epoch (quota periods follow the calendar). Default `Date.now`. */
  now?: () => number;
}

interface QuotaState {
  periodStart: number;
  periodEnd: number;
  used: number;
  reserved: number;
  /** Reservation id -> estimate and expiry. */
  reservations: Map<string, { estimate: number; expiresAt: number }>;
}

interface BucketStore {
  bucket: Bucket;
  states: Map<string, BucketState>;
}

function store(buckets: BucketStore, key: string, tokens: number, at: number): void {
  // A key without a state has a full bucket, so full buckets need not be kept.
  if (tokens >= buckets.bucket.burst) buckets.states.delete(key);
  else buckets.states.set(key, { tokens, updatedAt: at });
}

/** Request bucket, token bucket and quota per key in this process's memory. */
export function createMemoryLimiter(options: MemoryLimiterOptions): Limiter {
  const config = createLimiterConfig(options);
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  const now = options.now ?? Date.now;
  assertPositive("idleTimeoutMs", idleTimeoutMs, true);
  if (typeof now !== "function") {
    throw new TypeError("now must be a function returning milliseconds");
  }
  const requestBuckets = config.requests && { bucket: config.requests, states: new Map() };
  const tokenBuckets = config.tokens && { bucket: config.tokens, states: new Map() };
  const quotas = new Map<string, QuotaState>();

  /** The quota state of `key` at `at`, with lapsed reservations released (not stored if new). */
  const currentQuota = (key: string, at: number): QuotaState | undefined => {
    if (config.quota === undefined) return undefined;
    const period = config.quota.calendar.periodAt(at);
    const state = quotas.get(key);
    if (state === undefined || state.periodStart !== period.start) {
      return {
        periodStart: period.start,
        periodEnd: period.end,
        used: 0,
        reserved: 0,
        reservations: new Map(),
      };
    }
    for (const [id, reservation] of state.reservations) {
      if (reservation.expiresAt <= at) {
        state.reserved -= reservation.estimate;
        state.reservations.delete(id);
      }
    }
    return state;
  };

  const sweep = setInterval(() => {
    const at = now();
    for (const buckets of [requestBuckets, tokenBuckets]) {
      if (buckets === undefined) continue;
      for (const [key, state] of buckets.states) {
        if (buckets.bucket.refilled(state, at) >= buckets.bucket.burst) buckets.states.delete(key);
      }
    }
    for (const key of quotas.keys()) {
      const state = currentQuota(key, at);
      if (state !== quotas.get(key)) quotas.delete(key);
    }
  }, idleTimeoutMs);
  sweep.unref();

  return {
    async admit(key, request = {}): Promise<Admission> {
      const { requests, tokens: estimate } = normalizeRequest(request);
      const at = now();
      const checkBucket = (buckets: BucketStore | undefined, cost: number) => {
        if (buckets === undefined) return undefined;
        const tokens = buckets.bucket.refilled(buckets.states.get(key), at);
        return { buckets, cost, tokens, allowed: tokens + tolerance >= cost };
      };
      const requestCheck = checkBucket(requestBuckets, requests);
      const tokenCheck = checkBucket(tokenBuckets, estimate);
      const quota = currentQuota(key, at);
      const quotaLimit = config.quota?.limit ?? Number.POSITIVE_INFINITY;
      const quotaAllowed =
        quota === undefined || quota.used + quota.reserved + estimate <= quotaLimit;
      const allowed =
        (requestCheck?.allowed ?? true) && (tokenCheck?.allowed ?? true) && quotaAllowed;

      const admission: Admission = { allowed, retryAfterMs: 0 };
      for (const check of [requestCheck, tokenCheck]) {
        if (check === undefined) continue;
        if (allowed) {
          check.tokens = Math.max(0, check.tokens - check.cost);
          store(check.buckets, key, check.tokens, at);
        }
        const result = check.buckets.bucket.result(check.tokens, check.cost, check.allowed);
        if (check === requestCheck) admission.requests = result;
        else admission.tokens = result;
      }
      if (allowed) {
        admission.reservation = {
          id: randomUUID(),
          key,
          estimate,
          expiresAt: at + config.reservationTtlMs,
        };
      }
      if (quota !== undefined) {
        if (admission.reservation !== undefined) {
          quota.reserved += estimate;
          quota.reservations.set(admission.reservation.id, {
            estimate,
            expiresAt: admission.reservation.expiresAt,
          });
          quotas.set(key, quota);
        }
        const resetMs = Math.max(0, Math.ceil(quota.periodEnd - at));
        admission.quota = quotaResult(quotaLimit, quota, estimate, quotaAllowed, resetMs);
      }
      if (!allowed) {
        admission.retryAfterMs = deniedRetryAfterMs(admission);
      }
      return admission;
    },

    async settle(reservation, actualTokens) {
      assertSettlement(reservation, actualTokens);
      const at = now();
      const { key, estimate } = reservation;
      if (tokenBuckets !== undefined) {
        const { burst } = tokenBuckets.bucket;
        const tokens = tokenBuckets.bucket.refilled(tokenBuckets.states.get(key), at);
        // An overrun is charged as debt, but never more than one burst of it.
        const corrected = Math.max(-burst, Math.min(burst, tokens - (actualTokens - estimate)));
        store(tokenBuckets, key, corrected, at);
      }
      const quota = currentQuota(key, at);
      if (quota !== undefined) {
        const held = quota.reservations.get(reservation.id);
        if (held !== undefined) {
          quota.reserved -= held.estimate;
          quota.reservations.delete(reservation.id);
        }
        quota.used += actualTokens;
        quotas.set(key, quota);
      }
    },

    async usage(key): Promise<QuotaUsage | undefined> {
      const at = now();
      const quota = currentQuota(key, at);
      if (quota === undefined || config.quota === undefined) return undefined;
      const { limit } = config.quota;
      return {
        limit,
        used: quota.used,
        reserved: quota.reserved,
        remaining: Math.max(0, limit - quota.used - quota.reserved),
        periodStart: quota.periodStart,
        periodEnd: quota.periodEnd,
        resetMs: Math.max(0, Math.ceil(quota.periodEnd - at)),
      };
    },

    async close() {
      clearInterval(sweep);
      requestBuckets?.states.clear();
      tokenBuckets?.states.clear();
      quotas.clear();
    },
  };
}
