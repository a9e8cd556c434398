export interface CacheEntry {
  value: Uint8Array;
  /** Epoch milliseconds. */
  storedAt: number;
  /** Epoch milliseconds after which the entry is no longer returned. */
  expiresAt: number;
}

export interface CacheStats {
  hits: number;
  misses: number;
  /** Entries held, expired ones excluded. */
  items: number;
  /** Bytes held: values plus keys. */
  bytes: number;
  /** Entries dropped to make room (not expirations, deletions or overwrites). */
  evictions: number;
}

export interface CacheSetOptions {
  /** Time to live of this entry; defaults to the cache's `ttlMs`. */
  ttlMs?: number;
}

/** A byte cache. Methods are async so that remote stores fit behind the same interface. */
export interface Cache {
  /** The live entry under `key`; an expired entry is never returned and counts as a miss. */
  get(key: string): Promise<CacheEntry | undefined>;
  set(key: string, value: Uint8Array, options?: CacheSetOptions): Promise<void>;
  delete(key: string): Promise<void>;
  clear(): Promise<void>;
  stats(): CacheStats;
  close(): Promise<void>;
}
