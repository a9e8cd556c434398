import type { ServerResponse } from "node:http";
import type { Transform } from "node:stream";
import {
  brotliCompressSync,
  createBrotliCompress,
  createDeflate,
  createGzip,
  deflateSync,
  gzipSync,
} from "node:zlib";
import { createMockServer, type ReceivedRequest } from "./mock-server.js";
import { createReply, errorBody, errorForStatus, type Reply } from "./openai-replies.js";
import type { RecordedRequest } from "./recorded-request.js";

export interface MockUpstreamOptions {
  /** When set, requests must carry `authorization: Bearer <apiKey>` or `api-key: <apiKey>`. */
  apiKey?: string;
  host?: string;
  /** Applies to every request for which no behaviour was enqueued (benchmarks' slow streams). */
  defaultBehaviour?: Behaviour;
  /** Keep each request in `requests` (true); benchmarks turn it off, or memory grows without bound. */
  recordRequests?: boolean;
}

export type Behaviour =
  /**
   * `body` defaults to an OpenAI-shaped error for the status; strings are sent as they are.
   * `encoding` compresses the body (sent with that Content-Encoding).
   */
  | {
      kind: "status";
      status: number;
      headers?: Record<string, string>;
      body?: unknown;
      encoding?: Compression;
    }
  /**
   * The usual reply, compressed (sent with that Content-Encoding, as some upstreams do
   * unasked); a stream is flushed event by event, `delayMs` apart.
   */
  | { kind: "compressed"; encoding: Compression; delayMs?: number }
  /** Destroys the socket without any response. */
  | { kind: "reset" }
  /** Never answers. */
  | { kind: "stall" }
  | { kind: "slowHeaders"; delayMs: number }
  /** Writes that many events, then destroys the socket. A JSON reply is cut halfway. */
  | { kind: "cutStream"; afterEvents: number }
  /** Writes that many events, then goes silent. A JSON reply stalls halfway. */
  | { kind: "stallStream"; afterEvents: number }
  | { kind: "malformedJson" }
  /** Waits between events; a JSON reply waits between its headers and its body. */
  | { kind: "delayEvents"; delayMs: number }
  /**
   * A stream whose 200 goes out at once and whose first event only after `delayMs` (a model
   * thinking), with a `: PROCESSING` comment every `commentEveryMs` meanwhile; `thenCut`
   * destroys the socket instead of sending the first event.
   */
  | { kind: "slowFirstEvent"; delayMs: number; commentEveryMs?: number; thenCut?: boolean }
  /** A valid embeddings-like JSON reply of about that many bytes, `usage` last. */
  | { kind: "largeBody"; bytes: number }
  /** A 200 event stream of exactly these events (objects are sent as JSON), as a hostile upstream might. */
  | { kind: "events"; events: (string | object)[]; headers?: Record<string, string> };

export type Compression = "gzip" | "deflate" | "br";

const compressors: Record<Compression, () => Transform & { flush(callback?: () => void): void }> = {
  gzip: createGzip,
  deflate: createDeflate,
  br: createBrotliCompress,
};
const compressWhole: Record<Compression, (text: string) => Buffer> = {
  gzip: (text) => gzipSync(text),
  deflate: (text) => deflateSync(text),
  br: (text) => brotliCompressSync(text),
};

export interface StreamGate {
  /** Resolves once the held stream has written every event before the final ones. */
  reached: Promise<void>;
  release(): void;
}

export interface MockUpstream {
  url: string;
  baseURL: string;
  requests: RecordedRequest[];
  /** Each behaviour applies to one following request, in order. */
  enqueue(...behaviours: Behaviour[]): void;
  /** Holds the next streamed response before its final events (usage, [DONE], response.completed). */
  holdStream(): StreamGate;
  waitForRequests(count: number, timeoutMs?: number): Promise<void>;
  /** Forgets recorded requests, queued behaviours and unused stream gates. */
  reset(): void;
  openConnections(): number;
  /** Destroys every socket, stalled ones included, and closes the server. */
  close(): Promise<void>;
}

interface PendingGate {
  reach(): void;
  released: Promise<void>;
}

type StreamFault = Extract<
  Behaviour,
  { kind: "cutStream" | "stallStream" | "delayEvents" | "slowFirstEvent" }
>;

const MALFORMED_JSON = '{"id": "chatcmpl-1", "choices": [';

function authenticationError(headers: Record<string, string>, apiKey: string): Reply | undefined {
  const authorization = headers.authorization;
  const headerKey = headers["api-key"];
  if (authorization === `Bearer ${apiKey}` || headerKey === apiKey) return undefined;
  const receivedKey = authorization?.replace(/^Bearer\s+/i, "") ?? headerKey;
  const message = receivedKey
    ? `Incorrect API key provided: ${receivedKey}`
    : "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).";
  return {
    type: "json",
    status: 401,
    body: errorBody(message, "invalid_request_error", "invalid_api_key"),
  };
}

function createLargeBody(bytes: number, model: unknown): string {
  const embedding = Array.from({ length: 64 }, () => 0.0078125);
  const data: unknown[] = [];
  let size = 200;
  while (size < bytes) {
    const item = { object: "embedding", index: data.length, embedding };
    data.push(item);
    size += JSON.stringify(item).length + 1;
  }
  return JSON.stringify({
    object: "list",
    data,
    model,
    usage: { prompt_tokens: data.length, total_tokens: data.length },
  });
}

export async function startMockUpstream(options: MockUpstreamOptions = {}): Promise<MockUpstream> {
  const behaviours: Behaviour[] = [];
  const gates: PendingGate[] = [];
  const mock = createMockServer("Mock upstream", options.recordRequests !== false);
  const { requests, sleep, write } = mock;

  async function sendJson(
    response: ServerResponse,
    status: number,
    text: string,
    fault: StreamFault | undefined,
    destroy: () => void,
  ): Promise<void> {
    response.writeHead(status, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(text),
    });
    if (fault?.kind === "delayEvents") {
      response.flushHeaders();
      await sleep(fault.delayMs);
    }
    if (fault?.kind === "cutStream" || fault?.kind === "stallStream") {
      await write(response, text.slice(0, Math.floor(text.length / 2)));
      if (fault.kind === "cutStream") destroy();
      return;
    }
    if (!response.destroyed) response.end(text);
  }

  async function sendStream(
    response: ServerResponse,
    reply: Extract<Reply, { type: "stream" }>,
    fault: StreamFault | undefined,
    destroy: () => void,
    record: RecordedRequest,
  ): Promise<void> {
    const gate = gates.shift();
    response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    response.flushHeaders();
    if (fault?.kind === "slowFirstEvent") {
      const until = Date.now() + fault.delayMs;
      while (fault.commentEveryMs !== undefined && Date.now() + fault.commentEveryMs < until) {
        await sleep(fault.commentEveryMs);
        if (response.destroyed) return;
        await write(response, ": PROCESSING\n\n");
      }
      await sleep(Math.max(0, until - Date.now()));
      if (fault.thenCut) {
        destroy();
        return;
      }
    }
    const stopsAfter = fault?.kind === "cutStream" || fault?.kind === "stallStream";
    const eventCount = stopsAfter
      ? Math.min(fault.afterEvents, reply.events.length)
      : reply.events.length;
    for (let index = 0; index < eventCount; index++) {
      if (fault?.kind === "delayEvents" && index > 0) await sleep(fault.delayMs);
      if (gate && index === reply.holdAt) {
        gate.reach();
        await gate.released;
      }
      if (response.destroyed) return;
      await write(response, reply.events[index] as string);
      record.eventsWritten += 1;
    }
    if (fault?.kind === "cutStream") destroy();
    else if (!stopsAfter && !response.destroyed) response.end();
  }

  async function sendCompressed(
    response: ServerResponse,
    reply: Reply,
    { encoding, delayMs }: Extract<Behaviour, { kind: "compressed" }>,
  ): Promise<void> {
    if (reply.type !== "stream") {
      response.writeHead(reply.status, {
        "content-type": "application/json",
        "content-encoding": encoding,
      });
      response.end(compressWhole[encoding](JSON.stringify(reply.body)));
      return;
    }
    response.writeHead(200, { "content-type": "text/event-stream", "content-encoding": encoding });
    const compressor = compressors[encoding]();
    compressor.pipe(response);
    for (const [index, event] of reply.events.entries()) {
      if (index > 0 && delayMs) await sleep(delayMs);
      if (response.destroyed) return;
      compressor.write(event);
      await new Promise<void>((flushed) => compressor.flush(() => flushed()));
    }
    compressor.end();
  }

  async function handle(
    response: ServerResponse,
    { record, number, destroy }: ReceivedRequest,
  ): Promise<void> {
    const requestNumber = number;
    response.setHeader("x-request-id", `req_mock_${requestNumber}`);

    const behaviour = behaviours.shift() ?? options.defaultBehaviour;
    switch (behaviour?.kind) {
      case "reset":
        destroy();
        return;
      case "stall":
        return;
      case "status": {
        const body = behaviour.body ?? errorForStatus(behaviour.status);
        const isText = typeof body === "string";
        const text = isText ? body : JSON.stringify(body);
        const { encoding } = behaviour;
        response.writeHead(behaviour.status, {
          "content-type": isText ? "text/plain; charset=utf-8" : "application/json",
          ...(encoding ? { "content-encoding": encoding } : {}),
          ...behaviour.headers,
        });
        response.end(encoding ? compressWhole[encoding](text) : text);
        return;
      }
      case "events":
        response.writeHead(200, { "content-type": "text/event-stream", ...behaviour.headers });
        for (const event of behaviour.events) {
          await write(
            response,
            `data: ${typeof event === "string" ? event : JSON.stringify(event)}\n\n`,
          );
        }
        response.end();
        return;
      case "malformedJson":
        response.writeHead(200, { "content-type": "application/json" });
        response.end(MALFORMED_JSON);
        return;
      case "largeBody": {
        const model = (record.body as { model?: unknown } | undefined)?.model;
        await sendJson(response, 200, createLargeBody(behaviour.bytes, model), undefined, destroy);
        return;
      }
      case "slowHeaders":
        await sleep(behaviour.delayMs);
        if (response.destroyed) return;
        break;
    }

    const pathname = record.path.split("?")[0] ?? "/";
    const reply =
      (options.apiKey === undefined
        ? undefined
        : authenticationError(record.headers, options.apiKey)) ??
      createReply(record.method, pathname, record.rawBody, {
        requestNumber,
        created: Math.floor(Date.now() / 1000),
      });
    const fault =
      behaviour?.kind === "cutStream" ||
      behaviour?.kind === "stallStream" ||
      behaviour?.kind === "delayEvents" ||
      behaviour?.kind === "slowFirstEvent"
        ? behaviour
        : undefined;
    if (behaviour?.kind === "compressed") {
      await sendCompressed(response, reply, behaviour);
      return;
    }
    if (reply.type === "stream") await sendStream(response, reply, fault, destroy, record);
    else await sendJson(response, reply.status, JSON.stringify(reply.body), fault, destroy);
  }

  const url = await mock.listen(options.host, handle);

  return {
    url,
    baseURL: `${url}/v1`,
    requests,
    enqueue(...queued) {
      behaviours.push(...queued);
    },
    holdStream() {
      let reach = () => {};
      let release = () => {};
      const reached = new Promise<void>((resolve) => {
        reach = resolve;
      });
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      gates.push({ reach, released });
      return { reached, release };
    },
    waitForRequests: mock.waitForRequests,
    reset() {
      requests.length = 0;
      behaviours.length = 0;
      gates.length = 0;
    },
    openConnections: mock.openConnections,
    close: mock.close,
  };
}
