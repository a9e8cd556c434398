export {
  createMemoryLimiter,
  type MemoryLimiterOptions,
} from "./memory-limiter.js";
export { type QuotaWindow, quotaPeriodAt } from "./quota-period.js";
export { createRedisLimiter, type RedisLimiterOptions } from "./redis-limiter.js";
export { createRedisOutage, type RedisOutage, type RedisOutageOptions } from "./redis-outage.js";
export {
  type FailurePolicy,
  RateLimitStoreError,
  type RedisClient,
  type RedisConnectionOptions,
  type RedisStoreOptions,
} from "./redis-store.js";
export { createRedisTokenBucket, type RedisTokenBucketOptions } from "./redis-token-bucket.js";
export {
  createTokenBucket,
  type MemoryTokenBucket,
  type TokenBucketOptions,
} from "./token-bucket.js";
export type {
  Admission,
  AdmitRequest,
  BucketLimit,
  BudgetLimit,
  BudgetThresholdEvent,
  BudgetUsage,
  Limiter,
  LimiterOptions,
  QuotaLimit,
  QuotaPeriod,
  QuotaResult,
  QuotaUsage,
  RateLimiter,
  RateLimitResult,
  Reservation,
} from "./types.js";
