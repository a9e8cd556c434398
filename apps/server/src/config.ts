import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import { z } from "zod";

const positiveMs = z.number().int().positive();

const retrySchema = z.strictObject({
  maxRetries: z.number().int().min(0).optional(),
  initialBackoff: positiveMs.optional(),
  multiplier: z.number().min(1).optional(),
  maxBackoff: positiveMs.optional(),
  jitter: z.number().min(0).max(1).optional(),
  retryableStatusCodes: z.array(z.number().int().min(100).max(599)).optional(),
});

/** Options every upstream over HTTP shares; defaults live in @aigw/provider. */
const transportFields = {
  apiKey: z.string().optional(),
  headers: z.record(z.string(), z.string()).optional(),
  forwardHeaders: z.array(z.string()).optional(),
  timeout: positiveMs.optional(),
  deadline: positiveMs.optional(),
  connectTimeout: positiveMs.optional(),
  readTimeout: positiveMs.optional(),
  streamTimeout: positiveMs.optional(),
  pool: z
    .strictObject({
      connections: z.number().int().positive().optional(),
      keepAliveTimeout: positiveMs.optional(),
      pipelining: z.number().int().positive().optional(),
    })
    .optional(),
  retry: retrySchema.optional(),
  includeStreamUsage: z.boolean().optional(),
  maxResponseBytes: z.number().int().positive().optional(),
};

const providerSchema = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.enum(["openai", "openai-compatible"]),
    baseURL: z.url(),
    /** Sent as OpenAI-Organization / OpenAI-Project; clients cannot choose them. */
    organization: z.string().min(1).optional(),
    project: z.string().min(1).optional(),
    ...transportFields,
  }),
  z.strictObject({
    type: z.literal("azure"),
    endpoint: z.url(),
    apiVersion: z.string().min(1),
    deployments: z.record(z.string(), z.string()).optional(),
    ...transportFields,
    apiKey: z.string().min(1),
  }),
  z.strictObject({ type: z.literal("echo") }),
]);

const logLevelSchema = z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);

const modelSchema = z.strictObject({
  provider: z.string().min(1),
  model: z.string().min(1).optional(),
  /** true or false, or the route's own cache settings over the top-level ones. */
  cache: z
    .union([
      z.boolean(),
      z.strictObject({
        ttlMs: positiveMs.optional(),
        maxTtlMs: positiveMs.optional(),
        shared: z.boolean().optional(),
      }),
    ])
    .optional(),
});

const redisFields = {
  url: z.string().regex(/^rediss?:\/\//, "must be a redis:// or rediss:// URL"),
  commandTimeoutMs: z.number().int().positive().default(500),
};

const limitSettingsSchema = z.strictObject({
  requestsPerSecond: z.number().positive().optional(),
  /** Requests allowed at once; default: requestsPerSecond × 2. */
  burst: z.number().int().positive().optional(),
  tokensPerMinute: z.number().int().positive().optional(),
  quota: z
    .strictObject({
      tokens: z.number().int().positive(),
      period: z.enum(["hour", "day", "week", "month"]),
      timeZone: z.string().min(1).default("UTC"),
    })
    .optional(),
});

const tenantSchema = z.strictObject({
  /** sha256 hex digests of the tenant's keys (`aigw keys create` prints one). */
  keys: z.array(z.string().regex(/^[0-9a-fA-F]{64}$/, "must be a sha256 hex digest")).default([]),
  /** Models or route patterns the tenant may use; every model when absent. */
  models: z.array(z.string().min(1)).optional(),
  limits: limitSettingsSchema.optional(),
});

export const configSchema = z.strictObject({
  server: z
    .strictObject({
      host: z.string().min(1).default("127.0.0.1"),
      port: z.number().int().min(0).max(65535).default(8080),
      /** How long in-flight requests may finish after SIGTERM/SIGINT. */
      shutdownGraceMs: z.number().int().min(0).default(30_000),
      /** How long a client may take to send a request's headers and body, in ms. */
      requestTimeoutMs: positiveMs.default(60_000),
      /**
       * Most client connections open at once; further ones are closed on arrival. Default:
       * half the process's open-file limit, at most 4,096.
       */
      maxConnections: z.number().int().positive().optional(),
      /**
       * Host names clients may address (the Host header); "*" for any. Default: the loopback
       * names when listening on loopback, any otherwise.
       */
      allowedHosts: z.union([z.literal("*"), z.array(z.string().min(1)).min(1)]).optional(),
    })
    .prefault({}),
  gateway: z
    .strictObject({
      maxBodyBytes: z.number().int().positive().optional(),
      /** AsyncLocalStorage for the request context; costs CPU on every request. */
      asyncContext: z.boolean().default(false),
      keepAliveIntervalMs: positiveMs.optional(),
      /** How long a stream's 200 waits for the upstream's first event, in ms (1000). */
      firstEventWaitMs: z.number().int().min(0).optional(),
      /** Longest pause while a request body arrives, in ms; then 408. */
      bodyIdleTimeoutMs: positiveMs.optional(),
      /** Longest an answer may wait for the client to read it, in ms; then the connection closes. */
      sendTimeoutMs: positiveMs.optional(),
      cors: z
        .strictObject({
          origins: z.union([z.literal("*"), z.array(z.string().min(1))]),
          methods: z.array(z.string()).optional(),
          headers: z.array(z.string()).optional(),
          maxAge: z.number().int().min(0).optional(),
          credentials: z.boolean().optional(),
        })
        .refine((cors) => !(cors.origins === "*" && cors.credentials), {
          message:
            'origins "*" cannot be combined with credentials: true (CORS forbids it: any web page could send requests with the user\'s credentials); list the allowed origins',
          path: ["credentials"],
        })
        .optional(),
    })
    .prefault({}),
  tenants: z.record(z.string().min(1), tenantSchema).default({}),
  limits: z
    .strictObject({
      store: z.enum(["memory", "redis"]).default("memory"),
      redis: z
        .strictObject({
          ...redisFields,
          keyPrefix: z.string().default("aigw:rl:"),
          /** After a failure, skip Redis this long: an outage then costs requests no latency. */
          cooldownMs: z.number().int().min(0).default(1_000),
        })
        .optional(),
      /** When the store is unreachable: "open" lets requests through, "closed" answers 503. */
      failurePolicy: z.enum(["open", "closed"]).default("open"),
      /** tenant+user: each user of a tenant also gets the `perUser` limits, on top of the tenant's. */
      keyBy: z.enum(["tenant", "tenant+user"]).default("tenant"),
      /** The limits of each user with keyBy tenant+user. */
      perUser: limitSettingsSchema.optional(),
      /** Where the user comes from with keyBy tenant+user, besides the body's `user`. */
      userHeader: z.string().min(1).optional(),
      /** Open mode: the header naming the client; the client address otherwise. */
      clientHeader: z.string().min(1).optional(),
      /** Limits for tenants without their own, and for everyone in open mode. */
      default: limitSettingsSchema.optional(),
    })
    .prefault({})
    .refine((limits) => limits.store !== "redis" || limits.redis, {
      message: "store redis needs limits.redis.url",
      path: ["redis"],
    })
    .refine((limits) => limits.keyBy !== "tenant+user" || limits.perUser, {
      message:
        "keyBy tenant+user needs limits.perUser: the limits each user gets on top of the tenant's",
      path: ["perUser"],
    }),
  /** The response cache: off unless this section is present. */
  cache: z
    .strictObject({
      /** false: only models with their own `cache` setting are cached. */
      enabled: z.boolean().default(true),
      store: z.enum(["memory", "redis"]).default("memory"),
      redis: z
        .strictObject({ ...redisFields, keyPrefix: z.string().min(1).default("aigw:cache:") })
        .optional(),
      /** Memory store: most bytes and entries held. */
      maxSizeBytes: z
        .number()
        .int()
        .positive()
        .default(100 * 2 ** 20),
      maxItems: z.number().int().positive().default(10_000),
      ttlMs: positiveMs.default(300_000),
      /** Longest time to live a request may ask for with x-aigw-cache-ttl; default ttlMs. */
      maxTtlMs: positiveMs.optional(),
      /** One entry for all tenants instead of one per tenant. */
      shared: z.boolean().default(false),
      /** Charge cache hits against quotas and token budgets. */
      chargeHits: z.boolean().default(false),
      /** Most requests waiting on one coalesced upstream call. */
      maxWaiters: z.number().int().positive().default(1000),
      /** Largest answer stored, in bytes; a longer stream is not gathered past it. */
      maxEntryBytes: z
        .number()
        .int()
        .positive()
        .default(16 * 2 ** 20),
    })
    .refine((cache) => cache.store !== "redis" || cache.redis, {
      message: "store redis needs cache.redis.url",
      path: ["redis"],
    })
    .optional(),
  metrics: z
    .strictObject({
      /** Serves GET /metrics and records every request. On by default for an operator's server. */
      enabled: z.boolean().default(true),
      namespace: z
        .string()
        .regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/, "must be a Prometheus metric name prefix")
        .default("aigw"),
      /** Adds a tenant label to rate-limit metrics (unbounded with many tenants). */
      tenantLabel: z.boolean().default(false),
      /** Adds Node.js process metrics (memory, event loop, GC). */
      processMetrics: z.boolean().default(true),
      /**
       * Requested models labelled as themselves per route (a wildcard route matches many); past
       * this, and for a failed request's unseen model, the label is the route.
       */
      maxModelsPerRoute: z.number().int().min(0).default(100),
      /** Serves GET /metrics on this port of server.host instead of the gateway's own port. */
      port: z.number().int().min(0).max(65535).optional(),
      /** Requires `Authorization: Bearer <token>` on GET /metrics (wherever it is served). */
      bearerToken: z.string().min(16, "must be at least 16 characters").optional(),
    })
    .prefault({}),
  logging: z
    .strictObject({
      level: logLevelSchema.default("info"),
      format: z.enum(["json", "pretty"]).optional(),
    })
    .prefault({}),
  providers: z.record(z.string().min(1), providerSchema),
  models: z.record(z.string().min(1), modelSchema),
});

export type ServerConfig = z.output<typeof configSchema>;
export type ProviderConfig = ServerConfig["providers"][string];
export type LimitSettings = z.output<typeof limitSettingsSchema>;
export type CacheSettings = NonNullable<ServerConfig["cache"]>;

export class ConfigError extends Error {
  override name = "ConfigError";
}

type Environment = Record<string, string | undefined>;

/** Replaces `${NAME}` (or `${NAME:-fallback}`) in every string of the parsed file. */
export function interpolateEnv(value: unknown, env: Environment, path = ""): unknown {
  if (typeof value === "string") {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_, name, fallback) => {
      const found = env[name] ?? fallback;
      if (found === undefined) {
        throw new ConfigError(`${path || "(root)"}: environment variable ${name} is not set`);
      }
      return found;
    });
  }
  if (Array.isArray(value)) {
    return value.map((item, index) => interpolateEnv(item, env, `${path}[${index}]`));
  }
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [
        key,
        interpolateEnv(item, env, path ? `${path}.${key}` : key),
      ]),
    );
  }
  return value;
}

/** What a missing required section is for, so that its error says what to write. */
const requiredSections: Record<string, string> = {
  providers: "the upstreams, for example `providers: { openai: { type: openai, apiKey: ... } }`",
  models:
    'the routes from model names to providers, for example `models: { "gpt-*": { provider: openai } }`',
};

/**
 * The keys the schema accepts for the object at `path`, given the raw value there (a provider's
 * `type` picks its variant). Undefined when the path does not lead to an object schema.
 */
function keysAt(path: readonly PropertyKey[], raw: unknown): string[] | undefined {
  let schema = configSchema as z.ZodType;
  let value = raw;
  for (let index = 0; ; index++) {
    schema = unwrap(schema, value);
    const def = schema._zod.def as z.core.$ZodTypeDef & {
      shape?: Record<string, z.ZodType>;
      valueType?: z.ZodType;
    };
    if (index === path.length)
      return def.type === "object" ? Object.keys(def.shape ?? {}) : undefined;
    const key = path[index] as PropertyKey;
    value = isRecord(value) ? value[key as string] : undefined;
    if (def.type === "object") schema = def.shape?.[key as string] as z.ZodType;
    else if (def.type === "record") schema = def.valueType as z.ZodType;
    else return undefined;
    if (!schema) return undefined;
  }
}

/** The schema inside optional, default and union wrappers; a union's variant that fits `value`. */
function unwrap(schema: z.ZodType, value: unknown): z.ZodType {
  for (;;) {
    const def = schema._zod.def as z.core.$ZodTypeDef & {
      innerType?: z.ZodType;
      options?: z.ZodType[];
    };
    if (def.innerType) schema = def.innerType;
    else if (def.type === "union" && def.options) {
      const fitting = def.options.find((option) => {
        const shape = (option._zod.def as { shape?: Record<string, z.ZodType> }).shape;
        return shape?.type?.safeParse(isRecord(value) ? value.type : undefined).success;
      });
      if (!fitting) return schema;
      schema = fitting;
    } else return schema;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describeIssue(issue: z.core.$ZodIssue, raw: unknown): string {
  const where = issue.path.join(".") || "(root)";
  if (issue.code === "unrecognized_keys") {
    const valid = keysAt(issue.path, raw);
    const unknown = issue.keys.map((key) => `'${key}'`).join(", ");
    return `  ${where}: unknown ${issue.keys.length === 1 ? "key" : "keys"} ${unknown}${valid ? `; valid keys here: ${valid.join(", ")}` : ""}`;
  }
  if (issue.code === "invalid_type" && issue.message.endsWith("received undefined")) {
    const section = issue.path.length === 1 ? requiredSections[String(issue.path[0])] : undefined;
    return `  ${where}: missing${section ? `: ${section}` : ` (expected ${issue.expected})`}`;
  }
  return `  ${where}: ${issue.message}`;
}

function describeIssues(error: z.ZodError, raw: unknown): string {
  return error.issues.map((issue) => describeIssue(issue, raw)).join("\n");
}

/**
 * The configuration as it takes effect, with what must not be shown replaced by "***": API
 * keys, every header sent upstream (they often carry credentials), the metrics bearer token and
 * passwords in Redis URLs.
 */
export function maskSecrets(config: ServerConfig): unknown {
  const masked = structuredClone(config) as ServerConfig;
  for (const provider of Object.values(masked.providers)) {
    if ("apiKey" in provider && provider.apiKey !== undefined) provider.apiKey = "***";
    if ("headers" in provider && provider.headers) {
      for (const name of Object.keys(provider.headers)) provider.headers[name] = "***";
    }
  }
  if (masked.metrics.bearerToken !== undefined) masked.metrics.bearerToken = "***";
  for (const redis of [masked.limits.redis, masked.cache?.redis]) {
    if (!redis) continue;
    const url = new URL(redis.url);
    if (url.password) url.password = "***";
    else if (url.username) url.username = "***";
    redis.url = url.href;
  }
  return masked;
}

export function hasLimits(settings: LimitSettings): boolean {
  return Boolean(settings.requestsPerSecond || settings.tokensPerMinute || settings.quota);
}

/** Validates a parsed config object; every message names the field at fault. */
export function parseConfig(raw: unknown, env: Environment = {}): ServerConfig {
  if (raw === null || raw === undefined) {
    throw new ConfigError(
      `The configuration is empty: it needs at least providers (${requiredSections.providers}) and models (${requiredSections.models})`,
    );
  }
  if (!isRecord(raw)) {
    throw new ConfigError(
      `The configuration must be a mapping of sections (server, providers, models, ...), not ${Array.isArray(raw) ? "a list" : `a ${typeof raw}`}`,
    );
  }
  const interpolated = interpolateEnv(raw, env);
  const result = configSchema.safeParse(interpolated);
  if (!result.success) {
    throw new ConfigError(`Invalid configuration:\n${describeIssues(result.error, interpolated)}`);
  }
  const config = result.data;
  for (const [tenant, settings] of Object.entries(config.tenants)) {
    if (settings.limits && !hasLimits(settings.limits)) {
      throw new ConfigError(`Invalid configuration:\n  tenants.${tenant}.limits: sets no limit`);
    }
  }
  if (config.limits.perUser && !hasLimits(config.limits.perUser)) {
    throw new ConfigError("Invalid configuration:\n  limits.perUser: sets no limit");
  }
  for (const [name, model] of Object.entries(config.models)) {
    if (!config.providers[model.provider]) {
      throw new ConfigError(
        `Invalid configuration:\n  models.${name}.provider: unknown provider '${model.provider}'`,
      );
    }
    if (model.cache !== undefined && !config.cache) {
      throw new ConfigError(
        `Invalid configuration:\n  models.${name}.cache: needs the top-level cache section`,
      );
    }
  }
  return config;
}

export async function loadConfigFile(file: string, env: Environment): Promise<ServerConfig> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new ConfigError(`Cannot read config file ${file}: ${(error as Error).message}`);
  }
  let raw: unknown;
  try {
    // YAML is a superset of JSON, so one parser reads both.
    raw = parseYaml(text);
  } catch (error) {
    throw new ConfigError(`Cannot parse config file ${file}: ${(error as Error).message}`);
  }
  return parseConfig(raw, env);
}

const openAIRoutes = ["gpt-*", "o1*", "o3*", "o4*", "chatgpt-*", "text-embedding-*", "openai/*"];

/**
 * The configuration without a file: the echo model always, and OpenAI's model families when
 * OPENAI_API_KEY is set. PORT and HOST apply to file configurations too.
 */
export function configFromEnv(env: Environment): ServerConfig {
  const raw: Record<string, unknown> = {
    providers: { echo: { type: "echo" } },
    models: { echo: { provider: "echo" } },
  };
  if (env.OPENAI_API_KEY) {
    Object.assign(raw.providers as object, {
      openai: {
        type: "openai",
        baseURL: env.OPENAI_BASE_URL ?? "https://api.openai.com/v1",
        apiKey: env.OPENAI_API_KEY,
      },
    });
    for (const route of openAIRoutes) {
      (raw.models as Record<string, unknown>)[route] = { provider: "openai" };
    }
  }
  return parseConfig(raw);
}

/**
 * The configuration from `file` (YAML or JSON), or without one from the environment; PORT,
 * HOST, LOG_LEVEL and LOG_FORMAT apply either way. Throws ConfigError naming what to change.
 */
export async function resolveConfig(
  file: string | undefined,
  env: Environment,
): Promise<ServerConfig> {
  const config = file ? await loadConfigFile(file, env) : configFromEnv(env);
  if (env.PORT !== undefined) {
    const port = Number(env.PORT);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new ConfigError(`PORT must be a port number, got '${env.PORT}'`);
    }
    config.server.port = port;
  }
  if (env.HOST) config.server.host = env.HOST;
  if (env.LOG_LEVEL) {
    const level = logLevelSchema.safeParse(env.LOG_LEVEL);
    if (!level.success) throw new ConfigError(`LOG_LEVEL: ${level.error.issues[0]?.message}`);
    config.logging.level = level.data;
  }
  if (env.LOG_FORMAT === "json" || env.LOG_FORMAT === "pretty")
    config.logging.format = env.LOG_FORMAT;
  return config;
}
