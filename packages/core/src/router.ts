import {
  type Balancer,
  type BreakerStatus,
  type CircuitBreaker,
  createBalancer,
  type Strategy,
  strategies,
} from "@aigw/balancer";
import { type ModelPrice, type ModelPricing, priceModel } from "@aigw/pricing";
import type { Provider } from "@aigw/provider";
import { createMemoryLimiter, type Limiter, type LimiterOptions } from "@aigw/ratelimit";
import type { RouteCacheOptions } from "./cache-step.js";
import { budgetLimit, type MoneyBudget } from "./cost.js";

/** One upstream a route may send a request to. */
export interface RouteTargetOptions {
  /** The name of a configured provider. */
  provider: string;
  /** The model sent upstream; without it, the requested model is sent unchanged. */
  model?: string;
  /** Its share with the `weighted` strategy (1); 0: never picked. */
  weight?: number;
  /** Requests per minute it may take, on every instance together with a shared limiter. */
  rpm?: number;
  /** Tokens per minute it may take (each request's estimate, as tenant token limits count). */
  tpm?: number;
  /**
   * Money it may spend per period: once a request's reservation would pass it, the target is
   * out of rotation (traffic goes to the route's other targets) until the period ends.
   */
  budget?: MoneyBudget;
  /** Its price, over the route's `price` and the price table's entry for its model. */
  price?: ModelPrice;
  /**
   * For streams: how long its first token may take, in milliseconds, before the request moves
   * on to another target (nothing has reached the client then). Replaces the gateway's
   * `firstEventWaitMs` for this target. Default: none.
   */
  firstTokenTimeoutMs?: number;
  /**
   * Leave out what a translating upstream cannot honour (Anthropic: `n` above 1, `temperature`
   * above 1, `logprobs`) instead of answering 400. Default: the provider's own setting.
   */
  dropUnsupportedParams?: boolean;
}

/**
 * A route: one target (`provider`, and `model` for an alias that rewrites the request), or
 * several (`targets`) balanced by `strategy`, with routes to fall back to.
 */
export interface ModelRouteOptions {
  /** The one target's provider (or give `targets`). */
  provider?: string;
  /** The one target's model. */
  model?: string;
  /** Several targets, in priority order (or give `provider`). */
  targets?: RouteTargetOptions[];
  /** How a target is picked for each attempt (see @aigw/balancer): "weighted" by default. */
  strategy?: Strategy;
  /**
   * Upstream calls one request may make, across retries, other targets and fallback routes.
   * Default: 1 + the first target's provider's `retry.maxRetries`, or, when more, the number
   * of targets plus the number of fallback routes.
   */
  maxAttempts?: number;
  /**
   * Routes tried in order once no target of this one can answer. They do not chain: a
   * fallback route's own fallbacks are not followed.
   */
  fallbacks?: string[];
  /** Routes tried in order when an upstream says the prompt is too long for its context. */
  contextFallbacks?: string[];
  /** Caching for this route, over the gateway's `cache` settings (which must give a store). */
  cache?: RouteCacheOptions;
  /** The one target's `dropUnsupportedParams` (see RouteTargetOptions). */
  dropUnsupportedParams?: boolean;
  /**
   * The price of what its targets answer (an alias, a self-hosted model), over the price
   * table's entries for their models; a target's own `price` wins.
   */
  price?: ModelPrice;
  /**
   * Output tokens a request without `max_tokens` is assumed to use, for token quotas and
   * budgets (4,096): not the model's maximum, which would make every reservation huge.
   */
  reserveOutputTokens?: number;
  /**
   * Money the route may spend per period, across tenants: a request whose reservation would
   * pass it is refused (429 insufficient_quota).
   */
  budget?: MoneyBudget;
}

export interface RouteTarget {
  /** The target's name for the balancer and the breaker: "provider/model" ("provider/route"). */
  id: string;
  providerName: string;
  provider: Provider;
  /** The model to send upstream, or undefined to send the requested one unchanged. */
  model: string | undefined;
  /** See `RouteTargetOptions.dropUnsupportedParams`. */
  dropUnsupportedParams?: boolean | undefined;
  /** See `RouteTargetOptions.firstTokenTimeoutMs`. */
  firstTokenTimeoutMs?: number | undefined;
  /** Its own limits (`rpm`, `tpm`, `budget`): a target over one is skipped until `refusedUntil`. */
  cap?: { limiter: Limiter; refusedUntil: number; budgeted: boolean } | undefined;
  /** Its configured price (its own or its route's); else the price table's. */
  pricing?: ModelPricing | undefined;
}

/**
 * Makes the limiter of a target with `rpm`, `tpm` or `budget` (keyed by the target's id), or
 * of a route with a `budget` (keyed by the route's name). Default: in memory.
 */
export type TargetLimiterFactory = (limits: LimiterOptions, scope: "target" | "route") => Limiter;

export interface ResolvedRoute {
  /** The configured name that matched ("gpt-4o", "fast", "gpt-*"). */
  name: string;
  /** Targets in priority order. */
  targets: RouteTarget[];
  balancer: Balancer;
  /** Some of its targets have their own rpm, tpm or budget. */
  capped: boolean;
  /** The route's own budget, keyed by its name. */
  budget: Limiter | undefined;
  /** See ModelRouteOptions.reserveOutputTokens. */
  reserveOutputTokens: number;
  maxAttempts: number;
  /** Routes tried, in order, once no target of this one can answer. */
  fallbacks: readonly string[];
  contextFallbacks: readonly string[];
}

interface WildcardRoute {
  prefix: string;
  route: ResolvedRoute;
  /** Whether the matched prefix is cut off before sending ("openai/*" sends "gpt-4o"). */
  stripsPrefix: boolean;
}

/** A wildcard route as listings see it. */
export interface WildcardListing {
  /** The route's configured name ("gpt-*"). */
  name: string;
  /** What a model must start with ("gpt-"). */
  prefix: string;
  stripsPrefix: boolean;
  providerName: string;
  /** The route sends one model whatever is asked: the upstream's list says nothing of it. */
  fixedModel: boolean;
}

export interface ModelRouter {
  resolve(model: string): ResolvedRoute | undefined;
  /** A configured route by its exact name (fallbacks name routes this way). */
  route(name: string): ResolvedRoute | undefined;
  /** Every target of every route, with its breaker state, as GET /admin/targets shows it. */
  targetStates(): TargetReport[];
  /** Configured names and aliases, without wildcards. */
  listModels(): { id: string; providerName: string }[];
  /** The routes with a money budget of their own. */
  budgetedRoutes(): ResolvedRoute[];
  /** Wildcard routes, longest prefix first. */
  listWildcards(): WildcardListing[];
}

/** One target as GET /admin/targets shows it. */
export interface TargetReport {
  /** "provider/model" (the route's name for a target that sends the requested model). */
  id: string;
  provider: string;
  /** The model sent upstream; null: the requested one. */
  model: string | null;
  /** The routes it serves. */
  routes: string[];
  status: BreakerStatus;
  /** When an open target's cooldown ends, as an ISO 8601 time; null when not open. */
  cooldown_until: string | null;
  /** Trips since it was last closed by its probes. */
  trips: number;
  /** Attempts at it in flight on this instance, streams included. */
  in_flight: number;
}

/**
 * Precedence: an exact name, then an alias (both exact keys; an exact name cannot be an alias
 * too), then the longest matching wildcard. A wildcard "name/*" strips "name/" from the
 * model it sends; other wildcards send the model as requested unless they name one.
 */
export function createModelRouter(
  models: Record<string, ModelRouteOptions>,
  providers: Record<string, Provider>,
  breaker?: CircuitBreaker,
  targetLimiter: TargetLimiterFactory = (limits) => createMemoryLimiter(limits),
): ModelRouter {
  const exact = new Map<string, ResolvedRoute>();
  const wildcards: WildcardRoute[] = [];
  // A target listed by several routes has one rate limit, whichever route picks it.
  const caps = new Map<string, { cap: NonNullable<RouteTarget["cap"]>; limits: string }>();
  const capOf = (id: string, field: string, limits: LimiterOptions) => {
    const settings = JSON.stringify(limits);
    const known = caps.get(id);
    if (known && known.limits !== settings) {
      throw new TypeError(`${field}: target '${id}' has other rpm/tpm/budget in another route`);
    }
    if (known) return known.cap;
    const cap = {
      limiter: targetLimiter(limits, "target"),
      refusedUntil: 0,
      budgeted: limits.budget !== undefined,
    };
    caps.set(id, { cap, limits: settings });
    return cap;
  };

  for (const [name, options] of Object.entries(models)) {
    const route = resolveRoute(name, options, models, providers, breaker, capOf);
    if (options.budget !== undefined) {
      route.budget = targetLimiter(
        { budget: budgetLimit(options.budget, `models.${name}.budget`) },
        "route",
      );
    }
    const star = name.indexOf("*");
    if (star === -1) {
      exact.set(name, route);
    } else if (star === name.length - 1) {
      const prefix = name.slice(0, -1);
      const namesModels = route.targets.some((target) => target.model !== undefined);
      wildcards.push({ prefix, route, stripsPrefix: prefix.endsWith("/") && !namesModels });
    } else {
      throw new TypeError(`models.${name}: '*' is only allowed at the end of a model name`);
    }
  }
  wildcards.sort((left, right) => right.prefix.length - left.prefix.length);

  return {
    resolve(model) {
      const route = exact.get(model);
      if (route) return route;
      const wildcard = wildcards.find((candidate) => model.startsWith(candidate.prefix));
      if (!wildcard) return undefined;
      if (!wildcard.stripsPrefix) return wildcard.route;
      const stripped = model.slice(wildcard.prefix.length);
      if (!stripped) return undefined;
      return {
        ...wildcard.route,
        targets: wildcard.route.targets.map((target) => ({ ...target, model: stripped })),
      };
    },
    route: (name) => exact.get(name),
    targetStates() {
      const reports = new Map<string, TargetReport>();
      for (const route of [...exact.values(), ...wildcards.map(({ route }) => route)]) {
        for (const target of route.targets) {
          let report = reports.get(target.id);
          if (!report) {
            const state = breaker?.state(target.id);
            report = {
              id: target.id,
              provider: target.providerName,
              model: target.model ?? null,
              routes: [],
              status: state?.status ?? "closed",
              cooldown_until: state?.status === "open" ? new Date(state.until).toISOString() : null,
              trips: state?.trips ?? 0,
              in_flight: 0,
            };
            reports.set(target.id, report);
          }
          report.routes.push(route.name);
          report.in_flight += route.balancer.inFlight(target.id);
        }
      }
      return [...reports.values()];
    },
    budgetedRoutes() {
      return [...exact.values(), ...wildcards.map(({ route }) => route)].filter(
        (route) => route.budget !== undefined,
      );
    },
    listModels() {
      return [...exact].map(([id, route]) => ({
        id,
        providerName: route.targets[0]?.providerName ?? "",
      }));
    },
    listWildcards() {
      return wildcards.map(({ prefix, route, stripsPrefix }) => ({
        name: route.name,
        prefix,
        stripsPrefix,
        providerName: route.targets[0]?.providerName ?? "",
        fixedModel: route.targets[0]?.model !== undefined,
      }));
    },
  };
}

function priceOf(field: string, name: string, price: ModelPrice): ModelPricing {
  try {
    return priceModel(name, price);
  } catch (error) {
    throw new TypeError(`${field}: ${(error as Error).message}`);
  }
}

function targetsOf(name: string, options: ModelRouteOptions): RouteTargetOptions[] {
  if (options.targets !== undefined) {
    if (options.provider !== undefined || options.model !== undefined) {
      throw new TypeError(`models.${name}: give either provider (and model) or targets, not both`);
    }
    if (!Array.isArray(options.targets) || options.targets.length === 0) {
      throw new TypeError(`models.${name}.targets: expected at least one target`);
    }
    return options.targets;
  }
  if (options.provider === undefined) {
    throw new TypeError(`models.${name}: needs a provider, or targets`);
  }
  return [
    {
      provider: options.provider,
      model: options.model,
      dropUnsupportedParams: options.dropUnsupportedParams,
    },
  ];
}

function checkRouteNames(name: string, field: string, names: unknown, models: object): string[] {
  if (names === undefined) return [];
  if (!Array.isArray(names)) throw new TypeError(`models.${name}.${field}: expected route names`);
  for (const other of names) {
    if (typeof other !== "string" || !Object.hasOwn(models, other) || other.includes("*")) {
      throw new TypeError(
        `models.${name}.${field}: '${String(other)}' is not a configured route without '*'`,
      );
    }
    if (other === name)
      throw new TypeError(`models.${name}.${field}: a route cannot fall back to itself`);
  }
  return names;
}

function resolveRoute(
  name: string,
  options: ModelRouteOptions,
  models: Record<string, ModelRouteOptions>,
  providers: Record<string, Provider>,
  breaker: CircuitBreaker | undefined,
  capOf: (id: string, field: string, limits: LimiterOptions) => NonNullable<RouteTarget["cap"]>,
): ResolvedRoute {
  const targets: RouteTarget[] = targetsOf(name, options).map((target, index) => {
    const field = options.targets ? `models.${name}.targets[${index}]` : `models.${name}`;
    const provider = providers[target.provider];
    if (!provider) {
      throw new TypeError(`${field}.provider: unknown provider '${target.provider}'`);
    }
    const { rpm, tpm } = target;
    for (const [limit, value] of [
      ["rpm", rpm],
      ["tpm", tpm],
      ["firstTokenTimeoutMs", target.firstTokenTimeoutMs],
    ] as const) {
      if (value !== undefined && !(Number.isSafeInteger(value) && value > 0)) {
        throw new TypeError(`${field}.${limit}: expected a whole number above 0`);
      }
    }
    const id = `${target.provider}/${target.model ?? name}`;
    const limits: LimiterOptions = {
      ...(rpm ? { requests: { perMinute: rpm } } : {}),
      ...(tpm ? { tokens: { perMinute: tpm } } : {}),
      ...(target.budget ? { budget: budgetLimit(target.budget, `${field}.budget`) } : {}),
    };
    const price = target.price ?? options.price;
    return {
      id,
      providerName: target.provider,
      provider,
      model: target.model,
      dropUnsupportedParams: target.dropUnsupportedParams,
      firstTokenTimeoutMs: target.firstTokenTimeoutMs,
      cap: rpm || tpm || target.budget ? capOf(id, field, limits) : undefined,
      pricing:
        price && priceOf(target.price ? `${field}.price` : `models.${name}.price`, id, price),
    };
  });
  if (options.strategy !== undefined && !strategies.includes(options.strategy)) {
    throw new TypeError(
      `models.${name}.strategy: expected one of ${strategies.join(", ")}, got '${String(options.strategy)}'`,
    );
  }
  const first = targets[0] as RouteTarget;
  const fallbacks = checkRouteNames(name, "fallbacks", options.fallbacks, models);
  // Enough by default to retry as the first provider says, and to reach every target and
  // every fallback route once.
  const maxAttempts =
    options.maxAttempts ??
    Math.max(1 + first.provider.retry.maxRetries, targets.length + fallbacks.length);
  if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1) {
    throw new TypeError(`models.${name}.maxAttempts: expected a whole number >= 1`);
  }
  const { reserveOutputTokens = 4096 } = options;
  if (!Number.isSafeInteger(reserveOutputTokens) || reserveOutputTokens < 1) {
    throw new TypeError(`models.${name}.reserveOutputTokens: expected a whole number >= 1`);
  }
  const balancer = createBalancer({
    targets: targets.map((target, index) => ({
      id: target.id,
      weight: options.targets?.[index]?.weight,
    })),
    strategy: options.strategy,
    breaker,
  });
  return {
    name,
    targets,
    balancer,
    capped: targets.some((target) => target.cap !== undefined),
    budget: undefined,
    reserveOutputTokens,
    maxAttempts,
    fallbacks,
    contextFallbacks: checkRouteNames(name, "contextFallbacks", options.contextFallbacks, models),
  };
}
