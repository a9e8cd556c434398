import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import { Cancellation, type EventIterator, type SseEvent } from "@aigw/provider";
import { requestTimeout } from "./errors.js";
import type { Gateway } from "./gateway.js";
import type { GatewayRequest, GatewayResponse } from "./types.js";

export interface NodeRequestOptions {
  /** The path below the mount point, when a framework mounted the gateway under a prefix. */
  path?: string;
  /** A body a framework already parsed as JSON. */
  parsedBody?: unknown;
  /** The raw body a framework already read, or the stream to read instead of the request. */
  body?: Uint8Array | string | Readable;
}

/** The gateway's answer for a framework that sends it itself; a stream is a lazy Readable. */
export interface NodeResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer | string | Readable | undefined;
}

/** A `(req, res)` listener for `http.createServer`, writing straight to the socket. */
export function toNodeListener(gateway: Gateway) {
  return (request: IncomingMessage, response: ServerResponse): void => {
    handleNodeRequest(gateway, request, response).catch(() => response.destroy());
  };
}

/**
 * The options for what a framework's body parser left (`req.body`, `ctx.request.body`). It
 * counts only once the request stream was read: Express 4 and @koa/bodyparser set `{}` for
 * content types they skip. Text or bytes (express.text(), express.raw()) go to the gateway raw.
 */
export function parsedBodyOptions(request: IncomingMessage, body: unknown): NodeRequestOptions {
  if (!request.readableEnded || body === undefined) return {};
  return typeof body === "string" || body instanceof Uint8Array ? { body } : { parsedBody: body };
}

/**
 * Serves one Node request: the request is cancelled when the response closes before it
 * finished, and stream writes wait for `drain`, so a slow reader never makes us buffer.
 */
export async function handleNodeRequest(
  gateway: Gateway,
  request: IncomingMessage,
  response: ServerResponse,
  options: NodeRequestOptions = {},
): Promise<void> {
  const cancellation = cancelOnClose(response);
  const gatewayResponse = await gateway.handle(await toGatewayRequest(gateway, request, options), {
    cancellation,
  });
  await writeNodeResponse(response, gatewayResponse, cancellation, gateway.sendTimeoutMs);
}

/**
 * Like `handleNodeRequest`, for frameworks that send the answer themselves (Koa's `ctx.body`,
 * Fastify's `reply.send`): a stream becomes a Readable that pulls the next event only when the
 * client has read the previous ones, and destroying it cancels the upstream.
 */
export async function dispatchNodeRequest(
  gateway: Gateway,
  request: IncomingMessage,
  response: ServerResponse,
  options: NodeRequestOptions = {},
): Promise<NodeResponse> {
  const cancellation = cancelOnClose(response);
  const { status, headers, body } = await gateway.handle(
    await toGatewayRequest(gateway, request, options),
    { cancellation },
  );
  if (body === undefined || typeof body === "string") return { status, headers, body };
  if (body instanceof Uint8Array) {
    return { status, headers, body: Buffer.from(body.buffer, body.byteOffset, body.byteLength) };
  }
  if (response.destroyed) {
    await discard(body);
    return { status, headers, body: undefined };
  }
  closeWhenUnread(response, gateway.sendTimeoutMs);
  return { status, headers, body: Readable.from(rawEvents(body), { objectMode: false }) };
}

/**
 * For answers a framework writes: closes the connection when nothing could be written to it
 * for `sendTimeoutMs` (the socket's inactivity timer, which every write, keep-alive comments
 * included, starts again). A client that stops reading would otherwise hold its connection,
 * and what the answer keeps in memory, for good.
 */
function closeWhenUnread(response: ServerResponse, sendTimeoutMs: number): void {
  response.setTimeout(sendTimeoutMs, () => response.destroy());
}

/**
 * Waits until the client has read what was written; after `sendTimeoutMs` without that, the
 * connection is closed (and the wait fails, as it does when the request is cancelled, the
 * response errs or its connection closes). Only a write the socket could not take waits, so a
 * client that keeps reading costs no timer at all. Plain listeners: `events.once` with the
 * request's AbortSignal cost about as much as the write.
 */
function drained(
  response: ServerResponse,
  cancellation: Cancellation,
  sendTimeoutMs: number,
): Promise<void> {
  if (cancellation.aborted) return Promise.reject(cancellation.reason);
  return new Promise((resolve, reject) => {
    const settle = (error?: unknown) => {
      clearTimeout(timer);
      response.off("drain", onDrain).off("error", onError).off("close", onClose);
      cancellation.off("abort", onAbort);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onDrain = () => settle();
    const onError = (error: Error) => settle(error);
    const onClose = () => settle(new Error("The client closed the connection."));
    const onAbort = () => settle(cancellation.reason);
    const timer = setTimeout(() => response.destroy(), sendTimeoutMs);
    response.on("drain", onDrain).on("error", onError).on("close", onClose);
    cancellation.on("abort", onAbort);
  });
}

async function* rawEvents(events: AsyncIterable<SseEvent>): AsyncGenerator<string> {
  for await (const event of events) yield event.raw;
}

/** Closes a stream nobody will read; the gateway's end-of-request work still runs. */
async function discard(events: AsyncIterable<SseEvent>): Promise<void> {
  await events[Symbol.asyncIterator]().return?.();
}

function cancelOnClose(response: ServerResponse): Cancellation {
  const cancellation = new Cancellation();
  response.once("close", () => {
    if (!response.writableFinished)
      cancellation.abort(new Error("The client closed the connection."));
  });
  return cancellation;
}

async function toGatewayRequest(
  gateway: Gateway,
  request: IncomingMessage,
  { path, parsedBody, body }: NodeRequestOptions,
): Promise<GatewayRequest> {
  const limit = gateway.maxBodyBytes;
  // A parser in front may allow more than the gateway: its limit still holds.
  if (Number(request.headers["content-length"]) > limit) parsedBody = undefined;
  let rawBody: GatewayRequest["body"];
  if (parsedBody === undefined) {
    rawBody =
      typeof body === "string" || body instanceof Uint8Array
        ? body
        : await readBody(body ?? request, request, limit, gateway.bodyIdleTimeoutMs);
  }
  // A body a framework read or replaced was decoded by it (body parsers and request
  // decompression inflate, and leave the header): only the request's own stream still is encoded.
  const decodedByFramework = body !== undefined && body !== request;
  return {
    method: request.method ?? "GET",
    path: path ?? request.url ?? "/",
    headers:
      decodedByFramework && request.headers["content-encoding"] !== undefined
        ? { ...request.headers, "content-encoding": undefined }
        : request.headers,
    body: rawBody,
    parsedBody,
    clientAddress: request.socket.remoteAddress,
  };
}

/** The body of a request whose client stopped sending: reading it fails with a 408. */
const stalledBody: AsyncIterable<Uint8Array> = {
  [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(requestTimeout()) }),
};

/**
 * Collects the body with plain events (cheaper than async iteration). Past the limit, or
 * after a pause longer than `idleTimeoutMs`, it stops reading without destroying the socket,
 * so the gateway's 413 or 408 can still be written; that answer closes the connection.
 */
function readBody(
  stream: Readable,
  request: IncomingMessage,
  limitBytes: number,
  idleTimeoutMs: number,
): Promise<GatewayRequest["body"]> {
  if (request.method === "GET" || request.method === "HEAD") return Promise.resolve(undefined);
  if (Number(request.headers["content-length"]) > limitBytes) return Promise.resolve(undefined);
  // Something before us read the stream and kept nothing: waiting for "end" would hang.
  if (stream.readableEnded) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = () => {
      clearTimeout(timer);
      stream.off("data", onData).off("end", finish).off("error", fail);
    };
    const finish = () => {
      stop();
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    };
    const fail = (error: Error) => {
      stop();
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      timer.refresh();
      chunks.push(chunk);
      size += chunk.length;
      if (size > limitBytes) finish();
    };
    const timer = setTimeout(() => {
      stop();
      resolve(stalledBody);
    }, idleTimeoutMs);
    stream.on("data", onData).on("end", finish).on("error", fail);
  });
}

/** Answers up to this size are handed to the socket at once; larger ones in pieces. */
const wholeWriteBytes = 64 * 1024;
/** Most characters of events gathered into one write. */
const batchLength = 16 * 1024;

/**
 * Writes the gateway's answer to `response`. Streams, and answers over 64 KiB, go out piece by
 * piece as the client reads them, and the connection is closed when a piece waits longer than
 * `sendTimeoutMs` (default 60,000) to be written.
 */
export async function writeNodeResponse(
  response: ServerResponse,
  gatewayResponse: GatewayResponse,
  cancellation: Cancellation,
  sendTimeoutMs = 60_000,
): Promise<void> {
  const { status, headers, body } = gatewayResponse;
  if (response.destroyed) {
    if (body !== undefined && typeof body === "object" && Symbol.asyncIterator in body) {
      await discard(body);
    }
    return;
  }
  if (body === undefined || typeof body === "string" || body instanceof Uint8Array) {
    const bytes = body === undefined ? 0 : Buffer.byteLength(body);
    if (body !== undefined) headers["content-length"] = `${bytes}`;
    response.writeHead(status, headers);
    if (body === undefined || bytes <= wholeWriteBytes) {
      response.end(body);
      return;
    }
    const whole = typeof body === "string" ? Buffer.from(body) : body;
    try {
      for (let start = 0; start < whole.byteLength; start += wholeWriteBytes) {
        if (!response.write(whole.subarray(start, start + wholeWriteBytes))) {
          await drained(response, cancellation, sendTimeoutMs);
        }
      }
      response.end();
    } catch {
      response.destroy();
    }
    return;
  }
  response.writeHead(status, headers);
  await writeEvents(response, body, cancellation, sendTimeoutMs);
}

/**
 * Writes a stream's events. Events that arrive together (from one upstream read, handed on
 * without waiting for I/O) are gathered and written once, when the promises that hand them on
 * have settled (process.nextTick): one chunk and one system call where writing each would cost
 * one per event. The last ones go out with the end of the response. While the socket holds
 * more than it takes, the next event waits for `drain`.
 */
async function writeEvents(
  response: ServerResponse,
  events: AsyncIterable<SseEvent>,
  cancellation: Cancellation,
  sendTimeoutMs: number,
): Promise<void> {
  let pending: string[] = [];
  let pendingLength = 0;
  let scheduled = false;
  /** Waiting for the socket to drain: events are gathered, not written, meanwhile. */
  let draining = false;
  const take = () => {
    const text = pending.length === 1 ? (pending[0] as string) : pending.join("");
    pending = [];
    pendingLength = 0;
    return text;
  };
  const flush = () => {
    scheduled = false;
    if (pending.length > 0 && !draining) response.write(take());
  };
  const flushSoon = () => {
    if (scheduled) return;
    scheduled = true;
    process.nextTick(flush);
  };
  let iterator: EventIterator | undefined;
  /** Events are being written (not read): a failure here must close the source, as for-await. */
  let writing = false;
  try {
    iterator = events[Symbol.asyncIterator]();
    for (let result = await iterator.next(); !result.done; result = await iterator.next()) {
      writing = true;
      // The rest of what came with this event is taken without a promise each.
      for (let event: SseEvent | undefined = result.value; event; event = iterator.poll?.()) {
        pending.push(event.raw);
        pendingLength += event.raw.length;
        // A source that never waits (the echo model, a cache replay) is written as it goes.
        if (pendingLength >= batchLength) flush();
        else flushSoon();
        if (response.writableNeedDrain) {
          draining = true;
          try {
            await drained(response, cancellation, sendTimeoutMs);
          } finally {
            draining = false;
          }
          if (pending.length > 0) flushSoon();
        }
      }
      writing = false;
    }
    response.end(pending.length > 0 ? take() : undefined);
  } catch {
    pending = [];
    if (writing) {
      try {
        await iterator?.return?.();
      } catch {
        // As for-await: the failure that ended the loop is the one that counts.
      }
    }
    // The client went away, or the source failed in a way no error event can tell.
    response.destroy();
  }
}
