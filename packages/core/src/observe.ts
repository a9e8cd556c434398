import { nanoToUsd } from "@aigw/pricing";
import type { AigwError, TokenUsage } from "@aigw/provider";
import type { Span, Tracer } from "@opentelemetry/api";
import { shown } from "./errors.js";
import type { Exchange } from "./exchange.js";
import {
  activeTracer,
  endSpan,
  genAiAttributes,
  responseModelOf,
  startClientSpan,
  startServerSpan,
  usageAttributes,
} from "./telemetry.js";
import { formatTraceparent } from "./trace-context.js";
import type { AttemptEvent, GatewayMetrics, Logger } from "./types.js";

const knownMethods = new Set(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]);
const headDecoder = new TextDecoder();
/** The model label of requests that matched no configured route. */
const noRoute = "none";

export interface Observer {
  /** Continues or starts the trace; counts the request as active. */
  start(exchange: Exchange): void;
  /** Opens an attempt's client span (when tracing) and gives the traceparent to send upstream. */
  startAttempt(
    exchange: Exchange,
    providerKind: string,
  ): { traceparent: string; span: Span | undefined };
  /** Records an attempt; its span ends unless it is a stream's, which ends with the stream. */
  endAttempt(
    exchange: Exchange,
    event: AttemptEvent,
    span: Span | undefined,
    streaming: boolean,
  ): void;
  /** Notes the model the upstream answered with (a JSON body, or a stream's first event). */
  responseStarted(exchange: Exchange, head: Uint8Array | string): void;
  /** A stream's first event with data: its time to first token, and its model. */
  firstEvent(exchange: Exchange, data: string): void;
  /** Metrics, spans and the access line, once per request. */
  finish(exchange: Exchange): void;
}

function endSpans(exchange: Exchange) {
  const { context, outcome } = exchange;
  const attributes = {
    ...(context.endpoint ? genAiAttributes(context.endpoint, context.model ?? "") : {}),
    ...(outcome.responseModel ? { "gen_ai.response.model": outcome.responseModel } : {}),
    ...usageAttributes(outcome.usage),
  };
  const errorType = outcome.error?.type ?? (outcome.status === 499 ? "client_closed" : undefined);
  for (const span of [exchange.streamSpan, exchange.serverSpan]) {
    if (!span) continue;
    span.setAttributes(attributes);
    endSpan(span, outcome.status, errorType);
  }
}

/** `responseModels`: note the model of every answer, not only of traced ones (for onFinish). */
export function createObserver(
  metrics: GatewayMetrics | undefined,
  logger: Logger | undefined,
  responseModels: boolean,
): Observer {
  let tracer: Tracer | undefined;

  function responseStarted(exchange: Exchange, head: Uint8Array | string) {
    if (!responseModels && !exchange.serverSpan?.isRecording()) return;
    const text = typeof head === "string" ? head : headDecoder.decode(head.subarray(0, 512));
    exchange.outcome.responseModel = responseModelOf(text);
  }

  function logLine(exchange: Exchange, durationMs: number) {
    if (!logger) return;
    const { context, outcome } = exchange;
    const error: AigwError | undefined = outcome.error;
    const usage: TokenUsage | undefined = outcome.usage;
    const { cost } = outcome;
    const line = {
      requestId: context.requestId,
      traceId: context.traceId,
      spanId: context.spanId,
      method: context.method,
      path: exchange.endpointLabel === "unknown" ? undefined : shown(exchange.pathname, 300),
      status: outcome.status,
      model: context.model,
      provider: outcome.providerName,
      attempts: outcome.attempts,
      target: outcome.attemptLog.at(-1)?.target,
      // With several attempts, each one's target, status and duration (and a fallback's route).
      tried: outcome.attemptLog.length > 1 ? outcome.attemptLog : undefined,
      stream: outcome.stream || undefined,
      inputTokens: usage?.inputTokens,
      outputTokens: usage?.outputTokens,
      tokensEstimated: usage?.estimated,
      // null: the model that answered has no price (its cost is unknown, not 0).
      costUsd: cost && (cost.nanoUsd === undefined ? null : nanoToUsd(cost.nanoUsd)),
      costEstimated: cost?.estimated || undefined,
      costSavedUsd: cost?.savedNanoUsd === undefined ? undefined : nanoToUsd(cost.savedNanoUsd),
      durationMs: Math.round(durationMs),
      ttftMs: outcome.firstEventMs === undefined ? undefined : Math.round(outcome.firstEventMs),
      waitMs: outcome.waitMs >= 1 ? Math.round(outcome.waitMs) : undefined,
      tenant: context.tenant,
      cache: outcome.cache,
      errorType: error?.type,
      errorCode: error?.code ?? undefined,
      guardrails: context.verdicts.length > 0 ? context.verdicts : undefined,
    };
    if (!error) logger.info(line, "request completed");
    else if (outcome.status >= 500) logger.error(line, error.message);
    else logger.warn(line, error.message);
  }

  return {
    start(exchange) {
      metrics?.requestStarted();
      tracer = activeTracer();
      if (!tracer) return;
      const { context } = exchange;
      const span = startServerSpan(
        tracer,
        `${context.method} ${exchange.endpointLabel}`,
        context.traceContext,
        { "http.request.method": context.method, "url.path": exchange.pathname },
      );
      const spanContext = span.spanContext();
      context.traceId = spanContext.traceId;
      context.spanId = spanContext.spanId;
      exchange.serverSpan = span;
    },
    startAttempt(exchange, providerKind) {
      const { context, serverSpan } = exchange;
      if (tracer && serverSpan && context.endpoint) {
        const span = startClientSpan(
          tracer,
          serverSpan,
          context.endpoint,
          providerKind,
          context.model ?? "",
        );
        const { traceId, spanId } = span.spanContext();
        return { traceparent: formatTraceparent(traceId, spanId, "01"), span };
      }
      const { traceId, spanId, traceContext } = context;
      return {
        traceparent: formatTraceparent(traceId, spanId, traceContext.flags),
        span: undefined,
      };
    },
    endAttempt(exchange, event, span, streaming) {
      exchange.outcome.upstreamMs += event.durationMs;
      metrics?.attempt({
        provider: event.providerName,
        status: event.status,
        durationSeconds: event.durationMs / 1000,
        retry: event.attempt > 1,
        waitSeconds: event.waitMs === undefined ? undefined : event.waitMs / 1000,
        target: event.target,
        fallbackRoute: event.route === exchange.context.route ? undefined : event.route,
      });
      if (!span) return;
      if (streaming) {
        exchange.streamSpan = span;
        return;
      }
      endSpan(span, event.status, event.error?.type);
    },
    responseStarted,
    firstEvent(exchange, data) {
      exchange.outcome.firstEventMs = performance.now() - exchange.context.startedAt;
      responseStarted(exchange, data);
    },
    finish(exchange) {
      const { context, outcome } = exchange;
      const durationMs = performance.now() - context.startedAt;
      metrics?.requestFinished({
        method: knownMethods.has(context.method) ? context.method : "OTHER",
        endpoint: exchange.endpointLabel,
        route: context.route ?? noRoute,
        model: context.route === undefined ? undefined : context.model,
        cached: outcome.cache === "HIT",
        status: outcome.status,
        durationSeconds: durationMs / 1000,
        errorType: outcome.error?.type,
        upstreamSeconds: outcome.attempts > 0 ? outcome.upstreamMs / 1000 : undefined,
        timeToFirstTokenSeconds:
          outcome.firstEventMs === undefined ? undefined : outcome.firstEventMs / 1000,
        inputTokens: outcome.usage?.inputTokens,
        outputTokens: outcome.usage?.outputTokens,
        cost: outcome.cost && {
          nanoUsd: outcome.cost.nanoUsd,
          savedNanoUsd: outcome.cost.savedNanoUsd,
          tenant: context.tenant,
        },
      });
      if (metrics?.guardrailVerdict) {
        for (const verdict of context.verdicts) metrics.guardrailVerdict(verdict);
      }
      if (exchange.serverSpan) endSpans(exchange);
      logLine(exchange, durationMs);
    },
  };
}
