import { createRedisOutage, type RedisOutage } from "./redis-outage.js";
import { assertPositive } from "./validate.js";

/** The part of an ioredis client (`Redis` or `Cluster`) that the Redis stores use. */
export interface RedisClient {
  defineCommand(name: string, definition: { lua: string; numberOfKeys?: number }): void;
}

/** ioredis options for a client the store creates itself (any ioredis option is passed through). */
export interface RedisConnectionOptions {
  host?: string;
  port?: number;
  username?: string;
  password?: string;
  db?: number;
  [option: string]: unknown;
}

/** What to do when Redis cannot be reached or does not answer in time. */
export type FailurePolicy = "open" | "closed";

export interface RedisStoreOptions {
  /**
   * An ioredis client (not closed by the store), or a redis:// URL or ioredis options from which
   * the store creates, and on close() quits, its own client.
   */
  redis: RedisClient | string | RedisConnectionOptions;
  /** Prefix of every key; the key itself follows in a `{hash tag}`. Default "aigw:rl:". */
  keyPrefix?: string;
  /** "open" (default) allows and reports the failure; "closed" denies with `unavailable: true`. */
  failurePolicy?: FailurePolicy;
  /** Called with every failed call, under either policy. Must not throw. */
  onStoreError?: (error: RateLimitStoreError) => void;
  /** The longest a call waits for Redis before the failure policy decides. Default 500. */
  commandTimeoutMs?: number;
  /**
   * After a failure, calls fail at once for this long instead of each waiting for Redis, so an
   * outage costs requests no latency; the first call after it tries Redis again. Default 1,000.
   * Ignored when `outage` is given (its own cooldown applies).
   */
  cooldownMs?: number;
  /** An outage state shared with other stores on the same Redis (see `createRedisOutage`). */
  outage?: RedisOutage;
}

/** A Redis call that failed or timed out; the original error, if any, is its `cause`. */
export class RateLimitStoreError extends Error {
  override readonly name = "RateLimitStoreError";
}

export interface ScriptDefinition {
  name: string;
  lua: string;
  numberOfKeys: number;
}

export interface RedisStore {
  keyPrefix: string;
  failurePolicy: FailurePolicy;
  /** Runs a script; a failure or timeout is reported to onStoreError and rejects with it. */
  run(script: ScriptDefinition, keys: string[], args: Array<string | number>): Promise<unknown>;
  close(): Promise<void>;
}

type ScriptFunction = (...args: Array<string | number>) => Promise<unknown>;

interface OwnClient extends RedisClient {
  status: string;
  once(event: "ready", listener: () => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
  quit(): Promise<unknown>;
  disconnect(): void;
}

const isClient = (redis: RedisStoreOptions["redis"]): redis is RedisClient =>
  typeof (redis as Partial<RedisClient>).defineCommand === "function";

async function createOwnClient(
  redis: string | RedisConnectionOptions,
  commandTimeoutMs: number,
): Promise<OwnClient> {
  let Redis: new (...args: unknown[]) => OwnClient;
  try {
    ({ Redis } = (await import("ioredis")) as unknown as { Redis: typeof Redis });
  } catch (error) {
    throw new RateLimitStoreError("the Redis store needs ioredis: npm install ioredis", {
      cause: error,
    });
  }
  const defaults = {
    enableOfflineQueue: false,
    commandTimeout: commandTimeoutMs,
    maxRetriesPerRequest: 1,
  };
  const client =
    typeof redis === "string" ? new Redis(redis, defaults) : new Redis({ ...defaults, ...redis });
  // Failed calls are reported through onStoreError; without a listener, ioredis would print
  // every reconnection error itself.
  client.on("error", () => {});
  return client;
}

export function createRedisStore(
  options: RedisStoreOptions,
  scripts: readonly ScriptDefinition[],
): RedisStore {
  const {
    redis,
    keyPrefix = "aigw:rl:",
    failurePolicy = "open",
    onStoreError,
    commandTimeoutMs = 500,
    cooldownMs = 1_000,
  } = options;
  if (
    redis === undefined ||
    redis === null ||
    (typeof redis !== "string" && typeof redis !== "object")
  ) {
    throw new TypeError("redis must be an ioredis client, a redis:// URL or ioredis options");
  }
  if (typeof keyPrefix !== "string" || /[{}]/.test(keyPrefix)) {
    throw new TypeError(`keyPrefix must be a string without braces, got ${String(keyPrefix)}`);
  }
  if (failurePolicy !== "open" && failurePolicy !== "closed") {
    throw new TypeError(`failurePolicy must be "open" or "closed", got ${String(failurePolicy)}`);
  }
  if (onStoreError !== undefined && typeof onStoreError !== "function") {
    throw new TypeError("onStoreError must be a function");
  }
  assertPositive("commandTimeoutMs", commandTimeoutMs, true);
  if (!Number.isFinite(cooldownMs) || cooldownMs < 0) {
    throw new TypeError(`cooldownMs must be a finite number >= 0, got ${String(cooldownMs)}`);
  }
  const outage = options.outage ?? createRedisOutage({ cooldownMs });

  let ownClient: Promise<OwnClient> | undefined;
  let firstReady: Promise<void> | undefined;
  let client: Promise<RedisClient>;
  if (isClient(redis)) {
    client = Promise.resolve(redis);
  } else {
    ownClient = createOwnClient(redis, commandTimeoutMs);
    firstReady = ownClient.then((created) =>
      created.status === "ready"
        ? undefined
        : new Promise<void>((resolve) => {
            created.once("ready", resolve);
          }),
    );
    client = ownClient;
  }
  // ioredis runs a defined command with EVALSHA and, on NOSCRIPT, loads the script again.
  const commands = client.then((target) => {
    const defined = new Map<string, ScriptFunction>();
    for (const script of scripts) {
      target.defineCommand(script.name, { lua: script.lua, numberOfKeys: script.numberOfKeys });
      const command = (target as unknown as Record<string, ScriptFunction>)[script.name];
      if (command !== undefined) defined.set(script.name, command.bind(target));
    }
    return defined;
  });
  // Rejections are handled where these are awaited; until then, they must not go unhandled.
  commands.catch(() => {});
  firstReady?.catch(() => {});

  const call = async (script: ScriptDefinition, keys: string[], args: Array<string | number>) => {
    const command = (await commands).get(script.name);
    if (command === undefined) throw new RateLimitStoreError(`${script.name} is not defined`);
    // A client the store created rejects commands until its first connection is ready, since it
    // has no offline queue; the first calls wait for it, within the command timeout.
    if (firstReady !== undefined) await firstReady;
    return command(...keys, ...args);
  };

  return {
    keyPrefix,
    failurePolicy,
    async run(script, keys, args) {
      if (outage.skipping) {
        const error = new RateLimitStoreError(
          "Redis failed moments ago; not waiting for it again yet",
        );
        onStoreError?.(error);
        throw error;
      }
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(new RateLimitStoreError(`Redis did not answer within ${commandTimeoutMs} ms`)),
          commandTimeoutMs,
        );
      });
      try {
        const result = await Promise.race([call(script, keys, args), timeout]);
        outage.succeeded();
        return result;
      } catch (cause) {
        const error =
          cause instanceof RateLimitStoreError
            ? cause
            : new RateLimitStoreError(
                `Redis call failed: ${cause instanceof Error ? cause.message : String(cause)}`,
                { cause },
              );
        outage.failed(error);
        onStoreError?.(error);
        throw error;
      } finally {
        clearTimeout(timer);
      }
    },
    async close() {
      if (ownClient === undefined) return;
      const created = await ownClient.catch(() => undefined);
      if (created === undefined) return;
      try {
        await created.quit();
      } catch {
        created.disconnect();
      }
    },
  };
}
