import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createGateway, type Gateway, type Logger } from "@aigw/core";
import { toNodeListener } from "@aigw/core/node";
import {
  createAzureOpenAI,
  createEcho,
  createOpenAICompatible,
  type Provider,
} from "@aigw/provider";
import type { ProviderConfig, ServerConfig } from "./config.js";

function createProvider(config: ProviderConfig): Provider {
  switch (config.type) {
    case "echo":
      return createEcho();
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

export function createGatewayFromConfig(config: ServerConfig, logger: Logger): Gateway {
  const providers = Object.fromEntries(
    Object.entries(config.providers).map(([name, provider]) => [name, createProvider(provider)]),
  );
  return createGateway({
    providers,
    models: config.models,
    logger,
    cors: config.gateway.cors,
    maxBodyBytes: config.gateway.maxBodyBytes,
    keepAliveIntervalMs: config.gateway.keepAliveIntervalMs,
  });
}

export interface RunningServer {
  server: Server;
  gateway: Gateway;
  url: string;
  /** Drains in-flight requests within the grace period, then closes the listener and pools. */
  shutdown(): Promise<void>;
}

export async function startServer(config: ServerConfig, logger: Logger): Promise<RunningServer> {
  const gateway = createGatewayFromConfig(config, logger);
  const server = createServer(toNodeListener(gateway));
  // SDKs and proxies keep connections open; the gateway's own timeouts decide when to give up.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 65_000;
  server.listen(config.server.port, config.server.host);
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  const host = config.server.host.includes(":") ? `[${config.server.host}]` : config.server.host;

  let shuttingDown: Promise<void> | undefined;
  // While draining the listener stays open, so load balancers can still ask /health and learn
  // (503) that this instance is going away; new requests get 503 too.
  async function shutdown() {
    await gateway.drain({ graceMs: config.server.shutdownGraceMs });
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
    await gateway.close();
  }

  return {
    server,
    gateway,
    url: `http://${host}:${port}`,
    shutdown: () => {
      shuttingDown ??= shutdown();
      return shuttingDown;
    },
  };
}
