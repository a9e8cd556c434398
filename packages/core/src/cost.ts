import { formatUsd, type ModelPricing, nanoToUsd, type PriceTable, usdToNano } from "@aigw/pricing";
import { createSseComment, type SseEvent } from "@aigw/provider";
import type { BudgetLimit, BudgetUsage, QuotaPeriod } from "@aigw/ratelimit";
import type { Exchange } from "./exchange.js";
import type { ModelRouter, ResolvedRoute, RouteTarget } from "./router.js";

/** A money budget per calendar period, in USD. */
export interface MoneyBudget {
  /** Hard limit in USD per period: a request whose reservation would pass it is refused. */
  usd?: number;
  /** Soft thresholds in USD: each is reported once per period (see `onBudgetThreshold`). */
  softUsd?: number[];
  period: QuotaPeriod;
  /** IANA time zone whose calendar the periods follow. Default "UTC". */
  timeZone?: string;
}

/** A budget in USD as @aigw/ratelimit counts it: integer nano-USD. Throws TypeError for bad amounts. */
export function budgetLimit(budget: MoneyBudget, field: string): BudgetLimit {
  const nano = (usd: number, name: string) => {
    try {
      const amount = usdToNano(usd);
      if (amount > 0) return amount;
    } catch {
      // Reported below with the field's name.
    }
    throw new TypeError(
      `${field}.${name}: expected an amount of USD above 0 with at most 9 decimals`,
    );
  };
  if (!Array.isArray(budget.softUsd ?? [])) {
    throw new TypeError(`${field}.softUsd: expected a list of USD amounts`);
  }
  return {
    limit: budget.usd === undefined ? undefined : nano(budget.usd, "usd"),
    thresholds: (budget.softUsd ?? []).map((usd) => nano(usd, "softUsd[]")),
    period: budget.period,
    timeZone: budget.timeZone,
  };
}

/** What a request cost, once known. Amounts are integer nano-USD (1e-9 USD). */
export interface RequestCost {
  /** Undefined when the model that answered has no price (never counted as 0). */
  nanoUsd: number | undefined;
  /**
   * Not from usage the upstream reported: a stream cut off before its usage came (the usage
   * seen so far), or a client gone before any answer (what the request reserved).
   */
  estimated: boolean;
  /** A cache hit: what its answer cost upstream when it was made, so what the hit saved. */
  savedNanoUsd?: number | undefined;
}

/** The header and the final SSE comment that tell a client its request's cost in USD. */
export const costHeader = "x-aigw-cost-usd";
export const savedHeader = "x-aigw-cost-saved-usd";

/**
 * The cost as a stream's last event: SSE comments, which clients skip, with the header's
 * lines (`: x-aigw-cost-usd: 0.000123`); none when the model has no price.
 */
export function costComment(cost: RequestCost): SseEvent | undefined {
  if (cost.nanoUsd === undefined) return undefined;
  let text = `${costHeader}: ${formatUsd(cost.nanoUsd)}`;
  if (cost.savedNanoUsd !== undefined) text += `\n${savedHeader}: ${formatUsd(cost.savedNanoUsd)}`;
  return createSseComment(text);
}

/** A budget as GET /v1/usage shows it: USD amounts, times in seconds since the epoch. */
export function budgetReport(budget: BudgetUsage) {
  return {
    currency: "usd",
    limit: budget.limit === undefined ? null : nanoToUsd(budget.limit),
    spent: nanoToUsd(budget.spent),
    reserved: nanoToUsd(budget.reserved),
    remaining: budget.remaining === undefined ? null : nanoToUsd(budget.remaining),
    soft_limits: budget.thresholds.map(nanoToUsd),
    period_start: Math.floor(budget.periodStart / 1000),
    period_end: Math.floor(budget.periodEnd / 1000),
  };
}

export interface Costing {
  /**
   * The price of what a target answers: its own or its route's, else the table's for the model
   * sent upstream, else the table's for the name the client asked for (an alias priced by name).
   */
  pricingOf(
    target: RouteTarget,
    sentModel: string,
    requestedModel: string,
  ): ModelPricing | undefined;
  /**
   * The most a request may cost, in nano-USD: the dearest target it may reach (its route's and
   * its fallbacks' and context fallbacks'), by `ModelPricing.maxCost`; undefined when none of
   * them has a price.
   */
  maxCost(
    route: ResolvedRoute,
    model: string,
    inputTokens: number,
    outputTokens: number,
  ): number | undefined;
  /** The request's cost, from its usage and the price of what answered (computed once). */
  costOf(exchange: Exchange): RequestCost;
  /** Headers for a JSON answer: its cost, or for a cache hit 0 and what it saved. */
  headers(cost: RequestCost): Record<string, string>;
}

export interface CostingOptions {
  table: PriceTable;
  router: ModelRouter;
}

export function createCosting({ table, router }: CostingOptions): Costing {
  const pricingOf = (target: RouteTarget, sentModel: string, requestedModel: string) =>
    target.pricing ??
    table.lookup(sentModel) ??
    (requestedModel === sentModel ? undefined : table.lookup(requestedModel));

  function maxCost(route: ResolvedRoute, model: string, inputTokens: number, outputTokens: number) {
    let most: number | undefined;
    const routes = [
      route,
      ...[...route.fallbacks, ...route.contextFallbacks].map((name) => router.route(name)),
    ];
    for (const candidate of routes) {
      for (const target of candidate?.targets ?? []) {
        const pricing = pricingOf(target, target.model ?? model, model);
        if (!pricing) continue;
        most = Math.max(most ?? 0, pricing.maxCost(inputTokens, outputTokens));
      }
    }
    return most;
  }

  /** A cache hit is priced as its route's first target would have answered it. */
  function cachedPricing({ context }: Exchange): ModelPricing | undefined {
    const model = context.model;
    const target = model === undefined ? undefined : router.resolve(model)?.targets[0];
    return target && pricingOf(target, target.model ?? (model as string), model as string);
  }

  function costOf(exchange: Exchange): RequestCost {
    const { outcome } = exchange;
    if (outcome.cost) return outcome.cost;
    const { usage, pricing } = outcome;
    let cost: RequestCost;
    if (outcome.cache === "HIT") {
      cost = {
        nanoUsd: 0,
        estimated: false,
        savedNanoUsd: usage && cachedPricing(exchange)?.cost(usage),
      };
    } else if (!usage) {
      // No answer came. A client that left once an upstream was asked may still be billed for
      // it: that counts as what the request reserved. A failure is not paid for.
      cost =
        outcome.status === 499 && outcome.attempts > 0
          ? { nanoUsd: exchange.reservedCost, estimated: true }
          : { nanoUsd: 0, estimated: false };
    } else {
      cost = { nanoUsd: pricing?.cost(usage), estimated: usage.estimated === true };
    }
    outcome.cost = cost;
    return cost;
  }

  return {
    pricingOf,
    maxCost,
    costOf,
    headers(cost) {
      if (cost.nanoUsd === undefined) return {};
      const headers: Record<string, string> = { [costHeader]: formatUsd(cost.nanoUsd) };
      if (cost.savedNanoUsd !== undefined) headers[savedHeader] = formatUsd(cost.savedNanoUsd);
      return headers;
    },
  };
}
