export { type CacheKeyParts, cacheKey } from "./cache-key.js";
export {
  type Coalescer,
  type CoalescerOptions,
  type CoalescerRunOptions,
  createCoalescer,
  type WaiterSignal,
} from "./coalescer.js";
export { createMemoryCache, type MemoryCacheOptions } from "./memory-cache.js";
export {
  createRedisCache,
  type RedisCacheClient,
  type RedisCacheConnectionOptions,
  type RedisCacheOptions,
  type RedisCacheOutage,
} from "./redis-cache.js";
export type { Cache, CacheEntry, CacheSetOptions, CacheStats } from "./types.js";
