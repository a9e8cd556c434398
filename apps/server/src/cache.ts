import {
  type Cache,
  createMemoryCache,
  createRedisCache,
  type RedisCacheOutage,
} from "@aigw/cache";
import type { GatewayCacheOptions, GatewayMetrics, Logger } from "@aigw/core";
import type { CacheSettings } from "./config.js";

/**
 * The response cache's store from the config. A Redis store reports each outage once, as it
 * starts: that becomes one `store_errors_total{store="cache"}`, and one warning unless the
 * cache shares `outage` with the rate limits (which then warn for both).
 */
export async function createServerCache(
  settings: CacheSettings,
  logger: Logger,
  metrics: GatewayMetrics | undefined,
  outage: RedisCacheOutage | undefined,
): Promise<GatewayCacheOptions> {
  const { ttlMs } = settings;
  let store: Cache;
  if (settings.store === "redis" && settings.redis) {
    store = await createRedisCache({
      redis: settings.redis.url,
      keyPrefix: settings.redis.keyPrefix,
      commandTimeoutMs: settings.redis.commandTimeoutMs,
      ttlMs,
      outage,
      onError(error) {
        metrics?.storeError({ store: "cache" });
        if (outage) return;
        logger.warn(
          { store: "redis", err: error.message },
          "response cache unreachable: serving without it",
        );
      },
    });
  } else {
    store = createMemoryCache({
      maxSize: settings.maxSizeBytes,
      maxItems: settings.maxItems,
      ttlMs,
    });
  }
  return {
    store,
    enabled: settings.enabled,
    ttlMs,
    maxTtlMs: settings.maxTtlMs,
    shared: settings.shared,
    chargeHits: settings.chargeHits,
    maxWaiters: settings.maxWaiters,
    maxEntryBytes: settings.maxEntryBytes,
  };
}
