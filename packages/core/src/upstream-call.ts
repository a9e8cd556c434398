import type { Attempt } from "@aigw/balancer";
import {
  AigwError,
  type CancelSignal,
  createStreamInterruptedError,
  DEFAULT_RETRY,
  type EventIterator,
  isComment,
  jsonText,
  type ProviderRequest,
  type ProviderResponse,
  type ProviderStream,
  retryDelay,
  type SseEvent,
  setJsonFields,
  sleep,
  type TokenUsage,
} from "@aigw/provider";
import type { Admission } from "@aigw/ratelimit";
import type { Span } from "@opentelemetry/api";
import type { Costing } from "./cost.js";
import { toAigwError } from "./errors.js";
import type { Exchange, HeldReservation, Outcome } from "./exchange.js";
import type { HookRunner } from "./hooks.js";
import { modelNotPriced, tokenNeed } from "./limits.js";
import type { Observer } from "./observe.js";
import type { CanonicalRequest } from "./protocols/protocol.js";
import type { ModelRouter, ResolvedRoute, RouteTarget } from "./router.js";
import type { AttemptEvent, GatewayRequest, UpstreamCall } from "./types.js";

export interface UpstreamResult {
  response: ProviderResponse;
  providerName: string;
  attempts: number;
  /**
   * For streams: the iterator already started, and its first event; undefined when the
   * upstream had sent none within `firstEventWaitMs` (the iterator hands it on when it comes).
   */
  stream?: { iterator: EventIterator; first: SseEvent | undefined } | undefined;
  /** A stream's attempt, ended when the stream ends (its target counts it in flight till then). */
  attempt?: Attempt | undefined;
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
  rest: EventIterator,
): EventIterator {
  // Nobody may be waiting for it yet: its failure is read when it is asked for.
  pending.catch(() => {});
  let head: Promise<IteratorResult<SseEvent>> | undefined = pending;
  return {
    next() {
      const next = head ?? rest.next();
      head = undefined;
      return next;
    },
    poll: rest.poll && (() => (head ? undefined : rest.poll?.())),
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
  events: EventIterator,
  waitMs: number,
  upstreamRequestId: string | undefined,
): Promise<{ iterator: EventIterator; first: SseEvent | undefined }> {
  const until = performance.now() + waitMs;
  for (;;) {
    const pending = events.next();
    const result = await withinTime(pending, until - performance.now());
    if (result === timedOut) return { iterator: startingWith(pending, events), first: undefined };
    if (result.done) throw createStreamInterruptedError(upstreamRequestId);
    if (!isComment(result.value)) return { iterator: events, first: result.value };
  }
}

/** What the request loop needs besides the request: set once per gateway. */
export interface LoopSettings {
  hooks: HookRunner;
  observer: Observer;
  /** Finds the routes a route falls back to. */
  router: ModelRouter;
  firstEventWaitMs: number;
  /** Prices what answers, and what a target with a budget may spend (off without prices). */
  costing: Costing | undefined;
}

/** How a failed attempt bears on the rest of the request. */
type FailureKind = "target" | "unsupported" | "context" | "request";

// Codes of refusals a provider makes before sending anything: a request it cannot translate.
const unsupportedCodes = new Set(["unsupported_parameter", "unsupported_endpoint"]);

// Codes with which upstreams say a prompt does not fit the model's context window.
const contextCodes = new Set(["context_length_exceeded", "string_above_max_length"]);

/**
 * "target": the target could not answer (connect errors, timeouts, 408, 429, 5xx, 529, or a
 * 401/403/404 for the gateway's own credentials or configured model): another may.
 * "unsupported": its provider cannot translate the request (another target may). "context":
 * the prompt is too long for this model. "request": the request itself is at fault.
 */
function failureKind(error: AigwError): FailureKind {
  const status = error.upstreamStatus;
  if (status === undefined && error.code !== null && unsupportedCodes.has(error.code)) {
    return "unsupported";
  }
  if (error.isRetryable || status === 401 || status === 403 || status === 404) return "target";
  if (
    (error.code !== null && contextCodes.has(error.code)) ||
    /prompt is too long|context (length|window)|maximum context/i.test(error.message)
  ) {
    return "context";
  }
  return "request";
}

function allTargetsOut(retryAt: number | undefined, route: string): AigwError {
  const retryAfterMs = retryAt === undefined ? undefined : Math.max(0, retryAt - Date.now());
  const seconds =
    retryAfterMs === undefined ? undefined : Math.max(1, Math.ceil(retryAfterMs / 1000));
  return new AigwError(
    `Every upstream of model route '${route}' is out of rotation after failures${seconds === undefined ? "" : `; retry in ${seconds} s`}.`,
    {
      status: 503,
      type: "upstream_error",
      code: "no_healthy_upstream",
      isRetryable: true,
      retryAfterMs,
      headers: seconds === undefined ? {} : { "retry-after": `${seconds}` },
    },
  );
}

/** An answer of the canonical shape, as the client's protocol has it. */
function inClientProtocol(
  response: ProviderResponse,
  canonical: CanonicalRequest,
): ProviderResponse {
  if (response.kind === "json") return { ...response, body: canonical.answer(response.body) };
  return { ...response, events: new TranslatedEvents(response.events, canonical.stream()) };
}

/**
 * A stream's events in the client's protocol. A class: V8 builds an object literal holding a
 * getter or a computed key (`usage`, `Symbol.asyncIterator`) through its runtime, about
 * 0.5 µs a stream.
 */
class TranslatedEvents implements ProviderStream {
  constructor(
    private readonly events: ProviderStream,
    private readonly translator: ReturnType<CanonicalRequest["stream"]>,
  ) {}

  get usage(): TokenUsage | undefined {
    return this.events.usage;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<SseEvent> {
    for await (const event of this.events) {
      if (isComment(event)) {
        yield event;
        continue;
      }
      let chunk: unknown;
      try {
        chunk = event.data === "[DONE]" ? undefined : event.json();
      } catch {
        continue;
      }
      yield* this.translator.push(chunk);
    }
    yield* this.translator.end();
  }
}

function cannotSpeak(provider: string, protocol: string): AigwError {
  return new AigwError(
    `Provider '${provider}' does not speak the ${protocol} protocol this request is in; route it to a provider that does.`,
    { status: 400, type: "invalid_request_error", code: "unsupported_endpoint" },
  );
}

function targetsAtCapacity(until: number, route: string): AigwError {
  const seconds = Math.max(1, Math.ceil((until - Date.now()) / 1000));
  return new AigwError(
    `Every upstream of model route '${route}' is at its own rate limit; retry in ${seconds} s.`,
    {
      status: 429,
      type: "rate_limit_error",
      code: "upstream_capacity_exceeded",
      isRetryable: true,
      retryAfterMs: seconds * 1000,
      headers: { "retry-after": `${seconds}` },
    },
  );
}

function targetBudgetsSpent(route: string, resetMs: number): AigwError {
  return new AigwError(
    `The budgets of the upstreams of model route '${route}' have no room for this request this period; the soonest resets in ${Math.ceil(resetMs / 1000)} s. A lower max_tokens lowers what it may cost.`,
    {
      status: 429,
      type: "insufficient_quota",
      code: "insufficient_quota",
      headers: { "x-should-retry": "false" },
    },
  );
}

/**
 * The request loop. Each attempt goes to a target its route's balancer picks, skipping the
 * ones this request already tried; once a route has none left, its fallback routes follow in
 * order, and after them the last route's targets are tried again, after a backoff, for
 * failures worth retrying. A prompt too long for its model goes to the route's context
 * fallbacks. One budget, the first route's `maxAttempts`, counts every upstream call, all
 * within the first target's deadline. A stream's attempt succeeds once its first event
 * arrived, or once `firstEventWaitMs` passed after the upstream's 200 without one: failures
 * before that move on like any other. `signal` cancels it: the request's own cancellation,
 * or a coalesced call's, which outlives the client that started it.
 */
export async function callUpstream(
  route: ResolvedRoute,
  call: UpstreamCall,
  requestedModel: string,
  request: GatewayRequest,
  exchange: Exchange,
  settings: LoopSettings,
  signal: CancelSignal,
): Promise<UpstreamResult> {
  const { hooks, observer, router, firstEventWaitMs, costing } = settings;
  const { context, outcome } = exchange;
  const deadlineAt = Date.now() + (route.targets[0]?.provider.deadline ?? 600_000);
  const attemptLimit = route.maxAttempts;
  let attempts = 0;
  let lastError: AigwError | undefined;
  let retries = 0;
  let current = route;
  /** The routes to go to once `current` has no target left, from `chain[chainIndex]` on. */
  let chain = route.fallbacks;
  let chainIndex = 0;
  /** The targets of `current` this request already tried (made on its first failure). */
  let tried: Set<string> | undefined;

  /** Ends one attempt: its event for onAttempt hooks, its span and metrics, the outcome. */
  function recordAttempt(event: AttemptEvent, span: Span | undefined, streaming: boolean) {
    if (event.waitMs) outcome.waitMs += event.waitMs;
    outcome.attempts = attempts;
    outcome.providerName = event.providerName;
    // A request makes at most `maxAttempts` (20 at most from a config file) of them.
    if (outcome.attemptLog.length < 64) {
      const entry: Outcome["attemptLog"][number] = {
        target: event.target,
        status: event.status,
        ms: Math.round(event.durationMs),
      };
      if (event.route !== route.name) entry.route = event.route;
      outcome.attemptLog.push(entry);
    }
    hooks.onAttempt(event, context);
    observer.endAttempt(exchange, event, span, streaming);
  }

  /** Moves to the next route of `chain`; false when there is none. */
  function nextRoute(): boolean {
    while (chainIndex < chain.length) {
      const next = router.route(chain[chainIndex++] as string);
      if (next) {
        current = next;
        tried = undefined;
        return true;
      }
    }
    return false;
  }

  /** A target over its own rpm/tpm is skipped until its limiter lets it take requests again. */
  const underCap = (id: string) => {
    const cap = current.targets.find((target) => target.id === id)?.cap;
    return cap === undefined || cap.refusedUntil <= Date.now();
  };
  /** When the soonest target refused by its own cap can take requests again. */
  let cappedUntil: number | undefined;
  /** The first refusal of a provider that could not translate the request. */
  let refusal: AigwError | undefined;
  /** When the soonest target budget that had no room for this request starts a new period. */
  let budgetResetMs: number | undefined;
  /** A failed attempt gives back what its target's cap held: the answer is someone else's. */
  const releaseCap = (held: HeldReservation | undefined) => {
    if (!held) return;
    exchange.reservations.splice(exchange.reservations.indexOf(held), 1);
    held.limiter.settle(held.reservation, 0).catch(() => {});
  };

  while (attempts < attemptLimit) {
    const picked = await current.balancer.pick({
      exclude: tried,
      eligible: current.capped ? underCap : undefined,
    });
    if (!picked) {
      if (nextRoute()) continue;
      if (!lastError) {
        if (refusal) throw refusal;
        if (budgetResetMs !== undefined && cappedUntil === undefined) {
          throw targetBudgetsSpent(current.name, budgetResetMs);
        }
        throw cappedUntil === undefined
          ? allTargetsOut(current.balancer.soonestRecovery(), current.name)
          : targetsAtCapacity(cappedUntil, current.name);
      }
      // Nothing of this route could be tried (its breakers opened, or it is a fallback whose
      // targets are all out): the upstream failure already met says more than "out of rotation".
      if (!tried) break;
      // Every target of the last route failed once: the failure may pass, after a wait.
      const wait = retryDelay(
        lastError,
        ++retries,
        current.targets[0]?.provider.retry ?? DEFAULT_RETRY,
        deadlineAt - Date.now(),
      );
      if (wait === undefined) break;
      await sleep(wait, signal);
      tried = undefined;
      continue;
    }
    const target = current.targets.find(
      (candidate) => candidate.id === picked.target,
    ) as RouteTarget;
    // A target that speaks the client's protocol gets the client's own text; any other gets
    // the canonical shape (OpenAI's, which the OpenAI protocol's requests already are) and
    // its provider writes its own wire format from that.
    const native = target.provider.protocols.includes(exchange.protocol.name);
    const { body, model: sentModel } = targetRequest(call, requestedModel, target);
    let canonical: CanonicalRequest | undefined;
    if (!native && !exchange.protocol.canonical) {
      const local = target.provider.countsTokens
        ? undefined
        : exchange.protocol.localAnswer?.(call.endpoint, call.body);
      if (local) {
        picked.end();
        const headers = { "content-type": "application/json" };
        const response = { kind: "json" as const, status: 200, headers, body: local };
        return { response, providerName: target.providerName, attempts };
      }
      try {
        canonical = exchange.protocol.toCanonical?.(call.endpoint, body, {
          dropUnsupported: target.dropUnsupportedParams ?? false,
        });
      } catch (error) {
        refusal ??= toAigwError(error);
      }
      if (!canonical) {
        // Nothing to send it: another target of the route may speak the protocol.
        picked.end();
        tried ??= new Set();
        tried.add(target.id);
        refusal ??= cannotSpeak(target.providerName, exchange.protocol.name);
        continue;
      }
    }
    let capHeld: HeldReservation | undefined;
    const pricing = costing?.pricingOf(target, sentModel, requestedModel);
    if (target.cap) {
      const { cap } = target;
      const need = tokenNeed(
        exchange.protocol,
        call.endpoint,
        call.body,
        current.reserveOutputTokens,
      );
      const cost = pricing?.maxCost(need.inputTokens, need.outputTokens);
      if (cap.budgeted && cost === undefined) {
        // What it would spend cannot be counted against its budget: not this target.
        picked.end();
        tried ??= new Set();
        tried.add(target.id);
        refusal ??= modelNotPriced(requestedModel, sentModel);
        continue;
      }
      let admission: Admission;
      try {
        admission = await cap.limiter.admit(target.id, {
          requests: 1,
          tokens: need.tokens,
          cost: cost ?? 0,
        });
      } catch (error) {
        picked.end();
        throw error;
      }
      if (!admission.allowed) {
        picked.end();
        tried ??= new Set();
        tried.add(target.id);
        const { requests, tokens, budget } = admission;
        if ((requests?.allowed ?? true) && (tokens?.allowed ?? true) && budget?.allowed === false) {
          // Its budget has no room for this request; a smaller one may still fit, so the target
          // stays in rotation, checked by each request.
          budgetResetMs = Math.min(budgetResetMs ?? budget.resetMs, budget.resetMs);
          continue;
        }
        cap.refusedUntil = Date.now() + Math.min(admission.retryAfterMs, 60_000);
        cappedUntil = Math.min(cappedUntil ?? cap.refusedUntil, cap.refusedUntil);
        continue;
      }
      if (admission.reservation) {
        capHeld = { limiter: cap.limiter, reservation: admission.reservation };
        exchange.reservations.push(capHeld);
      }
    }
    const rawBody = native
      ? sentText(exchange.receivedJson, call, body, hooks.hasBeforeRequest)
      : undefined;
    attempts++;
    // Counted as it starts: a client gone while it runs leaves it unrecorded, yet it was made.
    outcome.attempts = attempts;
    const attemptStarted = performance.now();
    let waitMs: number | undefined;
    const { traceparent, span } = observer.startAttempt(exchange, target.provider.kind);
    const ended = (status: number, streaming: boolean, error?: AigwError) =>
      recordAttempt(
        {
          providerName: target.providerName,
          target: target.id,
          route: current.name,
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
      endpoint: canonical?.endpoint ?? call.endpoint,
      body: canonical?.body ?? body,
      rawBody,
      headers: request.headers,
      requestId: context.requestId,
      traceparent,
      tracestate: context.traceContext.tracestate,
      dropUnsupportedParams: target.dropUnsupportedParams,
    };
    try {
      const sent = await target.provider.send(providerRequest, {
        signal,
        deadlineAt,
        onWait: (milliseconds) => {
          waitMs = milliseconds;
        },
        // Sending again without what the provider added is one more upstream call.
        mayResend: () => {
          if (attempts >= attemptLimit) return false;
          attempts++;
          return true;
        },
      });
      const response = canonical ? inClientProtocol(sent, canonical) : sent;
      outcome.pricing = pricing;
      if (response.kind === "json") {
        picked.completed(response.usage?.outputTokens);
        observer.responseStarted(exchange, response.body);
        ended(response.status, false);
        return { response, providerName: target.providerName, attempts };
      }
      const { firstTokenTimeoutMs } = target;
      const { iterator, first } = await firstEvent(
        response.events[Symbol.asyncIterator](),
        firstTokenTimeoutMs ?? firstEventWaitMs,
        response.upstreamRequestId,
      );
      if (!first && firstTokenTimeoutMs !== undefined) {
        // Nothing reached the client yet: another target may answer sooner.
        await iterator.return?.();
        throw new AigwError(
          `The upstream sent no token within ${firstTokenTimeoutMs} ms (the target's firstTokenTimeoutMs).`,
          { status: 504, type: "timeout", code: "first_token_timeout", isRetryable: true },
        );
      }
      picked.answered();
      if (first) observer.firstEvent(exchange, first.data);
      ended(response.status, true);
      return {
        response,
        providerName: target.providerName,
        attempts,
        stream: { iterator, first },
        attempt: picked,
      };
    } catch (error) {
      if (signal.aborted) {
        picked.end();
        span?.end();
        throw signal.reason;
      }
      const failure = toAigwError(error);
      const kind = failureKind(failure);
      tried ??= new Set();
      tried.add(target.id);
      if (kind === "unsupported") {
        // Nothing was sent: no attempt spent, and the target is not at fault.
        attempts--;
        span?.end();
        picked.end();
        releaseCap(capHeld);
        refusal ??= failure;
        continue;
      }
      const status = failure.upstreamStatus ?? failure.status;
      ended(status, false, failure);
      releaseCap(capHeld);
      lastError = failure;
      if (kind === "target") {
        picked.failed({ status, retryAfterMs: failure.retryAfterMs });
        continue;
      }
      picked.end();
      if (kind === "context" && current.contextFallbacks.length > 0) {
        chain = current.contextFallbacks;
        chainIndex = 0;
        if (nextRoute()) continue;
      }
      break;
    }
  }
  if (!lastError) throw refusal ?? allTargetsOut(current.balancer.soonestRecovery(), current.name);
  // The gateway already spent the retries this error deserved; SDKs must not multiply them.
  lastError.headers["x-should-retry"] = "false";
  lastError.headers["x-aigw-attempts"] = `${attempts}`;
  throw lastError;
}
