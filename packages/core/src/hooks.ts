import type { AigwError, SseEvent } from "@aigw/provider";
import type {
  AttemptEvent,
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
  onRequest(request: GatewayRequest, context: RequestContext): Promise<void>;
  beforeRequest(call: UpstreamCall, context: RequestContext): Promise<void>;
  afterResponse(response: HookResponse, context: RequestContext): Promise<void>;
  /** The event to send after every onChunk hook, or null when one dropped it. */
  onChunk(event: SseEvent, context: RequestContext): SseEvent | null;
  /** Never throws: a failing onError hook is logged, the original error stands. */
  onError(error: AigwError, context: RequestContext): Promise<void>;
  onAttempt(event: AttemptEvent, context: RequestContext): void;
}

type HookName = keyof GatewayHooks;

export function createHookRunner(hooks: GatewayHooks[], logger: Logger | undefined): HookRunner {
  const inOrder = <Name extends HookName>(name: Name) =>
    hooks.filter((hook) => hook[name]) as (GatewayHooks & Required<Pick<GatewayHooks, Name>>)[];
  const inReverse = <Name extends HookName>(name: Name) => inOrder(name).reverse();
  const onRequestHooks = inOrder("onRequest");
  const beforeRequestHooks = inOrder("beforeRequest");
  const onAttemptHooks = inOrder("onAttempt");
  const afterResponseHooks = inReverse("afterResponse");
  const onChunkHooks = inReverse("onChunk");
  const onErrorHooks = inReverse("onError");

  return {
    hasChunkHooks: onChunkHooks.length > 0,
    async onRequest(request, context) {
      for (const hook of onRequestHooks) await hook.onRequest(request, context);
    },
    async beforeRequest(call, context) {
      for (const hook of beforeRequestHooks) await hook.beforeRequest(call, context);
    },
    async afterResponse(response, context) {
      for (const hook of afterResponseHooks) await hook.afterResponse(response, context);
    },
    onChunk(event, context) {
      let current = event;
      for (const hook of onChunkHooks) {
        const replaced = hook.onChunk(current, context);
        if (replaced === null) return null;
        if (replaced) current = replaced;
      }
      return current;
    },
    async onError(error, context) {
      for (const hook of onErrorHooks) {
        try {
          await hook.onError(error, context);
        } catch (hookError) {
          logger?.error({ requestId: context.requestId, err: hookError }, "onError hook failed");
        }
      }
    },
    onAttempt(event, context) {
      for (const hook of onAttemptHooks) hook.onAttempt(event, context);
    },
  };
}
