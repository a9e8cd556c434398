import {
  type Cache,
  createMemoryCache,
  createRedisCache,
  type RedisCacheOutage,
} from "@aigw/cache";
import type { GatewayCacheOptions, GatewayMetrics } from "@aigw/core";
import type { CacheSettings } from "./config.js";

/**
 * The response cache's store from the config. A Redis store skips Redis while `outage` says so
 * (its warnings are the outage's), and counts each outage once, as it starts, in
 * `store_errors_total{store="cache"}`.
 */
export async function createServerCache(
  settings: CacheSettings,
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
      onError() {
        metrics?.storeError({ store: "cache" });
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
