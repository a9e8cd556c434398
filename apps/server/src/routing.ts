import {
  type CircuitBreaker,
  createCircuitBreaker,
  createRedisCircuitBreaker,
} from "@aigw/balancer";
import type { GatewayMetrics, Logger, TargetLimiterFactory } from "@aigw/core";
import type { ServerConfig } from "./config.js";

/** Longest gap between two warnings of one Redis outage, in milliseconds. */
const warningIntervalMs = 60_000;

export interface ServerRouting {
  breaker: CircuitBreaker;
  targetLimiter: TargetLimiterFactory;
  close(): Promise<void>;
}

/**
 * The circuit breaker of every target: in memory, or on Redis, shared by every instance there.
 * Redis failures make the breaker fail open; they are counted in
 * `store_errors_total{store="routing"}` and told in a warning at most once a minute. Targets'
 * own rpm and tpm are counted on the rate limits' store. ioredis is loaded only for Redis.
 */
export async function createServerRouting(
  settings: ServerConfig["routing"],
  targetLimiter: TargetLimiterFactory,
  metrics: GatewayMetrics | undefined,
  logger: Logger,
): Promise<ServerRouting> {
  const onTrip = (target: string) => metrics?.breakerTripped?.({ target });
  if (settings.store !== "redis" || !settings.redis) {
    const breaker = createCircuitBreaker({ ...settings.breaker, onTrip });
    return { breaker, targetLimiter, close: () => breaker.close() };
  }
  const { url, commandTimeoutMs, keyPrefix } = settings.redis;
  const { Redis } = await import("ioredis");
  const redis = new Redis(url, {
    enableOfflineQueue: false,
    commandTimeout: commandTimeoutMs,
    maxRetriesPerRequest: 1,
  });
  // Failures reach onStoreError; without a listener ioredis would print every reconnection.
  redis.on("error", () => {});
  let warnedAt = Number.NEGATIVE_INFINITY;
  const breaker = createRedisCircuitBreaker({
    ...settings.breaker,
    onTrip,
    redis,
    keyPrefix,
    commandTimeoutMs,
    onStoreError(error) {
      metrics?.storeError({ store: "routing" });
      if (Date.now() - warnedAt < warningIntervalMs) return;
      warnedAt = Date.now();
      logger.warn(
        { store: "redis", err: error.message },
        "Redis unreachable (circuit breakers): every target counts as healthy",
      );
    },
  });
  return {
    breaker,
    targetLimiter,
    async close() {
      await breaker.close();
      redis.disconnect();
    },
  };
}
