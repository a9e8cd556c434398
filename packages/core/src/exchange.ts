import type { Attempt } from "@aigw/balancer";
import type { ModelPricing } from "@aigw/pricing";
import type { AigwError, Cancellation, Endpoint, TokenUsage } from "@aigw/provider";
import type { Limiter, Reservation } from "@aigw/ratelimit";
import type { Span } from "@opentelemetry/api";
import type { CacheStatus } from "./cache-step.js";
import type { RequestCost } from "./cost.js";
import type { Protocol } from "./protocols/protocol.js";
import type { StreamBody } from "./stream-body.js";
import type { Tenant } from "./tenants.js";
import type { TraceContext } from "./trace-context.js";
import type { GuardrailVerdict, Logger, RequestContext } from "./types.js";

/** The request context hooks see; a class so every request's context has the same shape. */
export class GatewayContext implements RequestContext {
  tenant = "anonymous";
  endpoint: Endpoint | undefined = undefined;
  model: string | undefined = undefined;
  route: string | undefined = undefined;
  readonly state: Record<string, unknown> = {};
  readonly verdicts: GuardrailVerdict[] = [];
  readonly startedAt = performance.now();
  traceId: string;
  spanId: string;

  constructor(
    readonly requestId: string,
    readonly method: string,
    readonly path: string,
    readonly logger: Logger | undefined,
    private readonly cancellation: Cancellation,
    readonly traceContext: TraceContext,
    readonly protocol: Protocol,
  ) {
    this.traceId = traceContext.traceId;
    this.spanId = traceContext.spanId;
  }

  get signal(): AbortSignal {
    return this.cancellation.signal;
  }
}

/** What a request ended with, for the access log, metrics and spans. */
/** Tokens a limiter holds for a request until its real usage is known. */
export interface HeldReservation {
  limiter: Limiter;
  reservation: Reservation;
}

export interface Outcome {
  status: number;
  providerName: string | undefined;
  attempts: number;
  /** Each attempt for the access log: target, status, milliseconds, and a fallback's route. */
  attemptLog: { target: string; status: number; ms: number; route?: string }[];
  usage: TokenUsage | undefined;
  error: AigwError | undefined;
  stream: boolean;
  /** Milliseconds spent waiting on upstreams (streams: until their last event). */
  upstreamMs: number;
  /** Milliseconds the attempts waited for a free connection to their upstream. */
  waitMs: number;
  /** Milliseconds from arrival to a stream's first upstream event. */
  firstEventMs: number | undefined;
  /** The model the upstream says it answered with. */
  responseModel: string | undefined;
  /** How the response cache took part, when one is configured. */
  cache: CacheStatus | undefined;
  /** The price of the target that answered, when known. */
  pricing: ModelPricing | undefined;
  /** What the request cost, once computed (with prices configured). */
  cost: RequestCost | undefined;
}

/** One request in flight: its context, its cancellation, its spans and its outcome. */
export interface Exchange {
  context: GatewayContext;
  cancellation: Cancellation;
  /** The request's path without its query: what logs and spans show. */
  pathname: string;
  /** The endpoint's label for metrics and span names ("chat/completions", "health", ...). */
  endpointLabel: string;
  /** The protocol the client speaks: its errors and stream frames are in that form. */
  protocol: Protocol;
  outcome: Outcome;
  serverSpan: Span | undefined;
  /** The client span of a streaming attempt, open until the stream ends. */
  streamSpan: Span | undefined;
  tenant: Tenant;
  /** The gateway's x-ratelimit-* headers, once the request was admitted or refused. */
  limitHeaders: Record<string, string> | undefined;
  /** Tokens held for this request (its user's, its tenant's), settled to its real usage when it ends. */
  reservations: HeldReservation[];
  /** The most the request may cost in nano-USD, as its budgets reserved it (when they did). */
  reservedCost: number | undefined;
  /** The JSON text the client sent, when it can go upstream byte for byte. */
  receivedJson: Uint8Array | string | undefined;
  /** Kept for onFinish hooks only: the JSON the client sent (itself, or its sha256 once a
   * stream starts when it is long), and the answer (a stream's as its events go out). */
  requestSha256: string | undefined;
  requestBody: Uint8Array | string | undefined;
  responseBody: Uint8Array | string | undefined;
  streamBody: StreamBody | undefined;
  clientAddress: string | undefined;
  /** The attempt whose stream is being served, ended with the stream. */
  attempt: Attempt | undefined;
  /** Whether the request was cancelled by its client (not by a shutdown). */
  clientGone(): boolean;
  /** Stops listening to the client's signal. */
  detach(): void;
}
