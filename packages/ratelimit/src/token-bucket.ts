import { type BucketState, createBucket, tolerance } from "./bucket.js";
import type { RateLimiter, RateLimitResult } from "./types.js";
import { assertCost, assertPositive } from "./validate.js";

export interface TokenBucketOptions {
  /** Tokens added per second. Default 100. */
  rate?: number;
  /** Capacity of a bucket: the most tokens one key can take at once. Default 200. */
  burst?: number;
  /** How often buckets that have refilled are dropped from memory. Default 60,000. */
  idleTimeoutMs?: number;
  /** Monotonic clock in milliseconds. Default `performance.now`. */
  now?: () => number;
}

export interface MemoryTokenBucket extends RateLimiter {
  /** Buckets held in memory: keys that are not full. */
  readonly size: number;
}

export function createTokenBucket(options: TokenBucketOptions = {}): MemoryTokenBucket {
  const rate = options.rate ?? 100;
  const burst = options.burst ?? 200;
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  const now = options.now ?? (() => performance.now());
  assertPositive("rate", rate, false);
  assertPositive("burst", burst, true);
  assertPositive("idleTimeoutMs", idleTimeoutMs, true);
  if (typeof now !== "function") {
    throw new TypeError("now must be a function returning milliseconds");
  }

  // A key without a bucket has a full one, so full buckets need not be kept.
  const buckets = new Map<string, BucketState>();
  const bucket = createBucket(rate, burst);

  const sweep = setInterval(() => {
    const at = now();
    for (const [key, state] of buckets) {
      if (bucket.refilled(state, at) >= burst) buckets.delete(key);
    }
  }, idleTimeoutMs);
  sweep.unref();

  return {
    get size() {
      return buckets.size;
    },
    async take(key, cost = 1): Promise<RateLimitResult> {
      assertCost("cost", cost);
      const at = now();
      let tokens = bucket.refilled(buckets.get(key), at);
      const allowed = tokens + tolerance >= cost;
      if (allowed) {
        tokens = Math.max(0, tokens - cost);
      }
      if (tokens >= burst) {
        buckets.delete(key);
      } else {
        buckets.set(key, { tokens, updatedAt: at });
      }
      return bucket.result(tokens, cost, allowed);
    },
    async close() {
      clearInterval(sweep);
      buckets.clear();
    },
  };
}
