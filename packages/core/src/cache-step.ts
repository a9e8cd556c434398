import { type Cache, cacheKey, createCoalescer } from "@aigw/cache";
import {
  AigwError,
  type Cancellation,
  type CancelSignal,
  impreciseNumbers,
  jsonText,
  type SseEvent,
  type TokenUsage,
} from "@aigw/provider";
import { invalidRequest } from "./errors.js";
import type { Exchange } from "./exchange.js";
import type { StreamRecording } from "./protocols/protocol.js";
import type { ModelRouteOptions, ResolvedRoute } from "./router.js";
import type { GatewayMetrics, GatewayRequest, UpstreamCall } from "./types.js";
import type { UpstreamResult } from "./upstream-call.js";

export interface GatewayCacheOptions {
  /** Where answers are kept: `createMemoryCache()` or `await createRedisCache()` of @aigw/cache. */
  store: Cache;
  /** Caches every route that does not say otherwise; false: only routes with `cache` set. */
  enabled?: boolean;
  /** Time to live of an entry (5 min). */
  ttlMs?: number;
  /** Longest time to live a request may ask for with `x-aigw-cache-ttl` (default: `ttlMs`). */
  maxTtlMs?: number;
  /** One entry for every tenant instead of one per tenant. */
  shared?: boolean;
  /** Charges hits against quotas and token budgets like upstream answers. */
  chargeHits?: boolean;
  /** Most requests waiting on one coalesced upstream call; later ones make their own (1,000). */
  maxWaiters?: number;
  /**
   * Largest answer stored, in bytes (16 MiB). A stream is no longer gathered once its events
   * pass that many characters, so a stream that never ends costs the cache no memory; requests
   * waiting on it get 502.
   */
  maxEntryBytes?: number;
}

/** A route's `cache`: on or off, or on with its own settings (over the gateway's). */
export type RouteCacheOptions = boolean | { ttlMs?: number; maxTtlMs?: number; shared?: boolean };

export type CacheStatus = "HIT" | "MISS" | "BYPASS";

interface CachePolicy {
  ttlMs: number;
  maxTtlMs: number;
  shared: boolean;
}

/** The request loop, cancelled by `signal`. */
type UpstreamLoop = (signal: CancelSignal) => Promise<UpstreamResult>;

export interface ResponseCache {
  readonly chargeHits: boolean;
  /** The answer from the cache, from a coalesced call, or from `loop` (stored once complete). */
  serve(
    exchange: Exchange,
    request: GatewayRequest,
    route: ResolvedRoute,
    call: UpstreamCall,
    loop: UpstreamLoop,
  ): Promise<UpstreamResult>;
}

// The tenant part of a shared route's keys: identifying a request never yields an empty tenant.
const sharedScope = "";

function positiveInteger(field: string, value: number | undefined): void {
  if (value !== undefined && (!Number.isSafeInteger(value) || value <= 0)) {
    throw new TypeError(`${field} must be a positive integer, got ${String(value)}`);
  }
}

function createPolicies(
  options: GatewayCacheOptions,
  models: Record<string, ModelRouteOptions>,
): Map<string, CachePolicy | undefined> {
  positiveInteger("cache.ttlMs", options.ttlMs);
  positiveInteger("cache.maxTtlMs", options.maxTtlMs);
  const policies = new Map<string, CachePolicy | undefined>();
  for (const [name, route] of Object.entries(models)) {
    const setting = route.cache ?? options.enabled ?? true;
    if (setting === false) {
      policies.set(name, undefined);
      continue;
    }
    const own = setting === true ? {} : setting;
    positiveInteger(`models.${name}.cache.ttlMs`, own.ttlMs);
    positiveInteger(`models.${name}.cache.maxTtlMs`, own.maxTtlMs);
    const ttlMs = own.ttlMs ?? options.ttlMs ?? 300_000;
    const maxTtlMs = own.maxTtlMs ?? options.maxTtlMs ?? ttlMs;
    if (maxTtlMs < ttlMs) {
      throw new TypeError(`models.${name}.cache: ttlMs ${ttlMs} exceeds maxTtlMs ${maxTtlMs}`);
    }
    policies.set(name, { ttlMs, maxTtlMs, shared: own.shared ?? options.shared ?? false });
  }
  return policies;
}

function headerText(request: GatewayRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(",") : value;
}

function cacheControl(request: GatewayRequest): { noStore: boolean; noCache: boolean } {
  const directives = (headerText(request, "cache-control") ?? "")
    .toLowerCase()
    .split(",")
    .map((directive) => directive.trim());
  return { noStore: directives.includes("no-store"), noCache: directives.includes("no-cache") };
}

/** The entry's time to live: the route's, or the request's `x-aigw-cache-ttl`, capped. */
function entryTtlMs(request: GatewayRequest, policy: CachePolicy): number {
  const asked = headerText(request, "x-aigw-cache-ttl");
  if (asked === undefined) return policy.ttlMs;
  if (!/^\d{1,9}$/.test(asked.trim()) || Number(asked) === 0) {
    throw invalidRequest(
      "Invalid 'x-aigw-cache-ttl' header: expected a positive whole number of seconds.",
      null,
      "invalid_cache_ttl",
    );
  }
  return Math.min(Number(asked) * 1000, policy.maxTtlMs);
}

function streamCarriedError() {
  return new AigwError("The upstream's stream ended with an error.", {
    status: 502,
    type: "upstream_error",
    code: "stream_error",
  });
}

function answerTooLarge(maxEntryBytes: number) {
  return new AigwError(
    `The shared answer exceeded the cache's limit of ${maxEntryBytes} bytes; retry with 'Cache-Control: no-cache'.`,
    { status: 502, type: "upstream_error", code: "answer_too_large", isRetryable: true },
  );
}

/** Rejects when `client` goes away; `work` goes on for whoever else needs it. */
function untilGone<T>(work: Promise<T>, client: Cancellation): Promise<T> {
  if (client.aborted) return Promise.reject(client.reason);
  return new Promise((resolve, reject) => {
    const gone = () => reject(client.reason);
    client.once("abort", gone);
    work.then(
      (value) => {
        client.off("abort", gone);
        resolve(value);
      },
      (error: unknown) => {
        client.off("abort", gone);
        reject(error);
      },
    );
  });
}

/**
 * The leader's view of an upstream stream that is also being recorded. Each event is merged
 * into the answer as it passes; once the leader's client is gone (while others wait on the
 * answer), the rest of the stream is read without it, so the answer is still completed.
 */
function recordStream(
  upstream: AsyncIterator<SseEvent>,
  first: SseEvent | undefined,
  recording: StreamRecording,
  maxEntryBytes: number,
  usage: () => TokenUsage | undefined,
  client: Cancellation,
  settle: (answer: Uint8Array | undefined, error?: unknown) => void,
): AsyncIterator<SseEvent> {
  const assembler = recording.assemble(maxEntryBytes);
  if (first) assembler.add(first);
  let pending: Promise<IteratorResult<SseEvent>> | undefined;
  let unstorable = false;
  const pull = () => {
    pending = upstream.next().then(
      (result) => {
        if (unstorable) return result;
        try {
          if (result.done) {
            client.off("abort", detach);
            const answer = assembler.finish(usage());
            const failure = assembler.overflowed
              ? answerTooLarge(maxEntryBytes)
              : streamCarriedError();
            settle(answer, answer ? undefined : failure);
          } else {
            assembler.add(result.value);
          }
        } catch (error) {
          // An answer the assembler cannot hold is not stored; its client still gets its stream.
          unstorable = true;
          settle(undefined, error);
        }
        return result;
      },
      (error: unknown) => {
        client.off("abort", detach);
        settle(undefined, error);
        throw error;
      },
    );
    return pending;
  };
  let detached = false;
  function detach() {
    if (detached) return;
    detached = true;
    (async () => {
      let result = await pending;
      while (!result?.done) result = await pull();
    })().catch(() => {});
  }
  if (client.aborted) detach();
  else client.once("abort", detach);
  return {
    next: () => (detached ? Promise.reject(client.reason) : untilGone(pull(), client)),
    return: () => {
      detach();
      return Promise.resolve({ done: true, value: undefined });
    },
  };
}

/** The gateway's response cache; undefined without the `cache` option. */
export function createResponseCache(
  options: GatewayCacheOptions | undefined,
  models: Record<string, ModelRouteOptions>,
  metrics: GatewayMetrics | undefined,
): ResponseCache | undefined {
  if (!options) {
    const cached = Object.keys(models).find((name) => models[name]?.cache !== undefined);
    if (cached) throw new TypeError(`models.${cached}.cache: needs the gateway's cache option`);
    return undefined;
  }
  const { store } = options;
  const policies = createPolicies(options, models);
  const coalescer = createCoalescer<Uint8Array>({ maxWaiters: options.maxWaiters ?? 1000 });
  const maxEntryBytes = options.maxEntryBytes ?? 16 * 2 ** 20;
  positiveInteger("cache.maxEntryBytes", maxEntryBytes);

  const lookup = (key: string) =>
    store.get(key).catch(() => {
      metrics?.storeError({ store: "cache" });
      return undefined;
    });
  const save = (key: string, answer: Uint8Array, ttlMs: number) => {
    if (answer.byteLength > maxEntryBytes) return;
    store.set(key, answer, { ttlMs }).catch(() => metrics?.storeError({ store: "cache" }));
  };

  /** A stored or coalesced answer, in the form the client asked for. */
  function fromCache(
    exchange: Exchange,
    answer: Uint8Array,
    storedAt: number,
    call: UpstreamCall,
    providerName: string,
  ): UpstreamResult {
    const age = Math.max(0, Math.floor((Date.now() - storedAt) / 1000));
    const cacheHeaders = { "x-aigw-cache": "HIT", age: `${age}` };
    const { protocol } = exchange;
    const usage = protocol.readUsage(answer);
    const headers = { "content-type": "application/json" };
    const recording = protocol.streamRecording(call.endpoint);
    if (call.body.stream !== true || !recording) {
      return {
        response: { kind: "json", status: 200, headers, body: answer, usage },
        providerName,
        attempts: 0,
        cacheHeaders,
      };
    }
    const [first, ...rest] = recording.replay(answer, call.body) as [SseEvent, ...SseEvent[]];
    const replay = (async function* () {
      yield* rest;
    })();
    return {
      response: {
        kind: "stream",
        status: 200,
        headers,
        events: { usage, [Symbol.asyncIterator]: () => replay },
      },
      providerName,
      attempts: 0,
      stream: { iterator: replay, first },
      cacheHeaders,
    };
  }

  /**
   * Runs the request loop for everyone waiting on `key`: `started` gets the leader's own
   * answer as soon as it begins; the promise resolves with the complete answer, stored.
   */
  async function lead(
    exchange: Exchange,
    call: UpstreamCall,
    loop: UpstreamLoop,
    signal: CancelSignal,
    keep: (answer: Uint8Array) => void,
    started: (result: UpstreamResult) => void,
  ): Promise<Uint8Array> {
    const result = await loop(signal);
    const { response } = result;
    if (response.kind === "json") {
      started(result);
      keep(response.body);
      return response.body;
    }
    const recording = exchange.protocol.streamRecording(call.endpoint);
    if (!result.stream || !recording) throw new TypeError("unexpected upstream stream");
    const { events } = response;
    const { iterator, first } = result.stream;
    return new Promise((resolve, reject) => {
      const recorded = recordStream(
        iterator,
        first,
        recording,
        maxEntryBytes,
        () => events.usage,
        exchange.cancellation,
        (answer, error) => {
          if (!answer) return reject(error);
          keep(answer);
          resolve(answer);
        },
      );
      started({ ...result, stream: { iterator: recorded, first } });
    });
  }

  return {
    chargeHits: options.chargeHits ?? false,
    async serve(exchange, request, route, call, loop) {
      const { outcome, cancellation } = exchange;
      const policy = policies.get(route.name);
      const control = cacheControl(request);
      const target = route.targets[0];
      const { protocol } = exchange;
      const unrecorded = call.body.stream === true && !protocol.streamRecording(call.endpoint);
      if (
        !policy ||
        !target ||
        !protocol.cachedEndpoints.has(call.endpoint) ||
        unrecorded ||
        control.noStore
      ) {
        outcome.cache = "BYPASS";
        return { ...(await loop(cancellation)), cacheHeaders: { "x-aigw-cache": "BYPASS" } };
      }
      const ttlMs = entryTtlMs(request, policy);
      const received = exchange.receivedJson;
      // The route and what the client asked: whichever target answers, the answer is the same.
      const key = cacheKey({
        tenant: policy.shared ? sharedScope : exchange.tenant.id,
        endpoint: call.endpoint,
        upstream: route.name,
        model: call.model,
        body: call.body,
        deliveryFields: protocol.deliveryFields,
        exactNumbers: received === undefined ? undefined : impreciseNumbers(jsonText(received)),
      });
      const recordLookup = (hit: boolean) => {
        outcome.cache = hit ? "HIT" : "MISS";
        metrics?.cacheLookup({ endpoint: exchange.endpointLabel, hit });
      };
      // no-cache asks for a fresh answer: it neither reads the cache nor joins a call in flight.
      const lookingUp = !control.noCache;
      if (lookingUp) {
        const entry = await lookup(key);
        if (entry) {
          recordLookup(true);
          return fromCache(exchange, entry.value, entry.storedAt, call, target.providerName);
        }
      }

      let started: (result: UpstreamResult) => void = () => {};
      const leading = new Promise<UpstreamResult>((resolve) => {
        started = resolve;
      });
      const leader = (signal: CancelSignal) =>
        lead(exchange, call, loop, signal, (answer) => save(key, answer, ttlMs), started);
      const answer = lookingUp
        ? coalescer.run(key, leader, { signal: cancellation })
        : leader(cancellation);
      let served: UpstreamResult | Uint8Array;
      try {
        // A leader's own answer starts before the complete one, which is what the others get.
        served = await Promise.race([leading, answer]);
      } catch (error) {
        if (lookingUp) recordLookup(false);
        throw error;
      }
      if (served instanceof Uint8Array) {
        recordLookup(true);
        return fromCache(exchange, served, Date.now(), call, target.providerName);
      }
      const status: CacheStatus = lookingUp ? "MISS" : "BYPASS";
      if (lookingUp) recordLookup(false);
      else outcome.cache = status;
      return { ...served, cacheHeaders: { "x-aigw-cache": status } };
    },
  };
}
