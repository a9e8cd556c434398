#!/usr/bin/env node
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createReadStream, existsSync, readFileSync, statSync } from "node:fs";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import type { AuditQuery, AuditSource, Checkpoint } from "@aigw/audit";
import { hashApiKey } from "@aigw/core";
import { pino } from "pino";
import { stringify as toYaml } from "yaml";
import { auditSource } from "./audit.js";
import { ConfigError, maskSecrets, resolveConfig, type ServerConfig } from "./config.js";
import { BufferedLogOutput } from "./log-output.js";
import { startServer } from "./server.js";

const usage = `Usage:
  aigw [--config FILE]            start the gateway
  aigw check [--config FILE]      validate a config and print it as it takes effect
                                  (schema defaults filled in, secrets masked); exit 0 or 1
  aigw keys create [--json]       make a gateway key and the sha256 that goes into the config
  aigw audit verify [--checkpoints FILE] [--config FILE]
                                  check the audit log's chain: exit 0 when intact, 1 when a
                                  record was removed, reordered or altered; FILE adds
                                  checkpoints kept elsewhere (the gateway's own log lines)
  aigw audit tail [-n N] [--config FILE]
                                  print the newest N audit records (default 20), JSON lines
  aigw audit query [--tenant T] [--model M] [--since TIME] [--until TIME] [--config FILE]
                                  print the matching audit records, JSON lines; TIME is ISO 8601

Options:
  -c, --config FILE   the config file (YAML or JSON); default: $AIGW_CONFIG, else none
                      (the echo model, OpenAI's models when OPENAI_API_KEY is set,
                      Anthropic's when ANTHROPIC_API_KEY is set)
      --json          keys create: print {"key", "sha256"} as JSON
  -n, --lines N       audit tail: how many records (at most 100000)
      --tenant, --model, --since, --until
                      audit query: the filters (times inclusive)
  -h, --help          print this help
  -v, --version       print the version

Environment: PORT, HOST, AIGW_CONFIG, LOG_LEVEL, LOG_FORMAT, OPENAI_API_KEY, OPENAI_BASE_URL,
ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL, GEMINI_API_KEY, GEMINI_BASE_URL.
`;

/** A mistake in the command line: the message, then the usage, and exit code 2. */
class UsageError extends Error {}

const commands = ["", "check", "keys create", "audit verify", "audit tail", "audit query"];

function version(): string {
  const manifest = new URL("../package.json", import.meta.url);
  return (JSON.parse(readFileSync(manifest, "utf8")) as { version: string }).version;
}

const options = {
  config: { type: "string", short: "c" },
  json: { type: "boolean" },
  lines: { type: "string", short: "n" },
  checkpoints: { type: "string" },
  tenant: { type: "string" },
  model: { type: "string" },
  since: { type: "string" },
  until: { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "v" },
} as const;

function parseCommandLine(args: string[]) {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    // Node's own messages go on about positionals after "--"; the option is what matters.
    const { code, message } = error as NodeJS.ErrnoException;
    const option = /'([^']+)'/.exec(message)?.[1];
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && option) {
      throw new UsageError(`unknown option '${option}'`);
    }
    throw new UsageError(message);
  }
  const { values, positionals } = parsed;
  const command = positionals.join(" ");
  if (values.help || values.version) return { command: values.help ? "help" : "version", values };
  if (!commands.includes(command)) {
    const group = positionals[0] === "keys" || positionals[0] === "audit" ? positionals[0] : "";
    const known = commands.filter((each) => each.startsWith(`${group} `)).join(", ");
    throw new UsageError(
      !group
        ? `unknown command '${command}'`
        : positionals.length === 1
          ? `${group} needs a command: ${known}`
          : `unknown ${group} command '${positionals.slice(1).join(" ")}'`,
    );
  }
  for (const [option, commandOf] of [
    ["lines", "audit tail"],
    ["checkpoints", "audit verify"],
    ["tenant", "audit query"],
    ["model", "audit query"],
    ["since", "audit query"],
    ["until", "audit query"],
  ] as const) {
    if (values[option] !== undefined && command !== commandOf) {
      throw new UsageError(`--${option} goes with ${commandOf} only`);
    }
  }
  if (values.config === "") throw new UsageError("--config needs a file path");
  if (values.json && command !== "keys create") {
    throw new UsageError("--json goes with keys create only");
  }
  if (values.config !== undefined && command === "keys create") {
    throw new UsageError("keys create reads no config: leave out --config");
  }
  return { command, values };
}

/** `aigw keys create`: a new gateway key and the digest that goes into the config. */
function createKey(json: boolean) {
  const key = `aigw-${randomBytes(32).toString("base64url")}`;
  const sha256 = hashApiKey(key);
  if (json) {
    process.stdout.write(`${JSON.stringify({ key, sha256 })}\n`);
    return;
  }
  process.stdout.write(
    [
      `key:    ${key}`,
      `sha256: ${sha256}`,
      "",
      "Give the key to its user and put the sha256 under tenants.<id>.keys in the config file.",
      "The key itself is not stored anywhere: this is the only time it is shown.",
      "",
    ].join("\n"),
  );
}

const isoTime =
  /^(\d{4}-\d{2}-\d{2})(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

/**
 * An ISO 8601 date (a UTC day) or time with its zone: `--until` with a date means the end of
 * that day, so both bounds are inclusive.
 */
function timeOption(name: "since" | "until", text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const match = isoTime.exec(text);
  const day = match?.[1];
  const dateOnly = day === text;
  const time = match ? new Date(dateOnly ? `${day}T00:00:00Z` : text) : new Date(Number.NaN);
  // Date() rolls 2026-02-30 over into March: a day that does not exist is refused instead.
  if (Number.isNaN(time.getTime()) || (dateOnly && time.toISOString().slice(0, 10) !== day)) {
    throw new UsageError(
      `--${name} must be an ISO 8601 date (2026-12-01, a UTC day) or a time with its zone (2026-12-01T10:00:00Z, 2026-12-01T11:00:00+01:00)`,
    );
  }
  return dateOnly && name === "until" ? new Date(time.getTime() + 86_400_000 - 1) : time;
}

const maxTailLines = 100_000;

async function* concat<Item>(...sources: AsyncIterable<Item>[]): AsyncGenerator<Item> {
  for (const source of sources) yield* source;
}

/**
 * Checkpoints kept outside the audit store: JSON lines, each a checkpoint or a log line of the
 * gateway's ("audit checkpoint", the checkpoint under `auditCheckpoint`); other lines are
 * skipped.
 */
async function* checkpointsIn(file: string): AsyncGenerator<Checkpoint> {
  if (!existsSync(file) || !statSync(file).isFile()) {
    throw new UsageError(`--checkpoints: no file ${file}`);
  }
  let found = 0;
  const input = createReadStream(file, { encoding: "utf8" });
  for await (const line of createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })) {
    let parsed: { auditCheckpoint?: unknown } | undefined;
    try {
      parsed = JSON.parse(line);
    } catch {
      continue;
    }
    const checkpoint = (parsed?.auditCheckpoint ?? parsed) as Partial<Checkpoint> | undefined;
    if (typeof checkpoint?.sig === "string" && typeof checkpoint.instance === "string") {
      found += 1;
      yield checkpoint as Checkpoint;
    }
  }
  if (found === 0) {
    throw new UsageError(
      `--checkpoints: no checkpoint in ${file}; give the gateway's JSON log (LOG_FORMAT=json), its "audit checkpoint" lines`,
    );
  }
}

/** `aigw audit verify|tail|query`: reads the audit log the config names; the exit code. */
async function audit(
  command: string,
  values: ReturnType<typeof parseCommandLine>["values"],
  config: ServerConfig,
): Promise<number> {
  if (!config.audit) throw new ConfigError("the config has no audit section: nothing to read");
  const lines = values.lines === undefined ? 20 : Number(values.lines);
  if (!Number.isSafeInteger(lines) || lines < 1 || lines > maxTailLines) {
    throw new UsageError(`--lines must be a whole number of records, from 1 to ${maxTailLines}`);
  }
  for (const option of ["tenant", "model"] as const) {
    if (values[option] === "") throw new UsageError(`--${option} needs a value`);
  }
  const query = {
    tenant: values.tenant,
    model: values.model,
    since: timeOption("since", values.since),
    until: timeOption("until", values.until),
  };
  const source = await auditSource(config.audit);
  try {
    return await readAudit(command, values, config.audit, source, query, lines);
  } catch (error) {
    if (error instanceof UsageError || error instanceof ConfigError) throw error;
    throw new ConfigError(`reading the audit log failed: ${(error as Error).message}`);
  } finally {
    await source.close();
  }
}

async function readAudit(
  command: string,
  values: ReturnType<typeof parseCommandLine>["values"],
  settings: NonNullable<ServerConfig["audit"]>,
  source: AuditSource,
  query: AuditQuery,
  lines: number,
): Promise<number> {
  if (settings.file && !existsSync(settings.file.path) && !(await hasRecords(source))) {
    throw new ConfigError(
      `no audit log at ${settings.file.path}: check audit.file.path (and that the gateway ran)`,
    );
  }
  if (command === "audit verify") {
    const checkpoints = values.checkpoints
      ? concat(source.checkpoints(), checkpointsIn(values.checkpoints))
      : source.checkpoints();
    const { verifyRecords } = await import("@aigw/audit");
    const report = await verifyRecords(source.records(), checkpoints, settings.key);
    for await (const problem of source.inconsistencies?.() ?? []) {
      report.ok = false;
      report.problems.push(problem);
    }
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return report.ok ? 0 : 1;
  }
  const found = command === "audit tail" ? await source.tail(lines) : source.records(query);
  for await (const line of found) {
    if (!process.stdout.write(`${line}\n`)) await once(process.stdout, "drain");
  }
  return 0;
}

async function hasRecords(source: AuditSource): Promise<boolean> {
  for await (const _line of source.records()) return true;
  return false;
}

/** What the startup line says besides the URL: enough to tell which config is running. */
function startupFields(
  config: ServerConfig,
  configFile: string | undefined,
  {
    url,
    metricsURL,
    statusURL,
  }: { url: string; metricsURL: string | undefined; statusURL: string | undefined },
) {
  const { cache, limits } = config;
  return {
    url,
    version: version(),
    config: configFile ?? "none (environment)",
    models: Object.keys(config.models),
    tenants: Object.keys(config.tenants).length,
    limitStore: limits.store,
    cacheStore: cache?.store ?? "off",
    metrics: metricsURL ?? "off",
    statusPage: statusURL ?? "off",
    audit: config.audit?.file?.path ?? (config.audit?.postgres ? "postgres" : "off"),
  };
}

async function serve(configFile: string | undefined) {
  const config = await resolveConfig(configFile, process.env);
  const pretty =
    config.logging.format === "pretty" || (!config.logging.format && process.stdout.isTTY);
  const options = { level: config.logging.level, base: undefined };
  const logger = pretty
    ? pino({ ...options, transport: { target: "pino-pretty" } })
    : pino(options, new BufferedLogOutput(1));
  process.once("exit", () => logger.flush());
  const running = await startServer(config, logger);
  logger.info(
    startupFields(config, configFile, running),
    `aigw ${version()} listening on ${running.url}`,
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

async function main() {
  const args = process.argv.slice(2);
  // `pnpm start -- --config F` hands the "--" on (npm drops it): it ends nothing here.
  if (args[0] === "--") args.shift();
  const { command, values } = parseCommandLine(args);
  const configFile = values.config ?? (process.env.AIGW_CONFIG || undefined);
  switch (command) {
    case "help":
      process.stdout.write(usage);
      return;
    case "version":
      process.stdout.write(`${version()}\n`);
      return;
    case "keys create":
      createKey(values.json === true);
      return;
    case "audit verify":
    case "audit tail":
    case "audit query":
      process.exitCode = await audit(command, values, await resolveConfig(configFile, process.env));
      return;
    case "check": {
      const config = await resolveConfig(configFile, process.env);
      process.stdout.write(`# ${configFile ?? "no config file: from the environment"}\n`);
      process.stdout.write(toYaml(maskSecrets(config)));
      return;
    }
    default:
      await serve(configFile);
  }
}

main().catch((error: unknown) => {
  if (error instanceof UsageError) {
    process.stderr.write(`aigw: ${error.message}\n\n${usage}`);
    process.exit(2);
  }
  if (error instanceof ConfigError) {
    process.stderr.write(`aigw: ${error.message}\n`);
  } else if (error instanceof TypeError || error instanceof RangeError) {
    // A value a package refused: its message names it; a stack would only bury that.
    process.stderr.write(`aigw: failed to start: ${error.message}\n`);
  } else {
    process.stderr.write(`aigw: failed to start: ${(error as Error)?.stack ?? error}\n`);
  }
  process.exit(1);
});
