import { Pool } from "undici";
import type { CancelSignal } from "./cancellation.js";
import { contentCodings, decodeBody, decodeChunks } from "./content-encoding.js";
import { AigwError } from "./errors.js";
import { appendJsonMembers, jsonText, setJsonFields } from "./json-text.js";
import { type RetryOptions, resolveRetryOptions } from "./retry.js";
import { createSecretScrubber, type SecretScrubber } from "./secrets.js";
import { createSseEvent, createSseParser, keepAliveEvent, type SseParser } from "./sse.js";
import { type ChunkStream, requestStreamed } from "./streamed-response.js";
import type {
  Endpoint,
  Provider,
  ProviderRequest,
  ProviderResponse,
  ProviderStream,
  SendOptions,
  SseEvent,
  TokenUsage,
} from "./types.js";
import {
  createInvalidResponseError,
  createNetworkError,
  createStreamInterruptedError,
  createTimeoutError,
  createUpstreamError,
  type ResponseHeaders,
  relayedErrorFields,
  upstreamRequestIdOf,
} from "./upstream-errors.js";
import { estimateUsage, readUsage, usageFromObject } from "./usage.js";
import { requestWhole } from "./whole-response.js";

export interface PoolOptions {
  /**
   * Most connections open to the upstream at once. Default: no limit. With one, requests
   * beyond it wait for a free connection; the wait counts against the attempt's timeout.
   */
  connections?: number;
  /** Milliseconds an idle connection is kept open for reuse. Default 90_000. */
  keepAliveTimeout?: number;
  /** Requests sent on one connection before the previous answers arrive. Default 1. */
  pipelining?: number;
}

/** How requests travel to an upstream; shared by every HTTP provider. */
export interface TransportOptions {
  /** Extra headers sent with every request (they win over everything else). */
  headers?: Record<string, string>;
  /**
   * Client header names forwarded upstream on top of the default allow-list (`openai-beta`).
   * `openai-organization` and `openai-project` are forwarded only when listed here: they choose
   * what the operator's key bills.
   */
  forwardHeaders?: string[];
  /** Milliseconds one attempt may take; for a stream, until the response headers. Default 600_000. */
  timeout?: number;
  /** Milliseconds a whole request may take, across attempts and the waits between them. Default: `timeout`. */
  deadline?: number;
  /** Milliseconds to open a connection. Default 10_000. */
  connectTimeout?: number;
  /** Longest gap between two body chunks once a response has started. Default 120_000. */
  readTimeout?: number;
  /** Longest a stream may run in total, from the start of the attempt. Default: no limit. */
  streamTimeout?: number;
  pool?: PoolOptions;
  retry?: RetryOptions;
  /** Ask chat and completions streams for usage (hidden from the client). Default true. */
  includeStreamUsage?: boolean;
  /** Largest answer read from the upstream, in bytes (a stream's: its largest event). Default 256 MiB. */
  maxResponseBytes?: number;
}

export interface HttpProviderSettings extends TransportOptions {
  kind: string;
  /** The upstream's origin, e.g. "https://api.openai.com". */
  origin: string;
  /** The path (and query) of a request on that origin. */
  pathFor(request: ProviderRequest): string;
  /** The headers that authenticate the gateway upstream; their values never reach a client. */
  authHeaders: Record<string, string>;
  /** The provider's key, when it is not already a whole `authHeaders` value. */
  apiKey?: string | undefined;
}

const DEFAULT_FORWARDED_HEADERS = ["openai-beta"];
const NEVER_FORWARDED_HEADERS = new Set([
  "authorization",
  "x-api-key",
  "api-key",
  "cookie",
  "host",
  "content-length",
  "accept-encoding",
  "connection",
  "keep-alive",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
]);
/** Upstream response headers passed on, each only when its value has the expected form. */
const RETURNED_HEADERS: [name: string, form: RegExp][] = [
  ["content-type", /^[\w.+-]{1,64}\/[\w.+-]{1,64}(?:\s*;\s*[\w.+-]{1,64}=[\w.+"-]{1,64}){0,4}$/],
  ["openai-processing-ms", /^\d{1,9}(?:\.\d{1,6})?$/],
  ["openai-model", /^[\w.:/@-]{1,128}$/],
];
const ERROR_BODY_LIMIT = 64 * 1024;
/** Header names whose configured values are credentials, kept out of everything relayed. */
const credentialHeader = /auth|key|token|secret|password|signature|cookie/i;
const RESPONSES_FINAL_EVENTS = new Set([
  "response.completed",
  "response.incomplete",
  "response.failed",
  "error",
]);
// For servers that leave out `event:` lines. Quotes inside strings are escaped, so this
// only matches the event's own `type`.
const RESPONSES_FINAL_TYPE = /"type":\s*"(?:response\.(?:completed|incomplete|failed)|error)"/;

/** Parses an upstream URL option; only http and https are accepted. */
export function parseUpstreamUrl(value: string, name: string): URL {
  const url = URL.canParse(value) ? new URL(value) : undefined;
  if (url?.protocol !== "http:" && url?.protocol !== "https:") {
    throw new TypeError(`${name} must be an http or https URL, got ${JSON.stringify(value)}`);
  }
  return url;
}

function isNeverForwarded(name: string): boolean {
  return NEVER_FORWARDED_HEADERS.has(name) || name.startsWith("proxy-");
}

function numberOption(name: string, value: number | undefined, fallback: number, minimum = 1) {
  const resolved = value ?? fallback;
  if (!Number.isFinite(resolved) || resolved < minimum) {
    throw new TypeError(`${name} must be a number >= ${minimum}, got ${String(value)}`);
  }
  return resolved;
}

/**
 * The upstream headers passed on, each checked for its form and for the provider's secrets.
 * Their values repeat from one answer to the next, so the last verdicts are remembered.
 */
function createHeaderPicker(secrets: SecretScrubber) {
  const verdicts = RETURNED_HEADERS.map(() => new Map<string, boolean>());
  return (headers: ResponseHeaders): Record<string, string> => {
    const picked: Record<string, string> = {};
    for (let index = 0; index < RETURNED_HEADERS.length; index++) {
      const [name, form] = RETURNED_HEADERS[index] as [string, RegExp];
      const value = headers[name];
      if (typeof value !== "string") continue;
      const known = verdicts[index] as Map<string, boolean>;
      let verdict = known.get(value);
      if (verdict === undefined) {
        verdict = form.test(value) && !secrets.reveals(value);
        if (known.size >= 256) known.clear();
        known.set(value, verdict);
      }
      if (verdict) picked[name] = value;
    }
    return picked;
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * What of an upstream event may go on: error events rebuilt from checked fields, verbatim
 * copies of the provider's credentials redacted from any other event, the rest as it came.
 * Only an event whose text holds "rror" or a JSON escape can decode to an error, so only
 * those are parsed here.
 */
function screenEvent(event: SseEvent, secrets: SecretScrubber): SseEvent {
  const { raw } = event;
  if (raw.includes("rror") || raw.includes("\\u")) {
    const scrubbed = scrubErrorEvent(event, secrets);
    if (scrubbed !== event) return scrubbed;
  }
  return secrets.copiedIn(raw) ? createSseEvent(secrets.redact(event.data), event.event) : event;
}

/** A successful JSON answer, with verbatim copies of the provider's credentials redacted. */
function screenBody(bytes: Buffer, secrets: SecretScrubber): Buffer {
  return secrets.copiedIn(bytes) ? Buffer.from(secrets.redact(bytes.toString("utf8"))) : bytes;
}

function errorObject(fields: ReturnType<typeof relayedErrorFields>, fallback: string) {
  return {
    message: fields.message ?? fallback,
    type: fields.type ?? "upstream_error",
    param: fields.param ?? null,
    code: fields.code ?? null,
  };
}

const unreadableError = createSseEvent({
  error: {
    message: "The upstream sent an error the gateway could not read",
    type: "upstream_error",
    param: null,
    code: "invalid_upstream_response",
  },
});

/**
 * An event that reports an error, rebuilt from its relayed fields only (chat and completions'
 * `{"error": {...}}`, Responses' `error` event and `response.failed`); other events unchanged.
 * One that is not JSON is replaced by a generic error.
 */
function scrubErrorEvent(event: SseEvent, secrets: SecretScrubber): SseEvent {
  let chunk: unknown;
  try {
    chunk = event.json();
  } catch {
    return unreadableError;
  }
  if (!isObject(chunk)) return event;
  const fallback = "The upstream reported an error";
  if (isObject(chunk.error)) {
    return createSseEvent(
      { error: errorObject(relayedErrorFields(chunk.error, secrets), fallback) },
      event.event,
    );
  }
  if (chunk.type === "error") {
    const { message, param, code } = errorObject(relayedErrorFields(chunk, secrets), fallback);
    const sequence = chunk.sequence_number;
    return createSseEvent(
      {
        type: "error",
        code,
        message,
        param,
        ...(typeof sequence === "number" ? { sequence_number: sequence } : {}),
      },
      event.event,
    );
  }
  if (isObject(chunk.response) && isObject(chunk.response.error)) {
    const { message, code } = errorObject(
      relayedErrorFields(chunk.response.error, secrets),
      fallback,
    );
    return createSseEvent(
      { ...chunk, response: { ...chunk.response, error: { code, message } } },
      event.event,
    );
  }
  return event;
}

/** Whether an event's JSON has a `"usage"` key holding an object (not `null`). */
function carriesUsage(raw: string): boolean {
  const key = raw.lastIndexOf('"usage"');
  if (key === -1) return false;
  let index = key + 7;
  while (raw.charCodeAt(index) === 32) index++;
  if (raw.charCodeAt(index) !== 58 /* ":" */) return false;
  index++;
  while (raw.charCodeAt(index) === 32) index++;
  return raw.charCodeAt(index) === 123; /* "{" */
}

/** Whether an endpoint's streams end with a marker, so a missing one means a cut stream. */
function hasEndMarker(endpoint: Endpoint): boolean {
  return endpoint === "chat/completions" || endpoint === "completions" || endpoint === "responses";
}

function isEndMarker(endpoint: Endpoint, event: SseEvent): boolean {
  if (endpoint !== "responses") return event.data === "[DONE]";
  return event.event === undefined
    ? RESPONSES_FINAL_TYPE.test(event.raw)
    : RESPONSES_FINAL_EVENTS.has(event.event);
}

/** Ends a response body with a timeout error unless it is done first. */
function destroyAfter(body: ChunkStream, milliseconds: number, message: string) {
  return setTimeout(
    () => body.destroy(createTimeoutError(message)),
    Math.max(Math.ceil(milliseconds), 0),
  );
}

const isSuccess = (status: number) => status >= 200 && status < 300;

/**
 * Reads a body up to `limit` bytes; a longer one is cut off there (and its connection closed).
 * Returns the bytes read and whether the body went on beyond them.
 */
async function readBounded(
  body: ChunkStream,
  limit: number,
): Promise<{ bytes: Buffer; cut: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.length;
    if (size > limit) {
      body.destroy();
      return { bytes: Buffer.concat(chunks, size), cut: true };
    }
  }
  return { bytes: Buffer.concat(chunks, size), cut: false };
}

/**
 * A response body's bytes with its Content-Encoding undone (some upstreams compress unasked),
 * at most `maxBytes`. An error body (`partial`: it may have been cut short) that cannot be
 * decoded reads as empty, so its error gets the generic message.
 */
async function decodedBody(
  bytes: Buffer,
  headers: ResponseHeaders,
  maxBytes: number,
  upstreamRequestId: string | undefined,
  partial = false,
): Promise<Buffer> {
  const codings = contentCodings(headers["content-encoding"]);
  if ("length" in codings && codings.length === 0) return bytes;
  try {
    if ("unsupported" in codings) throw new TypeError(`unsupported coding ${codings.unsupported}`);
    return await decodeBody(bytes, codings, maxBytes, partial);
  } catch (error) {
    if (partial) return Buffer.alloc(0);
    if ((error as { code?: unknown }).code === "ERR_BUFFER_TOO_LARGE") {
      throw responseTooLarge(maxBytes, upstreamRequestId);
    }
    throw createInvalidResponseError(
      "The upstream's answer is in a Content-Encoding the gateway could not decode",
      upstreamRequestId,
      error,
    );
  }
}

function responseTooLarge(limit: number, upstreamRequestId: string | undefined) {
  return createInvalidResponseError(
    `The upstream's answer is larger than the gateway accepts (maxResponseBytes ${limit})`,
    upstreamRequestId,
  );
}

interface StreamSettings {
  endpoint: Endpoint;
  body: AsyncIterable<Buffer> & { destroy(error?: Error): void };
  /** The usage-only chunk was asked for by us, not by the client: hide it. */
  dropUsageChunk: boolean;
  /** The request's JSON, for an estimate when the upstream reports no usage. */
  requestBody: string | Uint8Array;
  upstreamRequestId: string | undefined;
  secrets: SecretScrubber;
  maxEventLength: number;
  signal: CancelSignal | undefined;
  /** Stops the attempt's timers and abort forwarding. */
  release(): void;
}

const ended: IteratorReturnResult<undefined> = { done: true, value: undefined };

/**
 * The upstream's events, read by hand rather than through an async generator: a stream's cost
 * is per event, and each generator step adds promises to every one. Each chunk is parsed and
 * screened as it is read; its events are then handed out one by one without waiting.
 */
class UpstreamStream implements ProviderStream, AsyncIterator<SseEvent> {
  usage: TokenUsage | undefined;
  private started = false;
  private over = false;
  private readonly chunks: AsyncIterator<Buffer>;
  private readonly parser: SseParser;
  private queue: SseEvent[] = [];
  private queued = 0;
  private complete: boolean;
  private dataEvents = 0;
  /** A chunk's bad event, thrown once the good events before it have gone out. */
  private deferredFailure: unknown;

  constructor(private readonly settings: StreamSettings) {
    this.chunks = settings.body[Symbol.asyncIterator]();
    this.parser = createSseParser({ maxEventLength: settings.maxEventLength, comments: true });
    this.complete = !hasEndMarker(settings.endpoint);
  }

  [Symbol.asyncIterator](): AsyncIterator<SseEvent> {
    if (this.started) throw new TypeError("An upstream stream can be iterated only once");
    this.started = true;
    return this;
  }

  next(): Promise<IteratorResult<SseEvent>> {
    // Events already parsed from the last chunk are not handed out after an abort.
    if (this.queued < this.queue.length && !this.settings.signal?.aborted) {
      return Promise.resolve({ done: false, value: this.take() });
    }
    if (this.over) return Promise.resolve(ended);
    return this.read();
  }

  // Closing first destroys the body even while a `next()` is still waiting for data, and even
  // when iteration never began.
  return(): Promise<IteratorResult<SseEvent>> {
    this.end();
    return Promise.resolve(ended);
  }

  private take(): SseEvent {
    const event = this.queue[this.queued++] as SseEvent;
    if (this.queued === this.queue.length) {
      this.queue = [];
      this.queued = 0;
    }
    return event;
  }

  private async read(): Promise<IteratorResult<SseEvent>> {
    try {
      if (this.deferredFailure !== undefined) throw this.deferredFailure;
      for (;;) {
        this.settings.signal?.throwIfAborted();
        const chunk = await this.chunks.next();
        this.settings.signal?.throwIfAborted();
        if (this.over) return ended;
        if (chunk.done) {
          if (!this.complete) throw createStreamInterruptedError(this.settings.upstreamRequestId);
          this.end();
          return ended;
        }
        try {
          this.accept(chunk.value);
        } catch (error) {
          // The events before the bad one still go out; the failure comes after them.
          if (this.queue.length === 0) throw error;
          this.deferredFailure = error;
        }
        if (this.queue.length > 0) return { done: false, value: this.take() };
      }
    } catch (error) {
      this.end();
      throw this.failure(error);
    }
  }

  /** Parses a chunk and queues what of its events goes on, reading usage as it passes. */
  private accept(chunk: Buffer): void {
    const { endpoint, dropUsageChunk, secrets } = this.settings;
    for (const parsed of this.parser.push(chunk)) {
      if (parsed === keepAliveEvent) {
        this.queue.push(parsed);
        continue;
      }
      const event = screenEvent(parsed, secrets);
      if (!this.complete) this.complete = isEndMarker(endpoint, event);
      if (event.data !== "[DONE]") this.dataEvents++;
      if (carriesUsage(event.raw)) {
        const usageChunk = event.json() as {
          usage?: unknown;
          response?: { usage?: unknown };
          choices?: unknown[];
        };
        this.usage = usageFromObject(usageChunk.usage ?? usageChunk.response?.usage) ?? this.usage;
        if (dropUsageChunk && usageChunk.choices?.length === 0) continue;
      }
      this.queue.push(event);
    }
  }

  private end(): void {
    if (this.over) return;
    this.over = true;
    this.queue = [];
    this.queued = 0;
    this.settings.release();
    this.settings.body.destroy();
    // Streaming servers send about one token per event.
    this.usage ??= estimateUsage(this.settings.requestBody, this.dataEvents);
  }

  private failure(error: unknown): unknown {
    const { signal, upstreamRequestId } = this.settings;
    if (signal?.aborted) return signal.reason;
    if (AigwError.isInstance(error)) return error;
    if (error instanceof SyntaxError) {
      return createInvalidResponseError(
        "The upstream sent an event that is not JSON",
        upstreamRequestId,
        error,
      );
    }
    const network = createNetworkError(error, upstreamRequestId);
    if (network === undefined) return error;
    return network.status === 504
      ? network
      : createStreamInterruptedError(upstreamRequestId, error);
  }
}

/**
 * A provider that speaks OpenAI's HTTP API through one undici connection pool. The
 * OpenAI-compatible and Azure providers differ only in `pathFor` and `authHeaders`.
 */
export function createHttpProvider(settings: HttpProviderSettings): Provider {
  const { kind, origin, pathFor, authHeaders, apiKey } = settings;
  const timeout = numberOption("timeout", settings.timeout, 600_000);
  const deadline = numberOption("deadline", settings.deadline, timeout);
  const connectTimeout = numberOption("connectTimeout", settings.connectTimeout, 10_000);
  const readTimeout = numberOption("readTimeout", settings.readTimeout, 120_000);
  const streamTimeout =
    settings.streamTimeout === undefined
      ? undefined
      : numberOption("streamTimeout", settings.streamTimeout, 0);
  const retry = resolveRetryOptions(settings.retry);
  const includeStreamUsage = settings.includeStreamUsage ?? true;
  const maxResponseBytes = numberOption("maxResponseBytes", settings.maxResponseBytes, 2 ** 28);
  const extraHeaders = settings.headers ?? {};
  /** How much of an answer is read: a success up to the limit, the start of an error. */
  const bodyLimit = (status: number) => (isSuccess(status) ? maxResponseBytes : ERROR_BODY_LIMIT);
  const secrets = createSecretScrubber([
    apiKey,
    ...Object.values(authHeaders),
    ...Object.entries(extraHeaders)
      .filter(([name]) => credentialHeader.test(name))
      .map(([, value]) => value),
  ]);
  const pickHeaders = createHeaderPicker(secrets);

  const forwarded = new Set(DEFAULT_FORWARDED_HEADERS);
  for (const header of settings.forwardHeaders ?? []) {
    const name = header.toLowerCase();
    if (isNeverForwarded(name)) {
      throw new TypeError(`forwardHeaders may not include "${header}"`);
    }
    forwarded.add(name);
  }

  const capped = settings.pool?.connections !== undefined;
  const pool = new Pool(origin, {
    // No cap unless asked: LLM answers take seconds to minutes, and a capped pool would queue
    // requests silently behind them.
    connections: capped ? numberOption("pool.connections", settings.pool?.connections, 1) : null,
    keepAliveTimeout: numberOption(
      "pool.keepAliveTimeout",
      settings.pool?.keepAliveTimeout,
      90_000,
    ),
    pipelining: numberOption("pool.pipelining", settings.pool?.pipelining, 1, 0),
    connect: { timeout: connectTimeout },
  });
  let closing: Promise<void> | undefined;
  /** The upstream refused `stream_options` when the gateway added it: it is not added again. */
  let streamUsageRefused = false;

  function headersFor(request: ProviderRequest, hasBody: boolean, stream: boolean) {
    const headers: Record<string, string> = {};
    const incoming = request.headers;
    if (incoming) {
      for (const name of forwarded) {
        const value = incoming[name];
        if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
      }
    }
    if (request.requestId) headers["x-request-id"] = request.requestId;
    if (request.traceparent) headers.traceparent = request.traceparent;
    if (request.tracestate) headers.tracestate = request.tracestate;
    if (hasBody) headers["content-type"] = "application/json";
    headers.accept = stream ? "text/event-stream" : "application/json";
    return Object.assign(headers, authHeaders, extraHeaders);
  }

  /** The fields the provider adds to the body: stream usage, when the client did not ask. */
  function addedFields(request: ProviderRequest, stream: boolean) {
    const streamOptions = request.body?.stream_options as Record<string, unknown> | undefined;
    const injectUsage =
      stream &&
      includeStreamUsage &&
      !streamUsageRefused &&
      (request.endpoint === "chat/completions" || request.endpoint === "completions") &&
      streamOptions?.include_usage !== true;
    return injectUsage ? { stream_options: { ...streamOptions, include_usage: true } } : undefined;
  }

  /**
   * The JSON sent: the client's own text when nothing is added, that text with only the added
   * fields set (so numbers past 2^53 and key order survive), or, without the text, the body
   * serialised.
   */
  function requestText(
    request: ProviderRequest,
    added: Record<string, unknown> | undefined,
  ): string | Uint8Array {
    const body = request.body ?? {};
    const raw = request.rawBody;
    if (raw === undefined) return JSON.stringify(added ? { ...body, ...added } : body);
    if (!added) return raw;
    const edited = Object.keys(added).some((name) => Object.hasOwn(body, name))
      ? setJsonFields(jsonText(raw), added)
      : appendJsonMembers(raw, added);
    return edited ?? JSON.stringify({ ...body, ...added });
  }

  function upstreamFailure(status: number, headers: ResponseHeaders, text: string) {
    return createUpstreamError(status, headers, text, {
      secrets,
      retryableStatusCodes: retry.retryableStatusCodes,
    });
  }

  async function send(
    request: ProviderRequest,
    options: SendOptions = {},
  ): Promise<ProviderResponse> {
    const { signal, deadlineAt } = options;
    signal?.throwIfAborted();
    const startedAt = Date.now();
    const hasBody = request.endpoint !== "models";
    const stream = hasBody && request.body?.stream === true;
    const added = addedFields(request, stream);
    const injectUsage = added !== undefined;
    const requestBody = hasBody ? requestText(request, added) : "";
    const attemptTimeout =
      deadlineAt === undefined ? timeout : Math.min(timeout, deadlineAt - startedAt);
    if (attemptTimeout <= 0) {
      throw createTimeoutError("The request's deadline passed before the upstream was called");
    }

    // Only a capped pool makes requests wait for a connection: then the wait is timed too.
    const wait = {
      headersDeadline: capped ? performance.now() + attemptTimeout : undefined,
      onWait: capped ? options.onWait : undefined,
    };
    const requestOptions = {
      path: pathFor(request),
      method: hasBody ? ("POST" as const) : ("GET" as const),
      headers: headersFor(request, hasBody, stream),
      body: hasBody ? requestBody : null,
      headersTimeout: attemptTimeout,
      // A JSON body must also arrive within the attempt; a stream only needs to keep moving.
      bodyTimeout: stream ? readTimeout : Math.min(readTimeout, attemptTimeout),
    };
    let upstreamRequestId: string | undefined;
    try {
      if (!stream) {
        const response = await requestWhole(pool, requestOptions, signal, bodyLimit, wait);
        const { status, body: received } = response;
        upstreamRequestId = upstreamRequestIdOf(response.headers, secrets);
        if (!isSuccess(status)) {
          const error = await decodedBody(
            received,
            response.headers,
            ERROR_BODY_LIMIT,
            upstreamRequestId,
            true,
          );
          throw upstreamFailure(status, response.headers, error.toString("utf8"));
        }
        if (received.length > maxResponseBytes)
          throw responseTooLarge(maxResponseBytes, upstreamRequestId);
        const bytes = await decodedBody(
          received,
          response.headers,
          maxResponseBytes,
          upstreamRequestId,
        );
        const body = screenBody(bytes, secrets);
        const usage = readUsage(body, {
          requestBody: hasBody ? requestBody : undefined,
          upstreamRequestId,
        });
        const headers = pickHeaders(response.headers);
        return { kind: "json", status, headers, body, usage, upstreamRequestId };
      }
      // undici's own timers bound the wait for headers and each idle gap: no timer of ours on
      // the common path.
      const response = await requestStreamed(pool, requestOptions, signal, wait);
      const { status, headers: responseHeaders, body: responseBody } = response;
      upstreamRequestId = upstreamRequestIdOf(responseHeaders, secrets);
      if (!isSuccess(status)) {
        const { bytes: received } = await readBounded(responseBody, ERROR_BODY_LIMIT);
        const bytes = await decodedBody(
          received,
          responseHeaders,
          ERROR_BODY_LIMIT,
          upstreamRequestId,
          true,
        );
        const text = bytes.toString("utf8");
        if (injectUsage && (status === 400 || status === 422) && text.includes("stream_options")) {
          // A server that refuses the field the gateway added: the client's own request, once
          // more, and never again to this upstream (usage is then estimated).
          streamUsageRefused = true;
          return send(request, options);
        }
        throw upstreamFailure(status, responseHeaders, text);
      }
      const headers = pickHeaders(responseHeaders);
      if (!headers["content-type"]?.startsWith("application/json")) {
        const codings = contentCodings(responseHeaders["content-encoding"]);
        if ("unsupported" in codings) {
          responseBody.destroy();
          throw createInvalidResponseError(
            "The upstream's stream is in a Content-Encoding the gateway cannot decode",
            upstreamRequestId,
          );
        }
        const timer =
          streamTimeout === undefined
            ? undefined
            : destroyAfter(
                responseBody,
                streamTimeout - (Date.now() - startedAt),
                `The upstream stream ran longer than ${streamTimeout} ms`,
              );
        const events = new UpstreamStream({
          endpoint: request.endpoint,
          body: codings.length === 0 ? responseBody : decodeChunks(responseBody, codings),
          dropUsageChunk: injectUsage,
          requestBody,
          upstreamRequestId,
          secrets,
          maxEventLength: maxResponseBytes,
          signal,
          release: () => clearTimeout(timer),
        });
        return { kind: "stream", status, headers, events, upstreamRequestId };
      }
      // A server that answers a stream request with plain JSON.
      const { bytes: received, cut } = await readBounded(responseBody, maxResponseBytes);
      if (cut) throw responseTooLarge(maxResponseBytes, upstreamRequestId);
      const bytes = await decodedBody(
        received,
        responseHeaders,
        maxResponseBytes,
        upstreamRequestId,
      );
      const answer = screenBody(bytes, secrets);
      const usage = readUsage(answer, { requestBody, upstreamRequestId });
      return { kind: "json", status, headers, body: answer, usage, upstreamRequestId };
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (AigwError.isInstance(error)) throw error;
      throw createNetworkError(error, upstreamRequestId) ?? error;
    }
  }

  return {
    kind,
    retry,
    timeout,
    deadline,
    get waiting() {
      return pool.stats.pending;
    },
    send,
    close() {
      closing ??= pool.close();
      return closing;
    },
  };
}
