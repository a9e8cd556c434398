export { createMemoryCache, type MemoryCacheOptions } from "./memory-cache.js";
export type { Cache, CacheEntry, CacheSetOptions, CacheStats } from "./types.js";
