#!/usr/bin/env node
import { randomBytes } from "node:crypto";
import { hashApiKey } from "@aigw/core";
import { pino } from "pino";
import { ConfigError, resolveConfig } from "./config.js";
import { BufferedLogOutput } from "./log-output.js";
import { startServer } from "./server.js";

/** `aigw keys create`: a new gateway key and the digest that goes into the config. */
function createKey() {
  const key = `aigw-${randomBytes(32).toString("base64url")}`;
  process.stdout.write(
    [
      `key:    ${key}`,
      `sha256: ${hashApiKey(key)}`,
      "",
      "Give the key to its user and put the sha256 under tenants.<id>.keys in the config file.",
      "The key itself is not stored anywhere: this is the only time it is shown.",
      "",
    ].join("\n"),
  );
}

async function main() {
  if (process.argv[2] === "keys") {
    if (process.argv[3] !== "create") throw new ConfigError("usage: aigw keys create");
    createKey();
    return;
  }
  const config = await resolveConfig(process.argv.slice(2), process.env);
  const pretty =
    config.logging.format === "pretty" || (!config.logging.format && process.stdout.isTTY);
  const options = { level: config.logging.level, base: undefined };
  const logger = pretty
    ? pino({ ...options, transport: { target: "pino-pretty" } })
    : pino(options, new BufferedLogOutput(1));
  process.once("exit", () => logger.flush());
  const running = await startServer(config, logger);
  logger.info(
    { url: running.url, models: Object.keys(config.models) },
    `aigw listening on ${running.url}`,
  );
  logger.flush();

  const stop = async (signal: string) => {
    logger.info({ signal, graceMs: config.server.shutdownGraceMs }, "draining before shutdown");
    await running.shutdown();
    logger.info({}, "shut down");
    logger.flush(() => process.exit(0));
  };
  process.once("SIGTERM", () => void stop("SIGTERM"));
  process.once("SIGINT", () => void stop("SIGINT"));
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`aigw: ${error.message}\n`);
  } else {
    process.stderr.write(`aigw: failed to start: ${(error as Error)?.stack ?? error}\n`);
  }
  process.exit(1);
});
