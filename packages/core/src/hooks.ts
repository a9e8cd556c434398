import type { AigwError, SseEvent } from "@aigw/provider";
import type {
  AttemptEvent,
  FinishedRequest,
  GatewayHooks,
  GatewayRequest,
  HookResponse,
  Logger,
  RequestContext,
  UpstreamCall,
} from "./types.js";

/** Runs hooks in DESIGN order: "before" hooks as given, "after" hooks in reverse. */
export interface HookRunner {
  readonly hasChunkHooks: boolean;
  /** Whether a beforeRequest hook may have changed an upstream call. */
  readonly hasBeforeRequest: boolean;
  // Each returns nothing at all when no hook of its kind is set: no promise on the hot path.
  onRequest(request: GatewayRequest, context: RequestContext): Promise<void> | undefined;
  beforeRequest(call: UpstreamCall, context: RequestContext): Promise<void> | undefined;
  afterResponse(response: HookResponse, context: RequestContext): Promise<void> | undefined;
  /** The event or events to send after every onChunk hook, or null when they dropped it. */
  onChunk(event: SseEvent, context: RequestContext): SseEvent | SseEvent[] | null;
  readonly hasEventSentHooks: boolean;
  /** Never throws: a failing onEventSent hook is logged. */
  onEventSent(event: SseEvent, context: RequestContext): void;
  /** Never throws: a failing onError hook is logged, the original error stands. */
  onError(error: AigwError, context: RequestContext): Promise<void> | undefined;
  onAttempt(event: AttemptEvent, context: RequestContext): void;
  /** Whether any onFinish hook is set: only then is a FinishedRequest built. */
  readonly hasFinishHooks: boolean;
  /**
   * Some onFinish hook reads the bodies or their digests (`onFinishBodies`): only then does a
   * request keep its bodies, a stream's answer included, to the end.
   */
  readonly keepsBodies: boolean;
  /** Never throws, never waits: a failing onFinish hook is logged. */
  onFinish(request: FinishedRequest, context: RequestContext): void;
}

type HookName = keyof GatewayHooks;

function unlessEmpty<Args extends unknown[]>(
  hooks: unknown[],
  run: (...args: Args) => Promise<void>,
): (...args: Args) => Promise<void> | undefined {
  return hooks.length === 0 ? () => undefined : run;
}

export function createHookRunner(hooks: GatewayHooks[], logger: Logger | undefined): HookRunner {
  const inOrder = <Name extends HookName>(name: Name) =>
    hooks.filter((hook) => hook[name]) as (GatewayHooks & Required<Pick<GatewayHooks, Name>>)[];
  const inReverse = <Name extends HookName>(name: Name) => inOrder(name).reverse();
  const onRequestHooks = inOrder("onRequest");
  const beforeRequestHooks = inOrder("beforeRequest");
  const onAttemptHooks = inOrder("onAttempt");
  const afterResponseHooks = inReverse("afterResponse");
  const onChunkHooks = inReverse("onChunk");
  const onEventSentHooks = inReverse("onEventSent");
  const onErrorHooks = inReverse("onError");
  const onFinishHooks = inReverse("onFinish");
  const finishFailed = (context: RequestContext) => (hookError: unknown) =>
    logger?.error({ requestId: context.requestId, err: hookError }, "onFinish hook failed");

  return {
    hasChunkHooks: onChunkHooks.length > 0,
    hasBeforeRequest: beforeRequestHooks.length > 0,
    onRequest: unlessEmpty(onRequestHooks, async (request, context) => {
      for (const hook of onRequestHooks) await hook.onRequest(request, context);
    }),
    beforeRequest: unlessEmpty(beforeRequestHooks, async (call, context) => {
      for (const hook of beforeRequestHooks) await hook.beforeRequest(call, context);
    }),
    afterResponse: unlessEmpty(afterResponseHooks, async (response, context) => {
      for (const hook of afterResponseHooks) await hook.afterResponse(response, context);
    }),
    onChunk(event, context) {
      let current: SseEvent | SseEvent[] = event;
      for (const hook of onChunkHooks) {
        if (Array.isArray(current)) {
          const events: SseEvent[] = [];
          for (const each of current) {
            const replaced = hook.onChunk(each, context);
            if (replaced === undefined) events.push(each);
            else if (replaced !== null)
              events.push(...(Array.isArray(replaced) ? replaced : [replaced]));
          }
          current = events;
          continue;
        }
        const replaced = hook.onChunk(current, context);
        if (replaced === null) return null;
        if (replaced) current = replaced;
      }
      return Array.isArray(current) && current.length === 0 ? null : current;
    },
    hasEventSentHooks: onEventSentHooks.length > 0,
    onEventSent(event, context) {
      for (const hook of onEventSentHooks) {
        try {
          hook.onEventSent(event, context);
        } catch (hookError) {
          logger?.error(
            { requestId: context.requestId, err: hookError },
            "onEventSent hook failed",
          );
        }
      }
    },
    onError: unlessEmpty(onErrorHooks, async (error, context) => {
      for (const hook of onErrorHooks) {
        try {
          await hook.onError(error, context);
        } catch (hookError) {
          logger?.error({ requestId: context.requestId, err: hookError }, "onError hook failed");
        }
      }
    }),
    onAttempt(event, context) {
      for (const hook of onAttemptHooks) hook.onAttempt(event, context);
    },
    hasFinishHooks: onFinishHooks.length > 0,
    keepsBodies: onFinishHooks.some((hook) => hook.onFinishBodies),
    onFinish(request, context) {
      for (const hook of onFinishHooks) {
        try {
          const running = hook.onFinish(request, context);
          if (running instanceof Promise) running.catch(finishFailed(context));
        } catch (hookError) {
          finishFailed(context)(hookError);
        }
      }
    },
  };
}
