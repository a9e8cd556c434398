import type { Endpoint, TokenUsage } from "@aigw/provider";
import {
  type Attributes,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import type { TraceContext } from "./trace-context.js";

const tracerName = "@aigw/core";

/**
 * The tracer of the globally registered OpenTelemetry provider, or undefined when none is
 * registered: then no span object is made at all.
 */
export function activeTracer(): Tracer | undefined {
  const provider = trace.getTracerProvider();
  return provider instanceof ProxyTracerProvider
    ? provider.getDelegateTracer(tracerName)
    : provider.getTracer(tracerName);
}

const operationNames: Record<Endpoint, string> = {
  "chat/completions": "chat",
  completions: "text_completion",
  embeddings: "embeddings",
  responses: "chat",
  "images/generations": "generate_content",
  messages: "chat",
  "messages/count_tokens": "count_tokens",
  models: "list_models",
};

/** The server span of one request, continuing the caller's trace when there is one. */
export function startServerSpan(
  tracer: Tracer,
  name: string,
  traceContext: TraceContext,
  attributes: Attributes,
): Span {
  const parent = traceContext.parentSpanId
    ? trace.setSpanContext(ROOT_CONTEXT, {
        traceId: traceContext.traceId,
        spanId: traceContext.parentSpanId,
        traceFlags: Number.parseInt(traceContext.flags, 16) & TraceFlags.SAMPLED,
        isRemote: true,
      })
    : ROOT_CONTEXT;
  return tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
}

export function startClientSpan(
  tracer: Tracer,
  serverSpan: Span,
  endpoint: Endpoint,
  providerKind: string,
  requestModel: string,
): Span {
  const operation = operationNames[endpoint];
  return tracer.startSpan(
    `${operation} ${requestModel}`,
    {
      kind: SpanKind.CLIENT,
      attributes: {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": providerKind,
        "gen_ai.request.model": requestModel,
      },
    },
    trace.setSpan(ROOT_CONTEXT, serverSpan),
  );
}

export function genAiAttributes(endpoint: Endpoint, requestModel: string): Attributes {
  return {
    "gen_ai.operation.name": operationNames[endpoint],
    "gen_ai.request.model": requestModel,
  };
}

export function usageAttributes(usage: TokenUsage | undefined): Attributes {
  if (!usage) return {};
  return {
    "gen_ai.usage.input_tokens": usage.inputTokens,
    "gen_ai.usage.output_tokens": usage.outputTokens,
  };
}

export function endSpan(span: Span, status: number, errorType: string | undefined): void {
  if (errorType) {
    span.setAttribute("error.type", errorType);
    span.setStatus({ code: SpanStatusCode.ERROR });
  }
  span.setAttribute("http.response.status_code", status);
  span.end();
}

const responseModelPattern = /"model"\s*:\s*"([^"\\]{1,200})"/;

/** The model an upstream says it used, read from the start of its JSON, not a full parse. */
export function responseModelOf(text: string): string | undefined {
  return responseModelPattern.exec(text)?.[1];
}
