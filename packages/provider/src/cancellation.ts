import { EventEmitter } from "node:events";

const cancellationMarker = Symbol.for("aigw.cancellation");

/**
 * A cancellation signal that costs a fraction of an AbortController on Node 20: undici takes
 * it as its `signal` (an EventEmitter with `aborted` and `reason`), and it can be turned into
 * a standard AbortSignal on demand. Gateways make one per request, on the hot path.
 */
export class Cancellation extends EventEmitter {
  readonly [cancellationMarker] = true;
  aborted = false;
  reason: unknown = undefined;
  private controller: AbortController | undefined;

  abort(reason: unknown = new DOMException("This operation was aborted", "AbortError")): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.controller?.abort(reason);
    this.emit("abort");
  }

  throwIfAborted(): void {
    if (this.aborted) throw this.reason;
  }

  /**
   * Whether `value` is a Cancellation, from this copy of the package or another (the ESM and
   * CommonJS builds, or two installed versions, each have their own class): use this, not
   * `instanceof`.
   */
  static isInstance(value: unknown): value is Cancellation {
    return (
      typeof value === "object" &&
      value !== null &&
      (value as Record<symbol, unknown>)[cancellationMarker] === true
    );
  }

  /** A standard AbortSignal that fires with this cancellation; made on first use. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }
}

/** What cancels a call: a standard AbortSignal, or the cheaper Cancellation. */
export type CancelSignal = AbortSignal | Cancellation;

/** Calls `listener` once when `signal` fires; returns the function that stops listening. */
export function onAbort(signal: CancelSignal, listener: () => void): () => void {
  if (Cancellation.isInstance(signal)) {
    signal.once("abort", listener);
    return () => signal.off("abort", listener);
  }
  signal.addEventListener("abort", listener, { once: true });
  return () => signal.removeEventListener("abort", listener);
}
