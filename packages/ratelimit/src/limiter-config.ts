import { type Bucket, createBucketFromLimit } from "./bucket.js";
import { createQuotaCalendar, type QuotaCalendar } from "./quota-period.js";
import type {
  Admission,
  AdmitRequest,
  BudgetThresholdEvent,
  BudgetUsage,
  LimiterOptions,
  QuotaResult,
  Reservation,
} from "./types.js";
import { assertCost, assertPositive, assertTokenCount } from "./validate.js";

export interface LimiterConfig {
  requests?: Bucket;
  tokens?: Bucket;
  quota?: { limit: number; calendar: QuotaCalendar };
  budget?: { limit: number | undefined; thresholds: number[]; calendar: QuotaCalendar };
  onBudgetThreshold(event: BudgetThresholdEvent): void;
  reservationTtlMs: number;
}

/** Validates the limits shared by the memory and Redis limiters. */
export function createLimiterConfig(options: LimiterOptions): LimiterConfig {
  const { requests, tokens, quota, budget, reservationTtlMs = 900_000 } = options;
  if (
    requests === undefined &&
    tokens === undefined &&
    quota === undefined &&
    budget === undefined
  ) {
    throw new TypeError("configure at least one of requests, tokens, quota and budget");
  }
  assertPositive("reservationTtlMs", reservationTtlMs, true);
  const { onBudgetThreshold } = options;
  if (onBudgetThreshold !== undefined && typeof onBudgetThreshold !== "function") {
    throw new TypeError("onBudgetThreshold must be a function");
  }
  const config: LimiterConfig = {
    reservationTtlMs,
    onBudgetThreshold(event) {
      try {
        onBudgetThreshold?.(event);
      } catch {
        // A listener's failure is its own; the settlement stands.
      }
    },
  };
  if (requests !== undefined) config.requests = createBucketFromLimit("requests", requests);
  if (tokens !== undefined) config.tokens = createBucketFromLimit("tokens", tokens);
  if (quota !== undefined) {
    assertPositive("quota.limit", quota.limit, true);
    config.quota = {
      limit: quota.limit,
      calendar: createQuotaCalendar(quota.period, quota.timeZone),
    };
  }
  if (budget !== undefined) {
    const { limit, thresholds = [] } = budget;
    if (limit !== undefined) assertPositive("budget.limit", limit, true);
    if (!Array.isArray(thresholds)) throw new TypeError("budget.thresholds must be an array");
    for (const threshold of thresholds) assertPositive("budget.thresholds[]", threshold, true);
    config.budget = {
      limit,
      thresholds: [...new Set(thresholds)].sort((a, b) => a - b),
      calendar: createQuotaCalendar(budget.period, budget.timeZone),
    };
  }
  return config;
}

export function normalizeRequest(request: AdmitRequest): {
  requests: number;
  tokens: number;
  cost: number;
} {
  const { requests = 1, tokens = 0, cost = 0 } = request;
  assertCost("requests", requests);
  assertTokenCount("tokens", tokens);
  assertTokenCount("cost", cost);
  return { requests, tokens, cost };
}

export function assertSettlement(
  reservation: Reservation,
  actualTokens: number,
  actualCost: number,
): void {
  if (typeof reservation?.id !== "string" || typeof reservation.key !== "string") {
    throw new TypeError("reservation must be one returned by admit()");
  }
  assertTokenCount("actualTokens", actualTokens);
  assertTokenCount("actualCost", actualCost);
}

/** A quota's or budget's verdict; a budget without a hard limit passes Infinity. */
export function quotaResult(
  limit: number,
  state: { used: number; reserved: number; periodStart: number; periodEnd: number },
  estimate: number,
  allowed: boolean,
  resetMs: number,
): QuotaResult {
  return {
    allowed,
    limit,
    remaining: Math.max(0, limit - state.used - state.reserved),
    resetMs,
    // A denied quota frees up when its period ends, or never when the estimate exceeds it.
    retryAfterMs: estimate > limit ? Number.POSITIVE_INFINITY : allowed ? 0 : resetMs,
    used: state.used,
    reserved: state.reserved,
    periodStart: state.periodStart,
    periodEnd: state.periodEnd,
  };
}

/** The longest wait among the limits that denied an admission. */
export function deniedRetryAfterMs(admission: Admission): number {
  let longest = 0;
  for (const result of [admission.requests, admission.tokens, admission.quota, admission.budget]) {
    if (result !== undefined && !result.allowed) longest = Math.max(longest, result.retryAfterMs);
  }
  return longest;
}

export function budgetUsageOf(
  budget: NonNullable<LimiterConfig["budget"]>,
  spent: number,
  state: { reserved: number; periodStart: number; periodEnd: number; resetMs: number },
): BudgetUsage {
  const { limit, thresholds } = budget;
  return {
    limit,
    thresholds: [...thresholds],
    spent,
    ...state,
    remaining: limit === undefined ? undefined : Math.max(0, limit - spent - state.reserved),
  };
}
