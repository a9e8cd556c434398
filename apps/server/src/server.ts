import { once } from "node:events";
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createGateway, type Gateway, type Logger } from "@aigw/core";
import { toNodeListener } from "@aigw/core/node";
import { createStatusRecorder, type StatusRecorder } from "@aigw/core/status";
import { createMetrics, type Metrics } from "@aigw/metrics";
import { createPriceTable, type PriceTable } from "@aigw/pricing";
import {
  createAnthropic,
  createAzureOpenAI,
  createEcho,
  createGemini,
  createOpenAICompatible,
  type Provider,
} from "@aigw/provider";
import { createRedisOutage } from "@aigw/ratelimit";
import { createAdminHandler, type RateLimits } from "./admin/handler.js";
import { createServerAudit } from "./audit.js";
import { createBudgetAlert } from "./budget-alerts.js";
import { createServerCache } from "./cache.js";
import { ConfigError, type ProviderConfig, type ServerConfig } from "./config.js";
import { closeSlowConnections } from "./connection-guard.js";
import { createServerGuardrails } from "./guardrails.js";
import { createServerLimits } from "./limits.js";
import { metricsHandler } from "./metrics-listener.js";
import { createServerRouting } from "./routing.js";

function createProvider(name: string, config: ProviderConfig, logger: Logger): Provider {
  /** For a translating provider: each request field it left out, said once per field. */
  const onDroppedField = (upstream: string) => (field: string) =>
    logger.warn(
      { provider: name, field },
      `A request field ${upstream} has no counterpart for was left out (said once per field)`,
    );
  switch (config.type) {
    case "echo":
      return createEcho();
    case "anthropic": {
      const { type: _type, ...options } = config;
      return createAnthropic({ ...options, onDroppedField: onDroppedField("Anthropic") });
    }
    case "gemini": {
      const { type: _type, ...options } = config;
      return createGemini({ ...options, onDroppedField: onDroppedField("Gemini") });
    }
    case "azure": {
      const { type: _type, ...options } = config;
      return createAzureOpenAI(options);
    }
    default: {
      const { type, ...options } = config;
      return createOpenAICompatible({
        ...options,
        kind: type === "openai" ? "openai" : "compatible",
      });
    }
  }
}

export async function createGatewayFromConfig(
  config: ServerConfig,
  logger: Logger,
): Promise<{
  gateway: Gateway;
  metrics: Metrics | undefined;
  status: StatusRecorder | undefined;
  close(): Promise<void>;
}> {
  const providers = Object.fromEntries(
    Object.entries(config.providers).map(([name, provider]) => [
      name,
      createProvider(name, provider, logger),
    ]),
  );
  const metrics = config.metrics.enabled
    ? createMetrics({
        namespace: config.metrics.namespace,
        tenantLabel: config.metrics.tenantLabel,
        collectDefaultMetrics: config.metrics.processMetrics,
        maxModelsPerRoute: config.metrics.maxModelsPerRoute,
      })
    : undefined;
  const outages = redisOutages(config, logger);
  const budgetAlert = createBudgetAlert(config.limits.budgetWebhook, logger, metrics);
  const {
    tenants,
    limits,
    targetLimiter,
    close: closeLimits,
  } = await createServerLimits(config, outages.limits, budgetAlert);
  const cache = config.cache && (await createServerCache(config.cache, metrics, outages.cache));
  const routing = await createServerRouting(config.routing, targetLimiter, metrics, logger);
  const { guardrails } = config;
  const prices = createPriceTable({ prices: config.prices });
  announceUnpricedModels(config, prices, logger);
  const audit = config.audit && (await createServerAudit(config.audit, logger));
  const statusPage = config.admin?.statusPage;
  const status = statusPage?.enabled ? createStatusRecorder(statusPage) : undefined;
  // The audit hooks first: they take the prompt before the guardrails' beforeRequest masks it.
  const hooks = [
    ...(audit ? [audit.hooks] : []),
    ...(status ? [status.hooks] : []),
    ...(guardrails ? [await createServerGuardrails(guardrails)] : []),
  ];
  const gateway = createGateway({
    providers,
    models: config.models,
    prices,
    hooks,
    routing,
    tenants,
    limits,
    cache,
    logger,
    metrics,
    // A metrics port of its own takes /metrics off the gateway's listener.
    metricsEndpoint:
      config.metrics.port === undefined ? { bearerToken: config.metrics.bearerToken } : false,
    asyncContext: config.gateway.asyncContext,
    costHeaders: config.gateway.costHeaders,
    cors: config.gateway.cors,
    allowedHosts: allowedHosts(config),
    maxBodyBytes: config.gateway.maxBodyBytes,
    bodyIdleTimeoutMs: config.gateway.bodyIdleTimeoutMs,
    sendTimeoutMs: config.gateway.sendTimeoutMs,
    keepAliveIntervalMs: config.gateway.keepAliveIntervalMs,
    firstEventWaitMs: config.gateway.firstEventWaitMs,
  });
  async function close() {
    try {
      await closeLimits();
      await cache?.store.close();
      await routing.close();
    } finally {
      // Whatever else failed to close, the records in memory and the last checkpoint go out.
      await audit?.close();
    }
  }
  return { gateway, metrics, status, close };
}

const loopbackNames = new Set(["127.0.0.1", "::1", "[::1]", "localhost"]);

/** Whether two redis:// URLs name one database of one server (loopback names are alike). */
function sameRedis(first: string, second: string): boolean {
  const place = (text: string) => {
    const url = new URL(text);
    const host = loopbackNames.has(url.hostname) ? "loopback" : url.hostname.toLowerCase();
    const database = url.pathname.replace(/^\//, "") || "0";
    return `${url.protocol}//${host}:${url.port || "6379"}/${database}`;
  };
  return place(first) === place(second);
}

/**
 * One outage state per Redis the config uses, shared by the rate limits and the response cache
 * when both are on the same one: a request waits for a dead Redis once however many stores use
 * it, and each outage is one warning as it starts and one line when it ends.
 */
function redisOutages(config: ServerConfig, logger: Logger) {
  const { limits, cache } = config;
  const limitsRedis = limits.store === "redis" ? limits.redis : undefined;
  const cacheRedis = cache?.store === "redis" ? cache.redis : undefined;
  const shared =
    limitsRedis !== undefined &&
    cacheRedis !== undefined &&
    sameRedis(limitsRedis.url, cacheRedis.url);
  const watch = (stores: string, cooldownMs: number, outcome: string) =>
    createRedisOutage({
      cooldownMs,
      onOutage(error) {
        logger.warn(
          { store: "redis", err: error.message },
          `Redis unreachable (${stores}): ${outcome}`,
        );
      },
      onRecovery() {
        logger.info({ store: "redis" }, `Redis reachable again (${stores})`);
      },
    });
  const policy = limits.failurePolicy === "open" ? "letting requests through" : "refusing requests";
  const forLimits =
    limitsRedis &&
    watch(
      shared ? "rate limits and response cache" : "rate limits",
      limitsRedis.cooldownMs,
      shared ? `${policy}, serving without the cache` : policy,
    );
  const forCache = shared
    ? forLimits
    : cacheRedis && watch("response cache", cacheRedis.cooldownMs, "serving without it");
  return { limits: forLimits, cache: forCache };
}

const loopbackHosts = new Set(["127.0.0.1", "::1", "localhost"]);

/**
 * On a loopback listener only loopback names are accepted unless the config says otherwise:
 * a web page could otherwise reach the gateway through a DNS name it controls.
 */
function allowedHosts(config: ServerConfig): string[] | undefined {
  const { allowedHosts: configured, host } = config.server;
  if (configured === "*") return undefined;
  if (configured) return configured;
  return loopbackHosts.has(host) ? [...loopbackHosts] : undefined;
}

/**
 * Names the routes' models that have no price: their cost is unknown, and where a hard budget
 * applies their requests are refused, so it says so loudly when a budget is configured.
 * Wildcard routes are left out: which models they serve is known only per request.
 */
function announceUnpricedModels(config: ServerConfig, prices: PriceTable, logger: Logger) {
  const unpriced = new Set<string>();
  let hardBudget = false;
  for (const settings of [
    config.limits.default,
    config.limits.perUser,
    ...Object.values(config.tenants).map((tenant) => tenant.limits),
  ]) {
    hardBudget ||= settings?.budget?.usd !== undefined;
  }
  for (const [name, route] of Object.entries(config.models)) {
    hardBudget ||= route.budget?.usd !== undefined;
    if (name.includes("*")) continue;
    const targets = route.targets ?? [{ provider: route.provider, model: route.model }];
    for (const target of targets) {
      const budget = "budget" in target ? target.budget : undefined;
      hardBudget ||= budget?.usd !== undefined;
      const model = target.model ?? name;
      const priced =
        ("price" in target && target.price) ||
        route.price ||
        prices.lookup(model) ||
        prices.lookup(name);
      if (!priced) unpriced.add(model === name ? name : `${name} (upstream ${model})`);
    }
  }
  if (unpriced.size === 0) return;
  const models = [...unpriced].join(", ");
  if (hardBudget) {
    logger.warn(
      { models: [...unpriced] },
      `no price for ${models}: requests to them are refused where a hard budget applies (400 model_not_priced); price them under prices (by either name) or the route's price`,
    );
  } else {
    logger.info({ models: [...unpriced] }, `no price for ${models}: their cost is unknown`);
  }
}

/** Each configured tenant with the request and token rates it has, for the status page. */
function tenantRateLimits(config: ServerConfig): { name: string; rateLimits: RateLimits | null }[] {
  return Object.entries(config.tenants).map(([name, tenant]) => {
    const limits = tenant.limits ?? config.limits.default;
    return {
      name,
      rateLimits: limits
        ? {
            requests_per_second: limits.requestsPerSecond ?? null,
            burst: limits.burst ?? null,
            tokens_per_minute: limits.tokensPerMinute ?? null,
          }
        : null,
    };
  });
}

/** Says at startup that nothing authenticates clients, loudly when others can connect. */
function announceOpenMode(config: ServerConfig, logger: Logger) {
  const keys = Object.values(config.tenants).reduce(
    (count, tenant) => count + tenant.keys.length,
    0,
  );
  if (keys > 0) return;
  if (loopbackHosts.has(config.server.host)) {
    logger.info({}, "no gateway keys configured: the gateway is open (listening on loopback only)");
  } else {
    logger.warn(
      { host: config.server.host },
      "no gateway keys configured and listening beyond loopback: anyone who can reach this port can use the upstreams",
    );
  }
}

/**
 * Half the process's open-file limit, leaving the rest for upstream connections and files, at
 * most 4,096; 4,096 where the limit cannot be read (outside Linux).
 */
async function defaultMaxConnections(): Promise<number> {
  const limits = await readFile("/proc/self/limits", "utf8").catch(() => "");
  const openFiles = Number(/^Max open files\s+(\d+)/m.exec(limits)?.[1]);
  return openFiles > 0 ? Math.max(16, Math.min(4096, Math.floor(openFiles / 2))) : 4096;
}

/**
 * Starts `server` listening and resolves with its port; a failure is one sentence that names
 * `setting`, the place to change the port.
 */
async function listen(server: Server, host: string, port: number, setting: string) {
  server.listen(port, host);
  try {
    await once(server, "listening");
  } catch (error) {
    throw listenFailure(error as NodeJS.ErrnoException, host, port, setting);
  }
  return (server.address() as AddressInfo).port;
}

function listenFailure(
  error: NodeJS.ErrnoException,
  host: string,
  port: number,
  setting: string,
): Error {
  switch (error.code) {
    case "EADDRINUSE":
      return new ConfigError(
        `Port ${port} on ${host} is already in use: stop what listens there, or choose another port with ${setting}`,
      );
    case "EACCES":
      return new ConfigError(
        `No permission to listen on port ${port}: choose a port above 1023 with ${setting}`,
      );
    case "EADDRNOTAVAIL":
      return new ConfigError(
        `${host} is not an address of this machine: set HOST or server.host to one of its addresses, or 0.0.0.0 for all`,
      );
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return new ConfigError(`The host name ${host} cannot be resolved: fix HOST or server.host`);
    default:
      return error;
  }
}

export interface RunningServer {
  server: Server;
  gateway: Gateway;
  url: string;
  /** Where GET /metrics is served, when metrics are on. */
  metricsURL: string | undefined;
  /** Where the status page is served, when it is on. */
  statusURL: string | undefined;
  /** Drains in-flight requests within the grace period, then closes the listener and pools. */
  shutdown(): Promise<void>;
}

export async function startServer(config: ServerConfig, logger: Logger): Promise<RunningServer> {
  const {
    gateway,
    metrics,
    status,
    close: closeStores,
  } = await createGatewayFromConfig(config, logger);
  announceOpenMode(config, logger);
  const { admin } = config;
  const adminPort = admin?.port;
  // The admin listener serves /metrics too when both are given one port.
  const metricsOnAdmin =
    metrics !== undefined && adminPort !== undefined && config.metrics.port === adminPort;
  const metricsListener = metrics && metricsHandler(metrics, config.metrics.bearerToken);
  const statusPage = admin?.statusPage;
  const adminHandler =
    admin &&
    createAdminHandler({
      gateway,
      bearerToken: admin.bearerToken,
      status: status &&
        statusPage && {
          recorder: status,
          tenants: tenantRateLimits(config),
          sessionHours: statusPage.sessionHours,
        },
      metrics: metricsOnAdmin ? metricsListener : undefined,
      allowedHosts: allowedHosts(config),
      logger,
    });
  const gatewayListener = toNodeListener(gateway);
  const { requestTimeoutMs } = config.server;
  const keepAliveTimeout = 65_000;
  const listenerOptions = {
    // Headers and body must arrive within this; answers, streams included, may take longer.
    requestTimeout: requestTimeoutMs,
    headersTimeout: requestTimeoutMs,
    // How often Node checks those timeouts.
    connectionsCheckingInterval: Math.min(30_000, Math.ceil(requestTimeoutMs / 4)),
    keepAliveTimeout,
  };
  const maxConnections = config.server.maxConnections ?? (await defaultMaxConnections());
  /** A listener with the gateway's timeouts and connection cap. */
  const guarded = (server: Server) => {
    closeSlowConnections(server, requestTimeoutMs, keepAliveTimeout + requestTimeoutMs);
    server.maxConnections = maxConnections;
    return server;
  };
  const server = createServer(
    listenerOptions,
    adminHandler && adminPort === undefined
      ? (request, response) => {
          const path = request.url ?? "";
          if (path === "/admin" || path.startsWith("/admin/") || path.startsWith("/admin?")) {
            adminHandler.listener(request, response);
          } else gatewayListener(request, response);
        }
      : gatewayListener,
  );
  guarded(server);
  const host = config.server.host.includes(":") ? `[${config.server.host}]` : config.server.host;
  let port: number;
  let metricsServer: Server | undefined;
  let metricsURL: string | undefined;
  let adminServer: Server | undefined;
  let adminURL: string | undefined;
  try {
    port = await listen(server, config.server.host, config.server.port, "PORT or server.port");
    adminURL = `http://${host}:${port}`;
    if (adminHandler && adminPort !== undefined) {
      adminServer = guarded(createServer(listenerOptions, adminHandler.listener));
      adminURL = `http://${host}:${await listen(adminServer, config.server.host, adminPort, "admin.port")}`;
    }
    const metricsPort = config.metrics.port;
    if (metricsOnAdmin) {
      metricsURL = `${adminURL}/metrics`;
    } else if (metricsListener && metricsPort !== undefined) {
      metricsServer = guarded(createServer(listenerOptions, metricsListener));
      const bound = await listen(metricsServer, config.server.host, metricsPort, "metrics.port");
      metricsURL = `http://${host}:${bound}/metrics`;
    } else if (metrics) {
      metricsURL = `http://${host}:${port}/metrics`;
    }
  } catch (error) {
    server.close();
    metricsServer?.close();
    adminServer?.close();
    await gateway.close();
    await closeStores();
    throw error;
  }

  let shuttingDown: Promise<void> | undefined;
  // While draining the listener stays open, so load balancers can still ask /health and learn
  // (503) that this instance is going away; new requests get 503 too.
  async function shutdown() {
    await gateway.drain({ graceMs: config.server.shutdownGraceMs });
    adminHandler?.close();
    const listeners = [server, metricsServer, adminServer].filter(
      (listener): listener is Server => listener !== undefined,
    );
    const closed = listeners.map(
      (listener) => new Promise<void>((resolve) => listener.close(() => resolve())),
    );
    for (const listener of listeners) listener.closeAllConnections();
    await Promise.all(closed);
    await gateway.close();
    await closeStores();
  }

  return {
    server,
    gateway,
    url: `http://${host}:${port}`,
    metricsURL,
    statusURL: status ? `${adminURL}/admin/status` : undefined,
    shutdown: () => {
      shuttingDown ??= shutdown();
      return shuttingDown;
    },
  };
}
