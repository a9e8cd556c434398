import type { RequestContext } from "./types.js";

/** One hook's value for each request, kept on the request's context: see `requestSlot`. */
export interface RequestSlot<T> {
  get(context: RequestContext): T | undefined;
  set(context: RequestContext, value: T): void;
}

/**
 * A place on `context.state` for a hook's own per-request value, under a symbol of its own and
 * not enumerable: JSON, `util.inspect` and spreads of the state leave it out (it may hold a
 * prompt's text), though code that asks for symbol keys finds it, as hooks share one process.
 * Cheaper than a WeakMap keyed by contexts, whose entries the garbage collector must trace for
 * every request.
 */
export function requestSlot<T>(description: string): RequestSlot<T> {
  const key = Symbol(description);
  return {
    get: (context) => (context.state as Record<symbol, T | undefined>)[key],
    set(context, value) {
      Object.defineProperty(context.state, key, { value, writable: true, configurable: true });
    },
  };
}
