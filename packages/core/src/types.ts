import type { AigwError, Cancellation, Endpoint, SseEvent, TokenUsage } from "@aigw/provider";
import type { CacheStatus } from "./cache-step.js";
import type { RequestCost } from "./cost.js";
import type { Protocol } from "./protocols/protocol.js";

export type HeaderValue = string | string[] | undefined;

/** What an adapter hands to the gateway: a framework-neutral request. */
export interface GatewayRequest {
  method: string;
  /** Path below the mount point, query included ("/v1/chat/completions"). */
  path: string;
  /** Lower-case header names. */
  headers: Record<string, HeaderValue>;
  /** Raw body: bytes, text, or a stream of chunks read up to the body limit. */
  body?: Uint8Array | string | AsyncIterable<Uint8Array | string> | undefined;
  /** A body a framework already parsed as JSON; used instead of `body` when present. */
  parsedBody?: unknown;
  clientAddress?: string | undefined;
}

/** What the gateway answers: bytes or text, or SSE events for streams. */
export interface GatewayResponse {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array | string | AsyncIterable<SseEvent> | undefined;
}

export interface HandleOptions {
  /** Fires when the client went away: cancels everything the request started. */
  signal?: AbortSignal | undefined;
  /**
   * For adapters that own the request's lifetime: a Cancellation the adapter fires when the
   * client goes away. The gateway uses it as the request's own (and fires it on shutdown);
   * it is much cheaper than linking an AbortSignal.
   */
  cancellation?: Cancellation | undefined;
}

/** The subset of a pino logger the gateway uses. */
export interface Logger {
  info(object: object, message?: string): void;
  warn(object: object, message?: string): void;
  error(object: object, message?: string): void;
}

/** Per-request state, passed explicitly to every hook and internal step. */
export interface RequestContext {
  readonly requestId: string;
  /** The W3C trace this request belongs to (continued from the caller, or new). */
  readonly traceId: string;
  /** The gateway's own span in that trace: the parent of its upstream calls. */
  readonly spanId: string;
  tenant: string;
  readonly method: string;
  readonly path: string;
  /** Fires when the client went away or the gateway shuts down (made on first use). */
  readonly signal: AbortSignal;
  /** The gateway's `logger`, behind calls that never throw (a line it cannot take is lost). */
  readonly logger: Logger | undefined;
  /** performance.now() when the request arrived. */
  readonly startedAt: number;
  endpoint: Endpoint | undefined;
  /** The model the client asked for. */
  model: string | undefined;
  /** The configured route name that matched. */
  route: string | undefined;
  /** Free space for hooks to share state within one request. */
  readonly state: Record<string, unknown>;
  /** The wire format the client speaks: its text view and edits are what guardrails use. */
  readonly protocol: Protocol;
  /** What guardrails decided on the request and its answer, for logs, metrics and audit. */
  readonly verdicts: GuardrailVerdict[];
}

/** A guardrail's decision on a request or its answer; it never holds the text it judged. */
export interface GuardrailVerdict {
  /** The rule that decided ("pii", or a configured rule's name). */
  rule: string;
  /** "input": the request's text; "output": the answer's. */
  phase: "input" | "output";
  /**
   * "block": the request was refused or the answer withheld; "redact": the matches were
   * replaced; "flag": logged and counted only.
   */
  action: "block" | "redact" | "flag";
  /** How many matches the rule found. */
  matches: number;
  /** Matches by PII entity (EMAIL_ADDRESS: 2), for rules that look for PII. */
  entities?: Record<string, number>;
}

/** The upstream call as `beforeRequest` sees it; changes to it change what is sent. */
export interface UpstreamCall {
  endpoint: Endpoint;
  model: string;
  body: Record<string, unknown>;
}

/** A response as `afterResponse` sees it; for JSON, it may replace `body` or set headers. */
export interface HookResponse {
  status: number;
  headers: Record<string, string>;
  /** The JSON body's bytes (undefined for streams, which are over when the hook runs). */
  body: Uint8Array | string | undefined;
  stream: boolean;
  usage: TokenUsage | undefined;
}

export interface AttemptEvent {
  providerName: string;
  /** The route target it went to: "provider/model" (the route's name for the model asked). */
  target: string;
  /** The route that made it; differs from the requested route's name for a fallback. */
  route: string;
  /** 1 for the first attempt of the request, counting across targets. */
  attempt: number;
  /** The upstream's HTTP status, or the gateway's status for an attempt that got none (502, 504). */
  status: number;
  durationMs: number;
  /** Milliseconds the attempt waited for a free connection before it was sent, when known. */
  waitMs?: number | undefined;
  error?: AigwError | undefined;
}

/** One attempt of a request at an upstream, as `onFinish` reports it. */
export interface FinishedAttempt {
  /** The route target: "provider/model". */
  target: string;
  /** The fallback route it was made for, when not the route asked for. */
  route?: string | undefined;
  /** The upstream's HTTP status, or the gateway's for an attempt that got none (502, 504). */
  status: number;
  durationMs: number;
}

/**
 * A request once it is over (answered, failed, or its client gone), as `onFinish` sees it.
 * Times are milliseconds; `startedAt` is the wall-clock time it arrived (epoch ms).
 */
export interface FinishedRequest {
  requestId: string;
  traceId: string;
  startedAt: number;
  durationMs: number;
  /** Milliseconds from arrival to a stream's first upstream event. */
  timeToFirstTokenMs: number | undefined;
  method: string;
  /** The path without its query. */
  path: string;
  /** The endpoint's label ("chat/completions", "messages", "models", "health", "unknown", ...). */
  endpoint: string;
  /** The wire format the client speaks ("openai", "anthropic"). */
  protocol: string;
  tenant: string;
  /** The first 16 hex digits of the sha256 of the gateway key it presented, when one was checked. */
  keyId: string | undefined;
  clientAddress: string | undefined;
  /** The model the client asked for, and the route it matched. */
  model: string | undefined;
  route: string | undefined;
  /** The provider of the last attempt, and the model its answer names. */
  provider: string | undefined;
  responseModel: string | undefined;
  /** The status the client got (499: it went away first). */
  status: number;
  error: AigwError | undefined;
  stream: boolean;
  attempts: readonly FinishedAttempt[];
  usage: TokenUsage | undefined;
  /** With prices configured and a route matched. */
  cost: RequestCost | undefined;
  cache: CacheStatus | undefined;
  verdicts: readonly GuardrailVerdict[];
  /**
   * The JSON the client sent to a model endpoint: its bytes as they arrived, or text when a
   * framework handed it over parsed (re-serialised). A stream keeps it while it runs only up
   * to 16 Ki bytes (characters for text): a longer one is hashed when the stream starts and
   * let go (undefined here, `requestSha256` set). This and the three below are set only when
   * some hook of the gateway sets `onFinishBodies`, and then every onFinish hook sees them.
   */
  requestBody: Uint8Array | string | undefined;
  /**
   * The answer the client got: the body (bytes or text) of one that is not a stream, errors
   * included; for a stream, text: the data of each event an SSE client dispatches (the
   * gateway's own included), each followed by a newline, below 64 Ki characters. A longer
   * stream is hashed as it goes (undefined here, `responseSha256` set); one that sent no event
   * with data has neither.
   */
  responseBody: Uint8Array | string | undefined;
  /**
   * Hex sha256 of `requestBody` and of `responseBody` (text as UTF-8), computed when first read
   * while the body is there (getters of the object's class: a spread copy of the request
   * leaves them out), or taken while a stream ran, as said above.
   */
  requestSha256: string | undefined;
  responseSha256: string | undefined;
}

type Awaitable<T> = T | Promise<T>;

/**
 * Hooks may implement any subset. "Before" hooks (onRequest, beforeRequest, onAttempt) run in
 * the order given, "after" hooks (afterResponse, onChunk, onEventSent, onError, onFinish) in
 * reverse. An AigwError thrown by a hook reaches the client as is; anything else becomes a 500.
 */
export interface GatewayHooks {
  onRequest?(request: GatewayRequest, context: RequestContext): Awaitable<void>;
  beforeRequest?(call: UpstreamCall, context: RequestContext): Awaitable<void>;
  afterResponse?(response: HookResponse, context: RequestContext): Awaitable<void>;
  /**
   * One SSE event on its way to the client: return a replacement, several events to send in
   * its place (events held back earlier, then it), null to drop it, or nothing.
   */
  onChunk?(event: SseEvent, context: RequestContext): SseEvent | SseEvent[] | null | undefined;
  /**
   * Each event of a stream as it is handed to the client's connection, in order: the
   * upstream's after every onChunk hook, and the gateway's own (keep-alives, the cost comment,
   * the error event that ends a failed stream). A client that goes away may not have received
   * the last ones. It sees events, it cannot change them; what it throws is logged.
   */
  onEventSent?(event: SseEvent, context: RequestContext): void;
  onError?(error: AigwError, context: RequestContext): Awaitable<void>;
  onAttempt?(event: AttemptEvent, context: RequestContext): void;
  /**
   * Once per request, when it is over, with its whole outcome. It cannot change the answer: it
   * runs after it was decided (for streams, after the last event), but before a JSON answer is
   * written, so keep it short and move slow work elsewhere; what it throws or rejects with is
   * logged, and its promise is not awaited.
   */
  onFinish?(request: FinishedRequest, context: RequestContext): Awaitable<void>;
  /**
   * Set by a hook whose `onFinish` reads the bodies or their digests: only then does the
   * gateway keep them (otherwise they are undefined, and onFinish costs the request nothing of
   * the kind). One hook setting it is enough: every onFinish hook of the gateway gets the same
   * `FinishedRequest`, bodies included.
   */
  onFinishBodies?: boolean;
}

/**
 * What the gateway records into; `createMetrics()` of @aigw/metrics is one. Labels given to
 * it are bounded (configured routes, known endpoints and methods) except a request's `model`,
 * the client's own string, which the recorder must bound before it labels anything with it.
 */
export interface GatewayMetrics {
  readonly contentType: string;
  expose(): Promise<string>;
  requestStarted(): void;
  requestFinished(request: {
    method: string;
    endpoint: string;
    /** The route that matched, or "none". */
    route: string;
    /** The model the client asked for, when a route matched. */
    model?: string | undefined;
    /** Answered from the response cache. */
    cached?: boolean | undefined;
    status: number;
    durationSeconds: number;
    errorType?: string | undefined;
    upstreamSeconds?: number | undefined;
    timeToFirstTokenSeconds?: number | undefined;
    inputTokens?: number | undefined;
    outputTokens?: number | undefined;
    /**
     * What an upstream request cost, in integer nano-USD (undefined `nanoUsd`: the model has
     * no price), and for a cache hit what it saved; with the tenant, for a tenant label.
     */
    cost?:
      | { nanoUsd: number | undefined; savedNanoUsd?: number | undefined; tenant: string }
      | undefined;
  }): void;
  attempt(attempt: {
    provider: string;
    status: number;
    durationSeconds: number;
    retry: boolean;
    /** Seconds the attempt waited for a free connection, when known. */
    waitSeconds?: number | undefined;
    /** The route target ("provider/model"). */
    target?: string | undefined;
    /** The fallback route it was made for, when not the route asked for. */
    fallbackRoute?: string | undefined;
  }): void;
  /** Given once: reads each route target's circuit-breaker status, for a gauge. */
  watchTargets?(
    read: () => Iterable<{ target: string; status: "closed" | "half_open" | "open" }>,
  ): void;
  /** A target's circuit breaker tripped (wired by whoever creates the breaker). */
  breakerTripped?(trip: { target: string }): void;
  /**
   * Given once, when the gateway is made: reads how many requests wait for a free connection
   * to each provider, for a gauge read at scrape time.
   */
  watchProviders?(read: () => Iterable<{ provider: string; waiting: number }>): void;
  cacheLookup(lookup: { endpoint: string; hit: boolean }): void;
  rateLimited(request: { endpoint: string; tenant?: string }): void;
  storeError(failure: { store: string }): void;
  /** A guardrail decided something (rule names come from the configuration: a bounded set). */
  guardrailVerdict?(verdict: GuardrailVerdict): void;
}
