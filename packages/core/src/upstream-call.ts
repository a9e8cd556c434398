import {
  type AigwError,
  type CancelSignal,
  createStreamInterruptedError,
  isComment,
  jsonText,
  type ProviderRequest,
  type ProviderResponse,
  retryDelay,
  type SseEvent,
  setJsonFields,
  sleep,
} from "@aigw/provider";
import type { Span } from "@opentelemetry/api";
import { toAigwError } from "./errors.js";
import type { Exchange } from "./exchange.js";
import type { HookRunner } from "./hooks.js";
import type { Observer } from "./observe.js";
import type { ResolvedRoute, RouteTarget } from "./router.js";
import type { AttemptEvent, GatewayRequest, UpstreamCall } from "./types.js";

export interface UpstreamResult {
  response: ProviderResponse;
  providerName: string;
  attempts: number;
  /**
   * For streams: the iterator already started, and its first event; undefined when the
   * upstream had sent none within `firstEventWaitMs` (the iterator hands it on when it comes).
   */
  stream?: { iterator: AsyncIterator<SseEvent>; first: SseEvent | undefined } | undefined;
  /** Set by the response cache: `x-aigw-cache`, and `Age` on hits. */
  cacheHeaders?: Record<string, string> | undefined;
}

/**
 * The client's JSON text for what `target` is sent, when it can go as written: unchanged, or
 * with only its model rewritten in place (numbers past 2^53 and key order survive). Undefined
 * after a beforeRequest hook, which may have changed anything: then the body is serialised.
 */
function sentText(
  received: Uint8Array | string | undefined,
  call: UpstreamCall,
  body: Record<string, unknown>,
  hooked: boolean,
): Uint8Array | string | undefined {
  if (received === undefined || hooked) return undefined;
  if (body === call.body) return received;
  return setJsonFields(jsonText(received), { model: body.model });
}

/** What `target` is sent: a model a beforeRequest hook chose wins over the route's rewrite. */
export function targetRequest(
  call: UpstreamCall,
  requestedModel: string,
  target: RouteTarget,
): { model: string; body: Record<string, unknown> } {
  const model = call.model !== requestedModel ? call.model : (target.model ?? call.model);
  return { model, body: model === call.body.model ? call.body : { ...call.body, model } };
}

const timedOut = Symbol("timedOut");

/** `pending`'s result, or `timedOut` once `milliseconds` passed without it. */
function withinTime<T>(pending: Promise<T>, milliseconds: number): Promise<T | typeof timedOut> {
  return new Promise((resolve, reject) => {
    // Whole milliseconds: Node keeps one timer list per distinct duration, and a fraction would
    // make a new list (and a priority-queue insert) for every request.
    const timer = setTimeout(() => resolve(timedOut), Math.ceil(milliseconds));
    pending.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** An iterator that answers its first `next()` with `pending`, then goes on with `rest`. */
function startingWith(
  pending: Promise<IteratorResult<SseEvent>>,
  rest: AsyncIterator<SseEvent>,
): AsyncIterator<SseEvent> {
  // Nobody may be waiting for it yet: its failure is read when it is asked for.
  pending.catch(() => {});
  let head: Promise<IteratorResult<SseEvent>> | undefined = pending;
  return {
    next() {
      const next = head ?? rest.next();
      head = undefined;
      return next;
    },
    return: (value?: unknown) =>
      rest.return?.(value) ?? Promise.resolve({ done: true as const, value: undefined }),
  };
}

/**
 * The stream's first event with data, waited for at most `waitMs` (the upstream's comments do
 * not count). Without one by then, `first` is undefined: the client is answered while the
 * model thinks, and the iterator returned hands the event on when it comes.
 */
async function firstEvent(
  events: AsyncIterator<SseEvent>,
  waitMs: number,
  upstreamRequestId: string | undefined,
): Promise<{ iterator: AsyncIterator<SseEvent>; first: SseEvent | undefined }> {
  const until = performance.now() + waitMs;
  for (;;) {
    const pending = events.next();
    const result = await withinTime(pending, until - performance.now());
    if (result === timedOut) return { iterator: startingWith(pending, events), first: undefined };
    if (result.done) throw createStreamInterruptedError(upstreamRequestId);
    if (!isComment(result.value)) return { iterator: events, first: result.value };
  }
}

/**
 * The request loop: for each target of the route, attempts with backoff, all within the
 * first target's deadline. A stream's attempt succeeds once its first event arrived, or once
 * `firstEventWaitMs` passed after the upstream's 200 without one: failures before that are
 * retried like any other. `signal` cancels it: the request's own cancellation, or a coalesced
 * call's, which outlives the client that started it.
 */
export async function callUpstream(
  route: ResolvedRoute,
  call: UpstreamCall,
  requestedModel: string,
  request: GatewayRequest,
  exchange: Exchange,
  hooks: HookRunner,
  observer: Observer,
  signal: CancelSignal,
  firstEventWaitMs: number,
): Promise<UpstreamResult> {
  const { context, outcome } = exchange;
  const deadlineAt = Date.now() + (route.targets[0]?.provider.deadline ?? 600_000);
  let attempts = 0;
  let lastError: AigwError | undefined;

  /** Ends one attempt: its event for onAttempt hooks, its span and metrics, the outcome. */
  function recordAttempt(event: AttemptEvent, span: Span | undefined, streaming: boolean) {
    if (event.waitMs) outcome.waitMs += event.waitMs;
    outcome.attempts = attempts;
    outcome.providerName = event.providerName;
    hooks.onAttempt(event, context);
    observer.endAttempt(exchange, event, span, streaming);
  }

  for (const target of route.targets) {
    const { body } = targetRequest(call, requestedModel, target);
    // A target that speaks the client's protocol gets the client's own text; any other gets
    // the canonical shape (OpenAI's, which the OpenAI protocol's requests already are) and
    // its provider writes its own wire format from that.
    const native = target.provider.protocols.includes(exchange.protocol.name);
    const rawBody = native
      ? sentText(exchange.receivedJson, call, body, hooks.hasBeforeRequest)
      : undefined;
    for (let retry = 0; ; retry++) {
      attempts++;
      const attemptStarted = performance.now();
      let waitMs: number | undefined;
      const { traceparent, span } = observer.startAttempt(exchange, target.provider.kind);
      const ended = (status: number, streaming: boolean, error?: AigwError) =>
        recordAttempt(
          {
            providerName: target.providerName,
            attempt: attempts,
            status,
            durationMs: performance.now() - attemptStarted,
            waitMs,
            error,
          },
          span,
          streaming,
        );
      const providerRequest: ProviderRequest = {
        endpoint: call.endpoint,
        body,
        rawBody,
        headers: request.headers,
        requestId: context.requestId,
        traceparent,
        tracestate: context.traceContext.tracestate,
        dropUnsupportedParams: target.dropUnsupportedParams,
      };
      try {
        const response = await target.provider.send(providerRequest, {
          signal,
          deadlineAt,
          onWait: (milliseconds) => {
            waitMs = milliseconds;
          },
        });
        if (response.kind === "json") {
          observer.responseStarted(exchange, response.body);
          ended(response.status, false);
          return { response, providerName: target.providerName, attempts };
        }
        const { iterator, first } = await firstEvent(
          response.events[Symbol.asyncIterator](),
          firstEventWaitMs,
          response.upstreamRequestId,
        );
        if (first) observer.firstEvent(exchange, first.data);
        ended(response.status, true);
        return {
          response,
          providerName: target.providerName,
          attempts,
          stream: { iterator, first },
        };
      } catch (error) {
        if (signal.aborted) {
          span?.end();
          throw signal.reason;
        }
        const failure = toAigwError(error);
        const status = failure.upstreamStatus ?? failure.status;
        ended(status, false, failure);
        lastError = failure;
        if (retry >= target.provider.retry.maxRetries) break;
        const wait = retryDelay(failure, retry + 1, target.provider.retry, deadlineAt - Date.now());
        if (wait === undefined) break;
        await sleep(wait, signal);
      }
    }
  }
  if (!lastError) throw new TypeError(`route '${route.name}' has no targets`);
  // The gateway already spent the retries this error deserved; SDKs must not multiply them.
  lastError.headers["x-should-retry"] = "false";
  lastError.headers["x-aigw-attempts"] = `${attempts}`;
  throw lastError;
}
