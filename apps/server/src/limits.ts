import type { LimitsOptions, TenantOptions } from "@aigw/core";
import {
  createMemoryLimiter,
  createRedisLimiter,
  type Limiter,
  type LimiterOptions,
  type RedisOutage,
} from "@aigw/ratelimit";
import type { Redis } from "ioredis";
import { hasLimits, type LimitSettings, type ServerConfig } from "./config.js";

function limiterOptions(settings: LimitSettings): LimiterOptions {
  const { requestsPerSecond, burst, tokensPerMinute, quota } = settings;
  return {
    ...(requestsPerSecond
      ? { requests: { rate: requestsPerSecond, burst: burst ?? Math.ceil(requestsPerSecond * 2) } }
      : {}),
    ...(tokensPerMinute ? { tokens: { perMinute: tokensPerMinute } } : {}),
    ...(quota
      ? { quota: { limit: quota.tokens, period: quota.period, timeZone: quota.timeZone } }
      : {}),
  };
}

export interface ServerLimits {
  tenants: Record<string, TenantOptions>;
  limits: LimitsOptions;
  /** The limiter of a route target with its own rpm or tpm, on the same store. */
  targetLimiter(options: LimiterOptions): Limiter;
  close(): Promise<void>;
}

/**
 * Builds one limiter per tenant with limits (and one default), all on the same store. With
 * Redis, one client serves them all; it never queues commands while disconnected, so an
 * outage fails fast into the failure policy instead of piling up requests. ioredis is loaded
 * only for a Redis store: it would otherwise cost every gateway about 15 MB of memory.
 */
export async function createServerLimits(
  config: ServerConfig,
  outage: RedisOutage | undefined,
): Promise<ServerLimits> {
  const { limits } = config;
  const RedisClient =
    limits.store === "redis" && limits.redis ? (await import("ioredis")).Redis : undefined;
  const limiters: Limiter[] = [];
  let redis: Redis | undefined;

  function createLimiter(settings: LimitSettings): Limiter {
    return createLimiterWith(limiterOptions(settings), "");
  }

  /** `keySpace` keeps apart keys that could be alike: a tenant id and a target's name. */
  function createLimiterWith(options: LimiterOptions, keySpace: string): Limiter {
    let limiter: Limiter;
    if (RedisClient && limits.redis) {
      if (!redis) {
        redis = new RedisClient(limits.redis.url, {
          enableOfflineQueue: false,
          commandTimeout: limits.redis.commandTimeoutMs,
          maxRetriesPerRequest: 1,
        });
        redis.on("error", () => {}); // reported through onStoreError when a call fails
      }
      limiter = createRedisLimiter({
        ...options,
        redis,
        keyPrefix: `${limits.redis.keyPrefix}${keySpace}`,
        failurePolicy: limits.failurePolicy,
        commandTimeoutMs: limits.redis.commandTimeoutMs,
        // Reports the outage once, and shares it with the cache when both use this Redis.
        outage,
      });
    } else {
      limiter = createMemoryLimiter(options);
    }
    limiters.push(limiter);
    return limiter;
  }

  const tenants = Object.fromEntries(
    Object.entries(config.tenants).map(([id, tenant]) => [
      id,
      {
        keyHashes: tenant.keys.map((hash) => hash.toLowerCase()),
        models: tenant.models,
        limiter:
          tenant.limits && hasLimits(tenant.limits) ? createLimiter(tenant.limits) : undefined,
      } satisfies TenantOptions,
    ]),
  );
  const defaults =
    limits.default && hasLimits(limits.default) ? createLimiter(limits.default) : undefined;
  const perUser =
    limits.perUser && hasLimits(limits.perUser) ? createLimiter(limits.perUser) : undefined;
  return {
    tenants,
    targetLimiter: (options) => createLimiterWith(options, "target:"),
    limits: {
      limiter: defaults,
      userLimiter: perUser,
      keyBy: limits.keyBy,
      userHeader: limits.userHeader,
      clientHeader: limits.clientHeader,
    },
    async close() {
      await Promise.all(limiters.map((limiter) => limiter.close()));
      await redis?.quit().catch(() => redis?.disconnect());
    },
  };
}
