import { type AigwError, createSseEvent, type Endpoint, type SseEvent } from "@aigw/provider";

export const keepAliveEvent: SseEvent = {
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
export async function* withIdleTicks(
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

export function isIdleTick(value: SseEvent | typeof idle): value is typeof idle {
  return value === idle;
}
