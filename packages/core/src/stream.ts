import { type EventIterator, isComment, type SseEvent, type TokenUsage } from "@aigw/provider";
import { toAigwError } from "./errors.js";
import type { Exchange } from "./exchange.js";
import type { HookRunner } from "./hooks.js";
import type { UpstreamResult } from "./upstream-call.js";

const over: IteratorReturnResult<undefined> = { done: true, value: undefined };

type Waiter = {
  resolve(result: IteratorResult<SseEvent>): void;
  reject(error: unknown): void;
};

export interface StreamSettings {
  hooks: HookRunner;
  keepAliveIntervalMs: number;
  /** Called with the stream's first event with data, when it came after the headers went out. */
  lateFirstEvent(exchange: Exchange, event: SseEvent): void;
  /** An event to send after the upstream's last one, once it ended normally (the cost). */
  lastEvent?: ((exchange: Exchange) => SseEvent | undefined) | undefined;
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
): AsyncIterable<SseEvent> & { [Symbol.asyncIterator](): EventIterator } {
  const stream = new ClientStream(exchange, result, responseHeaders, settings);
  return { [Symbol.asyncIterator]: () => stream };
}

/**
 * One iterator over the upstream's, written by hand rather than as async generators layered
 * on each other: a stream's cost is per event, and each layer would add promises to every one.
 * One timer per stream covers the silences, re-armed only when it fires.
 *
 * States: "open" reads the upstream; "ending" waits for a last hook (afterResponse, onError)
 * and reads no more; "ended" has handed out its last event (an error event, if any), so the
 * next `next()` finishes; "finished" ran `finish` and answers every `next()` with the end.
 */
class ClientStream implements EventIterator {
  private readonly upstream: EventIterator;
  private readonly usageSource: { usage: TokenUsage | undefined } | undefined;
  private readonly streamStarted = performance.now();
  private lastEventAt = this.streamStarted;
  private idleTimer: NodeJS.Timeout | undefined;
  private state: "open" | "ending" | "ended" | "finished" = "open";
  private started = false;
  private seenData: boolean;
  /** An upstream read is in flight (it outlives a wait answered by a keep-alive). */
  private reading = false;
  private waiter: Waiter | undefined;
  /** What came while nobody waited (after a keep-alive answered the wait). */
  private arrived: IteratorResult<SseEvent> | undefined;
  /** Events an onChunk hook gave after the one handed out, to go next. */
  private queued: SseEvent[] = [];
  /** The upstream ended normally. */
  private completed = false;

  constructor(
    private readonly exchange: Exchange,
    private readonly result: UpstreamResult & {
      stream: NonNullable<UpstreamResult["stream"]>;
    },
    private readonly responseHeaders: Record<string, string>,
    private readonly settings: StreamSettings,
  ) {
    this.upstream = result.stream.iterator;
    this.usageSource = result.response.kind === "stream" ? result.response.events : undefined;
    this.seenData = result.stream.first !== undefined;
    this.poll =
      this.upstream.poll &&
      (() => {
        const ready = this.ready();
        return ready && this.sent(ready);
      });
  }

  next(): Promise<IteratorResult<SseEvent>> {
    if (this.state === "finished") return Promise.resolve(over);
    if (this.waiter) {
      return Promise.reject(new TypeError("next() was called before the last one settled"));
    }
    if (!this.started) {
      this.started = true;
      this.idleTimer = setTimeout(this.onIdle, this.settings.keepAliveIntervalMs);
      const { first } = this.result.stream;
      // The model is still thinking: the client gets its headers now, and a comment.
      if (!first) {
        const keepAlive = this.sent(this.exchange.protocol.keepAliveEvent);
        return Promise.resolve({ done: false, value: keepAlive });
      }
      const out = this.passHooks(first);
      if (out) return Promise.resolve({ done: false, value: this.sent(out) });
    }
    if (this.arrived) {
      const result = this.arrived;
      this.arrived = undefined;
      if (!result.done) this.sent(result.value);
      return Promise.resolve(result);
    }
    let ready: SseEvent | undefined;
    try {
      ready = this.ready();
    } catch (crash) {
      return Promise.reject(crash);
    }
    if (ready) return Promise.resolve({ done: false, value: this.sent(ready) });
    // A hook that failed above may have ended the stream already.
    if ((this.state as ClientStream["state"]) === "finished") return Promise.resolve(over);
    if (this.state === "ended") {
      this.finish();
      return Promise.resolve(over);
    }
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      if (this.state === "open" && !this.reading) this.read();
    });
  }

  /** Only when the upstream's iterator can poll: see EventIterator. */
  readonly poll: (() => SseEvent | undefined) | undefined;

  /**
   * The next event when it needs no wait: one an onChunk hook queued, or the rest of what the
   * upstream has read. Not while a read is in flight: its event goes first. What no path
   * expects (see onCrash) ends the stream and is thrown, so that the writer drops the
   * connection rather than end the answer as if it were whole.
   */
  private ready(): SseEvent | undefined {
    if (!this.started || this.arrived || this.waiter) return undefined;
    const queued = this.queued.shift();
    if (queued) return queued;
    try {
      while (this.state === "open" && !this.reading) {
        const event = this.upstream.poll?.();
        if (event === undefined) return undefined;
        const out = this.pass(event);
        if (out) {
          // The writer may have waited for drain: the client's last data is now.
          this.lastEventAt = performance.now();
          return out;
        }
      }
    } catch (error) {
      this.onCrash(error);
      throw error;
    }
    return undefined;
  }

  return(): Promise<IteratorResult<SseEvent>> {
    this.finish();
    return Promise.resolve(over);
  }

  private read(): void {
    this.reading = true;
    // onResult catches its own failures (onFailure's are async): a `.catch()` after `.then()`
    // would cost every event one more promise.
    this.upstream.next().then(this.onResult, this.onFailure);
  }

  private readonly onResult = (result: IteratorResult<SseEvent>): void => {
    this.reading = false;
    if (this.state !== "open") return;
    try {
      this.lastEventAt = performance.now();
      if (result.done) {
        this.complete().catch(this.onCrash);
        return;
      }
      const out = this.pass(result.value);
      if (out) this.hand({ done: false, value: out });
      else if (this.state === "open") this.read();
    } catch (error) {
      this.onCrash(error);
    }
  };

  /** What an upstream event becomes for the client (undefined: dropped by a hook). */
  private pass(event: SseEvent): SseEvent | undefined {
    // The upstream's own comments keep the client's connection alive too; hooks see data only.
    if (isComment(event)) return this.exchange.protocol.keepAliveEvent;
    if (!this.seenData) {
      this.seenData = true;
      this.settings.lateFirstEvent(this.exchange, event);
    }
    return this.passHooks(event);
  }

  private readonly onFailure = (error: unknown): void => {
    this.reading = false;
    if (this.state === "open") this.fail(error).catch(this.onCrash);
  };

  /**
   * What no path expects (a throwing finish or metrics recorder): logged, the stream
   * ends for its reader, and nothing is left behind.
   */
  private readonly onCrash = (error: unknown): void => {
    const { context } = this.exchange;
    context.logger?.error({ requestId: context.requestId, err: error }, "stream failed");
    const waiter = this.waiter;
    this.waiter = undefined;
    try {
      this.finish();
    } catch {
      // Already logged once; the reader still gets its end below.
    }
    this.state = "finished";
    clearTimeout(this.idleTimer);
    waiter?.reject(error);
  };

  private readonly onIdle = (): void => {
    const interval = this.settings.keepAliveIntervalMs;
    const quiet = performance.now() - this.lastEventAt;
    if (quiet < interval) {
      // Events came meanwhile: the next comment is due an interval after the last of them.
      this.idleTimer = setTimeout(this.onIdle, Math.ceil(interval - quiet));
      return;
    }
    this.lastEventAt = performance.now();
    this.idleTimer = setTimeout(this.onIdle, interval);
    // A reader busy writing (waiting for drain) gets no comment: its socket is not idle.
    if (this.waiter && this.reading)
      this.hand({ done: false, value: this.exchange.protocol.keepAliveEvent });
  };

  /**
   * The event after onChunk hooks (undefined: dropped); when they gave several, the first, the
   * others queued. A failing hook fails the stream.
   */
  private passHooks(event: SseEvent): SseEvent | undefined {
    const { hooks } = this.settings;
    if (!hooks.hasChunkHooks) return event;
    try {
      const out = hooks.onChunk(event, this.exchange.context);
      if (!Array.isArray(out)) return out ?? undefined;
      this.queued.push(...out.slice(1));
      return out[0];
    } catch (error) {
      this.fail(error).catch(this.onCrash);
      return undefined;
    }
  }

  /** Hands the result to the reader waiting, or keeps it for the next `next()`. */
  private hand(result: IteratorResult<SseEvent>): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    if (!waiter) {
      this.arrived = result;
      return;
    }
    if (!result.done) this.sent(result.value);
    waiter.resolve(result);
  }

  /** The event, seen by onEventSent hooks and kept for onFinish ones on its way to the client. */
  private sent(event: SseEvent): SseEvent {
    const { hooks } = this.settings;
    if (hooks.hasEventSentHooks) hooks.onEventSent(event, this.exchange.context);
    this.exchange.streamBody?.add(event);
    return event;
  }

  private async complete(): Promise<void> {
    this.completed = true;
    this.state = "ending";
    const { outcome, context } = this.exchange;
    outcome.usage = this.usageSource?.usage;
    // [DONE] is already out: a failing hook can no longer change what the client got.
    await this.settings.hooks
      .afterResponse(
        {
          status: 200,
          headers: this.responseHeaders,
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
    const last = this.settings.lastEvent?.(this.exchange);
    if (!last || this.state !== "ending") {
      this.finish();
      return;
    }
    this.state = "ended";
    this.hand({ done: false, value: last });
  }

  /** Ends the stream with one error event in the endpoint's form (none if the client left). */
  private async fail(error: unknown): Promise<void> {
    if (this.state !== "open") return;
    this.state = "ending";
    const { outcome, cancellation, context } = this.exchange;
    if (this.exchange.clientGone()) {
      outcome.status = 499;
      this.finish();
      return;
    }
    const failure = toAigwError(cancellation.aborted ? cancellation.reason : error);
    outcome.status = failure.status;
    outcome.error = failure;
    await this.settings.hooks.onError(failure, context);
    if (this.state !== "ending") return;
    this.state = "ended";
    this.hand({
      done: false,
      value: this.exchange.protocol.streamErrorEvent(
        context.endpoint ?? "chat/completions",
        failure,
      ),
    });
  }

  /** Runs once, however the stream ends; a reader still waiting gets the end. */
  private finish(): void {
    if (this.state === "finished") return;
    this.state = "finished";
    clearTimeout(this.idleTimer);
    const { outcome, cancellation } = this.exchange;
    if (!this.completed) {
      cancellation.abort();
      this.upstream.return?.().catch(() => {});
      if (outcome.status === 200) outcome.status = 499;
    }
    outcome.upstreamMs += performance.now() - this.streamStarted;
    outcome.usage ??= this.usageSource?.usage;
    this.arrived = undefined;
    this.queued = [];
    this.hand(over);
    this.settings.finish(this.exchange);
  }
}
