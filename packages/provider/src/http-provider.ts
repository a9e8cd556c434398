import { Pool } from "undici";
import type { CancelSignal } from "./cancellation.js";
import { contentCodings, decodeBody, decodeChunks } from "./content-encoding.js";
import { AigwError } from "./errors.js";
import { createOpenAIFormat } from "./openai-format.js";
import { type RetryOptions, resolveRetryOptions } from "./retry.js";
import { createSecretScrubber, type SecretScrubber } from "./secrets.js";
import { createSseParser, keepAliveEvent, type SseParser } from "./sse.js";
import { type ChunkStream, requestStreamed } from "./streamed-response.js";
import type {
  EventIterator,
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
  upstreamRequestIdOf,
} from "./upstream-errors.js";
import { estimateUsage } from "./usage.js";
import { requestWhole } from "./whole-response.js";
import type { StreamReader, WireFormat } from "./wire-format.js";

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
  /** What is sent and read. Default: OpenAI's API, as `createOpenAIFormat(settings)`. */
  format?: WireFormat;
  /** Client headers always forwarded (on top of `forwardHeaders`). Default `["openai-beta"]`. */
  defaultForwardHeaders?: readonly string[];
  /** Headers sent when the client's forwarded headers have none of that (lower-case) name. */
  defaultHeaders?: Record<string, string>;
}

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
  body: AsyncIterable<Buffer> & Pick<ChunkStream, "destroy" | "poll" | "onReadable">;
  /** What the wire format makes of each event. */
  reader: StreamReader;
  /** The request's JSON, for an estimate when the upstream reports no usage. */
  requestBody: string | Uint8Array;
  upstreamRequestId: string | undefined;
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
class UpstreamStream implements ProviderStream, EventIterator {
  private started = false;
  private over = false;
  private readonly chunks: AsyncIterator<Buffer>;
  private readonly parser: SseParser;
  private queue: SseEvent[] = [];
  private queued = 0;
  private dataEvents = 0;
  /** Set at the end when the upstream reported no usage. */
  private estimate: TokenUsage | undefined;
  /** A chunk's bad event, thrown once the good events before it have gone out. */
  private deferredFailure: unknown;

  constructor(private readonly settings: StreamSettings) {
    this.chunks = settings.body[Symbol.asyncIterator]();
    this.parser = createSseParser({ maxEventLength: settings.maxEventLength, comments: true });
  }

  get usage(): TokenUsage | undefined {
    return this.settings.reader.usage ?? this.estimate;
  }

  [Symbol.asyncIterator](): EventIterator {
    if (this.started) throw new TypeError("An upstream stream can be iterated only once");
    this.started = true;
    return this;
  }

  next(): Promise<IteratorResult<SseEvent>> {
    const ready = this.poll();
    if (ready) return Promise.resolve({ done: false, value: ready });
    if (this.over) return Promise.resolve(ended);
    const { body, signal } = this.settings;
    if (!body.onReadable || this.deferredFailure !== undefined || signal?.aborted) {
      return this.read();
    }
    // The next chunk is parsed in the transport's callback and its first event handed on from
    // there: one promise per chunk. The rest (an event still incomplete, the end, a failure)
    // goes through read().
    return new Promise((resolve, reject) => {
      body.onReadable?.(() => {
        try {
          const event = this.poll();
          resolve(event ? { done: false, value: event } : this.read());
        } catch (error) {
          reject(error);
        }
      });
    });
  }

  /** The next event of what was already read from the socket: parsed now if need be. */
  poll(): SseEvent | undefined {
    // Events already parsed are not handed out after an abort.
    if (this.settings.signal?.aborted) return undefined;
    while (this.queued === this.queue.length) {
      if (this.over || this.deferredFailure !== undefined) return undefined;
      const chunk = this.settings.body.poll?.();
      if (chunk === undefined) return undefined;
      try {
        this.accept(chunk);
      } catch (error) {
        // Thrown by the next read, after the events before the bad one have gone out.
        this.deferredFailure = error;
      }
    }
    return this.take();
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
          const { reader } = this.settings;
          if (!reader.complete) throw createStreamInterruptedError(this.settings.upstreamRequestId);
          const last: SseEvent[] = [];
          reader.finish?.(last);
          this.end();
          if (last.length === 0) return ended;
          this.queue = last;
          return { done: false, value: this.take() };
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

  /** Parses a chunk and queues what of its events goes on. */
  private accept(chunk: Buffer): void {
    const { reader } = this.settings;
    for (const event of this.parser.push(chunk)) {
      if (event === keepAliveEvent) this.queue.push(event);
      else {
        if (event.data !== "[DONE]") this.dataEvents++;
        reader.accept(event, this.queue);
      }
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
    if (!this.settings.reader.usage) {
      this.estimate = estimateUsage(this.settings.requestBody, this.dataEvents);
    }
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
  const format = settings.format ?? createOpenAIFormat(settings);
  const maxResponseBytes = numberOption("maxResponseBytes", settings.maxResponseBytes, 2 ** 28);
  const extraHeaders = settings.headers ?? {};
  const defaultHeaders = Object.entries(settings.defaultHeaders ?? {});
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

  const forwarded = new Set(settings.defaultForwardHeaders ?? ["openai-beta"]);
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

  function headersFor(request: ProviderRequest, hasBody: boolean, stream: boolean) {
    const headers: Record<string, string> = {};
    const incoming = request.headers;
    if (incoming) {
      for (const name of forwarded) {
        const value = incoming[name];
        if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
      }
    }
    for (const [name, value] of defaultHeaders) headers[name] ??= value;
    if (request.requestId) headers["x-request-id"] = request.requestId;
    if (request.traceparent) headers.traceparent = request.traceparent;
    if (request.tracestate) headers.tracestate = request.tracestate;
    if (hasBody) headers["content-type"] = "application/json";
    headers.accept = stream ? "text/event-stream" : "application/json";
    return Object.assign(headers, authHeaders, extraHeaders);
  }

  function upstreamFailure(status: number, headers: ResponseHeaders, text: string) {
    return createUpstreamError(format.errorStatus?.(status, text) ?? status, headers, text, {
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
    const encoded = format.encode(request, stream);
    const requestBody = encoded.body;
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
        const { body, usage } = encoded.readAnswer(bytes, { secrets, upstreamRequestId });
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
        if (encoded.refusedAddition?.(status, text) && (options.mayResend?.() ?? true)) {
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
          body: codings.length === 0 ? responseBody : decodeChunks(responseBody, codings),
          reader: encoded.readStream({ secrets, upstreamRequestId }),
          requestBody,
          upstreamRequestId,
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
      const { body, usage } = encoded.readAnswer(bytes, { secrets, upstreamRequestId });
      return { kind: "json", status, headers, body, usage, upstreamRequestId };
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (AigwError.isInstance(error)) throw error;
      throw createNetworkError(error, upstreamRequestId) ?? error;
    }
  }

  return {
    kind,
    protocols: format.protocols,
    countsTokens: format.countsTokens ?? false,
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
