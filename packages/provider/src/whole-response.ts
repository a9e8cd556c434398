import type { IncomingHttpHeaders } from "node:http";
import type { Dispatcher } from "undici";
import type { CancelSignal } from "./cancellation.js";
import { type ConnectionWait, watchRequest } from "./connection-wait.js";

export interface WholeResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * Sends one request and gathers its answer in memory through undici's `dispatch`, without the
 * Readable, async resource and promise layers that `request()` puts around every body: the
 * gateway reads JSON answers whole anyway. A body past `limitFor(status)` bytes is cut off
 * there: the request is aborted. `signal` aborts the request at any point; `wait` bounds and
 * reports the wait for a connection.
 */
export function requestWhole(
  dispatcher: Dispatcher,
  options: Dispatcher.DispatchOptions,
  signal: CancelSignal | undefined,
  limitFor: (status: number) => number,
  wait: ConnectionWait = {},
): Promise<WholeResponse> {
  return new Promise((resolve, reject) => {
    let status = 0;
    let headers: IncomingHttpHeaders = {};
    let limit = Number.POSITIVE_INFINITY;
    let chunks: Buffer[] = [];
    let size = 0;
    let settled = false;

    const settle = (error: Error | undefined) => {
      if (settled) return;
      settled = true;
      watch.stop();
      if (error) reject(error);
      else
        resolve({
          status,
          headers,
          body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size),
        });
      chunks = [];
    };
    const watch = watchRequest(signal, wait, settle);

    dispatcher.dispatch(options, {
      // Called again when undici retries the request on a fresh connection.
      onRequestStart(controller) {
        watch.sent(controller);
      },
      // Informational (1xx) heads come first when sent; the final head wins.
      onResponseStart(_controller, statusCode, responseHeaders) {
        if (statusCode >= 200) watch.headersIn();
        status = statusCode;
        headers = responseHeaders;
        limit = limitFor(statusCode);
      },
      onResponseData(controller, chunk) {
        if (settled) return;
        chunks.push(chunk);
        size += chunk.length;
        if (size <= limit) return;
        settle(undefined);
        controller.abort(new Error("The response body is larger than the gateway reads"));
      },
      onResponseEnd() {
        settle(undefined);
      },
      onResponseError(_controller, error) {
        settle(error);
      },
    });
  });
}
