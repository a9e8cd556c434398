import type { BucketLimit, RateLimitResult } from "./types.js";
import { assertPositive } from "./validate.js";

export interface BucketState {
  tokens: number;
  updatedAt: number;
}

export interface Bucket {
  /** Tokens per second. */
  rate: number;
  burst: number;
  /** Tokens in the bucket at `at`; a missing state is a full bucket. */
  refilled(state: BucketState | undefined, at: number): number;
  /** Milliseconds until `missingTokens` have been added. */
  millisecondsUntil(missingTokens: number): number;
  /** The result of a take of `cost`, given the tokens left after it (or before it, when denied). */
  result(tokens: number, cost: number, allowed: boolean): RateLimitResult;
}

// Absorbs floating-point error, so that a take exactly `retryAfterMs` later is allowed and
// whole milliseconds are not rounded up by 1e-12.
export const tolerance = 1e-9;

export function createBucket(rate: number, burst: number): Bucket {
  const tokensPerMs = rate / 1000;
  const millisecondsUntil = (missingTokens: number): number =>
    Math.max(0, Math.ceil(missingTokens / tokensPerMs - tolerance));
  return {
    rate,
    burst,
    refilled: (state, at) =>
      state === undefined
        ? burst
        : Math.min(burst, state.tokens + Math.max(0, at - state.updatedAt) * tokensPerMs),
    millisecondsUntil,
    result(tokens, cost, allowed) {
      let retryAfterMs = 0;
      if (cost > burst) {
        retryAfterMs = Number.POSITIVE_INFINITY;
      } else if (!allowed) {
        retryAfterMs = millisecondsUntil(cost - tokens);
      }
      return {
        allowed,
        limit: burst,
        remaining: Math.max(0, Math.floor(tokens + tolerance)),
        resetMs: millisecondsUntil(burst - tokens),
        retryAfterMs,
      };
    },
  };
}

/** Validates a `BucketLimit` option and turns `perMinute` into rate and burst. */
export function createBucketFromLimit(field: string, limit: BucketLimit): Bucket {
  if (typeof limit !== "object" || limit === null) {
    throw new TypeError(`${field} must be { rate, burst } or { perMinute }`);
  }
  if ("perMinute" in limit) {
    assertPositive(`${field}.perMinute`, limit.perMinute, true);
    return createBucket(limit.perMinute / 60, limit.perMinute);
  }
  assertPositive(`${field}.rate`, limit.rate, false);
  assertPositive(`${field}.burst`, limit.burst, true);
  return createBucket(limit.rate, limit.burst);
}
