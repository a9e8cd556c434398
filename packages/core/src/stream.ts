import {
  type AigwError,
  createSseEvent,
  type Endpoint,
  isComment,
  keepAliveEvent,
  type SseEvent,
} from "@aigw/provider";
import { toAigwError } from "./errors.js";
import type { Exchange } from "./exchange.js";
import type { HookRunner } from "./hooks.js";
import type { UpstreamResult } from "./upstream-call.js";

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

type Waiter = {
  resolve(value: IteratorResult<SseEvent> | typeof idle): void;
  reject(error: unknown): void;
};

/**
 * Waits for `iterator`'s next event, or for `intervalMs` without one (then `idle`, and the
 * same event is waited for again), so the caller can keep the client's connection alive. One
 * timer per stream, refreshed per event, and one promise per wait: nothing piles up on a
 * stream that never goes idle.
 */
function createIdleWait(iterator: AsyncIterator<SseEvent>, intervalMs: number) {
  let waiter: Waiter | undefined;
  let pending = false;
  // What arrived while nobody waited (after an idle tick, or a slow reader).
  let arrived: { result: IteratorResult<SseEvent> } | { error: unknown } | undefined;
  let ticked = false;
  const timer = setTimeout(() => {
    const current = waiter;
    waiter = undefined;
    if (current) current.resolve(idle);
    else ticked = true;
  }, intervalMs);
  const settle = (outcome: { result: IteratorResult<SseEvent> } | { error: unknown }) => {
    pending = false;
    timer.refresh();
    const current = waiter;
    waiter = undefined;
    if (!current) arrived = outcome;
    else if ("result" in outcome) current.resolve(outcome.result);
    else current.reject(outcome.error);
  };
  return {
    next(): Promise<IteratorResult<SseEvent> | typeof idle> {
      if (arrived) {
        const outcome = arrived;
        arrived = undefined;
        return "result" in outcome
          ? Promise.resolve(outcome.result)
          : Promise.reject(outcome.error);
      }
      if (ticked) {
        ticked = false;
        return Promise.resolve(idle);
      }
      if (!pending) {
        pending = true;
        iterator.next().then(
          (result) => settle({ result }),
          (error: unknown) => settle({ error }),
        );
      }
      return new Promise((resolve, reject) => {
        waiter = { resolve, reject };
      });
    },
    /** After an idle tick: the next tick is a whole interval away. */
    rearm() {
      timer.refresh();
    },
    stop() {
      clearTimeout(timer);
    },
  };
}

export interface StreamSettings {
  hooks: HookRunner;
  keepAliveIntervalMs: number;
  /** Called with the stream's first event with data, when it came after the headers went out. */
  lateFirstEvent(exchange: Exchange, event: SseEvent): void;
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
  const waiting = createIdleWait(iterator, settings.keepAliveIntervalMs);
  let completed = false;
  try {
    let seenData = first !== undefined;
    if (first) {
      const firstOut = hooks.hasChunkHooks ? hooks.onChunk(first, context) : first;
      if (firstOut) yield firstOut;
    } else {
      // The model is still thinking: the client gets its headers now, and a comment.
      yield keepAliveEvent;
    }
    for (;;) {
      const item = await waiting.next();
      if (item === idle) {
        waiting.rearm();
        yield keepAliveEvent;
        continue;
      }
      if (item.done) break;
      const event = item.value;
      // The upstream's own comments keep the client's connection alive too; hooks see data only.
      if (isComment(event)) {
        yield keepAliveEvent;
        continue;
      }
      if (!seenData) {
        seenData = true;
        settings.lateFirstEvent(exchange, event);
      }
      const out = hooks.hasChunkHooks ? hooks.onChunk(event, context) : event;
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
    waiting.stop();
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
