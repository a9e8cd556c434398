import { assertPositiveInteger } from "./assert.js";

/**
 * What a waiter gives up on: a standard AbortSignal, or any emitter with `aborted` and
 * `reason` that emits "abort" (such as the Cancellation of @aigw/provider).
 */
export type WaiterSignal =
  | AbortSignal
  | {
      readonly aborted: boolean;
      readonly reason: unknown;
      once(event: "abort", listener: () => void): unknown;
      off(event: "abort", listener: () => void): unknown;
    };

export interface CoalescerOptions {
  /**
   * Most callers waiting on one call in flight, not counting the caller that started it.
   * Callers beyond it run their own call. Default 1,000.
   */
  maxWaiters?: number;
}

export interface CoalescerRunOptions {
  /** When it fires, this caller stops waiting and its promise rejects with the reason. */
  signal?: WaiterSignal | undefined;
}

export interface Coalescer<T> {
  /**
   * Runs `leader` for the first caller of `key`; later callers of the same key while it is in
   * flight get its result (the same value, not a copy) or its error. The leader's signal fires
   * only when every caller waiting on it has given up.
   */
  run(
    key: string,
    leader: (signal: AbortSignal) => Promise<T>,
    options?: CoalescerRunOptions,
  ): Promise<T>;
  /** Keys with a call in flight. */
  readonly size: number;
}

interface Flight<T> {
  key: string;
  result: Promise<T>;
  controller: AbortController;
  /** Callers still waiting, the starting caller included. */
  waiting: number;
  /** Callers still waiting that joined after the start. */
  followers: number;
}

function onAbort(signal: WaiterSignal, listener: () => void): () => void {
  if ("addEventListener" in signal) {
    signal.addEventListener("abort", listener, { once: true });
    return () => signal.removeEventListener("abort", listener);
  }
  signal.once("abort", listener);
  return () => signal.off("abort", listener);
}

/** Coalesces identical concurrent calls in this process, such as upstream calls on cache misses. */
export function createCoalescer<T>(options: CoalescerOptions = {}): Coalescer<T> {
  const maxWaiters = options.maxWaiters ?? 1000;
  assertPositiveInteger("maxWaiters", maxWaiters);
  const flights = new Map<string, Flight<T>>();

  const forget = (flight: Flight<T>) => {
    if (flights.get(flight.key) === flight) flights.delete(flight.key);
  };

  const launch = (key: string, leader: (signal: AbortSignal) => Promise<T>): Flight<T> => {
    const controller = new AbortController();
    const result = Promise.resolve().then(() => leader(controller.signal));
    const flight: Flight<T> = { key, result, controller, waiting: 0, followers: 0 };
    // Also observes the result of a cancelled call, which nobody waits for any more.
    result.then(
      () => forget(flight),
      () => forget(flight),
    );
    return flight;
  };

  const wait = (flight: Flight<T>, signal: WaiterSignal | undefined, isFollower: boolean) => {
    flight.waiting += 1;
    if (isFollower) flight.followers += 1;
    if (signal === undefined) return flight.result;
    return new Promise<T>((resolve, reject) => {
      const stopListening = onAbort(signal, () => {
        flight.waiting -= 1;
        if (isFollower) flight.followers -= 1;
        reject(signal.reason);
        if (flight.waiting === 0) {
          forget(flight);
          flight.controller.abort(signal.reason);
        }
      });
      flight.result.then(
        (value) => {
          stopListening();
          resolve(value);
        },
        (error: unknown) => {
          stopListening();
          reject(error);
        },
      );
    });
  };

  return {
    run(key, leader, runOptions = {}) {
      const signal = runOptions.signal;
      if (signal?.aborted) return Promise.reject(signal.reason);
      const current = flights.get(key);
      if (current !== undefined && current.followers < maxWaiters) {
        return wait(current, signal, true);
      }
      const flight = launch(key, leader);
      if (current === undefined) flights.set(key, flight);
      return wait(flight, signal, false);
    },
    get size() {
      return flights.size;
    },
  };
}
