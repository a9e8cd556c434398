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

/**
 * A spending budget per calendar period, in integer units of money the caller picks (aigw uses
 * nano-USD, 1e-9 USD): amounts up to Number.MAX_SAFE_INTEGER stay exact, in memory and in Redis.
 */
export interface BudgetLimit {
  /**
   * Hard limit: an admission is refused when spent + reserved + its cost would exceed it. Omit
   * for a budget that only warns (with `thresholds`) or only counts the spend (without).
   */
  limit?: number;
  /**
   * Soft thresholds (positive integers): `onBudgetThreshold` is called once per period and
   * threshold when the settled spend reaches one, once across every instance on one Redis.
   */
  thresholds?: number[];
  period: QuotaPeriod;
  /** IANA time zone whose calendar the periods follow. Default "UTC". */
  timeZone?: string;
}

/** A budget's settled spend reached a soft threshold (reported once per period and threshold). */
export interface BudgetThresholdEvent {
  key: string;
  threshold: number;
  /** Settled spend in the period, after the settlement that reached the threshold. */
  spent: number;
  /** The hard limit, when the budget has one. */
  limit: number | undefined;
  periodStart: number;
  periodEnd: number;
}

export interface LimiterOptions {
  /** Request bucket: each admission takes `requests` (default 1) from it. */
  requests?: BucketLimit;
  /** Token bucket (e.g. tokens per minute): each admission takes its token estimate from it. */
  tokens?: BucketLimit;
  /** Token quota per calendar period: each admission reserves its token estimate. */
  quota?: QuotaLimit;
  /** Money per calendar period: each admission reserves its cost. */
  budget?: BudgetLimit;
  /** Called when a budget's spend reaches one of its thresholds; errors it throws are ignored. */
  onBudgetThreshold?(event: BudgetThresholdEvent): void;
  /** How long an unsettled reservation holds quota before it lapses. Default 900,000 (15 minutes). */
  reservationTtlMs?: number;
}

export interface AdmitRequest {
  /** Taken from the request bucket. Default 1. */
  requests?: number;
  /** Token estimate (a non-negative integer): taken from the token bucket and reserved from the quota. Default 0. */
  tokens?: number;
  /** Cost estimate (a non-negative integer, the budget's unit): reserved from the budget. Default 0. */
  cost?: number;
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
  /** The cost reserved from the budget (0 without one). */
  cost: number;
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
  /**
   * The budget's verdict, amounts in its unit (`used` is the settled spend); a budget without a
   * hard limit always allows and reports `limit` and `remaining` as Infinity.
   */
  budget?: QuotaResult;
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

export interface BudgetUsage {
  /** The hard limit; undefined for a budget that only warns. */
  limit: number | undefined;
  thresholds: number[];
  /** Settled spend in the period. */
  spent: number;
  reserved: number;
  /** limit - spent - reserved, at least 0; undefined without a hard limit. */
  remaining: number | undefined;
  periodStart: number;
  periodEnd: number;
  resetMs: number;
}

/** Request bucket, token bucket, quota and budget per key, admitted in one atomic step. */
export interface Limiter {
  /** Checks every configured limit and, only if all allow, charges them all. */
  admit(key: string, request?: AdmitRequest): Promise<Admission>;
  /**
   * Records the actual tokens (and cost, default 0) of an admitted request: the reservation
   * becomes usage and spend, and the token bucket is corrected by `actualTokens - estimate`.
   * Call once per reservation; `settle(reservation, 0)` gives back what an unserved request held.
   */
  settle(reservation: Reservation, actualTokens: number, actualCost?: number): Promise<void>;
  /** The quota's state for `key` in the current period; undefined when no quota is configured. */
  usage(key: string): Promise<QuotaUsage | undefined>;
  /** The budget's state for `key` in the current period; undefined when no budget is configured. */
  budgetUsage(key: string): Promise<BudgetUsage | undefined>;
  close(): Promise<void>;
}
