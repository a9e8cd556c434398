import { createRedisLimiter } from "./redis-limiter.js";
import type { RedisStoreOptions } from "./redis-store.js";
import type { RateLimiter, RateLimitResult } from "./types.js";
import { assertCost } from "./validate.js";

export interface RedisTokenBucketOptions extends RedisStoreOptions {
  /** Tokens added per second. Default 100. */
  rate?: number;
  /** Capacity of a bucket: the most tokens one key can take at once. Default 200. */
  burst?: number;
}

/**
 * A token bucket per key in Redis (key `<keyPrefix>{<key>}:requests`), with the memory bucket's
 * semantics, refilled by Redis's clock and shared by every gateway instance on the same Redis.
 */
export function createRedisTokenBucket(options: RedisTokenBucketOptions): RateLimiter {
  const { rate = 100, burst = 200, ...storeOptions } = options;
  const limiter = createRedisLimiter({ ...storeOptions, requests: { rate, burst } });
  return {
    async take(key, cost = 1): Promise<RateLimitResult> {
      assertCost("cost", cost);
      const admission = await limiter.admit(key, { requests: cost });
      if (admission.requests !== undefined) return admission.requests;
      return {
        allowed: admission.allowed,
        limit: burst,
        remaining: 0,
        resetMs: 0,
        retryAfterMs: admission.retryAfterMs,
        unavailable: true,
      };
    },
    close: () => limiter.close(),
  };
}
