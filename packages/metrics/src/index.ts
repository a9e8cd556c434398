export type {
  CacheLookup,
  FinishedRequest,
  GuardrailDecision,
  Metrics,
  MetricsOptions,
  ProviderWaiting,
  RateLimitedRequest,
  StoreFailure,
  UpstreamAttempt,
} from "./create-metrics.js";
export { createMetrics } from "./create-metrics.js";
