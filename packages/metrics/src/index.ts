export type {
  CacheLookup,
  FinishedRequest,
  Metrics,
  MetricsOptions,
  RateLimitedRequest,
  StoreFailure,
  UpstreamAttempt,
} from "./create-metrics.js";
export { createMetrics } from "./create-metrics.js";
