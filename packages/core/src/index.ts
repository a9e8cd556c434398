export type { AigwErrorOptions, ErrorBody, SseEvent, TokenUsage } from "@aigw/provider";
export { AigwError } from "@aigw/provider";
export type { CorsOptions } from "./cors.js";
export {
  internalError,
  invalidRequest,
  methodNotAllowed,
  modelNotFound,
  requestTooLarge,
  routeNotFound,
  unavailable,
} from "./errors.js";
export type { DrainOptions, Gateway, GatewayOptions } from "./gateway.js";
export { createGateway } from "./gateway.js";
export type { ModelRouteOptions } from "./router.js";
export type {
  AttemptEvent,
  GatewayHooks,
  GatewayRequest,
  GatewayResponse,
  HandleOptions,
  HeaderValue,
  HookResponse,
  Logger,
  RequestContext,
  UpstreamCall,
} from "./types.js";
