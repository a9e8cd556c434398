import { LRUCache } from "lru-cache";
import { assertPositiveInteger } from "./assert.js";
import type { Cache, CacheEntry, CacheSetOptions, CacheStats } from "./types.js";

export interface MemoryCacheOptions {
  /** Most bytes held (values plus keys). Default 100 MiB; a larger value is not stored. */
  maxSize?: number;
  /** Most entries held. Default 10,000. */
  maxItems?: number;
  /** Default time to live of an entry. Default 300,000 (5 minutes). */
  ttlMs?: number;
}

export function createMemoryCache(options: MemoryCacheOptions = {}): Cache {
  const maxSize = options.maxSize ?? 100 * 2 ** 20;
  const maxItems = options.maxItems ?? 10_000;
  const defaultTtlMs = options.ttlMs ?? 300_000;
  assertPositiveInteger("maxSize", maxSize);
  assertPositiveInteger("maxItems", maxItems);
  assertPositiveInteger("ttlMs", defaultTtlMs);

  let hits = 0;
  let misses = 0;
  let evictions = 0;
  const entries = new LRUCache<string, CacheEntry>({
    max: maxItems,
    maxSize,
    // lru-cache rejects sizes below 1, which an empty value under an empty key would have.
    sizeCalculation: (entry, key) => Math.max(1, entry.value.byteLength + key.length),
    ttl: defaultTtlMs,
    dispose: (_entry, _key, reason) => {
      if (reason === "evict") evictions += 1;
    },
  });

  return {
    async get(key) {
      const entry = entries.get(key);
      if (entry === undefined) {
        misses += 1;
      } else {
        hits += 1;
      }
      return entry;
    },
    async set(key, value, setOptions: CacheSetOptions = {}) {
      const ttlMs = setOptions.ttlMs ?? defaultTtlMs;
      assertPositiveInteger("ttlMs", ttlMs);
      const storedAt = Date.now();
      entries.set(key, { value, storedAt, expiresAt: storedAt + ttlMs }, { ttl: ttlMs });
    },
    async delete(key) {
      entries.delete(key);
    },
    async clear() {
      entries.clear();
    },
    stats(): CacheStats {
      // Expired entries linger until read; drop them so items and bytes count live entries only.
      entries.purgeStale();
      return { hits, misses, items: entries.size, bytes: entries.calculatedSize, evictions };
    },
    async close() {
      entries.clear();
    },
  };
}
