export interface RateLimitResult {
  allowed: boolean;
  /** The bucket's capacity (burst). */
  limit: number;
  /** Whole tokens left after this take. */
  remaining: number;
  /** Milliseconds until the bucket is full again. */
  resetMs: number;
  /** 0 when allowed; else milliseconds until `cost` tokens are available (Infinity when cost > burst). */
  retryAfterMs: number;
}

/** Rate limits per key. Methods are async so that remote stores fit behind the same interface. */
export interface RateLimiter {
  /** Takes `cost` tokens (default 1) from the bucket of `key`; a denied take charges nothing. */
  take(key: string, cost?: number): Promise<RateLimitResult>;
  close(): Promise<void>;
}
