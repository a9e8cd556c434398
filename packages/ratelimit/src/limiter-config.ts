import { type Bucket, createBucketFromLimit } from "./bucket.js";
import { createQuotaCalendar, type QuotaCalendar } from "./quota-period.js";
import type { Admission, AdmitRequest, LimiterOptions, QuotaResult, Reservation } from "./types.js";
import { assertCost, assertPositive, assertTokenCount } from "./validate.js";

export interface LimiterConfig {
  requests?: Bucket;
  tokens?: Bucket;
  quota?: { limit: number; calendar: QuotaCalendar };
  reservationTtlMs: number;
}

/** Validates the limits shared by the memory and Redis limiters. */
export function createLimiterConfig(options: LimiterOptions): LimiterConfig {
  const { requests, tokens, quota, reservationTtlMs = 900_000 } = options;
  if (requests === undefined && tokens === undefined && quota === undefined) {
    throw new TypeError("configure at least one of requests, tokens and quota");
  }
  assertPositive("reservationTtlMs", reservationTtlMs, true);
  const config: LimiterConfig = { reservationTtlMs };
  if (requests !== undefined) config.requests = createBucketFromLimit("requests", requests);
  if (tokens !== undefined) config.tokens = createBucketFromLimit("tokens", tokens);
  if (quota !== undefined) {
    assertPositive("quota.limit", quota.limit, true);
    config.quota = {
      limit: quota.limit,
      calendar: createQuotaCalendar(quota.period, quota.timeZone),
    };
  }
  return config;
}

export function normalizeRequest(request: AdmitRequest): { requests: number; tokens: number } {
  const { requests = 1, tokens = 0 } = request;
  assertCost("requests", requests);
  assertTokenCount("tokens", tokens);
  return { requests, tokens };
}

export function assertSettlement(reservation: Reservation, actualTokens: number): void {
  if (typeof reservation?.id !== "string" || typeof reservation.key !== "string") {
    throw new TypeError("reservation must be one returned by admit()");
  }
  assertTokenCount("actualTokens", actualTokens);
}

export function quotaResult(
  limit: number,
  state: { used: number; reserved: number; periodStart: number; periodEnd: number },
  estimate: number,
  allowed: boolean,
  resetMs: number,
): QuotaResult {
  return {
    allowed,
    limit,
    remaining: Math.max(0, limit - state.used - state.reserved),
    resetMs,
    // A denied quota frees up when its period ends, or never when the estimate exceeds it.
    retryAfterMs: estimate > limit ? Number.POSITIVE_INFINITY : allowed ? 0 : resetMs,
    used: state.used,
    reserved: state.reserved,
    periodStart: state.periodStart,
    periodEnd: state.periodEnd,
  };
}

/** The longest wait among the limits that denied an admission. */
export function deniedRetryAfterMs(admission: Admission): number {
  let longest = 0;
  for (const result of [admission.requests, admission.tokens, admission.quota]) {
    if (result !== undefined && !result.allowed) longest = Math.max(longest, result.retryAfterMs);
  }
  return longest;
}
