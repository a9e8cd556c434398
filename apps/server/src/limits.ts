import { budgetLimit, type LimitsOptions, type TenantOptions } from "@aigw/core";
import {
  createMemoryLimiter,
  createRedisLimiter,
  type Limiter,
  type LimiterOptions,
  type RedisOutage,
} from "@aigw/ratelimit";
import type { Redis } from "ioredis";
import type { BudgetAlert, BudgetScope } from "./budget-alerts.js";
import { hasLimits, type LimitSettings, type ServerConfig } from "./config.js";

function limiterOptions(settings: LimitSettings, field: string): LimiterOptions {
  const { requestsPerSecond, burst, tokensPerMinute, quota, budget } = settings;
  return {
    ...(requestsPerSecond
      ? { requests: { rate: requestsPerSecond, burst: burst ?? Math.ceil(requestsPerSecond * 2) } }
      : {}),
    ...(tokensPerMinute ? { tokens: { perMinute: tokensPerMinute } } : {}),
    ...(quota
      ? { quota: { limit: quota.tokens, period: quota.period, timeZone: quota.timeZone } }
      : {}),
    ...(budget ? { budget: budgetLimit(budget, `${field}.budget`) } : {}),
  };
}

export interface ServerLimits {
  tenants: Record<string, TenantOptions>;
  limits: LimitsOptions;
  /** The limiter of a route target with its own rpm, tpm or budget, or of a route's budget. */
  targetLimiter(options: LimiterOptions, scope: "target" | "route"): Limiter;
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
  budgetAlert: BudgetAlert,
): Promise<ServerLimits> {
  const { limits } = config;
  const RedisClient =
    limits.store === "redis" && limits.redis ? (await import("ioredis")).Redis : undefined;
  const limiters: Limiter[] = [];
  let redis: Redis | undefined;

  function createLimiter(settings: LimitSettings, field: string, scope: BudgetScope): Limiter {
    return createLimiterWith(limiterOptions(settings, field), "", scope);
  }

  /**
   * `keySpace` keeps apart keys that could be alike: a tenant id, a target's id, a route's
   * name.
   */
  function createLimiterWith(
    limiterLimits: LimiterOptions,
    keySpace: string,
    scope: BudgetScope,
  ): Limiter {
    const options: LimiterOptions = {
      ...limiterLimits,
      reservationTtlMs: limits.reservationTtlMs,
      onBudgetThreshold: (event) => budgetAlert(scope, event),
    };
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
          tenant.limits && hasLimits(tenant.limits)
            ? createLimiter(tenant.limits, `tenants.${id}.limits`, "tenant")
            : undefined,
      } satisfies TenantOptions,
    ]),
  );
  const defaults =
    limits.default && hasLimits(limits.default)
      ? createLimiter(limits.default, "limits.default", "tenant")
      : undefined;
  const perUser =
    limits.perUser && hasLimits(limits.perUser)
      ? createLimiter(limits.perUser, "limits.perUser", "user")
      : undefined;
  return {
    tenants,
    targetLimiter: (options, scope) => createLimiterWith(options, `${scope}:`, scope),
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
