import type { RateLimiter, RateLimitResult } from "./types.js";

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

interface Bucket {
  tokens: number;
  updatedAt: number;
}

// Absorbs floating-point error, so that a take exactly `retryAfterMs` later is allowed and
// whole milliseconds are not rounded up by 1e-12.
const tolerance = 1e-9;

function assertPositive(field: string, value: number, integer: boolean): void {
  const valid = integer ? Number.isSafeInteger(value) : Number.isFinite(value);
  if (!valid || value <= 0) {
    const kind = integer ? "a positive integer" : "a positive finite number";
    throw new TypeError(`${field} must be ${kind}, got ${String(value)}`);
  }
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
  const buckets = new Map<string, Bucket>();
  const tokensPerMs = rate / 1000;

  const refilled = (bucket: Bucket | undefined, at: number): number =>
    bucket === undefined
      ? burst
      : Math.min(burst, bucket.tokens + Math.max(0, at - bucket.updatedAt) * tokensPerMs);
  const millisecondsUntil = (missingTokens: number): number =>
    Math.max(0, Math.ceil(missingTokens / tokensPerMs - tolerance));

  const sweep = setInterval(() => {
    const at = now();
    for (const [key, bucket] of buckets) {
      if (refilled(bucket, at) >= burst) buckets.delete(key);
    }
  }, idleTimeoutMs);
  sweep.unref();

  return {
    get size() {
      return buckets.size;
    },
    async take(key, cost = 1): Promise<RateLimitResult> {
      if (!Number.isFinite(cost) || cost < 0) {
        throw new TypeError(`cost must be a non-negative finite number, got ${String(cost)}`);
      }
      const at = now();
      let tokens = refilled(buckets.get(key), at);
      const allowed = tokens + tolerance >= cost;
      if (allowed) {
        tokens = Math.max(0, tokens - cost);
      }
      if (tokens >= burst) {
        buckets.delete(key);
      } else {
        buckets.set(key, { tokens, updatedAt: at });
      }

      let retryAfterMs = 0;
      if (cost > burst) {
        retryAfterMs = Number.POSITIVE_INFINITY;
      } else if (!allowed) {
        retryAfterMs = millisecondsUntil(cost - tokens);
      }
      return {
        allowed,
        limit: burst,
        remaining: Math.floor(tokens + tolerance),
        resetMs: millisecondsUntil(burst - tokens),
        retryAfterMs,
      };
    },
    async close() {
      clearInterval(sweep);
      buckets.clear();
    },
  };
}
