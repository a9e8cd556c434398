import type { CancelSignal } from "./cancellation.js";
import type { RetryOptions } from "./retry.js";

/**
 * The endpoints a provider can serve, as paths below its base URL: OpenAI's, and Anthropic's
 * Messages API (`messages`), which Anthropic upstreams serve natively.
 */
export type Endpoint =
  | "chat/completions"
  | "completions"
  | "embeddings"
  | "responses"
  | "images/generations"
  | "messages"
  | "messages/count_tokens"
  | "models";

/** One server-sent event, as it came from the upstream. */
export interface SseEvent {
  /** The event's exact text, including the blank line that ends it; written as is. */
  readonly raw: string;
  readonly event?: string | undefined;
  /** The `data:` lines joined by "\n" (empty for comments). */
  readonly data: string;
  /** `data` parsed as JSON, lazily and at most once. */
  json(): unknown;
}

/** Token usage, one shape for every protocol and provider. */
export interface TokenUsage {
  /** Prompt tokens, those read from or written to the provider's prompt cache included. */
  inputTokens: number;
  /** Completion tokens, reasoning included. */
  outputTokens: number;
  totalTokens: number;
  /**
   * Of `inputTokens`, read from the provider's prompt cache (OpenAI `cached_tokens`, Anthropic
   * `cache_read_input_tokens`). Absent when the upstream did not say.
   */
  cacheReadTokens?: number;
  /**
   * Of `inputTokens`, written to the prompt cache, by how long the entry lives (Anthropic's
   * `cache_creation`: 5 minutes or 1 hour, priced apart). Absent when the upstream did not say.
   */
  cacheWriteTokens?: { fiveMinutes: number; oneHour: number };
  /** Of `outputTokens`, spent on reasoning (OpenAI `reasoning_tokens`), when reported. */
  reasoningTokens?: number;
  /** True when the upstream reported no usage and the numbers are an estimate. */
  estimated?: boolean;
}

export interface ProviderRequest {
  endpoint: Endpoint;
  /** The parsed JSON body (model already rewritten); absent for GET endpoints. */
  body?: Record<string, unknown> | undefined;
  /**
   * The client's own JSON text of `body`, when nothing changed it: sent as is (integers past
   * 2^53 and key order survive, and nothing is serialised again) unless the provider must
   * add to the body.
   */
  rawBody?: Uint8Array | string | undefined;
  /**
   * The client's headers, lower-case names. The provider forwards only its allow-list
   * (`openai-beta` and `forwardHeaders`); auth is always its own.
   */
  headers?: Record<string, string | string[] | undefined> | undefined;
  /** Sent as `x-request-id` (the gateway's request id). */
  requestId?: string | undefined;
  /** Sent as `traceparent` (the gateway continues the trace). */
  traceparent?: string | undefined;
  /** Sent as `tracestate`, with `traceparent` (the client's header is never forwarded as is). */
  tracestate?: string | undefined;
  /**
   * For a provider that translates: leave out what its upstream cannot honour instead of
   * refusing the request (over the provider's own setting). Others ignore it.
   */
  dropUnsupportedParams?: boolean | undefined;
}

export interface SendOptions {
  /** Fires when the client went away or the request was given up: cancels the upstream call. */
  signal?: CancelSignal | undefined;
  /**
   * Epoch milliseconds after which the attempt must not go on: the whole request's deadline, a
   * point in time (`Provider.deadline` is its duration).
   */
  deadlineAt?: number | undefined;
  /**
   * Told how long the attempt waited for a free connection, once it got one or gave up. Only
   * a provider whose pool is capped tells: without a cap no request waits.
   */
  onWait?: ((waitMs: number) => void) | undefined;
  /**
   * Asked before the request is sent once more as the client wrote it, after the upstream
   * refused a field the provider added on its own (`stream_options`): false makes the refusal
   * the answer. The gateway counts the second call in its attempt budget. Default: sent.
   */
  mayResend?: (() => boolean) | undefined;
}

/** A stream of upstream events; `usage` is known once the stream has ended. */
export interface ProviderStream extends AsyncIterable<SseEvent> {
  readonly usage: TokenUsage | undefined;
  [Symbol.asyncIterator](): EventIterator;
}

/**
 * An iterator of events that may also hand out, without a promise, an event it already holds
 * (the rest of what was read from the socket). A reader drains `poll()` after each `next()`,
 * saving a promise and a microtask per event.
 */
export interface EventIterator extends AsyncIterator<SseEvent> {
  /**
   * The next event when it is already here; undefined: ask `next()`, which may wait, end the
   * stream or fail it. Not to be called while a `next()` is still pending. A failure it meets
   * is left for `next()`; only what no path expects is thrown.
   */
  poll?(): SseEvent | undefined;
}

interface ProviderResponseBase {
  status: number;
  /** Upstream response headers worth passing on (lower-case names). */
  headers: Record<string, string>;
  upstreamRequestId?: string | undefined;
}

export interface ProviderJsonResponse extends ProviderResponseBase {
  kind: "json";
  /** The upstream's bytes, untouched. */
  body: Uint8Array;
  usage?: TokenUsage | undefined;
}

export interface ProviderStreamResponse extends ProviderResponseBase {
  kind: "stream";
  events: ProviderStream;
}

export type ProviderResponse = ProviderJsonResponse | ProviderStreamResponse;

/**
 * One upstream. `send` makes exactly one attempt; retries and fallbacks belong to the caller
 * (`withRetry`, or the gateway's request loop), which reads `retry` and `deadline` from here.
 */
export interface Provider {
  /** The kind of upstream ("openai", "azure", "echo", ...). */
  readonly kind: string;
  /**
   * The client protocols its upstream speaks natively ("openai", "anthropic"). A request in
   * one of them is sent as the client wrote it; any other reaches `send` in the canonical
   * shape, OpenAI's chat completions, which every provider accepts.
   */
  readonly protocols: readonly string[];
  /**
   * Whether `send` takes Anthropic's `messages/count_tokens` in the canonical shape (a chat
   * completions body) and answers `{ "input_tokens": N }` from the upstream's own count
   * (Gemini's `countTokens`). Absent: false, and a gateway estimates the count itself.
   */
  readonly countsTokens?: boolean;
  readonly retry: Required<RetryOptions>;
  /** Milliseconds one attempt may take. */
  readonly timeout: number;
  /** Milliseconds a whole request may take across attempts and waits (defaults to `timeout`). */
  readonly deadline: number;
  /** Requests waiting for a free connection to the upstream right now (when it has a pool). */
  readonly waiting?: number;
  send(request: ProviderRequest, options?: SendOptions): Promise<ProviderResponse>;
  close(): Promise<void>;
}
