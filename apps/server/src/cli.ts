#!/usr/bin/env node
import { pino } from "pino";
import { ConfigError, resolveConfig } from "./config.js";
import { startServer } from "./server.js";

async function main() {
  const config = await resolveConfig(process.argv.slice(2), process.env);
  const pretty =
    config.logging.format === "pretty" || (!config.logging.format && process.stdout.isTTY);
  // Lines are written by a worker thread, so serving requests never waits on stdout.
  const logger = pino({
    level: config.logging.level,
    base: undefined,
    transport: pretty
      ? { target: "pino-pretty" }
      : { target: "pino/file", options: { destination: 1 } },
  });
  const running = await startServer(config, logger);
  logger.info(
    { url: running.url, models: Object.keys(config.models) },
    `aigw listening on ${running.url}`,
  );

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
