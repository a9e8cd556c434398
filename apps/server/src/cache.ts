import { type Cache, createMemoryCache, createRedisCache } from "@aigw/cache";
import type { GatewayCacheOptions, GatewayMetrics, Logger } from "@aigw/core";
import type { CacheSettings } from "./config.js";

/**
 * The response cache's store from the config. A Redis store reports each outage once, as it
 * starts: that becomes one warning and one `store_errors_total{store="cache"}`.
 */
export async function createServerCache(
  settings: CacheSettings,
  logger: Logger,
  metrics: GatewayMetrics | undefined,
): Promise<GatewayCacheOptions> {
  const { ttlMs } = settings;
  let store: Cache;
  if (settings.store === "redis" && settings.redis) {
    store = await createRedisCache({
      redis: settings.redis.url,
      keyPrefix: settings.redis.keyPrefix,
      commandTimeoutMs: settings.redis.commandTimeoutMs,
      ttlMs,
      onError(error) {
        metrics?.storeError({ store: "cache" });
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
