export type { AigwErrorOptions, ErrorBody, SseEvent, TokenUsage } from "@aigw/provider";
export { AigwError } from "@aigw/provider";
export type { CacheStatus, GatewayCacheOptions, RouteCacheOptions } from "./cache-step.js";
export type { CorsOptions } from "./cors.js";
export {
  budgetLimit,
  costHeader,
  type MoneyBudget,
  type RequestCost,
  savedHeader,
} from "./cost.js";
export {
  internalError,
  invalidApiKey,
  invalidRequest,
  methodNotAllowed,
  modelNotAllowed,
  modelNotFound,
  requestTooLarge,
  routeNotFound,
  unavailable,
} from "./errors.js";
export type { DrainOptions, Gateway, GatewayOptions, TenantUsage } from "./gateway.js";
export { createGateway } from "./gateway.js";
export { createHostCheck } from "./hosts.js";
export type { LimitsOptions } from "./limits.js";
export type { ModelCatalogOptions, ModelEntry } from "./model-catalog.js";
export type {
  Protocol,
  StreamWithholder,
  TextEdit,
  TextPiece,
} from "./protocols/protocol.js";
export type {
  ModelRouteOptions,
  RouteTargetOptions,
  TargetLimiterFactory,
  TargetReport,
} from "./router.js";
export {
  type Authenticate,
  bearerTokenCheck,
  hashApiKey,
  type TenantOptions,
} from "./tenants.js";
export type {
  AttemptEvent,
  FinishedAttempt,
  FinishedRequest,
  GatewayHooks,
  GatewayMetrics,
  GatewayRequest,
  GatewayResponse,
  GuardrailVerdict,
  HandleOptions,
  HeaderValue,
  HookResponse,
  Logger,
  RequestContext,
  UpstreamCall,
} from "./types.js";
