import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import { LabelledHistogram } from "./histogram.js";

export interface MetricsOptions {
  /** Prefix of every metric name, as `<namespace>_<name>`. Default "aigw". */
  namespace?: string;
  /** Registry to register into. Default: a new private `Registry`. */
  registry?: Registry;
  /**
   * Adds a `tenant` label to `rate_limit_exceeded_total` and the cost counters. Default false
   * (unbounded cardinality).
   */
  tenantLabel?: boolean;
  /**
   * Also collects prom-client's default Node.js process metrics into the registry, without its
   * three gauges named `*_total` (promtool rejects them; their per-type series remain). Default
   * false.
   */
  collectDefaultMetrics?: boolean;
  /**
   * Distinct requested models labelled as themselves per route (a wildcard route matches many);
   * past this, and for a model whose request failed before it was ever seen, the label is the
   * route. Default 100.
   */
  maxModelsPerRoute?: number;
}

export interface FinishedRequest {
  method: string;
  endpoint: string;
  /** The configured route that matched (a model name or a pattern such as `gpt-*`). */
  route: string;
  /**
   * The model the client asked for. It becomes the `model` label when it matched `route` and
   * the request succeeded, up to `maxModelsPerRoute` distinct models per route; the route
   * otherwise.
   */
  model?: string | undefined;
  /** The answer came from the response cache: its tokens count as served, not used. */
  cached?: boolean | undefined;
  status: number;
  durationSeconds: number;
  /** Set when the request failed; counts into `errors_total`. */
  errorType?: string;
  /** Time spent waiting on upstreams; the rest of `durationSeconds` is gateway overhead. */
  upstreamSeconds?: number;
  timeToFirstTokenSeconds?: number;
  inputTokens?: number;
  outputTokens?: number;
  /**
   * What the request cost in integer nano-USD (undefined `nanoUsd`: its model has no price,
   * counted in `cost_unknown_total`), and for a cache hit what it saved.
   */
  cost?: { nanoUsd: number | undefined; savedNanoUsd?: number | undefined; tenant?: string };
}

export interface UpstreamAttempt {
  provider: string;
  status: number | "error";
  durationSeconds: number;
  /** True when this attempt retried an earlier one. */
  retry: boolean;
  /** Seconds the attempt waited for a free connection before it was sent, when known. */
  waitSeconds?: number | undefined;
  /** The route target it went to ("provider/model"), for `route_target_attempts_total`. */
  target?: string | undefined;
  /** The route that served it, when it was a fallback of the route asked for. */
  fallbackRoute?: string | undefined;
}

/** A route target's circuit-breaker status, read at scrape time. */
export interface TargetStatus {
  target: string;
  status: "closed" | "half_open" | "open";
}

/** How many requests wait for a free connection to one provider. */
export interface ProviderWaiting {
  provider: string;
  waiting: number;
}

export interface CacheLookup {
  endpoint: string;
  hit: boolean;
}

export interface RateLimitedRequest {
  endpoint: string;
  /** Used only when the `tenantLabel` option is on. Default "anonymous". */
  tenant?: string;
}

export interface StoreFailure {
  store: string;
}

/** A guardrail's decision (as @aigw/core's GuardrailVerdict); rule names come from the configuration. */
export interface GuardrailDecision {
  rule: string;
  phase: "input" | "output";
  action: "block" | "redact" | "flag";
  matches: number;
  /** Matches by PII entity. */
  entities?: Record<string, number> | undefined;
}

export interface Metrics {
  readonly registry: Registry;
  /** Content-Type header value for `expose()` output. */
  readonly contentType: string;
  /** The registry in its text exposition format (Prometheus by default). */
  expose(): Promise<string>;
  requestStarted(): void;
  requestFinished(request: FinishedRequest): void;
  attempt(attempt: UpstreamAttempt): void;
  cacheLookup(lookup: CacheLookup): void;
  rateLimited(request: RateLimitedRequest): void;
  storeError(failure: StoreFailure): void;
  /**
   * Counts a soft budget threshold reached into `budget_threshold_reached_total`; `scope` says
   * whose budget ("tenant", "user", "route", "target").
   */
  budgetThresholdReached(event: { scope: string }): void;
  /**
   * Counts a decision into `guardrail_verdicts_total` (rule, phase, action) and its PII matches
   * into `guardrail_pii_entities_total` (entity, phase).
   */
  guardrailVerdict(verdict: GuardrailDecision): void;
  /**
   * Reads `provider_waiting_requests` from `read` whenever the registry is read (the gateway
   * passes one that asks its providers' connection pools). Later calls replace earlier ones.
   */
  watchProviders(read: () => Iterable<ProviderWaiting>): void;
  /**
   * Reads `circuit_breaker_state` (0 closed, 1 half-open, 2 open) from `read` whenever the
   * registry is read. Later calls replace earlier ones.
   */
  watchTargets(read: () => Iterable<TargetStatus>): void;
  /** Counts a trip of a target's circuit breaker into `circuit_breaker_trips_total`. */
  breakerTripped(trip: { target: string }): void;
}

interface TokenCounts {
  input?: number | undefined;
  output?: number | undefined;
  total?: number | undefined;
}

interface RequestCounts {
  labels: { method: string; endpoint: string; status: number; model: string };
  requests: number;
  /** Reported by upstreams. */
  used: TokenCounts;
  /** Of answers served from the response cache. */
  served: TokenCounts;
}

interface AttemptCounts {
  labels: { provider: string; status: number | "error" };
  attempts: number;
}

const durationBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const overheadBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
// Advisory buckets of the OpenTelemetry GenAI semantic conventions.
const timeToFirstTokenBuckets = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
];
const tokenCountBuckets = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576];

const gaugesNamedLikeCounters = [
  "nodejs_active_handles_total",
  "nodejs_active_requests_total",
  "nodejs_active_resources_total",
];

const namespacePattern = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

export function createMetrics(options: MetricsOptions = {}): Metrics {
  const namespace = options.namespace ?? "aigw";
  if (!namespacePattern.test(namespace)) {
    throw new TypeError(
      `namespace must match ${namespacePattern} (a Prometheus metric name prefix), got ${JSON.stringify(namespace)}`,
    );
  }
  const registry = options.registry ?? new Registry();
  const tenantLabel = options.tenantLabel ?? false;
  const maxModelsPerRoute = options.maxModelsPerRoute ?? 100;
  const modelsByRoute = new Map<string, Set<string>>();

  /** The requested model as a label when it is known or may become so; the route otherwise. */
  function modelLabel({ route, model, status }: FinishedRequest): string {
    if (model === undefined || model === route) return route;
    let seen = modelsByRoute.get(route);
    if (seen?.has(model)) return model;
    // Only an answered request mints a label: junk names fail upstream and never do.
    if (status >= 400) return route;
    if (!seen) {
      seen = new Set();
      modelsByRoute.set(route, seen);
    }
    if (seen.size >= maxModelsPerRoute) return route;
    seen.add(model);
    return model;
  }
  if (options.collectDefaultMetrics) {
    collectDefaultMetrics({ register: registry });
    // Gauges named like counters, which Prometheus' own lint rejects; the same numbers are the
    // sums of nodejs_active_handles, nodejs_active_requests and nodejs_active_resources.
    for (const gauge of gaugesNamedLikeCounters) registry.removeSingleMetric(gauge);
  }

  const registers = [registry];
  const name = (suffix: string) => `${namespace}_${suffix}`;

  const requestsTotal = new Counter({
    name: name("requests_total"),
    help: "Requests handled, by final status.",
    labelNames: ["method", "endpoint", "status", "model"] as const,
    registers,
    collect: () => publishRequestCounts(),
  });
  const tokensServed = new Counter({
    name: name("cache_tokens_served_total"),
    help: "Tokens of answers served from the response cache (no upstream used them), by type (input, output, total).",
    labelNames: ["model", "type"] as const,
    registers,
    collect: () => publishRequestCounts(),
  });
  const requestDuration = new LabelledHistogram({
    name: name("request_duration_seconds"),
    help: "Time from receiving a request to its last byte, in seconds.",
    labelNames: ["method", "endpoint", "model"] as const,
    buckets: durationBuckets,
    registry,
  });
  const tokensUsed = new Counter({
    name: name("tokens_used_total"),
    help: "Tokens reported by upstreams, by type (input, output, total).",
    labelNames: ["model", "type"] as const,
    registers,
    collect: () => publishRequestCounts(),
  });
  const errorsTotal = new Counter({
    name: name("errors_total"),
    help: "Requests that ended in an error, by error type.",
    labelNames: ["method", "endpoint", "error_type", "model"] as const,
    registers,
  });
  let activeRequests = 0;
  new Gauge({
    name: name("active_requests"),
    help: "Requests in flight.",
    registers,
    collect() {
      this.set(activeRequests);
    },
  });
  const cacheHits = new Counter({
    name: name("cache_hits_total"),
    help: "Response cache lookups that found an entry.",
    labelNames: ["endpoint"] as const,
    registers,
  });
  const cacheMisses = new Counter({
    name: name("cache_misses_total"),
    help: "Response cache lookups that found nothing.",
    labelNames: ["endpoint"] as const,
    registers,
  });
  const rateLimitExceeded = new Counter({
    name: name("rate_limit_exceeded_total"),
    help: "Requests rejected by a rate limit.",
    labelNames: tenantLabel ? ["endpoint", "tenant"] : ["endpoint"],
    registers,
  });
  const providerRequests = new Counter({
    name: name("provider_requests_total"),
    help: "Upstream attempts, by provider and upstream status (or error).",
    labelNames: ["provider", "status"] as const,
    registers,
    collect: () => publishAttemptCounts(),
  });
  const providerDuration = new LabelledHistogram({
    name: name("provider_request_duration_seconds"),
    help: "Duration of one upstream attempt, in seconds.",
    labelNames: ["provider"] as const,
    buckets: durationBuckets,
    registry,
  });
  const providerWait = new LabelledHistogram({
    name: name("provider_connection_wait_seconds"),
    help: "Time an upstream attempt waited for a free connection before it was sent, in seconds.",
    labelNames: ["provider"] as const,
    buckets: overheadBuckets.concat(2.5, 5, 10, 30),
    registry,
  });
  let readWaiting: (() => Iterable<ProviderWaiting>) | undefined;
  new Gauge({
    name: name("provider_waiting_requests"),
    help: "Upstream requests waiting for a free connection to their provider.",
    labelNames: ["provider"] as const,
    registers,
    collect() {
      if (!readWaiting) return;
      this.reset();
      for (const { provider, waiting } of readWaiting()) this.set({ provider }, waiting);
    },
  });
  const providerRetries = new Counter({
    name: name("provider_retries_total"),
    help: "Upstream attempts that retried an earlier attempt.",
    labelNames: ["provider"] as const,
    registers,
  });
  new Counter({
    name: name("route_target_attempts_total"),
    help: "Upstream attempts per route target (provider/model); fallback: made for a fallback route.",
    labelNames: ["target", "fallback"] as const,
    registers,
    collect() {
      for (const byKind of targetAttemptCounts.values()) {
        for (const counts of [byKind.false, byKind.true]) {
          if (counts.attempts > 0) this.inc(counts.labels, counts.attempts);
          counts.attempts = 0;
        }
      }
    },
  });
  const breakerTrips = new Counter({
    name: name("circuit_breaker_trips_total"),
    help: "Times a route target's circuit breaker opened, as seen by this instance.",
    labelNames: ["target"] as const,
    registers,
  });
  const breakerStates = { closed: 0, half_open: 1, open: 2 } as const;
  let readTargets: (() => Iterable<TargetStatus>) | undefined;
  new Gauge({
    name: name("circuit_breaker_state"),
    help: "A route target's circuit breaker: 0 closed, 1 half-open (probing), 2 open.",
    labelNames: ["target"] as const,
    registers,
    collect() {
      if (!readTargets) return;
      this.reset();
      for (const { target, status } of readTargets()) this.set({ target }, breakerStates[status]);
    },
  });
  const gatewayOverhead = new LabelledHistogram({
    name: name("gateway_overhead_seconds"),
    help: "Request duration minus time spent waiting on upstreams, in seconds.",
    labelNames: ["endpoint"] as const,
    buckets: overheadBuckets,
    registry,
  });
  const timeToFirstToken = new LabelledHistogram({
    name: name("gen_ai_server_time_to_first_token_seconds"),
    help: "Time to the first output token of a streamed response, in seconds.",
    labelNames: ["gen_ai_request_model"] as const,
    buckets: timeToFirstTokenBuckets,
    registry,
  });
  const tokenUsage = new LabelledHistogram({
    name: name("gen_ai_client_token_usage"),
    help: "Tokens per request, by token type (input, output).",
    labelNames: ["gen_ai_request_model", "gen_ai_token_type"] as const,
    buckets: tokenCountBuckets,
    registry,
  });
  const storeErrors = new Counter({
    name: name("store_errors_total"),
    help: "Failures of a cache or limit store that the gateway degraded around.",
    labelNames: ["store"] as const,
    registers,
  });

  const guardrailVerdicts = new Counter({
    name: name("guardrail_verdicts_total"),
    help: "Guardrail decisions on requests (phase input) and answers (phase output).",
    labelNames: ["rule", "phase", "action"] as const,
    registers,
  });
  const guardrailEntities = new Counter({
    name: name("guardrail_pii_entities_total"),
    help: "PII entities found by guardrails, by entity type.",
    labelNames: ["entity", "phase"] as const,
    registers,
  });

  // Money is summed in integer nano-USD per label set and converted to dollars once per scrape,
  // so the exposed totals never drift by float additions.
  type CostSums = { labels: Record<string, string>; spent: number; saved: number };
  const costSums = new Map<string, CostSums>();
  const publishCosts = (counter: Counter<string>, field: "spent" | "saved") => {
    counter.reset();
    for (const sums of costSums.values()) {
      if (sums[field] > 0) counter.inc(sums.labels, sums[field] / 1e9);
    }
  };
  const costLabels = tenantLabel ? (["model", "tenant"] as const) : (["model"] as const);
  new Counter({
    name: name("cost_usd_total"),
    help: "What upstream requests cost, in USD, from the price table (models without a price are in cost_unknown_total).",
    labelNames: costLabels,
    registers,
    collect() {
      publishCosts(this, "spent");
    },
  });
  new Counter({
    name: name("cost_saved_usd_total"),
    help: "What answers served from the response cache cost upstream when they were made, in USD.",
    labelNames: costLabels,
    registers,
    collect() {
      publishCosts(this, "saved");
    },
  });
  const costUnknown = new Counter({
    name: name("cost_unknown_total"),
    help: "Upstream requests whose model has no price: their cost is unknown, not 0.",
    labelNames: ["model"] as const,
    registers,
  });
  const budgetThresholds = new Counter({
    name: name("budget_threshold_reached_total"),
    help: "Soft budget thresholds reached (each once per period), by whose budget it is.",
    labelNames: ["scope"] as const,
    registers,
  });

  function addCost(model: string, cost: NonNullable<FinishedRequest["cost"]>) {
    if (cost.nanoUsd === undefined) {
      costUnknown.inc({ model });
      return;
    }
    const tenant = cost.tenant ?? "anonymous";
    const key = tenantLabel ? `${model}\u0000${tenant}` : model;
    let sums = costSums.get(key);
    if (!sums) {
      sums = { labels: tenantLabel ? { model, tenant } : { model }, spent: 0, saved: 0 };
      costSums.set(key, sums);
    }
    sums.spent += cost.nanoUsd;
    sums.saved += cost.savedNanoUsd ?? 0;
  }

  // The request path's counters are summed here per label set, in plain numbers, and handed to
  // prom-client when the registry is read (its collect hook): one Map lookup per request and
  // attempt, where prom-client would hash and validate the labels of every counter each time.
  const requestCounts = new Map<string, RequestCounts>();
  const attemptCounts = new Map<string, AttemptCounts>();
  type TargetCounts = { labels: { target: string; fallback: string }; attempts: number };
  const targetAttemptCounts = new Map<string, { false: TargetCounts; true: TargetCounts }>();

  function publishRequestCounts() {
    for (const counts of requestCounts.values()) {
      if (counts.requests > 0) requestsTotal.inc(counts.labels, counts.requests);
      const { model } = counts.labels;
      for (const [tokens, counter] of [
        [counts.used, tokensUsed],
        [counts.served, tokensServed],
      ] as const) {
        for (const type of ["input", "output", "total"] as const) {
          const value = tokens[type];
          if (value !== undefined) counter.inc({ model, type }, value);
        }
      }
      counts.requests = 0;
      counts.used = {};
      counts.served = {};
    }
  }

  function publishAttemptCounts() {
    for (const counts of attemptCounts.values()) {
      if (counts.attempts > 0) providerRequests.inc(counts.labels, counts.attempts);
      counts.attempts = 0;
    }
  }

  return {
    registry,
    get contentType() {
      return registry.contentType;
    },
    expose: () => registry.metrics(),
    requestStarted() {
      activeRequests++;
    },
    requestFinished(request) {
      const { method, endpoint, status } = request;
      const model = modelLabel(request);
      activeRequests--;
      const key = `${method}\u0000${endpoint}\u0000${status}\u0000${model}`;
      let counts = requestCounts.get(key);
      if (!counts) {
        counts = { labels: { method, endpoint, status, model }, requests: 0, used: {}, served: {} };
        requestCounts.set(key, counts);
      }
      counts.requests++;
      requestDuration.observe({ method, endpoint, model }, request.durationSeconds);
      if (request.errorType !== undefined) {
        errorsTotal.inc({ method, endpoint, model, error_type: request.errorType });
      }
      if (request.upstreamSeconds !== undefined) {
        const overhead = Math.max(0, request.durationSeconds - request.upstreamSeconds);
        gatewayOverhead.observe({ endpoint }, overhead);
      }
      if (request.timeToFirstTokenSeconds !== undefined) {
        timeToFirstToken.observe({ gen_ai_request_model: model }, request.timeToFirstTokenSeconds);
      }
      if (request.cost) addCost(model, request.cost);
      const { inputTokens, outputTokens } = request;
      if (inputTokens === undefined && outputTokens === undefined) return;
      const tokens = request.cached ? counts.served : counts.used;
      if (inputTokens !== undefined) {
        tokens.input = (tokens.input ?? 0) + inputTokens;
        if (!request.cached) {
          tokenUsage.observe(
            { gen_ai_request_model: model, gen_ai_token_type: "input" },
            inputTokens,
          );
        }
      }
      if (outputTokens !== undefined) {
        tokens.output = (tokens.output ?? 0) + outputTokens;
        if (!request.cached) {
          tokenUsage.observe(
            { gen_ai_request_model: model, gen_ai_token_type: "output" },
            outputTokens,
          );
        }
      }
      tokens.total = (tokens.total ?? 0) + (inputTokens ?? 0) + (outputTokens ?? 0);
    },
    attempt(attempt) {
      const { provider, status } = attempt;
      const key = `${provider}\u0000${status}`;
      let counts = attemptCounts.get(key);
      if (!counts) {
        counts = { labels: { provider, status }, attempts: 0 };
        attemptCounts.set(key, counts);
      }
      counts.attempts++;
      providerDuration.observe({ provider }, attempt.durationSeconds);
      if (attempt.waitSeconds !== undefined) {
        providerWait.observe({ provider }, attempt.waitSeconds);
      }
      if (attempt.retry) {
        providerRetries.inc({ provider });
      }
      if (attempt.target !== undefined) {
        const fallback = attempt.fallbackRoute === undefined ? "false" : "true";
        let byKind = targetAttemptCounts.get(attempt.target);
        if (!byKind) {
          const counts = (kind: string) => ({
            labels: { target: attempt.target as string, fallback: kind },
            attempts: 0,
          });
          byKind = { false: counts("false"), true: counts("true") };
          targetAttemptCounts.set(attempt.target, byKind);
        }
        byKind[fallback].attempts++;
      }
    },
    cacheLookup(lookup) {
      (lookup.hit ? cacheHits : cacheMisses).inc({ endpoint: lookup.endpoint });
    },
    rateLimited(request) {
      rateLimitExceeded.inc(
        tenantLabel
          ? { endpoint: request.endpoint, tenant: request.tenant ?? "anonymous" }
          : { endpoint: request.endpoint },
      );
    },
    storeError(failure) {
      storeErrors.inc({ store: failure.store });
    },
    budgetThresholdReached({ scope }) {
      budgetThresholds.inc({ scope });
    },
    guardrailVerdict({ rule, phase, action, entities }) {
      guardrailVerdicts.inc({ rule, phase, action });
      for (const [entity, count] of Object.entries(entities ?? {})) {
        guardrailEntities.inc({ entity, phase }, count);
      }
    },
    watchProviders(read) {
      readWaiting = read;
    },
    watchTargets(read) {
      readTargets = read;
    },
    breakerTripped({ target }) {
      breakerTrips.inc({ target });
    },
  };
}
