import type { LimitsOptions, Logger, TenantOptions } from "@aigw/core";
import {
  createMemoryLimiter,
  createRedisLimiter,
  type Limiter,
  type LimiterOptions,
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
  logger: Logger,
): Promise<ServerLimits> {
  const { limits } = config;
  const RedisClient =
    limits.store === "redis" && limits.redis ? (await import("ioredis")).Redis : undefined;
  const limiters: Limiter[] = [];
  let redis: Redis | undefined;
  let lastWarning = 0;
  const onStoreError = (error: Error) => {
    // One line per outage-ish period, not one per request.
    if (Date.now() - lastWarning < 10_000) return;
    lastWarning = Date.now();
    logger.warn(
      { store: "redis", failurePolicy: limits.failurePolicy, err: error.message },
      limits.failurePolicy === "open"
        ? "rate-limit store unreachable: letting requests through"
        : "rate-limit store unreachable: refusing requests",
    );
  };

  function createLimiter(settings: LimitSettings): Limiter {
    const options = limiterOptions(settings);
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
        keyPrefix: limits.redis.keyPrefix,
        failurePolicy: limits.failurePolicy,
        commandTimeoutMs: limits.redis.commandTimeoutMs,
        cooldownMs: limits.redis.cooldownMs,
        onStoreError,
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
