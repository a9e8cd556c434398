import { type AigwError, createSseEvent, type Endpoint, type SseEvent } from "@aigw/provider";
import { toAigwError } from "./errors.js";
import type { Exchange } from "./exchange.js";
import type { HookRunner } from "./hooks.js";
import type { UpstreamResult } from "./upstream-call.js";

const keepAliveEvent: SseEvent = {
  raw: ": keep-alive\n\n",
  data: "",
  json: () => undefined,
};

/** An error after a stream started, in the inbound protocol's own form (no [DONE] after it). */
export function streamErrorEvent(endpoint: Endpoint, error: AigwError): SseEvent {
  const { error: details } = error.toBody();
  if (endpoint === "responses") {
    return createSseEvent(
      { type: "error", code: details.code, message: details.message, param: details.param },
      "error",
    );
  }
  return createSseEvent({ error: details });
}

const idle = Symbol("idle");

/**
 * Pulls events from `iterator`, yielding `idle` whenever `intervalMs` pass without one, so the
 * caller can keep the client's connection alive. One timer per stream, refreshed per event.
 */
async function* withIdleTicks(
  iterator: AsyncIterator<SseEvent>,
  intervalMs: number,
): AsyncGenerator<SseEvent | typeof idle> {
  let wake: () => void = () => {};
  let tick = new Promise<typeof idle>((resolve) => {
    wake = () => resolve(idle);
  });
  const timer = setTimeout(() => wake(), intervalMs);
  try {
    let pending: Promise<IteratorResult<SseEvent>> | undefined;
    for (;;) {
      pending ??= iterator.next();
      const result = await Promise.race([pending, tick]);
      if (result === idle) {
        tick = new Promise((resolve) => {
          wake = () => resolve(idle);
        });
        timer.refresh();
        yield idle;
        continue;
      }
      pending = undefined;
      if (result.done) return;
      timer.refresh();
      yield result.value;
    }
  } finally {
    clearTimeout(timer);
  }
}

export interface StreamSettings {
  hooks: HookRunner;
  keepAliveIntervalMs: number;
  /** Called exactly once, when the stream is over for whatever reason. */
  finish(exchange: Exchange): void;
}

/**
 * The events a client receives: the upstream's as they come (through onChunk hooks), keep-alive
 * comments when idle, and on failure one error event in the endpoint's form. Its end (normal,
 * failed, or the client gone) finishes the request.
 */
export function streamToClient(
  exchange: Exchange,
  result: UpstreamResult & { stream: NonNullable<UpstreamResult["stream"]> },
  responseHeaders: Record<string, string>,
  settings: StreamSettings,
): AsyncIterable<SseEvent> {
  const events = clientEvents(exchange, result, responseHeaders, settings);
  let started = false;
  const iterator: AsyncIterator<SseEvent> = {
    next() {
      started = true;
      return events.next();
    },
    // An async generator closed before its first next() skips its finally, and with it the
    // request's finish: start it first (its first event is already in hand).
    async return(value?: unknown) {
      if (!started) {
        started = true;
        await events.next();
      }
      return events.return(value);
    },
  };
  return { [Symbol.asyncIterator]: () => iterator };
}

async function* clientEvents(
  exchange: Exchange,
  result: UpstreamResult & { stream: NonNullable<UpstreamResult["stream"]> },
  responseHeaders: Record<string, string>,
  settings: StreamSettings,
): AsyncGenerator<SseEvent> {
  const { context, cancellation, outcome } = exchange;
  const { hooks } = settings;
  const { iterator, first } = result.stream;
  const events = result.response.kind === "stream" ? result.response.events : undefined;
  const streamStarted = performance.now();
  let completed = false;
  try {
    const firstOut = hooks.hasChunkHooks ? hooks.onChunk(first, context) : first;
    if (firstOut) yield firstOut;
    for await (const item of withIdleTicks(iterator, settings.keepAliveIntervalMs)) {
      if (item === idle) {
        yield keepAliveEvent;
        continue;
      }
      const out = hooks.hasChunkHooks ? hooks.onChunk(item, context) : item;
      if (out) yield out;
    }
    completed = true;
    outcome.usage = events?.usage;
    // [DONE] is already out: a failing hook can no longer change what the client got.
    await hooks
      .afterResponse(
        {
          status: 200,
          headers: responseHeaders,
          body: undefined,
          stream: true,
          usage: outcome.usage,
        },
        context,
      )
      ?.catch((hookError: unknown) =>
        context.logger?.error(
          { requestId: context.requestId, err: hookError },
          "afterResponse hook failed",
        ),
      );
  } catch (error) {
    if (exchange.clientGone()) {
      outcome.status = 499;
      return;
    }
    const failure = toAigwError(cancellation.aborted ? cancellation.reason : error);
    outcome.status = failure.status;
    outcome.error = failure;
    await hooks.onError(failure, context);
    yield streamErrorEvent(context.endpoint ?? "chat/completions", failure);
  } finally {
    if (!completed) {
      cancellation.abort();
      iterator.return?.().catch(() => {});
      if (outcome.status === 200) outcome.status = 499;
    }
    outcome.upstreamMs += performance.now() - streamStarted;
    outcome.usage ??= events?.usage;
    settings.finish(exchange);
  }
}
