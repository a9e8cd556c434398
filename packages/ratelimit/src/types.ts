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
  /**
   * Set when a remote store could not be reached and the failure policy decided instead: then
   * `allowed` follows the policy and the other numbers are not the bucket's.
   */
  unavailable?: true;
}

/** Rate limits per key. Methods are async so that remote stores fit behind the same interface. */
export interface RateLimiter {
  /** Takes `cost` tokens (default 1) from the bucket of `key`; a denied take charges nothing. */
  take(key: string, cost?: number): Promise<RateLimitResult>;
  close(): Promise<void>;
}

/** A token bucket: `rate` tokens per second up to `burst`, or `perMinute` (rate perMinute/60, burst perMinute). */
export type BucketLimit = { rate: number; burst: number } | { perMinute: number };

/** Calendar periods, aligned to a time zone; weeks start on Monday (ISO 8601). */
export type QuotaPeriod = "hour" | "day" | "week" | "month";

export interface QuotaLimit {
  /** Tokens per key per period (a positive integer). */
  limit: number;
  period: QuotaPeriod;
  /** IANA time zone whose calendar the periods follow. Default "UTC". */
  timeZone?: string;
}

export interface LimiterOptions {
  /** Request bucket: each admission takes `requests` (default 1) from it. */
  requests?: BucketLimit;
  /** Token bucket (e.g. tokens per minute): each admission takes its token estimate from it. */
  tokens?: BucketLimit;
  /** Token quota per calendar period: each admission reserves its token estimate. */
  quota?: QuotaLimit;
  /** How long an unsettled reservation holds quota before it lapses. Default 900,000 (15 minutes). */
  reservationTtlMs?: number;
}

export interface AdmitRequest {
  /** Taken from the request bucket. Default 1. */
  requests?: number;
  /** Token estimate (a non-negative integer): taken from the token bucket and reserved from the quota. Default 0. */
  tokens?: number;
}

export interface QuotaResult extends RateLimitResult {
  /** Tokens settled in the period (after this admission). */
  used: number;
  /** Tokens reserved by admissions not yet settled (after this admission). */
  reserved: number;
  /** Start and end of the period, in milliseconds since the epoch. */
  periodStart: number;
  periodEnd: number;
}

/** Handed back to `settle` once the actual token count is known. Plain data. */
export interface Reservation {
  id: string;
  key: string;
  /** The token estimate that was taken and reserved. */
  estimate: number;
  /** When the reservation lapses if not settled, in the store's clock (ms since the epoch). */
  expiresAt: number;
}

export interface Admission {
  /** True only when every configured limit allows; a denied admission charges nothing. */
  allowed: boolean;
  /** 0 when allowed; else the longest wait among the limits that denied (Infinity if one never can allow). */
  retryAfterMs: number;
  /** Each configured limit's own verdict and numbers (after the charge when allowed). */
  requests?: RateLimitResult;
  tokens?: RateLimitResult;
  quota?: QuotaResult;
  /** Present when allowed and the store answered. */
  reservation?: Reservation;
  /** Set when the store could not be reached: `allowed` follows the failure policy, no limit results. */
  unavailable?: true;
}

export interface QuotaUsage {
  limit: number;
  used: number;
  reserved: number;
  remaining: number;
  periodStart: number;
  periodEnd: number;
  /** Milliseconds until the period ends. */
  resetMs: number;
}

/** Request bucket, token bucket and quota per key, admitted in one atomic step. */
export interface Limiter {
  /** Checks every configured limit and, only if all allow, charges them all. */
  admit(key: string, request?: AdmitRequest): Promise<Admission>;
  /**
   * Records the actual tokens of an admitted request: the reservation becomes usage, and the token
   * bucket is corrected by `actualTokens - estimate`. Call once per reservation.
   */
  settle(reservation: Reservation, actualTokens: number): Promise<void>;
  /** The quota's state for `key` in the current period; undefined when no quota is configured. */
  usage(key: string): Promise<QuotaUsage | undefined>;
  close(): Promise<void>;
}
