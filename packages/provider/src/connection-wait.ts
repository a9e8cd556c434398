import type { Dispatcher } from "undici";
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

export interface WaitWatch {
  /** From `onRequestStart`: false when the request was given up on while it waited (it is aborted). */
  sent(controller: Dispatcher.DispatchController): boolean;
  /** The response head arrived, or the request ended: the deadline no longer applies. */
  stop(): void;
}

/**
 * Watches one request from dispatch: reports its wait for a connection, and enforces
 * `headersDeadline` with one timer. A request still waiting at the deadline is given up on
 * (`giveUp` gets a 504 error) and aborted when the pool hands it a connection; one already
 * sent is aborted with that error.
 */
export function watchConnectionWait(
  wait: ConnectionWait,
  giveUp: (error: AigwError) => void,
): WaitWatch {
  const dispatchedAt = performance.now();
  let controller: Dispatcher.DispatchController | undefined;
  let gaveUp = false;
  const timeout = () =>
    createTimeoutError(
      controller
        ? "The upstream sent no response headers in time"
        : "No connection to the upstream was free in time",
    );
  const timer =
    wait.headersDeadline === undefined
      ? undefined
      : setTimeout(() => {
          if (controller) {
            controller.abort(timeout());
            return;
          }
          gaveUp = true;
          wait.onWait?.(performance.now() - dispatchedAt);
          giveUp(timeout());
        }, wait.headersDeadline - dispatchedAt);
  return {
    sent(requestController) {
      if (gaveUp) {
        requestController.abort(timeout());
        return false;
      }
      // undici may send a request again on a fresh connection: the first wait is the one.
      if (!controller) wait.onWait?.(performance.now() - dispatchedAt);
      controller = requestController;
      return true;
    },
    stop() {
      clearTimeout(timer);
    },
  };
}
