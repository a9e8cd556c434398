/**
 * What stores on one Redis know together about its outage, so that a request waits for a dead
 * Redis at most once: after any store's call failed, every store skips Redis for the cooldown.
 * The rate-limit stores make their own when none is given; pass one to several stores (a
 * limiter and `@aigw/cache`'s Redis cache, say) to share it.
 */
export interface RedisOutage {
  /** True while a failure less than the cooldown ago says not to call Redis. */
  readonly skipping: boolean;
  /** A call failed or timed out: Redis is skipped for the cooldown. */
  failed(error: Error): void;
  /** A call succeeded: an outage in progress is over. */
  succeeded(): void;
}

export interface RedisOutageOptions {
  /** How long Redis is skipped after a failure, in ms; then the next call tries it. Default 1,000. */
  cooldownMs?: number;
  /** Called with the first failure of each outage (not again until a success ended it). */
  onOutage?: (error: Error) => void;
  /** Called with the first success after an outage. */
  onRecovery?: () => void;
}

/** The shared outage state, with a cooldown after each failure. Callbacks must not throw. */
export function createRedisOutage(options: RedisOutageOptions = {}): RedisOutage {
  const { cooldownMs = 1_000, onOutage, onRecovery } = options;
  if (!Number.isFinite(cooldownMs) || cooldownMs < 0) {
    throw new TypeError(`cooldownMs must be a finite number >= 0, got ${String(cooldownMs)}`);
  }
  let skipUntil = 0;
  let down = false;
  return {
    get skipping() {
      return Date.now() < skipUntil;
    },
    failed(error) {
      skipUntil = Date.now() + cooldownMs;
      if (down) return;
      down = true;
      onOutage?.(error);
    },
    succeeded() {
      if (!down) return;
      down = false;
      onRecovery?.();
    },
  };
}
