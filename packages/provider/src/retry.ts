import { type CancelSignal, onAbort } from "./cancellation.js";
import { AigwError } from "./errors.js";

export interface RetryOptions {
  /** Retries after the first attempt. */
  maxRetries?: number;
  /** Milliseconds before the first retry. */
  initialBackoff?: number;
  /** Growth of the wait from one retry to the next. */
  multiplier?: number;
  /** Upper bound of one wait, and of a Retry-After the upstream may ask for. */
  maxBackoff?: number;
  /** Fraction (0..1) of a wait that is randomly taken off, so clients do not retry in step. */
  jitter?: number;
  /** Upstream statuses worth another attempt (network failures and timeouts always are). */
  retryableStatusCodes?: number[];
}

export type ResolvedRetryOptions = Required<RetryOptions>;

export const DEFAULT_RETRY: Readonly<ResolvedRetryOptions> = Object.freeze({
  maxRetries: 3,
  initialBackoff: 100,
  multiplier: 2,
  maxBackoff: 10_000,
  jitter: 0.25,
  retryableStatusCodes: Object.freeze([408, 429, 500, 502, 503, 504]) as number[],
});

function check(valid: boolean, field: string, expected: string, value: unknown): void {
  if (!valid) throw new TypeError(`retry.${field} must be ${expected}, got ${String(value)}`);
}

/** Fills in the defaults and validates; throws a TypeError naming the first bad field. */
export function resolveRetryOptions(options: RetryOptions = {}): ResolvedRetryOptions {
  const maxRetries = options.maxRetries ?? DEFAULT_RETRY.maxRetries;
  const initialBackoff = options.initialBackoff ?? DEFAULT_RETRY.initialBackoff;
  const multiplier = options.multiplier ?? DEFAULT_RETRY.multiplier;
  const maxBackoff = options.maxBackoff ?? DEFAULT_RETRY.maxBackoff;
  const jitter = options.jitter ?? DEFAULT_RETRY.jitter;
  const retryableStatusCodes = options.retryableStatusCodes ?? DEFAULT_RETRY.retryableStatusCodes;
  check(
    Number.isInteger(maxRetries) && maxRetries >= 0,
    "maxRetries",
    "an integer >= 0",
    maxRetries,
  );
  check(
    Number.isFinite(initialBackoff) && initialBackoff >= 0,
    "initialBackoff",
    "a number >= 0",
    initialBackoff,
  );
  check(Number.isFinite(multiplier) && multiplier >= 1, "multiplier", "a number >= 1", multiplier);
  check(Number.isFinite(maxBackoff) && maxBackoff >= 0, "maxBackoff", "a number >= 0", maxBackoff);
  check(
    Number.isFinite(jitter) && jitter >= 0 && jitter <= 1,
    "jitter",
    "a number from 0 to 1",
    jitter,
  );
  check(
    Array.isArray(retryableStatusCodes) &&
      retryableStatusCodes.every(
        (status) => Number.isInteger(status) && status >= 100 && status <= 599,
      ),
    "retryableStatusCodes",
    "an array of HTTP status codes",
    retryableStatusCodes,
  );
  return {
    maxRetries,
    initialBackoff,
    multiplier,
    maxBackoff,
    jitter,
    retryableStatusCodes: [...retryableStatusCodes],
  };
}

/**
 * The wait before retry number `retryNumber` (1 for the first retry):
 * initialBackoff × multiplier^(retryNumber - 1), capped at maxBackoff, minus a random part
 * of up to `jitter` of it.
 */
export function backoffDelay(
  retryNumber: number,
  options: ResolvedRetryOptions,
  random: () => number = Math.random,
): number {
  const delay = Math.min(
    options.initialBackoff * options.multiplier ** Math.max(0, retryNumber - 1),
    options.maxBackoff,
  );
  return delay - delay * options.jitter * random();
}

/** The first value of a header that may have been repeated. */
export function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The wait an upstream asked for, in milliseconds: `retry-after-ms` first, then
 * `retry-after` as seconds or as an HTTP date. Undefined when absent or unreadable.
 */
export function parseRetryAfter(
  headers: Record<string, string | string[] | undefined>,
  now: number = Date.now(),
): number | undefined {
  const milliseconds = firstHeader(headers["retry-after-ms"])?.trim();
  if (milliseconds) {
    const value = Number(milliseconds);
    if (Number.isFinite(value) && value >= 0) return value;
  }
  const retryAfter = firstHeader(headers["retry-after"])?.trim();
  if (!retryAfter) return undefined;
  if (/^\d+(\.\d+)?$/.test(retryAfter)) return Number(retryAfter) * 1000;
  const date = Date.parse(retryAfter);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * The wait before retry number `retryNumber` after `error`, or undefined when it must not
 * be retried: not an AigwError, not retryable, a Retry-After longer than maxBackoff or than
 * the time left (better to fail over or answer at once than to wait), or a backoff that
 * would not fit in the time left.
 */
export function retryDelay(
  error: unknown,
  retryNumber: number,
  options: ResolvedRetryOptions,
  remainingMs: number,
): number | undefined {
  if (!AigwError.isInstance(error) || !error.isRetryable) return undefined;
  if (error.retryAfterMs !== undefined) {
    return error.retryAfterMs <= options.maxBackoff && error.retryAfterMs < remainingMs
      ? error.retryAfterMs
      : undefined;
  }
  const delay = backoffDelay(retryNumber, options);
  return delay < remainingMs ? delay : undefined;
}

/** Waits `ms`; rejects with the signal's reason as soon as the signal fires. */
export function sleep(ms: number, signal?: CancelSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      stopListening?.();
      resolve();
    }, ms);
    const stopListening =
      signal &&
      onAbort(signal, () => {
        clearTimeout(timer);
        reject(signal.reason);
      });
  });
}

export interface WithRetryOptions extends RetryOptions {
  /** Stops waiting and retrying when it fires; its reason is thrown. */
  signal?: CancelSignal | undefined;
  /** Epoch milliseconds after which no further attempt starts. */
  deadlineAt?: number | undefined;
}

/**
 * Runs `operation` (attempt 1, 2, ...) until it succeeds or its error is not worth
 * retrying (see `retryDelay`); throws the last error.
 */
export async function withRetry<T>(
  operation: (attempt: number) => Promise<T>,
  options: WithRetryOptions = {},
): Promise<T> {
  const { signal, deadlineAt, ...retry } = options;
  const resolved = resolveRetryOptions(retry);
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    try {
      return await operation(attempt);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (attempt > resolved.maxRetries) throw error;
      const remainingMs =
        deadlineAt === undefined ? Number.POSITIVE_INFINITY : deadlineAt - Date.now();
      const delay = retryDelay(error, attempt, resolved, remainingMs);
      if (delay === undefined) throw error;
      await sleep(delay, signal);
    }
  }
}
