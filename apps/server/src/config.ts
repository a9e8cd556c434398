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
};

const providerSchema = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.enum(["openai", "openai-compatible"]),
    baseURL: z.url(),
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
});

export const configSchema = z.strictObject({
  server: z
    .strictObject({
      host: z.string().min(1).default("127.0.0.1"),
      port: z.number().int().min(0).max(65535).default(8080),
      /** How long in-flight requests may finish after SIGTERM/SIGINT. */
      shutdownGraceMs: z.number().int().min(0).default(30_000),
    })
    .prefault({}),
  gateway: z
    .strictObject({
      maxBodyBytes: z.number().int().positive().optional(),
      keepAliveIntervalMs: positiveMs.optional(),
      cors: z
        .strictObject({
          origins: z.union([z.literal("*"), z.array(z.string().min(1))]),
          methods: z.array(z.string()).optional(),
          headers: z.array(z.string()).optional(),
          maxAge: z.number().int().min(0).optional(),
          credentials: z.boolean().optional(),
        })
        .optional(),
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

function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `  ${issue.path.join(".") || "(root)"}: ${issue.message}`)
    .join("\n");
}

/** Validates a parsed config object; every message names the field at fault. */
export function parseConfig(raw: unknown, env: Environment = {}): ServerConfig {
  const result = configSchema.safeParse(interpolateEnv(raw, env));
  if (!result.success) {
    throw new ConfigError(`Invalid configuration:\n${describeIssues(result.error)}`);
  }
  const config = result.data;
  for (const [name, model] of Object.entries(config.models)) {
    if (!config.providers[model.provider]) {
      throw new ConfigError(
        `Invalid configuration:\n  models.${name}.provider: unknown provider '${model.provider}'`,
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

/** Resolves the configuration from the CLI arguments and the environment. */
export async function resolveConfig(argv: string[], env: Environment): Promise<ServerConfig> {
  const flagIndex = argv.indexOf("--config");
  const file = flagIndex === -1 ? env.AIGW_CONFIG : argv[flagIndex + 1];
  if (flagIndex !== -1 && !file) throw new ConfigError("--config needs a file path");
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
