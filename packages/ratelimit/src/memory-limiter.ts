import { randomUUID } from "node:crypto";
import { type Bucket, type BucketState, tolerance } from "./bucket.js";
import {
  assertSettlement,
  budgetUsageOf,
  createLimiterConfig,
  deniedRetryAfterMs,
  normalizeRequest,
  quotaResult,
} from "./limiter-config.js";
import type { QuotaCalendar } from "./quota-period.js";
import type { Admission, BudgetUsage, Limiter, LimiterOptions, QuotaUsage } from "./types.js";
import { assertPositive } from "./validate.js";

export interface MemoryLimiterOptions extends LimiterOptions {
  /** How often full buckets, past periods and lapsed reservations are dropped. Default 60,000. */
  idleTimeoutMs?: number;
  /** Wall clock in milliseconds since the epoch (quota periods follow the calendar). Default `Date.now`. */
  now?: () => number;
}

/** A quota's or budget's state in one period. */
interface AllowanceState {
  periodStart: number;
  periodEnd: number;
  used: number;
  reserved: number;
  /** Reservation id -> amount and expiry. */
  reservations: Map<string, { amount: number; expiresAt: number }>;
  /** Budget thresholds already reported this period. */
  reached: Set<number>;
}

/** Quota or budget states per key, each in its current period. */
class Allowances {
  readonly states = new Map<string, AllowanceState>();

  constructor(private readonly calendar: QuotaCalendar) {}

  /** The state of `key` at `at`, with lapsed reservations released (not stored if new). */
  current(key: string, at: number): AllowanceState {
    const period = this.calendar.periodAt(at);
    const state = this.states.get(key);
    if (state === undefined || state.periodStart !== period.start) {
      return {
        periodStart: period.start,
        periodEnd: period.end,
        used: 0,
        reserved: 0,
        reservations: new Map(),
        reached: new Set(),
      };
    }
    for (const [id, reservation] of state.reservations) {
      if (reservation.expiresAt <= at) {
        state.reserved -= reservation.amount;
        state.reservations.delete(id);
      }
    }
    return state;
  }

  reserve(key: string, state: AllowanceState, id: string, amount: number, expiresAt: number) {
    state.reserved += amount;
    state.reservations.set(id, { amount, expiresAt });
    this.states.set(key, state);
  }

  settle(key: string, id: string, actual: number, at: number): AllowanceState {
    const state = this.current(key, at);
    const held = state.reservations.get(id);
    if (held !== undefined) {
      state.reserved -= held.amount;
      state.reservations.delete(id);
    }
    state.used += actual;
    this.states.set(key, state);
    return state;
  }

  sweep(at: number) {
    for (const key of this.states.keys()) {
      if (this.current(key, at) !== this.states.get(key)) this.states.delete(key);
    }
  }
}

interface BucketStore {
  bucket: Bucket;
  states: Map<string, BucketState>;
}

function store(buckets: BucketStore, key: string, tokens: number, at: number): void {
  // A key without a state has a full bucket, so full buckets need not be kept.
  if (tokens >= buckets.bucket.burst) buckets.states.delete(key);
  else buckets.states.set(key, { tokens, updatedAt: at });
}

/** Request bucket, token bucket and quota per key in this process's memory. */
export function createMemoryLimiter(options: MemoryLimiterOptions): Limiter {
  const config = createLimiterConfig(options);
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  const now = options.now ?? Date.now;
  assertPositive("idleTimeoutMs", idleTimeoutMs, true);
  if (typeof now !== "function") {
    throw new TypeError("now must be a function returning milliseconds");
  }
  const requestBuckets = config.requests && { bucket: config.requests, states: new Map() };
  const tokenBuckets = config.tokens && { bucket: config.tokens, states: new Map() };
  const quotas = config.quota && new Allowances(config.quota.calendar);
  const budgets = config.budget && new Allowances(config.budget.calendar);

  const sweep = setInterval(() => {
    const at = now();
    for (const buckets of [requestBuckets, tokenBuckets]) {
      if (buckets === undefined) continue;
      for (const [key, state] of buckets.states) {
        if (buckets.bucket.refilled(state, at) >= buckets.bucket.burst) buckets.states.delete(key);
      }
    }
    quotas?.sweep(at);
    budgets?.sweep(at);
  }, idleTimeoutMs);
  sweep.unref();

  return {
    async admit(key, request = {}): Promise<Admission> {
      const { requests, tokens: estimate, cost } = normalizeRequest(request);
      const at = now();
      const checkBucket = (buckets: BucketStore | undefined, cost: number) => {
        if (buckets === undefined) return undefined;
        const tokens = buckets.bucket.refilled(buckets.states.get(key), at);
        return { buckets, cost, tokens, allowed: tokens + tolerance >= cost };
      };
      const requestCheck = checkBucket(requestBuckets, requests);
      const tokenCheck = checkBucket(tokenBuckets, estimate);
      const quota = quotas?.current(key, at);
      const quotaLimit = config.quota?.limit ?? Number.POSITIVE_INFINITY;
      const quotaAllowed =
        quota === undefined || quota.used + quota.reserved + estimate <= quotaLimit;
      const budget = budgets?.current(key, at);
      const budgetLimit = config.budget?.limit ?? Number.POSITIVE_INFINITY;
      const budgetAllowed =
        budget === undefined || budget.used + budget.reserved + cost <= budgetLimit;
      const allowed =
        (requestCheck?.allowed ?? true) &&
        (tokenCheck?.allowed ?? true) &&
        quotaAllowed &&
        budgetAllowed;

      const admission: Admission = { allowed, retryAfterMs: 0 };
      for (const check of [requestCheck, tokenCheck]) {
        if (check === undefined) continue;
        if (allowed) {
          check.tokens = Math.max(0, check.tokens - check.cost);
          store(check.buckets, key, check.tokens, at);
        }
        const result = check.buckets.bucket.result(check.tokens, check.cost, check.allowed);
        if (check === requestCheck) admission.requests = result;
        else admission.tokens = result;
      }
      if (allowed) {
        const reservation = {
          id: randomUUID(),
          key,
          estimate,
          cost,
          expiresAt: at + config.reservationTtlMs,
        };
        admission.reservation = reservation;
        if (quota) quotas?.reserve(key, quota, reservation.id, estimate, reservation.expiresAt);
        if (budget) budgets?.reserve(key, budget, reservation.id, cost, reservation.expiresAt);
      }
      if (quota !== undefined) {
        const resetMs = Math.max(0, Math.ceil(quota.periodEnd - at));
        admission.quota = quotaResult(quotaLimit, quota, estimate, quotaAllowed, resetMs);
      }
      if (budget !== undefined) {
        const resetMs = Math.max(0, Math.ceil(budget.periodEnd - at));
        admission.budget = quotaResult(budgetLimit, budget, cost, budgetAllowed, resetMs);
      }
      if (!allowed) {
        admission.retryAfterMs = deniedRetryAfterMs(admission);
      }
      return admission;
    },

    async settle(reservation, actualTokens, actualCost = 0) {
      assertSettlement(reservation, actualTokens, actualCost);
      const at = now();
      const { key, estimate } = reservation;
      if (tokenBuckets !== undefined) {
        const { burst } = tokenBuckets.bucket;
        const tokens = tokenBuckets.bucket.refilled(tokenBuckets.states.get(key), at);
        // An overrun is charged as debt, but never more than one burst of it.
        const corrected = Math.max(-burst, Math.min(burst, tokens - (actualTokens - estimate)));
        store(tokenBuckets, key, corrected, at);
      }
      quotas?.settle(key, reservation.id, actualTokens, at);
      if (budgets === undefined || config.budget === undefined) return;
      const budget = budgets.settle(key, reservation.id, actualCost, at);
      for (const threshold of config.budget.thresholds) {
        if (budget.used < threshold || budget.reached.has(threshold)) continue;
        budget.reached.add(threshold);
        config.onBudgetThreshold({
          key,
          threshold,
          spent: budget.used,
          limit: config.budget.limit,
          periodStart: budget.periodStart,
          periodEnd: budget.periodEnd,
        });
      }
    },

    async usage(key): Promise<QuotaUsage | undefined> {
      const at = now();
      const quota = quotas?.current(key, at);
      if (quota === undefined || config.quota === undefined) return undefined;
      const { limit } = config.quota;
      return {
        limit,
        used: quota.used,
        reserved: quota.reserved,
        remaining: Math.max(0, limit - quota.used - quota.reserved),
        periodStart: quota.periodStart,
        periodEnd: quota.periodEnd,
        resetMs: Math.max(0, Math.ceil(quota.periodEnd - at)),
      };
    },

    async budgetUsage(key): Promise<BudgetUsage | undefined> {
      const at = now();
      const budget = budgets?.current(key, at);
      if (budget === undefined || config.budget === undefined) return undefined;
      return budgetUsageOf(config.budget, budget.used, {
        reserved: budget.reserved,
        periodStart: budget.periodStart,
        periodEnd: budget.periodEnd,
        resetMs: Math.max(0, Math.ceil(budget.periodEnd - at)),
      });
    },

    async close() {
      clearInterval(sweep);
      requestBuckets?.states.clear();
      tokenBuckets?.states.clear();
      quotas?.states.clear();
      budgets?.states.clear();
    },
  };
}
