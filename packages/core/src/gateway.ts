import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import { type CircuitBreaker, createCircuitBreaker } from "@aigw/balancer";
import { createPriceTable, type PriceTable } from "@aigw/pricing";
import {
  type AigwError,
  Cancellation,
  type CancelSignal,
  type Endpoint,
  type EventIterator,
  firstHeader,
  isPlainRequestId,
  type Provider,
  type SseEvent,
} from "@aigw/provider";
import type { Admission, Limiter } from "@aigw/ratelimit";
import { readJsonBody, requireJsonContentType } from "./body.js";
import { createResponseCache, type GatewayCacheOptions } from "./cache-step.js";
import { type CorsOptions, createCors } from "./cors.js";
import { budgetReport, costComment, createCosting } from "./cost.js";
import {
  hostNotAllowed,
  invalidApiKey,
  invalidRequest,
  methodNotAllowed,
  modelNotAllowed,
  modelNotFound,
  routeNotFound,
  shown,
  toAigwError,
  unavailable,
} from "./errors.js";
import { type Exchange, GatewayContext } from "./exchange.js";
import { fetchHandler } from "./fetch.js";
import { FinishedExchange } from "./finished.js";
import { createHookRunner } from "./hooks.js";
import { createHostCheck } from "./hosts.js";
import {
  admissionError,
  type LimitsOptions,
  limitKeys,
  modelNotPriced,
  rateLimitHeaders,
  tokenNeed,
} from "./limits.js";
import { createModelCatalog, type ModelCatalogOptions } from "./model-catalog.js";
import { createObserver } from "./observe.js";
import { anthropicProtocol } from "./protocols/anthropic/index.js";
import { openAIProtocol } from "./protocols/openai/index.js";
import type { Protocol } from "./protocols/protocol.js";
import {
  createModelRouter,
  type ModelRouteOptions,
  type ResolvedRoute,
  type TargetLimiterFactory,
  type TargetReport,
} from "./router.js";
import { neverThrowing } from "./safe-logger.js";
import { type StreamSettings, streamToClient } from "./stream.js";
import { keepStreamBodies } from "./stream-body.js";
import {
  type Authenticate,
  bearerTokenCheck,
  createTenantDirectory,
  mayUseModel,
  type TenantOptions,
} from "./tenants.js";
import { readTraceContext } from "./trace-context.js";
import type {
  GatewayHooks,
  GatewayMetrics,
  GatewayRequest,
  GatewayResponse,
  HandleOptions,
  HookResponse,
  Logger,
  RequestContext,
  UpstreamCall,
} from "./types.js";
import { callUpstream, type LoopSettings } from "./upstream-call.js";

export interface GatewayOptions {
  providers: Record<string, Provider>;
  models?: Record<string, ModelRouteOptions>;
  hooks?: GatewayHooks[];
  /**
   * Any pino logger; one access line per request at info, failures at warn or error. A line
   * it throws on is lost; the request goes on.
   */
  logger?: Logger;
  /** Records every request (createMetrics() from @aigw/metrics); also serves GET /metrics. */
  metrics?: GatewayMetrics;
  /**
   * Who may read GET /metrics when `metrics` is set: anyone (default), only requests sending
   * `Authorization: Bearer <bearerToken>` (401 otherwise), or nobody (`false`: 404, for an
   * operator who serves `metrics.expose()` on a listener of its own).
   */
  metricsEndpoint?: false | { bearerToken?: string | undefined };
  /**
   * GET /admin/targets: every route target's circuit-breaker state, cooldown end and
   * requests in flight. Off (404) unless set; with a `bearerToken`, only requests sending
   * `Authorization: Bearer <bearerToken>` may read it (401 otherwise).
   */
  adminEndpoint?: { bearerToken?: string | undefined };
  /**
   * GET /v1/models lists exact routes and aliases, and for each wildcard route the upstream's
   * own matching models, read from its GET /models and kept a while (see ModelCatalogOptions).
   */
  modelListing?: ModelCatalogOptions;
  /**
   * Tenants by id, with their key digests, allowed models and limits. With no key anywhere
   * (and no `authenticate`), the gateway runs open: every request is tenant "anonymous".
   */
  tenants?: Record<string, TenantOptions>;
  /** Replaces key lookup: maps a request to its tenant id (undefined for a 401). */
  authenticate?: Authenticate;
  /** Rate limits, token quotas and money budgets: see @aigw/ratelimit's Limiter. */
  limits?: LimitsOptions;
  /**
   * Where model prices come from, for each request's cost (the access log, metrics, the
   * `x-aigw-cost-usd` header, budgets): a table of @aigw/pricing. Default: its built-in table
   * (`createPriceTable()`); routes and targets may set their own `price`. `false`: no costs,
   * and any budget refuses requests as unpriced.
   */
  prices?: PriceTable | false;
  /**
   * Whether clients are told what their request cost: `x-aigw-cost-usd` (and
   * `x-aigw-cost-saved-usd` for a cache hit) on JSON answers, the same as a stream's last SSE
   * comment. Default true; false where upstream prices are not the clients' to know.
   */
  costHeaders?: boolean;
  /**
   * How routes with several targets keep failing ones out of rotation: a circuit breaker of
   * @aigw/balancer (`createRedisCircuitBreaker()` shares it between instances). Default: one
   * in memory with its default settings.
   */
  routing?: {
    breaker?: CircuitBreaker;
    /** Makes the limiter of each target with `rpm` or `tpm` (default: createMemoryLimiter). */
    targetLimiter?: TargetLimiterFactory;
  };
  /** The response cache: off unless given; routes may turn it off, or on with `enabled: false`. */
  cache?: GatewayCacheOptions;
  cors?: CorsOptions;
  /**
   * Host names (the `Host` header, without the port) requests may be addressed to; others get
   * a 403. A name starting with "." also allows its subdomains. Default: any host. Servers on
   * a loopback address should list their loopback names, so a web page cannot reach them
   * through a DNS name of its own (DNS rebinding).
   */
  allowedHosts?: string[];
  /** Largest accepted request body in bytes, after decoding a Content-Encoding (32 MiB). */
  maxBodyBytes?: number;
  /** Longest pause while a request body arrives, in milliseconds; then 408 (15,000). */
  bodyIdleTimeoutMs?: number;
  /**
   * Longest a stream, or an answer over 64 KiB, may wait for the client to read it before the
   * connection is closed, in milliseconds (60,000). Must exceed `keepAliveIntervalMs`: where a
   * framework writes the answer (Koa, Fastify) the socket's silence is what is timed, and idle
   * streams are kept moving by their keep-alive comments.
   */
  sendTimeoutMs?: number;
  /** Idle gap after which a stream gets a ": keep-alive" comment (15 s). */
  keepAliveIntervalMs?: number;
  /**
   * How long a stream's 200 is held back, once the upstream answered, for its first event, in
   * milliseconds (1,000). A failure within it is retried or becomes a JSON error; after it the
   * client gets its headers and keep-alive comments while the model thinks, so proxies in front
   * do not cut the request, and a failure ends the stream with an error event.
   */
  firstEventWaitMs?: number;
  /**
   * Makes the request context reachable through `gateway.currentContext()` from anywhere in
   * its async call tree (AsyncLocalStorage). Off by default: it costs CPU on every request.
   */
  asyncContext?: boolean;
}

export interface DrainOptions {
  /** How long in-flight requests and streams may go on before they are ended (30 s). */
  graceMs?: number;
}

/** A tenant's limits in the current period, as GET /v1/usage reports them. */
export interface TenantUsage {
  object: "usage";
  tenant: string;
  /** Tokens; periods in seconds since the epoch. Null: no token quota applies. */
  quota: {
    limit: number;
    used: number;
    reserved: number;
    remaining: number;
    period_start: number;
    period_end: number;
  } | null;
  /** USD. Null: no money budget applies. */
  budget: ReturnType<typeof budgetReport> | null;
}

export interface Gateway {
  handle(request: GatewayRequest, options?: HandleOptions): Promise<GatewayResponse>;
  /** The largest request body accepted, in bytes; adapters stop reading beyond it. */
  readonly maxBodyBytes: number;
  /** How long a request body may pause, in milliseconds; adapters stop waiting beyond it. */
  readonly bodyIdleTimeoutMs: number;
  /** How long an answer may wait for the client to read it, in milliseconds; then adapters close the connection. */
  readonly sendTimeoutMs: number;
  /** The same gateway for fetch-style frameworks (Hono, Next.js route handlers on Node). */
  fetch(request: Request): Promise<Response>;
  /** The context of the request being served, when `asyncContext` is on. */
  currentContext(): RequestContext | undefined;
  /** Every route target's breaker state, cooldown end and requests in flight (GET /admin/targets). */
  targetStates(): TargetReport[];
  /**
   * A configured tenant's token quota and money budget in the current period, as GET /v1/usage
   * shows them to the tenant (null where none applies); shared across instances with the
   * Redis store.
   */
  tenantUsage(tenantId: string): Promise<TenantUsage>;
  /** Each route with a money budget of its own (`budget`), and that budget's state (USD). */
  routeBudgets(): Promise<{ route: string; budget: ReturnType<typeof budgetReport> | null }[]>;
  /** Answers /health with 503 and new requests with 503, then waits for in-flight ones. */
  drain(options?: DrainOptions): Promise<void>;
  /** Releases connection pools and timers. */
  close(): Promise<void>;
}

type EndpointRoute =
  | { kind: "upstream"; endpoint: Endpoint; protocol: Protocol; method: "POST" }
  | { kind: "models" | "model" | "usage" | "health" | "metrics" | "targets"; method: "GET" };

const modelPathPrefix = "/v1/models/";
/** Longest model id looked up by GET /v1/models/{id}. */
const maxModelIdLength = 256;
const oneModel: EndpointRoute = { kind: "model", method: "GET" };

/** The endpoint a path names: a fixed one, or GET /v1/models/{id}. */
function endpointFor(path: string): EndpointRoute | undefined {
  const fixed = endpointRoutes.get(path);
  if (fixed || !path.startsWith(modelPathPrefix) || path.length === modelPathPrefix.length) {
    return fixed;
  }
  return oneModel;
}

/** The protocols clients may speak; the first one's errors answer requests outside them all. */
const protocols: readonly Protocol[] = [openAIProtocol, anthropicProtocol];
const defaultProtocol = openAIProtocol;

const endpointRoutes = new Map<string, EndpointRoute>([
  ...protocols.flatMap((protocol) =>
    [...protocol.endpoints].map(([path, endpoint]): [string, EndpointRoute] => [
      path,
      { kind: "upstream", endpoint, protocol, method: "POST" },
    ]),
  ),
  ["/v1/models", { kind: "models", method: "GET" }],
  ["/v1/usage", { kind: "usage", method: "GET" }],
  ["/health", { kind: "health", method: "GET" }],
  ["/metrics", { kind: "metrics", method: "GET" }],
  ["/admin/targets", { kind: "targets", method: "GET" }],
]);

const jsonContentType = "application/json";

function pathname(path: string): string {
  const query = path.indexOf("?");
  const bare = query === -1 ? path : path.slice(0, query);
  return bare.length > 1 && bare.endsWith("/") ? bare.slice(0, -1) : bare;
}

/** A GET answer as HEAD gets it: the same status and headers, the body's length, no body. */
function withoutBody(response: GatewayResponse): GatewayResponse {
  const { body } = response;
  if (typeof body === "string" || body instanceof Uint8Array) {
    response.headers["content-length"] = `${Buffer.byteLength(body)}`;
  }
  return { ...response, body: undefined };
}

function endpointLabel(route: EndpointRoute | undefined): string {
  if (!route) return "unknown";
  return route.kind === "upstream" ? route.endpoint : route.kind;
}

export function createGateway(options: GatewayOptions): Gateway {
  const breaker =
    options.routing?.breaker ??
    createCircuitBreaker({ onTrip: (target) => options.metrics?.breakerTripped?.({ target }) });
  const router = createModelRouter(
    options.models ?? {},
    options.providers,
    breaker,
    options.routing?.targetLimiter,
  );
  const catalog = createModelCatalog(router, options.providers, options.modelListing);
  const logger = options.logger && neverThrowing(options.logger);
  const metrics = options.metrics;
  const servesMetrics = metrics !== undefined && options.metricsEndpoint !== false;
  const metricsToken = options.metricsEndpoint ? options.metricsEndpoint.bearerToken : undefined;
  const metricsReader = metricsToken ? bearerTokenCheck(metricsToken) : undefined;
  const adminToken = options.adminEndpoint?.bearerToken;
  const adminReader = adminToken ? bearerTokenCheck(adminToken) : undefined;
  const hooks = createHookRunner(options.hooks ?? [], logger);
  const observer = createObserver(metrics, logger, hooks.hasFinishHooks);
  metrics?.watchTargets?.(() =>
    router.targetStates().map(({ id, status }) => ({ target: id, status })),
  );
  metrics?.watchProviders?.(() =>
    Object.entries(options.providers).map(([provider, { waiting }]) => ({
      provider,
      waiting: waiting ?? 0,
    })),
  );
  const cors = options.cors ? createCors(options.cors) : undefined;
  const tenants = createTenantDirectory(options.tenants ?? {}, options.authenticate);
  const limits = options.limits ?? {};
  const costHeaders = options.costHeaders ?? true;
  const costing =
    options.prices === false
      ? undefined
      : createCosting({ table: options.prices ?? createPriceTable(), router });
  const responseCache = createResponseCache(options.cache, options.models ?? {}, metrics);
  const maxBodyBytes = options.maxBodyBytes ?? 32 * 2 ** 20;
  const bodyIdleTimeoutMs = options.bodyIdleTimeoutMs ?? 15_000;
  const keepAliveIntervalMs = options.keepAliveIntervalMs ?? 15_000;
  const firstEventWaitMs = options.firstEventWaitMs ?? 1_000;
  const sendTimeoutMs = options.sendTimeoutMs ?? 60_000;
  if (!(sendTimeoutMs > keepAliveIntervalMs)) {
    throw new TypeError(
      `sendTimeoutMs (${sendTimeoutMs}) must exceed keepAliveIntervalMs (${keepAliveIntervalMs}): idle streams would be closed between keep-alive comments`,
    );
  }
  const bodyLimits = { maxBytes: maxBodyBytes, idleTimeoutMs: bodyIdleTimeoutMs };
  const hostAllowed = options.allowedHosts ? createHostCheck(options.allowedHosts) : undefined;
  if (limits.keyBy === "tenant+user" && !limits.userLimiter) {
    throw new TypeError(
      "limits.keyBy 'tenant+user' needs limits.userLimiter: the limits each user gets on top of the tenant's",
    );
  }
  const contextStorage = options.asyncContext ? new AsyncLocalStorage<RequestContext>() : undefined;
  const inFlight = new Set<Cancellation>();
  const shutdownReason = unavailable();
  let draining = false;
  let drained: (() => void) | undefined;

  function jsonResponse(
    context: GatewayContext,
    status: number,
    body: Uint8Array | string,
    headers: Record<string, string> = {},
  ): GatewayResponse {
    return {
      status,
      headers: {
        "content-type": jsonContentType,
        "x-request-id": context.requestId,
        "x-trace-id": context.traceId,
        ...headers,
      },
      body,
    };
  }

  function finish(exchange: Exchange) {
    const { attempt, outcome } = exchange;
    if (attempt) {
      // A stream ended: its target is no longer busy, and says how fast it wrote.
      if (outcome.error && outcome.status >= 500) attempt.failed({ status: outcome.status });
      else attempt.end(outcome.usage?.outputTokens);
    }
    const cost =
      costing && exchange.context.route !== undefined ? costing.costOf(exchange) : undefined;
    for (const held of exchange.reservations) {
      // A request that failed before using tokens spends none; one cut off without a count
      // (a client gone mid-stream) is charged its estimate; a cache hit, nothing by default.
      const { usage } = outcome;
      const cutOff = outcome.status === 499 && (!usage || usage.estimated);
      const charged = cutOff
        ? held.reservation.estimate
        : (usage?.totalTokens ?? (outcome.error ? 0 : held.reservation.estimate));
      const used = outcome.cache === "HIT" && !responseCache?.chargeHits ? 0 : charged;
      // Money: what the request cost (see costOf); all it held when that is unknown.
      const spent = cost?.nanoUsd ?? held.reservation.cost;
      held.limiter.settle(held.reservation, used, spent).catch(() => {});
    }
    exchange.detach();
    inFlight.delete(exchange.cancellation);
    if (inFlight.size === 0) drained?.();
    observer.finish(exchange);
    if (hooks.hasFinishHooks) hooks.onFinish(new FinishedExchange(exchange), exchange.context);
  }

  const loopSettings: LoopSettings = { hooks, observer, router, firstEventWaitMs, costing };
  const streamSettings: StreamSettings = {
    hooks,
    keepAliveIntervalMs,
    lateFirstEvent: (exchange, event) => observer.firstEvent(exchange, event.data),
    lastEvent:
      costing && costHeaders ? (exchange) => costComment(costing.costOf(exchange)) : undefined,
    finish,
  };

  async function errorResponse(exchange: Exchange, error: AigwError): Promise<GatewayResponse> {
    await hooks.onError(error, exchange.context);
    return jsonResponse(
      exchange.context,
      error.status,
      exchange.protocol.errorBody(error),
      error.headers,
    );
  }

  async function handleUpstream(
    endpoint: Endpoint,
    request: GatewayRequest,
    exchange: Exchange,
  ): Promise<GatewayResponse> {
    const { context, outcome } = exchange;
    requireJsonContentType(request.headers);
    const reading = readJsonBody(request, bodyLimits);
    const { body, json } = reading instanceof Promise ? await reading : reading;
    exchange.receivedJson = json;
    if (hooks.keepsBodies) exchange.requestBody = json ?? JSON.stringify(body);
    const model = exchange.protocol.validate(endpoint, body);
    context.endpoint = endpoint;
    context.model = model;
    const route = router.resolve(model);
    if (!route) throw modelNotFound(model);
    context.route = route.name;
    if (!mayUseModel(exchange.tenant, model, route.name)) throw modelNotAllowed(model);
    if (exchange.tenant.options.limiter ?? limits.limiter ?? limits.userLimiter ?? route.budget) {
      await admit(exchange, request, endpoint, body, route, model);
    }

    const call: UpstreamCall = { endpoint, model, body };
    await hooks.beforeRequest(call, context);
    if (typeof call.model !== "string" || call.model === "") {
      throw invalidRequest("A beforeRequest hook left the model empty.", "model");
    }

    const loop = (signal: CancelSignal) =>
      callUpstream(route, call, model, request, exchange, loopSettings, signal);
    const result = responseCache
      ? await responseCache.serve(exchange, request, route, call, loop)
      : await loop(exchange.cancellation);
    const headers: Record<string, string> = {
      "x-request-id": context.requestId,
      "x-trace-id": context.traceId,
      "x-aigw-provider": result.providerName,
      "x-aigw-attempts": `${result.attempts}`,
    };
    const upstreamRequestId = result.response.upstreamRequestId;
    if (upstreamRequestId) headers["x-upstream-request-id"] = upstreamRequestId;
    if (result.cacheHeaders) Object.assign(headers, result.cacheHeaders);

    if (result.stream) {
      outcome.stream = true;
      exchange.attempt = result.attempt;
      headers["content-type"] = "text/event-stream; charset=utf-8";
      headers["cache-control"] = "no-cache";
      headers["x-accel-buffering"] = "no";
      // The request is sent: an open stream keeps neither this call's scope nor its JSON alive,
      // but what onFinish hooks take of it.
      exchange.receivedJson = undefined;
      if (hooks.keepsBodies) keepStreamBodies(exchange);
      const events = streamToClient(
        exchange,
        { ...result, stream: result.stream },
        headers,
        streamSettings,
      );
      return { status: 200, headers, body: contextStorage ? bindContext(events, context) : events };
    }
    if (result.response.kind !== "json") throw new TypeError("unexpected upstream response");
    headers["content-type"] = result.response.headers["content-type"] ?? jsonContentType;
    outcome.usage = result.response.usage;
    if (costing && costHeaders) Object.assign(headers, costing.headers(costing.costOf(exchange)));
    const hookResponse: HookResponse = {
      status: result.response.status,
      headers,
      body: result.response.body,
      stream: false,
      usage: result.response.usage,
    };
    await hooks.afterResponse(hookResponse, context);
    outcome.status = hookResponse.status;
    return { status: hookResponse.status, headers: hookResponse.headers, body: hookResponse.body };
  }

  /**
   * Charges the request against its user's limits (with keyBy "tenant+user"), then its
   * tenant's, then its route's budget, each in one atomic step, or refuses it. A request a
   * later step refuses gives back what the earlier ones reserved.
   */
  async function admit(
    exchange: Exchange,
    request: GatewayRequest,
    endpoint: Endpoint,
    body: Record<string, unknown>,
    route: ResolvedRoute,
    model: string,
  ) {
    const tenantLimiter = exchange.tenant.options.limiter ?? limits.limiter;
    const { key, userKey } = limitKeys(limits, exchange.tenant, tenants.open, request, body);
    const steps: [Limiter, string, "tenant" | "route"][] = [];
    if (userKey !== undefined && limits.userLimiter) {
      steps.push([limits.userLimiter, userKey, "tenant"]);
    }
    if (tenantLimiter) steps.push([tenantLimiter, key, "tenant"]);
    if (route.budget) steps.push([route.budget, route.name, "route"]);
    if (steps.length === 0) return;
    const need = tokenNeed(exchange.protocol, endpoint, body, route.reserveOutputTokens);
    need.cost = costing?.maxCost(route, model, need.inputTokens, need.outputTokens);
    exchange.reservedCost = need.cost;
    const giveBack = () => {
      for (const held of exchange.reservations) {
        held.limiter.settle(held.reservation, 0).catch(() => {});
      }
      exchange.reservations = [];
    };
    const admissions: Admission[] = [];
    for (const [limiter, limitKey, owner] of steps) {
      const admission = await limiter.admit(limitKey, {
        requests: 1,
        tokens: need.tokens,
        cost: need.cost ?? 0,
      });
      admissions.push(admission);
      if (admission.unavailable) metrics?.storeError({ store: "ratelimit" });
      if (admission.reservation) {
        exchange.reservations.push({ limiter, reservation: admission.reservation });
      }
      if (need.cost === undefined && Number.isFinite(admission.budget?.limit)) {
        giveBack();
        throw modelNotPriced(model);
      }
      if (!admission.allowed) {
        exchange.limitHeaders = rateLimitHeaders(admissions);
        giveBack();
        if (!admission.unavailable) {
          metrics?.rateLimited({ endpoint, tenant: exchange.tenant.id });
        }
        throw admissionError(admission, exchange.limitHeaders, need, owner);
      }
    }
    exchange.limitHeaders = rateLimitHeaders(admissions);
  }

  async function usageOf(
    tenantId: string,
    limiter: Limiter | undefined,
    key: string,
  ): Promise<TenantUsage> {
    const [quota, budget] = await Promise.all([limiter?.usage(key), limiter?.budgetUsage(key)]);
    return {
      object: "usage",
      tenant: tenantId,
      quota: quota
        ? {
            limit: quota.limit,
            used: quota.used,
            reserved: quota.reserved,
            remaining: quota.remaining,
            period_start: Math.floor(quota.periodStart / 1000),
            period_end: Math.floor(quota.periodEnd / 1000),
          }
        : null,
      budget: budget ? budgetReport(budget) : null,
    };
  }

  async function usageResponse(
    exchange: Exchange,
    request: GatewayRequest,
  ): Promise<GatewayResponse> {
    const limiter = exchange.tenant.options.limiter ?? limits.limiter;
    const { key } = limitKeys(limits, exchange.tenant, tenants.open, request, undefined);
    const usage = await usageOf(exchange.tenant.id, limiter, key);
    return jsonResponse(exchange.context, 200, JSON.stringify(usage));
  }

  /** Keeps a stream's later steps (onChunk hooks, finish) inside the request's async context. */
  function bindContext(events: AsyncIterable<SseEvent>, context: RequestContext) {
    const storage = contextStorage as AsyncLocalStorage<RequestContext>;
    const iterator: EventIterator = events[Symbol.asyncIterator]();
    const poll = iterator.poll && (() => storage.run(context, () => iterator.poll?.()));
    return {
      [Symbol.asyncIterator]: (): EventIterator => ({
        next: () => storage.run(context, () => iterator.next()),
        poll,
        return: (value?: unknown) =>
          storage.run(
            context,
            () =>
              iterator.return?.(value) ??
              Promise.resolve({ done: true as const, value: undefined }),
          ),
      }),
    };
  }

  async function modelsResponse({ context, tenant }: Exchange): Promise<GatewayResponse> {
    const data = await catalog.list(tenant);
    return jsonResponse(context, 200, JSON.stringify({ object: "list", data }));
  }

  async function modelResponse({ context, tenant, pathname }: Exchange) {
    let id: string;
    try {
      id = decodeURIComponent(pathname.slice(modelPathPrefix.length));
    } catch {
      throw modelNotFound(shown(pathname.slice(modelPathPrefix.length)));
    }
    const model = id.length <= maxModelIdLength ? await catalog.find(tenant, id) : undefined;
    if (!model) throw modelNotFound(shown(id));
    return jsonResponse(context, 200, JSON.stringify(model));
  }

  async function route(
    request: GatewayRequest,
    endpointRoute: EndpointRoute | undefined,
    path: string,
    exchange: Exchange,
  ): Promise<GatewayResponse> {
    const { context } = exchange;
    if (hostAllowed && !hostAllowed(request.headers.host)) throw hostNotAllowed();
    const preflight = cors?.preflight(request.method, request.headers);
    if (preflight) return { status: preflight.status, headers: preflight.headers, body: undefined };
    if (
      !endpointRoute ||
      (endpointRoute.kind === "metrics" && !servesMetrics) ||
      (endpointRoute.kind === "targets" && !options.adminEndpoint)
    ) {
      throw routeNotFound(request.method, path);
    }
    const method =
      request.method === "HEAD" && endpointRoute.method === "GET" ? "GET" : request.method;
    if (method !== endpointRoute.method) {
      throw methodNotAllowed(request.method, path, endpointRoute.method);
    }
    switch (endpointRoute.kind) {
      case "health":
        return draining
          ? jsonResponse(context, 503, '{"status":"draining"}')
          : jsonResponse(context, 200, '{"status":"ok"}');
      case "metrics":
        if (metricsReader && !metricsReader(request.headers)) {
          throw invalidApiKey("GET /metrics needs 'Authorization: Bearer <token>' with its token.");
        }
        return {
          status: 200,
          headers: { "content-type": metrics?.contentType ?? "text/plain" },
          body: (await metrics?.expose()) ?? "",
        };
      case "targets":
        if (adminReader && !adminReader(request.headers)) {
          throw invalidApiKey(
            "GET /admin/targets needs 'Authorization: Bearer <token>' with its token.",
          );
        }
        return jsonResponse(
          context,
          200,
          JSON.stringify({ object: "list", data: router.targetStates() }),
        );
    }
    if (draining) throw unavailable();
    const identified = tenants.identify(request, context);
    exchange.tenant = identified instanceof Promise ? await identified : identified;
    context.tenant = exchange.tenant.id;
    await hooks.onRequest(request, context);
    switch (endpointRoute.kind) {
      case "upstream":
        return handleUpstream(endpointRoute.endpoint, request, exchange);
      case "usage":
        return usageResponse(exchange, request);
      case "model":
        return modelResponse(exchange);
      default:
        return modelsResponse(exchange);
    }
  }

  async function handle(
    request: GatewayRequest,
    handleOptions: HandleOptions = {},
  ): Promise<GatewayResponse> {
    const clientSignal = handleOptions.signal;
    const cancellation = handleOptions.cancellation ?? new Cancellation();
    const onClientAbort = () => cancellation.abort(clientSignal?.reason);
    if (clientSignal?.aborted) onClientAbort();
    else clientSignal?.addEventListener("abort", onClientAbort, { once: true });
    inFlight.add(cancellation);

    const path = pathname(request.path);
    const endpointRoute = endpointFor(path);
    const incomingId = firstHeader(request.headers["x-request-id"]);
    const context = new GatewayContext(
      incomingId && isPlainRequestId(incomingId) ? incomingId : randomUUID(),
      request.method,
      request.path,
      logger,
      cancellation,
      readTraceContext(request.headers),
      endpointRoute?.kind === "upstream" ? endpointRoute.protocol : defaultProtocol,
    );
    const exchange: Exchange = {
      context,
      cancellation,
      pathname: path,
      endpointLabel: endpointLabel(endpointRoute),
      protocol: context.protocol,
      outcome: {
        status: 200,
        providerName: undefined,
        attempts: 0,
        attemptLog: [],
        usage: undefined,
        error: undefined,
        stream: false,
        upstreamMs: 0,
        waitMs: 0,
        firstEventMs: undefined,
        responseModel: undefined,
        cache: undefined,
        pricing: undefined,
        cost: undefined,
      },
      serverSpan: undefined,
      streamSpan: undefined,
      tenant: { id: "anonymous", options: {} },
      limitHeaders: undefined,
      reservations: [],
      reservedCost: undefined,
      receivedJson: undefined,
      requestSha256: undefined,
      requestBody: undefined,
      responseBody: undefined,
      streamBody: undefined,
      clientAddress: request.clientAddress,
      attempt: undefined,
      clientGone: () => cancellation.aborted && cancellation.reason !== shutdownReason,
      detach: () => clientSignal?.removeEventListener("abort", onClientAbort),
    };
    observer.start(exchange);
    const { outcome } = exchange;
    let response: GatewayResponse;
    try {
      // No closure over `request`: an open stream must not keep the request's body alive.
      response = await (contextStorage
        ? contextStorage.run(context, route, request, endpointRoute, path, exchange)
        : route(request, endpointRoute, path, exchange));
    } catch (error) {
      outcome.stream = false;
      if (exchange.clientGone()) {
        outcome.status = 499;
        response = { status: 499, headers: {}, body: undefined };
      } else {
        const failure = toAigwError(error);
        if (failure.status === 500) {
          logger?.error({ requestId: context.requestId, err: failure.cause }, "internal error");
        }
        outcome.error = failure;
        outcome.status = failure.status;
        response = await errorResponse(exchange, failure);
      }
    }
    if (!outcome.stream) {
      outcome.status = response.status;
      const { body } = response;
      if (hooks.keepsBodies && (typeof body === "string" || body instanceof Uint8Array)) {
        exchange.responseBody = body;
      }
      finish(exchange);
    }
    if (exchange.limitHeaders) Object.assign(response.headers, exchange.limitHeaders);
    if (cors) Object.assign(response.headers, cors.responseHeaders(request.headers.origin));
    if (request.method === "HEAD") return withoutBody(response);
    return response;
  }

  const gateway: Gateway = {
    handle,
    maxBodyBytes,
    bodyIdleTimeoutMs,
    sendTimeoutMs,
    fetch: (request) => fetchHandler(gateway, request),
    currentContext: () => contextStorage?.getStore(),
    targetStates: () => router.targetStates(),
    tenantUsage: (tenantId) =>
      usageOf(tenantId, options.tenants?.[tenantId]?.limiter ?? limits.limiter, tenantId),
    routeBudgets: () =>
      Promise.all(
        router.budgetedRoutes().map(async (route) => {
          const budget = await route.budget?.budgetUsage(route.name);
          return { route: route.name, budget: budget ? budgetReport(budget) : null };
        }),
      ),
    async drain(drainOptions = {}) {
      draining = true;
      if (inFlight.size > 0) {
        const graceMs = drainOptions.graceMs ?? 30_000;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, graceMs);
          drained = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      for (const cancellation of inFlight) cancellation.abort(shutdownReason);
      if (inFlight.size > 0) {
        // Ended streams still write their error event; give them a moment to do it.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 5_000);
          drained = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    },
    async close() {
      await Promise.all(Object.values(options.providers).map((provider) => provider.close()));
    },
  };
  return gateway;
}
