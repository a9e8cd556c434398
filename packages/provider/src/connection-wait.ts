import type { Dispatcher } from "undici";
import { type CancelSignal, onAbort } from "./cancellation.js";
import type { AigwError } from "./errors.js";
import { createTimeoutError } from "./upstream-errors.js";

/** What a transport is told about waiting for a connection from its pool. */
export interface ConnectionWait {
  /**
   * `performance.now()` time by which the response head must be in, time spent waiting for a
   * free connection included (undici's own headers timeout starts only once a request is sent).
   */
  headersDeadline?: number | undefined;
  /** Told how long the request waited for a connection, once it got one or was given up on. */
  onWait?: ((waitMs: number) => void) | undefined;
}

export interface RequestWatch {
  /**
   * From `onRequestStart` (again when undici retries on a fresh connection): false when the
   * request was given up on while it waited, or was cancelled (it is aborted).
   */
  sent(controller: Dispatcher.DispatchController): boolean;
  /** The response head arrived: the deadline no longer applies, cancellation still does. */
  headersIn(): void;
  /** The request ended: nothing is watched any more. */
  stop(): void;
}

/**
 * Watches one request from dispatch: `signal` aborts it at any point; its wait for a
 * connection is reported; `headersDeadline` is enforced with one timer. A request still
 * waiting at the deadline is given up on (`giveUp` gets a 504 error) and aborted when the pool
 * hands it a connection; one already sent is aborted with that error.
 */
export function watchRequest(
  signal: CancelSignal | undefined,
  wait: ConnectionWait,
  giveUp: (error: AigwError) => void,
): RequestWatch {
  const dispatchedAt = performance.now();
  let controller: Dispatcher.DispatchController | undefined;
  let gaveUp = false;
  let stopListening: (() => void) | undefined;
  const timeout = () =>
    createTimeoutError(
      controller
        ? "The upstream sent no response headers in time"
        : "No connection to the upstream was free in time",
    );
  const timer =
    wait.headersDeadline === undefined
      ? undefined
      : setTimeout(
          () => {
            if (controller) {
              controller.abort(timeout());
              return;
            }
            gaveUp = true;
            wait.onWait?.(performance.now() - dispatchedAt);
            giveUp(timeout());
          },
          Math.ceil(wait.headersDeadline - dispatchedAt),
        );
  return {
    sent(requestController) {
      if (gaveUp) {
        requestController.abort(timeout());
        return false;
      }
      // The first wait is the one reported.
      if (!controller) wait.onWait?.(performance.now() - dispatchedAt);
      controller = requestController;
      stopListening?.();
      stopListening = undefined;
      if (!signal) return true;
      if (signal.aborted) {
        requestController.abort(signal.reason as Error);
        return false;
      }
      stopListening = onAbort(signal, () => requestController.abort(signal.reason as Error));
      return true;
    },
    headersIn() {
      clearTimeout(timer);
    },
    stop() {
      clearTimeout(timer);
      stopListening?.();
      stopListening = undefined;
    },
  };
}
