import { readFile } from "node:fs/promises";
import { type Strategy, strategies } from "@aigw/balancer";
import { priceModel, usdToNano } from "@aigw/pricing";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { auditSchema, unknownAuditEntity } from "./audit.js";
import { guardrailsProblem, guardrailsSchema, unknownEntityName } from "./guardrails.js";

// Every field says what it does, its unit and its default in `.describe()`: the config
// reference (CONFIG.md) and the JSON Schema for editors are generated from this schema.

const milliseconds = (text: string) => z.number().int().positive().describe(text);

const retrySchema = z
  .strictObject({
    maxRetries: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe("Retries after the first attempt, on the same provider. Default 3."),
    initialBackoff: milliseconds("Wait before the first retry, in ms. Default 100.").optional(),
    multiplier: z
      .number()
      .min(1)
      .optional()
      .describe("Each wait is the previous one times this. Default 2."),
    maxBackoff: milliseconds(
      "Longest single wait, in ms; a Retry-After longer than this is not waited for. Default 10,000.",
    ).optional(),
    jitter: z
      .number()
      .min(0)
      .max(1)
      .optional()
      .describe("Random share taken off each wait (0 to 1). Default 0.25."),
    retryableStatusCodes: z
      .array(z.number().int().min(100).max(599))
      .optional()
      .describe("Upstream statuses worth a retry. Default [408, 429, 500, 502, 503, 504]."),
  })
  .describe("Retries of a failed attempt; network errors and timeouts are retried too.");

/** Options every upstream over HTTP shares; defaults live in @aigw/provider. */
const transportFields = {
  apiKey: z
    .string()
    .optional()
    .describe("The upstream's API key, usually read from the environment. Never logged."),
  headers: z
    .record(z.string(), z.string())
    .optional()
    .describe("Extra headers sent upstream with every request."),
  forwardHeaders: z
    .array(z.string())
    .optional()
    .describe(
      "Client headers passed on upstream besides the default ones (openai-beta; anthropic-version and anthropic-beta to Anthropic); never credentials or hop-by-hop headers.",
    ),
  timeout: milliseconds(
    "One attempt, in ms: to the last byte of a JSON answer, to the response headers of a stream. Default 600,000.",
  ).optional(),
  deadline: milliseconds(
    "A whole request, in ms: every attempt and every wait between them. Default: timeout.",
  ).optional(),
  connectTimeout: milliseconds("Opening a connection, in ms. Default 10,000.").optional(),
  readTimeout: milliseconds(
    "Longest silence once a response has started, in ms. Default 120,000.",
  ).optional(),
  streamTimeout: milliseconds("Longest a whole stream may last, in ms. Default: none.").optional(),
  pool: z
    .strictObject({
      connections: z
        .number()
        .int()
        .positive()
        .optional()
        .describe(
          "Most connections to the upstream; further requests wait, and the wait counts against their timeout. Default: no limit.",
        ),
      keepAliveTimeout: milliseconds(
        "How long an idle connection is kept, in ms. Default 90,000.",
      ).optional(),
      pipelining: z
        .number()
        .int()
        .positive()
        .optional()
        .describe("Requests sent at once on one connection. Default 1."),
    })
    .optional()
    .describe("The upstream's connection pool."),
  retry: retrySchema.optional(),
  includeStreamUsage: z
    .boolean()
    .optional()
    .describe(
      "Ask streams for usage (stream_options.include_usage) when the client did not; an upstream that refuses it is asked again without. Default true.",
    ),
  maxResponseBytes: z
    .number()
    .int()
    .positive()
    .optional()
    .describe(
      "Largest answer, or stream event, read from the upstream, in bytes. Default 268,435,456 (256 MiB).",
    ),
};

// Streams from Anthropic always carry their usage: nothing to ask for.
const { includeStreamUsage: _, ...anthropicTransportFields } = transportFields;

const providerSchema = z
  .discriminatedUnion("type", [
    z.strictObject({
      type: z
        .enum(["openai", "openai-compatible"])
        .describe("openai, or openai-compatible (vLLM, Ollama, LM Studio, Groq, Together, ...)."),
      baseURL: z.url().describe("The API's base URL, with its /v1."),
      organization: z
        .string()
        .min(1)
        .optional()
        .describe("Sent as OpenAI-Organization; clients cannot choose it."),
      project: z
        .string()
        .min(1)
        .optional()
        .describe("Sent as OpenAI-Project; clients cannot choose it."),
      ...transportFields,
    }),
    z.strictObject({
      type: z.literal("azure").describe("Azure OpenAI."),
      endpoint: z.url().describe("The resource's endpoint, https://NAME.openai.azure.com."),
      apiVersion: z.string().min(1).describe("The api-version query parameter."),
      deployments: z
        .record(z.string(), z.string())
        .optional()
        .describe("Deployment name per model; a model not listed is its own deployment."),
      ...transportFields,
      apiKey: z.string().min(1).describe("The resource's key (sent as api-key)."),
    }),
    z.strictObject({
      type: z
        .literal("anthropic")
        .describe(
          "Anthropic's Messages API, serving OpenAI chat completions clients (translated).",
        ),
      baseURL: z
        .url()
        .optional()
        .describe(
          "The API's base URL; without a path it gets /v1, as the Anthropic SDKs take it. Default https://api.anthropic.com/v1.",
        ),
      version: z
        .string()
        .min(1)
        .optional()
        .describe("Sent as anthropic-version when the client sends none. Default 2023-06-01."),
      defaultMaxTokens: z
        .number()
        .int()
        .positive()
        .optional()
        .describe(
          "max_tokens sent when a request has none (Anthropic requires it). Default 4,096.",
        ),
      dropUnsupportedParams: z
        .boolean()
        .optional()
        .describe(
          "Leave out n above 1, temperature above 1 and logprobs instead of answering 400. Default false.",
        ),
      ...anthropicTransportFields,
      apiKey: z.string().min(1).describe("The API key (sent as x-api-key)."),
    }),
    z.strictObject({
      type: z
        .literal("gemini")
        .describe(
          "Google's Gemini API (generateContent), serving OpenAI chat completions and embeddings clients (translated).",
        ),
      baseURL: z
        .url()
        .optional()
        .describe(
          "The API's base URL, with its version. Default https://generativelanguage.googleapis.com/v1beta.",
        ),
      dropUnsupportedParams: z
        .boolean()
        .optional()
        .describe("Leave out logprobs instead of answering 400. Default false."),
      ...anthropicTransportFields,
      apiKey: z.string().min(1).describe("The API key (sent as x-goog-api-key, never in the URL)."),
    }),
    z.strictObject({
      type: z.literal("echo").describe("Answers with the last user message; no network."),
    }),
  ])
  .describe("An upstream, by type.");

const logLevelSchema = z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);

const dropUnsupportedParamsSchema = z
  .boolean()
  .optional()
  .describe(
    "For a translating provider (anthropic, gemini): leave out what it cannot honour (Anthropic: n above 1, temperature above 1, logprobs; Gemini: logprobs; and Anthropic's server tools for either) instead of answering 400. Default: the provider's setting.",
  );

const usdPerMillion = (what: string) =>
  z
    .number()
    .min(0)
    .max(1_000_000)
    .describe(`${what}, in USD per million tokens (at most 6 decimals).`);

const tokenRates = {
  input: usdPerMillion("Uncached input"),
  output: usdPerMillion("Output (reasoning included unless reasoning is set)"),
  cachedInput: usdPerMillion("Input read from the prompt cache. Default: input").optional(),
  cacheWrite: usdPerMillion(
    "Input written to the prompt cache (Anthropic's 5-minute writes). Default: input",
  ).optional(),
  cacheWrite1h: usdPerMillion("1-hour cache writes. Default: cacheWrite").optional(),
  reasoning: usdPerMillion("Reasoning tokens, when priced apart from output").optional(),
};

const priceSchema = z
  .strictObject({
    ...tokenRates,
    tiers: z
      .array(
        z
          .strictObject({
            aboveInputTokens: z
              .number()
              .int()
              .positive()
              .describe("Prompts of more input tokens than this are priced wholly at the tier."),
            ...Object.fromEntries(
              Object.entries(tokenRates).map(([name, rate]) => [name, rate.optional()]),
            ),
          })
          .describe("Prices for large prompts (missing rates: the base ones)."),
      )
      .max(8)
      .optional()
      .describe("Prices above prompt sizes (Anthropic and Gemini above 200k tokens)."),
  })
  .describe(
    "A model's price, in USD per million tokens (at most 6 decimals), as providers publish them.",
  );

/** At most 9 decimals, and within what nano-USD integers count exactly (about 9 million). */
const usdAmount = (what: string) =>
  z
    .number()
    .positive()
    .max(9_000_000)
    .refine(
      (usd) => {
        // Out of range is said by the checks above.
        if (!(usd > 0 && usd <= 9_000_000)) return true;
        try {
          return usdToNano(usd) > 0;
        } catch {
          return false;
        }
      },
      { message: "must have at most 9 decimals" },
    )
    .describe(`${what} At most 9 decimals.`);

/** A calendar period and the time zone it follows, as quotas and budgets count them. */
const calendarPeriod = {
  period: z.enum(["hour", "day", "week", "month"]).describe("Calendar period."),
  timeZone: z
    .string()
    .min(1)
    .refine(isTimeZone, "must be an IANA time zone, such as UTC or Europe/Paris")
    .default("UTC")
    .describe("IANA time zone whose calendar the periods follow."),
};

const budgetSchema = z
  .strictObject({
    usd: usdAmount(
      "Hard limit in USD per period: a request whose reservation would pass it is refused (429 insufficient_quota), or for a target, sent to the route's other targets.",
    ).optional(),
    softUsd: z
      .union([usdAmount("One threshold."), z.array(usdAmount("A threshold.")).max(16)])
      .transform((value) => (Array.isArray(value) ? value : [value]))
      .optional()
      .describe(
        "Soft thresholds in USD: each logs a warning, counts in aigw_budget_threshold_reached_total and calls limits.budgetWebhook, once per period.",
      ),
    ...calendarPeriod,
  })
  .refine(({ usd, softUsd = [] }) => usd === undefined || softUsd.every((soft) => soft < usd), {
    message: "every softUsd must be below usd: a threshold at or above it is never reached",
    path: ["softUsd"],
  })
  .describe(
    "A money budget per calendar period: each request reserves the most it may cost and settles to what it cost. With neither usd nor softUsd it only counts the spend (for GET /v1/usage).",
  );

const targetSchema = z
  .strictObject({
    provider: z.string().min(1).describe("The provider of this target."),
    model: z
      .string()
      .min(1)
      .optional()
      .describe("The model sent upstream; default: the requested one."),
    weight: z
      .number()
      .min(0)
      .max(1_000_000)
      .optional()
      .describe("Its share with strategy weighted (1); 0: never picked."),
    rpm: z
      .number()
      .int()
      .positive()
      .optional()
      .describe("Requests per minute it may take (on the limits' store); past it, it is skipped."),
    tpm: z
      .number()
      .int()
      .positive()
      .optional()
      .describe(
        "Tokens per minute it may take, by each request's estimate; past it, it is skipped.",
      ),
    firstTokenTimeoutMs: milliseconds(
      "Streams: the longest its first token may take, in ms, before the request moves on to another target (replaces gateway.firstEventWaitMs for it).",
    ).optional(),
    dropUnsupportedParams: dropUnsupportedParamsSchema,
    price: priceSchema.optional().describe("Its price, over the route's and the price table's."),
    budget: budgetSchema
      .optional()
      .describe(
        "Money it may spend per period (on the limits' store): a request its budget has no room for goes to the route's other targets instead (usd is not a refusal here).",
      ),
  })
  .describe("One upstream of a route.");

const routeNames = (what: string) => z.array(z.string().min(1)).max(16).optional().describe(what);

const modelSchema = z
  .strictObject({
    provider: z
      .string()
      .min(1)
      .optional()
      .describe("The provider that serves the route (or give targets)."),
    model: z
      .string()
      .min(1)
      .optional()
      .describe("The model sent upstream (an alias); default: the requested one."),
    targets: z
      .array(targetSchema)
      .min(1)
      .max(64)
      .optional()
      .describe("Several upstreams, in priority order, balanced by strategy (or give provider)."),
    strategy: z
      .enum(strategies as [Strategy, ...Strategy[]])
      .optional()
      .describe(
        "How targets are picked: weighted (default), round-robin, least-busy, latency or priority.",
      ),
    maxAttempts: z
      .number()
      .int()
      .min(1)
      .max(20)
      .optional()
      .describe(
        "Upstream calls one request may make across retries, targets and fallbacks; default 1 + the first provider's maxRetries, or the number of targets plus fallbacks when more.",
      ),
    fallbacks: routeNames(
      "Routes tried in order once no target of this one can answer (their own fallbacks are not followed).",
    ),
    contextFallbacks: routeNames("Routes tried in order when a prompt is too long for the model."),
    cache: z
      .union([
        z.boolean(),
        z.strictObject({
          ttlMs: milliseconds("Time to live of the route's entries, in ms.").optional(),
          maxTtlMs: milliseconds("Longest time to live a request may ask for, in ms.").optional(),
          shared: z.boolean().optional().describe("One entry for all tenants."),
        }),
      ])
      .optional()
      .describe(
        "true or false to cache the route or not, or its own cache settings over the top-level ones.",
      ),
    dropUnsupportedParams: dropUnsupportedParamsSchema,
    price: priceSchema
      .optional()
      .describe(
        "The price of what the route answers (an alias, a self-hosted model), over the price table's; a target's own price wins.",
      ),
    budget: budgetSchema
      .optional()
      .describe(
        "Money the route may spend per period across tenants (on the limits' store); past it, requests are refused.",
      ),
    reserveOutputTokens: z
      .number()
      .int()
      .positive()
      .optional()
      .describe(
        "Output tokens a request without max_tokens is assumed to use, for quotas and budgets. Default 4,096.",
      ),
  })
  .refine((route) => (route.provider === undefined) !== (route.targets === undefined), {
    message: "give either provider (and model) or targets",
  })
  .refine((route) => route.targets === undefined || route.model === undefined, {
    message: "model belongs in each target when targets are given",
    path: ["model"],
  })
  .describe(
    "A route: a model name, a pattern with * (the longest match wins), or openai/* (the prefix is removed upstream).",
  );

const redisFields = {
  url: z
    .string()
    .regex(/^rediss?:\/\//, "must be a redis:// or rediss:// URL")
    .describe("redis:// or rediss:// URL; a password in it is never shown."),
  commandTimeoutMs: milliseconds("Longest wait for one Redis command, in ms.").default(500),
};

function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat("en", { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

const cooldownMs = (description: string) =>
  z.number().int().min(0).default(1_000).describe(description);

const limitSettingsSchema = z
  .strictObject({
    requestsPerSecond: z
      .number()
      .positive()
      .max(1_000_000_000)
      .optional()
      .describe("Requests per second (at most 1e9)."),
    burst: z
      .number()
      .int()
      .positive()
      .optional()
      .describe("Requests allowed at once. Default: requestsPerSecond × 2."),
    tokensPerMinute: z
      .number()
      .int()
      .positive()
      .optional()
      .describe(
        "Tokens per minute (prompt estimate plus max_tokens, settled to the reported usage).",
      ),
    quota: z
      .strictObject({
        tokens: z.number().int().positive().describe("Tokens per period."),
        ...calendarPeriod,
      })
      .optional()
      .describe("A token quota per calendar period."),
    budget: budgetSchema.optional(),
  })
  .describe("Limits: at least one of requestsPerSecond, tokensPerMinute, quota or budget.");

const tenantSchema = z
  .strictObject({
    keys: z
      .array(
        z
          .string()
          .regex(
            /^[0-9a-fA-F]{64}$/,
            "must be a sha256 hex digest: the sha256 that aigw keys create prints, never the key itself",
          ),
      )
      .default([])
      .describe("sha256 hex digests of the tenant's gateway keys (aigw keys create prints one)."),
    models: z
      .array(z.string().min(1))
      .optional()
      .describe("Models or route patterns the tenant may use. Default: every model."),
    limits: limitSettingsSchema.optional(),
  })
  .describe("A tenant: its keys, models and limits.");

export const configSchema = z.strictObject({
  server: z
    .strictObject({
      host: z
        .string()
        .min(1)
        .default("127.0.0.1")
        .describe("Address to listen on; 0.0.0.0 for every interface. HOST overrides it."),
      port: z
        .number()
        .int()
        .min(0)
        .max(65535)
        .default(8080)
        .describe("Port to listen on. PORT overrides it."),
      shutdownGraceMs: z
        .number()
        .int()
        .min(0)
        .default(30_000)
        .describe("How long in-flight requests may finish after SIGTERM or SIGINT, in ms."),
      requestTimeoutMs: milliseconds(
        "How long a client may take to send a request's headers and body, in ms.",
      ).default(60_000),
      maxConnections: z
        .number()
        .int()
        .positive()
        .optional()
        .describe(
          "Most client connections open at once; further ones are closed on arrival. Default: half the open-file limit, at most 4,096.",
        ),
      allowedHosts: z
        .union([z.literal("*"), z.array(z.string().min(1)).min(1)])
        .optional()
        .describe(
          'Host names clients may address (the Host header); "*" for any. Default: the loopback names on loopback, any otherwise.',
        ),
    })
    .prefault({})
    .describe("The HTTP listener."),
  gateway: z
    .strictObject({
      maxBodyBytes: z
        .number()
        .int()
        .positive()
        .optional()
        .describe(
          "Largest request body, in bytes, after decoding; larger ones get 413. Default 33,554,432 (32 MiB).",
        ),
      asyncContext: z
        .boolean()
        .default(false)
        .describe("Keep the request context in AsyncLocalStorage; costs CPU on every request."),
      costHeaders: z
        .boolean()
        .default(true)
        .describe(
          "Tell clients what their request cost: x-aigw-cost-usd on JSON answers, a last SSE comment on streams. false where upstream prices are not theirs to know.",
        ),
      keepAliveIntervalMs: milliseconds(
        'Silence on a stream after which a ": keep-alive" comment is sent, in ms. Default 15,000.',
      ).optional(),
      firstEventWaitMs: z
        .number()
        .int()
        .min(0)
        .optional()
        .describe(
          "How long a stream's 200 waits for the upstream's first event, in ms (a fast failure is still retried). Default 1,000.",
        ),
      bodyIdleTimeoutMs: milliseconds(
        "Longest pause while a request body arrives, in ms; then 408. Default 15,000.",
      ).optional(),
      sendTimeoutMs: milliseconds(
        "Longest an answer may wait for the client to read it, in ms; then the connection closes. Default 60,000.",
      ).optional(),
      cors: z
        .strictObject({
          origins: z
            .union([z.literal("*"), z.array(z.string().min(1))])
            .describe('Allowed origins, or "*" (then without credentials).'),
          methods: z.array(z.string()).optional().describe("Allowed methods."),
          headers: z.array(z.string()).optional().describe("Allowed request headers."),
          maxAge: z
            .number()
            .int()
            .min(0)
            .optional()
            .describe("How long browsers may keep a preflight's answer, in seconds."),
          credentials: z.boolean().optional().describe("Allow credentials (cookies)."),
        })
        .refine((cors) => !(cors.origins === "*" && cors.credentials), {
          message:
            'origins "*" cannot be combined with credentials: true (CORS forbids it: any web page could send requests with the user\'s credentials); list the allowed origins',
          path: ["credentials"],
        })
        .optional()
        .describe("CORS for browser clients; off unless set."),
    })
    .prefault({})
    .describe("The request path."),
  tenants: z
    .record(z.string().min(1), tenantSchema)
    .default({})
    .describe("Tenants by id. With no key anywhere, the gateway runs open."),
  limits: z
    .strictObject({
      store: z
        .enum(["memory", "redis"])
        .default("memory")
        .describe("Where limits are counted: this process, or Redis shared by every instance."),
      redis: z
        .strictObject({
          ...redisFields,
          keyPrefix: z.string().default("aigw:rl:").describe("Prefix of every key."),
          cooldownMs: cooldownMs(
            "After a failure, skip Redis this long, in ms: an outage then costs requests no latency.",
          ),
        })
        .optional()
        .describe("The Redis store (with store: redis)."),
      failurePolicy: z
        .enum(["open", "closed"])
        .default("open")
        .describe("When the store is unreachable: open lets requests through, closed answers 503."),
      keyBy: z
        .enum(["tenant", "tenant+user"])
        .default("tenant")
        .describe("tenant+user: each user of a tenant also gets the perUser limits."),
      perUser: limitSettingsSchema.optional(),
      userHeader: z
        .string()
        .min(1)
        .optional()
        .describe("With keyBy tenant+user: a header naming the user, besides the body's user."),
      clientHeader: z
        .string()
        .min(1)
        .optional()
        .describe("Open mode: a header naming the client; the client address otherwise."),
      default: limitSettingsSchema.optional(),
      reservationTtlMs: milliseconds(
        "How long a request's token and cost reservation holds when it is never settled (the instance died), in ms; also the longest a stream's reservation stays counted while it runs, so set it above your longest streams.",
      ).default(900_000),
      budgetWebhook: z
        .strictObject({
          url: z
            .string()
            .regex(/^https?:\/\//, "must be an http:// or https:// URL")
            .describe("Receives a POST with a JSON body per soft budget threshold reached."),
          headers: z
            .record(z.string(), z.string())
            .optional()
            .describe(
              "Headers sent with it (an Authorization, from the environment). Never logged.",
            ),
          timeoutMs: milliseconds("Longest wait for its answer, in ms.").default(5_000),
        })
        .optional()
        .describe(
          "Called once per period and soft budget threshold (by one instance when they share the limits' Redis).",
        ),
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
    })
    .describe(
      "Rate limits and quotas: `default` for tenants without their own (and everyone in open mode), `perUser` on top with keyBy tenant+user.",
    ),
  cache: z
    .strictObject({
      enabled: z
        .boolean()
        .default(true)
        .describe("false: only routes with their own cache setting are cached."),
      store: z.enum(["memory", "redis"]).default("memory").describe("Where entries are kept."),
      redis: z
        .strictObject({
          ...redisFields,
          keyPrefix: z.string().min(1).default("aigw:cache:").describe("Prefix of every key."),
          cooldownMs: cooldownMs(
            "After a failure, skip Redis this long, in ms (limits.redis.cooldownMs when both use one Redis).",
          ),
        })
        .optional()
        .describe("The Redis store (with store: redis)."),
      maxSizeBytes: z
        .number()
        .int()
        .positive()
        .default(100 * 2 ** 20)
        .describe("Memory store: most bytes held."),
      maxItems: z.number().int().positive().default(10_000).describe("Memory store: most entries."),
      ttlMs: milliseconds("Time to live of an entry, in ms.").default(300_000),
      maxTtlMs: milliseconds(
        "Longest time to live a request may ask for with x-aigw-cache-ttl, in ms. Default: ttlMs.",
      ).optional(),
      shared: z.boolean().default(false).describe("One entry for all tenants instead of one each."),
      chargeHits: z
        .boolean()
        .default(false)
        .describe("Charge cache hits against quotas and token budgets."),
      maxWaiters: z
        .number()
        .int()
        .positive()
        .default(1000)
        .describe("Most requests waiting on one coalesced upstream call."),
      maxEntryBytes: z
        .number()
        .int()
        .positive()
        .default(16 * 2 ** 20)
        .describe("Largest answer stored, in bytes; a longer stream is not gathered past it."),
    })
    .refine((cache) => cache.store !== "redis" || cache.redis, {
      message: "store redis needs cache.redis.url",
      path: ["redis"],
    })
    .optional()
    .describe("The response cache: off unless this section is present."),
  guardrails: guardrailsSchema,
  audit: auditSchema,
  metrics: z
    .strictObject({
      enabled: z.boolean().default(true).describe("Serve GET /metrics and record every request."),
      namespace: z
        .string()
        .regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/, "must be a Prometheus metric name prefix")
        .default("aigw")
        .describe("Prefix of every metric name."),
      tenantLabel: z
        .boolean()
        .default(false)
        .describe("Add a tenant label to rate-limit metrics (unbounded with many tenants)."),
      processMetrics: z
        .boolean()
        .default(true)
        .describe("Add Node.js process metrics (memory, event loop, GC)."),
      maxModelsPerRoute: z
        .number()
        .int()
        .min(0)
        .default(100)
        .describe(
          "Requested models labelled as themselves per route; past this, and for a failed request's unseen model, the label is the route.",
        ),
      port: z
        .number()
        .int()
        .min(0)
        .max(65535)
        .optional()
        .describe("Serve GET /metrics on this port of server.host instead of the gateway's own."),
      bearerToken: z
        .string()
        .min(16, "must be at least 16 characters")
        .optional()
        .describe("Require Authorization: Bearer <token> on GET /metrics, wherever it is served."),
    })
    .prefault({})
    .describe("Prometheus metrics."),
  logging: z
    .strictObject({
      level: logLevelSchema.default("info").describe("Least level logged. LOG_LEVEL overrides it."),
      format: z
        .enum(["json", "pretty"])
        .optional()
        .describe("json lines, or pretty; default: pretty on a terminal. LOG_FORMAT overrides it."),
    })
    .prefault({})
    .describe("Logs: one JSON line per request on stdout."),
  routing: z
    .strictObject({
      store: z
        .enum(["memory", "redis"])
        .default("memory")
        .describe("Where breaker state is kept: this process, or Redis shared by every instance."),
      redis: z
        .strictObject({
          ...redisFields,
          keyPrefix: z.string().default("aigw:cb:").describe("Prefix of every key."),
        })
        .optional()
        .describe("The Redis store (with store: redis)."),
      breaker: z
        .strictObject({
          failureRatio: z
            .number()
            .gt(0)
            .max(1)
            .default(0.5)
            .describe("Trips when this share of a window's outcomes failed..."),
          minimumRequests: z
            .number()
            .int()
            .positive()
            .default(10)
            .describe("...and the window holds at least this many."),
          windowMs: milliseconds("The window of the ratio, in ms.").default(30_000),
          consecutiveFailures: z
            .number()
            .int()
            .positive()
            .default(5)
            .describe("Trips on this many failures in a row."),
          cooldownMs: milliseconds(
            "The first cooldown, in ms; doubled on each trip without a recovery.",
          ).default(5_000),
          maxCooldownMs: milliseconds("The longest cooldown, in ms.").default(300_000),
          probes: z
            .number()
            .int()
            .positive()
            .max(100)
            .default(3)
            .describe("Probes a recovering target takes at once, and the successes that close it."),
        })
        .prefault({})
        .describe("The circuit breaker of every target (provider and model)."),
    })
    .prefault({})
    .refine((routing) => routing.store !== "redis" || routing.redis, {
      message: "store redis needs routing.redis.url",
      path: ["redis"],
    })
    .describe("Balancing and circuit breaking for routes with several targets."),
  admin: z
    .strictObject({
      bearerToken: z
        .string()
        .refine((token) => token.trim().length >= 16, "must be at least 16 characters")
        .refine(
          (token) => token.trim() === token,
          "must not start or end with spaces (a Bearer header could not carry them)",
        )
        .describe(
          "The admin key: Authorization: Bearer <token> on the admin endpoints, or the status page's login. Tenant keys never open them.",
        ),
      port: z
        .number()
        .int()
        .min(0)
        .max(65_535)
        .optional()
        .describe(
          "A listener of its own for /admin/* (and /metrics when metrics.port is the same port); otherwise /admin/* is served on the gateway's port.",
        ),
      statusPage: z
        .strictObject({
          enabled: z
            .boolean()
            .default(true)
            .describe("false turns the page off while keeping its settings."),
          recentRequests: z
            .number()
            .int()
            .min(1)
            .max(1000)
            .default(100)
            .describe("Requests kept for the live tail."),
          maxSeries: z
            .number()
            .int()
            .min(1)
            .max(1000)
            .default(100)
            .describe(
              "Models, providers, targets and tenants tracked each; beyond, counted as (other).",
            ),
          sessionHours: z
            .number()
            .positive()
            .max(24 * 7)
            .default(12)
            .describe(
              "How long a login lasts, in hours (at most a week). Logging out clears the browser's cookie; changing bearerToken ends every login.",
            ),
        })
        .optional()
        .describe(
          "The status page at /admin/status and its JSON API under /admin/api/; off unless set.",
        ),
    })
    .optional()
    .describe(
      "The admin surface: GET /admin/targets (each target's breaker state and cooldown end) and, with statusPage, the status page; off unless set.",
    ),
  providers: z.record(z.string().min(1), providerSchema).describe("The upstreams, by name."),
  models: z
    .record(z.string().min(1), modelSchema)
    .describe("The routes from requested model names to providers."),
  prices: z
    .record(z.string().min(1), priceSchema)
    .default({})
    .describe(
      "Model prices by model name, over the built-in table (OpenAI, Anthropic and Gemini models, from a dated snapshot: a price there may be older than that, so set the ones that matter).",
    ),
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
  providers:
    "the upstreams, for example `providers: { openai: { type: openai, baseURL: https://api.openai.com/v1, apiKey: ... } }`",
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
      element?: z.ZodType;
    };
    if (index === path.length)
      return def.type === "object" ? Object.keys(def.shape ?? {}) : undefined;
    const key = path[index] as PropertyKey;
    value =
      isRecord(value) || Array.isArray(value)
        ? (value as Record<PropertyKey, unknown>)[key]
        : undefined;
    if (def.type === "object") schema = def.shape?.[key as string] as z.ZodType;
    else if (def.type === "record") schema = def.valueType as z.ZodType;
    else if (def.type === "array") schema = def.element as z.ZodType;
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

/** A URL with its user info and query values replaced by "***" (all of it when unreadable). */
function maskURL(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return "***";
  }
  if (url.password) url.password = "***";
  else if (url.username) url.username = "***";
  for (const name of new Set(url.searchParams.keys())) url.searchParams.set(name, "***");
  return url.href;
}

/**
 * The configuration as it takes effect, with what must not be shown replaced by "***": API
 * keys, every header sent upstream (they often carry credentials), the metrics bearer token,
 * and user info and query values in URLs (Redis passwords included).
 */
export function maskSecrets(config: ServerConfig): unknown {
  const masked = structuredClone(config) as ServerConfig;
  for (const provider of Object.values(masked.providers)) {
    if ("apiKey" in provider && provider.apiKey !== undefined) provider.apiKey = "***";
    if ("headers" in provider && provider.headers) {
      for (const name of Object.keys(provider.headers)) provider.headers[name] = "***";
    }
    if ("baseURL" in provider && provider.baseURL !== undefined) {
      provider.baseURL = maskURL(provider.baseURL);
    }
    if ("endpoint" in provider) provider.endpoint = maskURL(provider.endpoint);
  }
  if (masked.metrics.bearerToken !== undefined) masked.metrics.bearerToken = "***";
  if (masked.admin) masked.admin.bearerToken = "***";
  if (masked.guardrails) masked.guardrails.secret = "***";
  if (masked.audit) {
    masked.audit.key = "***";
    if (masked.audit.postgres) masked.audit.postgres.url = maskURL(masked.audit.postgres.url);
  }
  const webhook = masked.limits.budgetWebhook;
  if (webhook) {
    // Webhook URLs often carry their secret in the path (Slack's do): only the origin shows.
    const url = maskURL(webhook.url);
    webhook.url = url === "***" ? url : `${new URL(url).origin}/***`;
    for (const name of Object.keys(webhook.headers ?? {})) {
      (webhook.headers as Record<string, string>)[name] = "***";
    }
  }
  for (const redis of [masked.limits.redis, masked.cache?.redis, masked.routing.redis]) {
    if (redis) redis.url = maskURL(redis.url);
  }
  return masked;
}

export function hasLimits(settings: LimitSettings): boolean {
  return Boolean(
    settings.requestsPerSecond || settings.tokensPerMinute || settings.quota || settings.budget,
  );
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
  const limitSettings: [string, LimitSettings | undefined][] = [
    ...Object.entries(config.tenants).map(
      ([tenant, settings]) =>
        [`tenants.${tenant}.limits`, settings.limits] as [string, LimitSettings | undefined],
    ),
    ["limits.default", config.limits.default],
    ["limits.perUser", config.limits.perUser],
  ];
  for (const [path, settings] of limitSettings) {
    if (settings && !hasLimits(settings)) {
      throw new ConfigError(
        `Invalid configuration:\n  ${path}: sets no limit; give requestsPerSecond, tokensPerMinute, quota or budget`,
      );
    }
  }
  for (const [name, model] of Object.entries(config.models)) {
    const targets = model.targets ?? [{ provider: model.provider as string }];
    for (const [index, target] of targets.entries()) {
      if (config.providers[target.provider]) continue;
      const known = Object.keys(config.providers).join(", ");
      const field = model.targets ? `targets.${index}.provider` : "provider";
      throw new ConfigError(
        `Invalid configuration:\n  models.${name}.${field}: unknown provider '${target.provider}'; configured providers: ${known}`,
      );
    }
    for (const field of ["fallbacks", "contextFallbacks"] as const) {
      for (const other of model[field] ?? []) {
        if (other === name) {
          throw new ConfigError(
            `Invalid configuration:\n  models.${name}.${field}: a route cannot fall back to itself`,
          );
        }
        if (other.includes("*") || !Object.hasOwn(config.models, other)) {
          const routes = Object.keys(config.models).filter(
            (route) => route !== name && !route.includes("*"),
          );
          throw new ConfigError(
            `Invalid configuration:\n  models.${name}.${field}: no route named '${other}'; routes it may name (exact names, no '*'): ${routes.join(", ") || "none"}`,
          );
        }
      }
    }
    if (model.cache !== undefined && !config.cache) {
      throw new ConfigError(
        `Invalid configuration:\n  models.${name}.cache: needs the top-level cache section`,
      );
    }
  }
  const prices: [string, unknown][] = [
    ...Object.entries(config.prices).map(([model, price]): [string, unknown] => [
      `prices.${model}`,
      price,
    ]),
    ...Object.entries(config.models).flatMap(([name, route]) => [
      [`models.${name}.price`, route.price] as [string, unknown],
      ...(route.targets ?? []).map((target, index): [string, unknown] => [
        `models.${name}.targets.${index}.price`,
        target.price,
      ]),
    ]),
  ];
  for (const [path, price] of prices) {
    if (price === undefined) continue;
    try {
      priceModel(path, price as Parameters<typeof priceModel>[1]);
    } catch (error) {
      const reason = (error as Error).message.replace(/^price of "[^"]*": /, "");
      throw new ConfigError(`Invalid configuration:\n  ${path}: ${reason}`);
    }
  }
  const guardrailsIssue = config.guardrails && guardrailsProblem(config.guardrails);
  if (guardrailsIssue) throw new ConfigError(`Invalid configuration:\n  ${guardrailsIssue}`);
  for (const [section, known] of [
    ["routes", config.models],
    ["tenants", config.tenants],
  ] as const) {
    for (const name of Object.keys(config.guardrails?.[section] ?? {})) {
      if (Object.hasOwn(known, name)) continue;
      throw new ConfigError(
        `Invalid configuration:\n  guardrails.${section}.${name}: no ${section === "routes" ? "route" : "tenant"} of that name; known: ${Object.keys(known).join(", ") || "none"}`,
      );
    }
    for (const name of config.audit?.content[section] ?? []) {
      if (Object.hasOwn(known, name) || (section === "tenants" && name === "anonymous")) continue;
      throw new ConfigError(
        `Invalid configuration:\n  audit.content.${section}: no ${section === "routes" ? "route" : "tenant"} named '${name}'; known: ${Object.keys(known).join(", ") || "none"}`,
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

/** The providers a key in the environment turns on, and the routes each serves. */
const environmentProviders = [
  {
    name: "openai",
    key: "OPENAI_API_KEY",
    url: "OPENAI_BASE_URL",
    baseURL: "https://api.openai.com/v1",
    routes: ["gpt-*", "o1*", "o3*", "o4*", "chatgpt-*", "text-embedding-*", "openai/*"],
  },
  {
    // Anthropic's SDKs take the URL without /v1; the provider adds it to a URL without a path.
    name: "anthropic",
    key: "ANTHROPIC_API_KEY",
    url: "ANTHROPIC_BASE_URL",
    baseURL: "https://api.anthropic.com/v1",
    routes: ["claude-*", "anthropic/*"],
  },
  {
    name: "gemini",
    key: "GEMINI_API_KEY",
    url: "GEMINI_BASE_URL",
    baseURL: "https://generativelanguage.googleapis.com/v1beta",
    routes: ["gemini-*", "gemini/*"],
  },
] as const;

/**
 * The configuration without a file: the echo model always, OpenAI's model families when
 * OPENAI_API_KEY is set, Anthropic's when ANTHROPIC_API_KEY is set (ANTHROPIC_BASE_URL with or
 * without /v1, as the Anthropic SDKs take it), and Gemini's when GEMINI_API_KEY is set
 * (GEMINI_BASE_URL with its version). PORT and HOST apply to file configurations too.
 */
export function configFromEnv(env: Environment): ServerConfig {
  const providers: Record<string, unknown> = { echo: { type: "echo" } };
  const models: Record<string, unknown> = { echo: { provider: "echo" } };
  for (const provider of environmentProviders) {
    const apiKey = env[provider.key];
    if (!apiKey) continue;
    const baseURL = env[provider.url] ?? provider.baseURL;
    providers[provider.name] = { type: provider.name, baseURL, apiKey };
    for (const route of provider.routes) models[route] = { provider: provider.name };
  }
  return parseConfig({ providers, models });
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
  const unknownEntity =
    (config.guardrails && (await unknownEntityName(config.guardrails))) ||
    (config.audit && (await unknownAuditEntity(config.audit)));
  if (unknownEntity) throw new ConfigError(`Invalid configuration:\n  ${unknownEntity}`);
  if (env.PORT !== undefined) {
    const port = Number(env.PORT);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new ConfigError(`PORT must be a port number, got '${env.PORT}'`);
    }
    config.server.port = port;
  }
  if (env.HOST) config.server.host = env.HOST;
  const gatewayPort = config.server.port;
  for (const [setting, port] of [
    ["admin.port", config.admin?.port],
    ["metrics.port", config.metrics.port],
  ] as const) {
    if (port !== undefined && port !== 0 && port === gatewayPort) {
      throw new ConfigError(
        `${setting} is ${port}, the gateway's own port (server.port or PORT): choose another, or leave ${setting} out to serve it on the gateway's port`,
      );
    }
  }
  if (env.LOG_LEVEL) {
    const level = logLevelSchema.safeParse(env.LOG_LEVEL);
    if (!level.success) throw new ConfigError(`LOG_LEVEL: ${level.error.issues[0]?.message}`);
    config.logging.level = level.data;
  }
  if (env.LOG_FORMAT === "json" || env.LOG_FORMAT === "pretty")
    config.logging.format = env.LOG_FORMAT;
  return config;
}
