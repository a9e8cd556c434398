import { randomUUID } from "node:crypto";
import {
  AigwError,
  Cancellation,
  type Endpoint,
  type Provider,
  type ProviderResponse,
  retryDelay,
  type SseEvent,
  sleep,
  type TokenUsage,
} from "@aigw/provider";
import { readJsonBody, validateBody } from "./body.js";
import { GatewayContext } from "./context.js";
import { type CorsOptions, createCors } from "./cors.js";
import {
  invalidRequest,
  methodNotAllowed,
  modelNotFound,
  routeNotFound,
  toAigwError,
  unavailable,
} from "./errors.js";
import { fetchHandler } from "./fetch.js";
import { createModelRouter, type ModelRouteOptions, type ResolvedRoute } from "./router.js";
import { isIdleTick, keepAliveEvent, streamErrorEvent, withIdleTicks } from "./stream.js";
import type {
  GatewayHooks,
  GatewayRequest,
  GatewayResponse,
  HandleOptions,
  HookResponse,
  Logger,
  RequestContext,
  UpstreamCall,
} from "./types.js";

export interface GatewayOptions {
  providers: Record<string, Provider>;
  models?: Record<string, ModelRouteOptions>;
  hooks?: GatewayHooks[];
  /** Any pino logger; one access line per request at info, failures at warn or error. */
  logger?: Logger;
  cors?: CorsOptions;
  /** Largest accepted request body in bytes (32 MiB). */
  maxBodyBytes?: number;
  /** Idle gap after which a stream gets a ": keep-alive" comment (15 s). */
  keepAliveIntervalMs?: number;
}

export interface DrainOptions {
  /** How long in-flight requests and streams may go on before they are ended (30 s). */
  graceMs?: number;
}

export interface Gateway {
  handle(request: GatewayRequest, options?: HandleOptions): Promise<GatewayResponse>;
  /** The largest request body accepted, in bytes; adapters stop reading beyond it. */
  readonly maxBodyBytes: number;
  /** The same gateway for fetch-style frameworks (Hono, Next.js route handlers on Node). */
  fetch(request: Request): Promise<Response>;
  /** Answers /health with 503 and new requests with 503, then waits for in-flight ones. */
  drain(options?: DrainOptions): Promise<void>;
  /** Releases connection pools and timers. */
  close(): Promise<void>;
}

type EndpointRoute =
  | { kind: "upstream"; endpoint: Endpoint; method: "POST" }
  | { kind: "models"; method: "GET" }
  | { kind: "health"; method: "GET" };

const endpointRoutes = new Map<string, EndpointRoute>([
  ["/v1/chat/completions", { kind: "upstream", endpoint: "chat/completions", method: "POST" }],
  ["/v1/completions", { kind: "upstream", endpoint: "completions", method: "POST" }],
  ["/v1/embeddings", { kind: "upstream", endpoint: "embeddings", method: "POST" }],
  ["/v1/responses", { kind: "upstream", endpoint: "responses", method: "POST" }],
  ["/v1/images/generations", { kind: "upstream", endpoint: "images/generations", method: "POST" }],
  ["/v1/models", { kind: "models", method: "GET" }],
  ["/health", { kind: "health", method: "GET" }],
]);

const jsonContentType = "application/json";
const requestIdPattern = /^[\w.:/+=-]{1,200}$/;

/** What the request ended with, for the access log (and later metrics and quotas). */
interface Outcome {
  status: number;
  providerName?: string | undefined;
  attempts: number;
  usage?: TokenUsage | undefined;
  error?: AigwError | undefined;
  stream: boolean;
}

/** One request in flight: its context, its cancellation and what it ended with. */
interface Exchange {
  context: RequestContext;
  cancellation: Cancellation;
  /** Whether the request was cancelled by its client (not by a shutdown). */
  clientGone(): boolean;
  outcome: Outcome;
  /** Stops listening to the client's signal. */
  detach(): void;
}

interface UpstreamResult {
  response: ProviderResponse;
  providerName: string;
  attempts: number;
  /** For streams: the iterator already started and its first event. */
  stream?: { iterator: AsyncIterator<SseEvent>; first: SseEvent };
}

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function pathname(path: string): string {
  const query = path.indexOf("?");
  const bare = query === -1 ? path : path.slice(0, query);
  return bare.length > 1 && bare.endsWith("/") ? bare.slice(0, -1) : bare;
}

export function createGateway(options: GatewayOptions): Gateway {
  const router = createModelRouter(options.models ?? {}, options.providers);
  const hooks = options.hooks ?? [];
  const reversedHooks = [...hooks].reverse();
  const onChunkHooks = reversedHooks.filter((hook) => hook.onChunk);
  const cors = options.cors ? createCors(options.cors) : undefined;
  const maxBodyBytes = options.maxBodyBytes ?? 32 * 2 ** 20;
  const keepAliveIntervalMs = options.keepAliveIntervalMs ?? 15_000;
  const logger = options.logger;
  const inFlight = new Set<Cancellation>();
  const shutdownReason = unavailable();
  let draining = false;
  let drained: (() => void) | undefined;

  function jsonResponse(
    context: RequestContext,
    status: number,
    body: Uint8Array | string,
    headers: Record<string, string> = {},
  ): GatewayResponse {
    return {
      status,
      headers: { "content-type": jsonContentType, "x-request-id": context.requestId, ...headers },
      body,
    };
  }

  function finish({ context, cancellation, outcome, detach }: Exchange) {
    detach();
    inFlight.delete(cancellation);
    if (inFlight.size === 0) drained?.();
    if (!logger) return;
    const line = {
      requestId: context.requestId,
      method: context.method,
      path: context.path,
      status: outcome.status,
      model: context.model,
      provider: outcome.providerName,
      attempts: outcome.attempts,
      stream: outcome.stream,
      inputTokens: outcome.usage?.inputTokens,
      outputTokens: outcome.usage?.outputTokens,
      durationMs: Math.round(performance.now() - context.startedAt),
      tenant: context.tenant,
      errorType: outcome.error?.type,
      errorCode: outcome.error?.code ?? undefined,
    };
    if (!outcome.error) logger.info(line, "request completed");
    else if (outcome.status >= 500) logger.error(line, outcome.error.message);
    else logger.warn(line, outcome.error.message);
  }

  async function errorResponse(
    context: RequestContext,
    error: AigwError,
    extraHeaders: Record<string, string> = {},
  ): Promise<GatewayResponse> {
    for (const hook of reversedHooks) {
      if (!hook.onError) continue;
      try {
        await hook.onError(error, context);
      } catch (hookError) {
        logger?.error({ requestId: context.requestId, err: hookError }, "onError hook failed");
      }
    }
    return jsonResponse(context, error.status, JSON.stringify(error.toBody()), {
      ...error.headers,
      ...extraHeaders,
    });
  }

  async function callUpstream(
    route: ResolvedRoute,
    call: UpstreamCall,
    requestedModel: string,
    request: GatewayRequest,
    exchange: Exchange,
  ): Promise<UpstreamResult> {
    const { context, cancellation } = exchange;
    const deadline = Date.now() + (route.targets[0]?.provider.deadline ?? 600_000);
    let attempts = 0;
    let lastError: AigwError | undefined;
    for (const target of route.targets) {
      const model = call.model !== requestedModel ? call.model : (target.model ?? call.model);
      const body = model === call.body.model ? call.body : { ...call.body, model };
      const providerRequest = { endpoint: call.endpoint, body, headers: request.headers };
      for (let retry = 0; ; retry++) {
        attempts++;
        const attemptStarted = performance.now();
        try {
          const response = await target.provider.send(providerRequest, {
            signal: cancellation,
            deadline,
          });
          let stream: UpstreamResult["stream"];
          if (response.kind === "stream") {
            const iterator = response.events[Symbol.asyncIterator]();
            const first = await iterator.next();
            if (first.done) {
              throw new AigwError("The upstream ended the stream before sending any event.", {
                status: 502,
                type: "upstream_error",
                code: "stream_interrupted",
                isRetryable: true,
              });
            }
            stream = { iterator, first: first.value };
          }
          emitAttempt(context, target.providerName, attempts, response.status, attemptStarted);
          return { response, providerName: target.providerName, attempts, stream };
        } catch (error) {
          if (cancellation.aborted) throw cancellation.reason;
          const failure = toAigwError(error);
          const status = failure.upstreamStatus ?? failure.status;
          emitAttempt(context, target.providerName, attempts, status, attemptStarted, failure);
          lastError = failure;
          if (retry >= target.provider.retry.maxRetries) break;
          const wait = retryDelay(failure, retry + 1, target.provider.retry, deadline - Date.now());
          if (wait === undefined) break;
          await sleep(wait, cancellation);
        }
      }
    }
    if (!lastError) throw new TypeError(`route '${route.name}' has no targets`);
    // The gateway already spent the retries this error deserved; SDKs must not multiply them.
    lastError.headers["x-should-retry"] = "false";
    lastError.headers["x-aigw-attempts"] = `${attempts}`;
    throw lastError;
  }

  function emitAttempt(
    context: RequestContext,
    providerName: string,
    attempt: number,
    status: number,
    startedAt: number,
    error?: AigwError,
  ) {
    for (const hook of hooks) {
      hook.onAttempt?.(
        { providerName, attempt, status, durationMs: performance.now() - startedAt, error },
        context,
      );
    }
  }

  function successHeaders(context: RequestContext, result: UpstreamResult) {
    const headers: Record<string, string> = {
      "x-request-id": context.requestId,
      "x-aigw-provider": result.providerName,
      "x-aigw-attempts": `${result.attempts}`,
    };
    const upstreamRequestId = result.response.upstreamRequestId;
    if (upstreamRequestId) headers["x-upstream-request-id"] = upstreamRequestId;
    return headers;
  }

  function applyChunkHooks(event: SseEvent, context: RequestContext): SseEvent | null {
    let current: SseEvent = event;
    for (const hook of onChunkHooks) {
      const replaced = hook.onChunk?.(current, context);
      if (replaced === null) return null;
      if (replaced) current = replaced;
    }
    return current;
  }

  async function* streamToClient(
    exchange: Exchange,
    result: UpstreamResult & { stream: NonNullable<UpstreamResult["stream"]> },
    responseHeaders: Record<string, string>,
  ): AsyncGenerator<SseEvent> {
    const { context, cancellation, outcome } = exchange;
    const { iterator, first } = result.stream;
    const events = result.response.kind === "stream" ? result.response.events : undefined;
    let completed = false;
    try {
      const firstOut = onChunkHooks.length ? applyChunkHooks(first, context) : first;
      if (firstOut) yield firstOut;
      for await (const item of withIdleTicks(iterator, keepAliveIntervalMs)) {
        if (isIdleTick(item)) {
          yield keepAliveEvent;
          continue;
        }
        const out = onChunkHooks.length ? applyChunkHooks(item, context) : item;
        if (out) yield out;
      }
      completed = true;
      outcome.usage = events?.usage;
      const hookResponse: HookResponse = {
        status: 200,
        headers: responseHeaders,
        body: undefined,
        stream: true,
        usage: outcome.usage,
      };
      for (const hook of reversedHooks) await hook.afterResponse?.(hookResponse, context);
    } catch (error) {
      if (exchange.clientGone()) {
        outcome.status = 499;
        return;
      }
      const failure = toAigwError(cancellation.aborted ? cancellation.reason : error);
      outcome.status = failure.status;
      outcome.error = failure;
      for (const hook of reversedHooks) {
        await Promise.resolve(hook.onError?.(failure, context)).catch(() => {});
      }
      yield streamErrorEvent(context.endpoint ?? "chat/completions", failure);
    } finally {
      if (!completed) {
        cancellation.abort();
        iterator.return?.().catch(() => {});
        if (outcome.status === 200) outcome.status = 499;
      }
      outcome.usage ??= events?.usage;
      finish(exchange);
    }
  }

  async function handleUpstream(
    endpoint: Endpoint,
    request: GatewayRequest,
    exchange: Exchange,
  ): Promise<GatewayResponse> {
    const { context, outcome } = exchange;
    const parsing = readJsonBody(request, maxBodyBytes);
    const body = parsing instanceof Promise ? await parsing : parsing;
    const model = validateBody(endpoint, body);
    context.endpoint = endpoint;
    context.model = model;
    const route = router.resolve(model);
    if (!route) throw modelNotFound(model);
    context.route = route.name;

    const call: UpstreamCall = { endpoint, model, body };
    for (const hook of hooks) await hook.beforeRequest?.(call, context);
    if (typeof call.model !== "string" || call.model === "") {
      throw invalidRequest("A beforeRequest hook left the model empty.", "model");
    }

    const result = await callUpstream(route, call, model, request, exchange);
    outcome.providerName = result.providerName;
    outcome.attempts = result.attempts;
    const headers = successHeaders(context, result);

    if (result.stream) {
      outcome.stream = true;
      Object.assign(headers, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
        "x-accel-buffering": "no",
      });
      return {
        status: 200,
        headers,
        body: streamToClient(exchange, { ...result, stream: result.stream }, headers),
      };
    }
    if (result.response.kind !== "json") throw new TypeError("unexpected upstream response");
    headers["content-type"] = result.response.headers["content-type"] ?? jsonContentType;
    outcome.usage = result.response.usage;
    const hookResponse: HookResponse = {
      status: result.response.status,
      headers,
      body: result.response.body,
      stream: false,
      usage: result.response.usage,
    };
    for (const hook of reversedHooks) await hook.afterResponse?.(hookResponse, context);
    outcome.status = hookResponse.status;
    return { status: hookResponse.status, headers: hookResponse.headers, body: hookResponse.body };
  }

  function modelsResponse(context: RequestContext): GatewayResponse {
    const data = router.listModels().map(({ id, providerName }) => ({
      id,
      object: "model",
      created: 0,
      owned_by: providerName,
    }));
    return jsonResponse(context, 200, JSON.stringify({ object: "list", data }));
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

    const incomingId = headerText(request.headers["x-request-id"]);
    const exchange: Exchange = {
      context: new GatewayContext(
        incomingId && requestIdPattern.test(incomingId) ? incomingId : randomUUID(),
        request.method,
        request.path,
        logger,
        cancellation,
      ),
      cancellation,
      clientGone: () => cancellation.aborted && cancellation.reason !== shutdownReason,
      outcome: { status: 200, attempts: 0, stream: false },
      detach: () => clientSignal?.removeEventListener("abort", onClientAbort),
    };
    const { context, outcome } = exchange;
    let response: GatewayResponse;
    try {
      response = await route(request, exchange);
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
        response = await errorResponse(context, failure);
      }
    }
    // A stream is finished by its own end; anything else here, exactly once.
    if (!outcome.stream) finish(exchange);
    if (cors) Object.assign(response.headers, cors.responseHeaders(request.headers.origin));
    return response;
  }

  async function route(request: GatewayRequest, exchange: Exchange): Promise<GatewayResponse> {
    const { context } = exchange;
    const preflight = cors?.preflight(request.method, request.headers);
    if (preflight) return { status: preflight.status, headers: preflight.headers, body: undefined };

    const path = pathname(request.path);
    const endpointRoute = endpointRoutes.get(path);
    if (!endpointRoute) throw routeNotFound(request.method, path);
    if (request.method !== endpointRoute.method) {
      throw methodNotAllowed(request.method, path, endpointRoute.method);
    }
    if (endpointRoute.kind === "health") {
      return draining
        ? jsonResponse(context, 503, '{"status":"draining"}')
        : jsonResponse(context, 200, '{"status":"ok"}');
    }
    if (draining) throw unavailable();
    for (const hook of hooks) await hook.onRequest?.(request, context);
    if (endpointRoute.kind === "models") return modelsResponse(context);
    return handleUpstream(endpointRoute.endpoint, request, exchange);
  }

  const gateway: Gateway = {
    handle,
    maxBodyBytes,
    fetch: (request) => fetchHandler(gateway, request),
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
