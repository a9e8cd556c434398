import type { Cancellation, Endpoint } from "@aigw/provider";
import type { Logger, RequestContext } from "./types.js";

/** The request context; a class so every request's context has the same shape. */
export class GatewayContext implements RequestContext {
  tenant = "anonymous";
  endpoint: Endpoint | undefined = undefined;
  model: string | undefined = undefined;
  route: string | undefined = undefined;
  readonly state: Record<string, unknown> = {};
  readonly startedAt = performance.now();

  constructor(
    readonly requestId: string,
    readonly method: string,
    readonly path: string,
    readonly logger: Logger | undefined,
    private readonly cancellation: Cancellation,
  ) {}

  get signal(): AbortSignal {
    return this.cancellation.signal;
  }
}
