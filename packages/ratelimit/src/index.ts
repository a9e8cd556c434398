export {
  createTokenBucket,
  type MemoryTokenBucket,
  type TokenBucketOptions,
} from "./token-bucket.js";
export type { RateLimiter, RateLimitResult } from "./types.js";
