import type { IncomingHttpHeaders } from "node:http";
import type { Dispatcher } from "undici";
import type { CancelSignal } from "./cancellation.js";
import { type ConnectionWait, watchRequest } from "./connection-wait.js";

/** A response body read chunk by chunk as it arrives; reading slowly pauses the upstream. */
export interface ChunkStream extends AsyncIterable<Buffer> {
  /** Closes the body (and its connection); a read waiting on it fails with `error`, if given. */
  destroy(error?: Error): void;
  /** A chunk already received, without waiting; undefined when a read would wait, end or fail. */
  poll?(): Buffer | undefined;
  /**
   * Calls `ready` once, when a read would no longer wait (a chunk, the end or a failure is
   * there): at once if it would not now, else from whatever brought it (undici's callbacks,
   * `destroy()`, an abort), without a promise in between. `ready` must not throw. One waits at
   * a time: a later call replaces it, and the earlier is never called.
   */
  onReadable?(ready: () => void): void;
}

export interface StreamedResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: ChunkStream;
}

/** Bytes held for the reader before the upstream is paused, and below which it resumes. */
const highWater = 64 * 1024;
const lowWater = 16 * 1024;

/**
 * Sends one request and resolves once its response headers arrived, with the body to read as
 * it comes, through undici's `dispatch`: no Readable and no async iterator of Node streams
 * between the socket and the reader. `signal` aborts the request at any point; `wait` bounds
 * and reports the wait for a connection.
 */
export function requestStreamed(
  dispatcher: Dispatcher,
  options: Dispatcher.DispatchOptions,
  signal: CancelSignal | undefined,
  wait: ConnectionWait = {},
): Promise<StreamedResponse> {
  return new Promise((resolve, reject) => {
    let controller: Dispatcher.DispatchController | undefined;
    let headersIn = false;
    const chunks: Buffer[] = [];
    let next = 0;
    let queuedBytes = 0;
    let paused = false;
    let ended = false;
    /** Closed by the reader: nothing more is read, whatever undici reports after. */
    let closed = false;
    let failure: Error | undefined;
    let reader:
      | { resolve(result: IteratorResult<Buffer>): void; reject(error: Error): void }
      | undefined;
    let readable: (() => void) | undefined;
    const watch = watchRequest(signal, wait, reject);

    /** A chunk received and not yet read, or undefined. */
    const take = (): Buffer | undefined => {
      if (next === chunks.length) return undefined;
      const chunk = chunks[next] as Buffer;
      chunks[next++] = undefined as unknown as Buffer;
      if (next === chunks.length) {
        chunks.length = 0;
        next = 0;
      }
      queuedBytes -= chunk.length;
      if (paused && queuedBytes < lowWater) {
        paused = false;
        controller?.resume();
      }
      return chunk;
    };

    /** The next chunk or the end, when there is one to give now; undefined: wait. */
    const poll = (): IteratorResult<Buffer> | Error | undefined => {
      const chunk = take();
      if (chunk) return { done: false, value: chunk };
      if (closed) return { done: true, value: undefined };
      if (failure) return failure;
      if (ended) return { done: true, value: undefined };
      return undefined;
    };

    const wake = () => {
      if (readable) {
        const ready = readable;
        readable = undefined;
        ready();
      }
      if (!reader) return;
      const result = poll();
      if (result === undefined) return;
      const waiting = reader;
      reader = undefined;
      if (result instanceof Error) waiting.reject(result);
      else waiting.resolve(result);
    };

    const settle = () => {
      watch.stop();
      wake();
    };

    const body: ChunkStream = {
      poll: take,
      onReadable(ready) {
        if (next < chunks.length || closed || failure || ended) ready();
        else readable = ready;
      },
      destroy(error) {
        if (ended || closed || failure) return;
        if (error) failure = error;
        else closed = true;
        controller?.abort(error ?? new Error("The response body was closed"));
        settle();
      },
      [Symbol.asyncIterator]() {
        return {
          next(): Promise<IteratorResult<Buffer>> {
            const result = poll();
            if (result instanceof Error) return Promise.reject(result);
            if (result !== undefined) return Promise.resolve(result);
            return new Promise((resolve, reject) => {
              reader = { resolve, reject };
            });
          },
          return: async () => {
            body.destroy();
            return { done: true, value: undefined };
          },
        };
      },
    };

    dispatcher.dispatch(options, {
      // Called again when undici retries the request on a fresh connection.
      onRequestStart(requestController) {
        if (watch.sent(requestController)) controller = requestController;
      },
      // Informational (1xx) heads come first when sent; the final head wins.
      onResponseStart(responseController, statusCode, headers) {
        // undici keeps the raw header buffers on the controller, which lives as long as the
        // stream; `headers` has them all.
        responseController.rawHeaders = null;
        if (statusCode < 200) return;
        watch.headersIn();
        headersIn = true;
        resolve({ status: statusCode, headers, body });
      },
      onResponseData(responseController, chunk) {
        chunks.push(chunk);
        queuedBytes += chunk.length;
        if (!paused && queuedBytes > highWater) {
          paused = true;
          responseController.pause();
        }
        wake();
      },
      onResponseEnd() {
        ended = true;
        settle();
      },
      onResponseError(_controller, error) {
        if (!headersIn) {
          watch.stop();
          reject(error);
          return;
        }
        failure ??= error;
        settle();
      },
    });
  });
}
