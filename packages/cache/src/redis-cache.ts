import type { Redis, RedisOptions } from "ioredis";
import { assertPositiveInteger } from "./assert.js";
import type { Cache, CacheEntry, CacheSetOptions, CacheStats } from "./types.js";

/**
 * The part of an ioredis client that tells it apart from options: pass the client itself. Typed
 * here rather than imported, so that the declarations need no ioredis (an optional peer).
 */
export interface RedisCacheClient {
  getBuffer(key: string): Promise<Buffer | null>;
  readonly options: { keyPrefix?: string | undefined };
}

/** ioredis options for a client the cache creates itself (any ioredis option is passed on). */
export interface RedisCacheConnectionOptions {
  host?: string;
  port?: number;
  username?: string;
  password?: string;
  db?: number;
  [option: string]: unknown;
}

export interface RedisCacheOptions {
  /**
   * An ioredis client, which stays the caller's to close; or a `redis://` URL or ioredis
   * options, from which the cache creates its own client and closes it on `close()`.
   */
  redis: RedisCacheClient | RedisCacheConnectionOptions | string;
  /** Put before every key; `clear()` removes only keys under it. Default `"aigw:cache:"`. */
  keyPrefix?: string;
  /** Default time to live of an entry, kept by Redis. Default 300,000 (5 minutes). */
  ttlMs?: number;
  /** Longest wait for one Redis command before it counts as failed. Default 500. */
  commandTimeoutMs?: number;
  /** Called with the first failure of each outage: again only after a success ended it. */
  onError?: (error: Error) => void;
  /**
   * An outage state shared with other stores on the same Redis (`createRedisOutage` of
   * `@aigw/ratelimit` makes one): while it says to skip Redis, lookups miss and writes are
   * dropped at once, so a request waits for a dead Redis once, not once per store.
   */
  outage?: RedisCacheOutage;
}

/** See `RedisCacheOptions.outage`. */
export interface RedisCacheOutage {
  readonly skipping: boolean;
  failed(error: Error): void;
  succeeded(): void;
}

// A stored value: a format byte, storedAt and expiresAt (float64, big-endian), then the bytes.
const formatVersion = 1;
const headerLength = 17;
const scanBatchSize = 1000;

function encode(value: Uint8Array, storedAt: number, expiresAt: number): Buffer {
  const stored = Buffer.allocUnsafe(headerLength + value.byteLength);
  stored[0] = formatVersion;
  stored.writeDoubleBE(storedAt, 1);
  stored.writeDoubleBE(expiresAt, 9);
  stored.set(value, headerLength);
  return stored;
}

function decode(stored: Buffer): CacheEntry | undefined {
  if (stored.byteLength < headerLength || stored[0] !== formatVersion) return undefined;
  return {
    value: new Uint8Array(
      stored.buffer,
      stored.byteOffset + headerLength,
      stored.byteLength - headerLength,
    ),
    storedAt: stored.readDoubleBE(1),
    expiresAt: stored.readDoubleBE(9),
  };
}

function isClient(redis: RedisCacheOptions["redis"]): redis is RedisCacheClient {
  return typeof redis === "object" && typeof (redis as Redis).getBuffer === "function";
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

async function createClient(
  connection: RedisCacheConnectionOptions | string,
  commandTimeoutMs: number,
): Promise<Redis> {
  let RedisClient: typeof Redis;
  try {
    RedisClient = (await import("ioredis")).Redis;
  } catch (error) {
    throw new Error("createRedisCache needs ioredis, an optional peer dependency: install it", {
      cause: error,
    });
  }
  const options: RedisOptions = {
    ...(typeof connection === "string" ? {} : (connection as RedisOptions)),
    enableOfflineQueue: false,
    commandTimeout: commandTimeoutMs,
  };
  return typeof connection === "string"
    ? new RedisClient(connection, options)
    : new RedisClient(options);
}

/**
 * Settles once the client's first connection attempt has succeeded or failed. Without an
 * offline queue, commands sent while still connecting would fail at once, so the first
 * requests after start wait for it (within the command timeout) instead of missing.
 */
function firstConnectionAttempt(client: Redis): Promise<void> {
  return new Promise((resolve) => {
    const settle = () => {
      client.off("ready", settle);
      client.off("error", settle);
      client.off("end", settle);
      resolve();
    };
    client.on("ready", settle);
    client.on("error", settle);
    client.on("end", settle);
  });
}

/** A cache in Redis, shared by every gateway instance that uses the same Redis and prefix. */
export async function createRedisCache(options: RedisCacheOptions): Promise<Cache> {
  const keyPrefix = options.keyPrefix ?? "aigw:cache:";
  const defaultTtlMs = options.ttlMs ?? 300_000;
  const commandTimeoutMs = options.commandTimeoutMs ?? 500;
  const onError = options.onError ?? (() => {});
  if (typeof keyPrefix !== "string" || keyPrefix === "") {
    throw new TypeError("keyPrefix must be a non-empty string");
  }
  assertPositiveInteger("ttlMs", defaultTtlMs);
  assertPositiveInteger("commandTimeoutMs", commandTimeoutMs);
  if (typeof onError !== "function") throw new TypeError("onError must be a function");
  const connection = options.redis;
  if (connection === null || (typeof connection !== "object" && typeof connection !== "string")) {
    throw new TypeError("redis must be an ioredis client, a redis:// URL or ioredis options");
  }
  const connectionOptions = isClient(connection) ? connection.options : connection;
  if (typeof connectionOptions === "object" && connectionOptions.keyPrefix) {
    throw new TypeError("redis must not set ioredis's own keyPrefix; use the keyPrefix option");
  }

  let failing = false;
  const succeeded = () => {
    failing = false;
  };
  const failed = (error: unknown) => {
    if (failing) return;
    failing = true;
    try {
      onError(toError(error));
    } catch {
      // A throwing callback must not turn a degraded lookup into a failed request.
    }
  };

  let client: Redis;
  let connected: Promise<void>;
  if (isClient(connection)) {
    // A caller's client is an ioredis client: only its type is not imported.
    client = connection as unknown as Redis;
    connected = Promise.resolve();
  } else {
    client = await createClient(connection, commandTimeoutMs);
    connected = firstConnectionAttempt(client);
    client.on("error", failed);
  }

  const { outage } = options;
  const run = async <T>(command: (redis: Redis) => Promise<T>): Promise<T> => {
    if (outage?.skipping) throw new Error("Redis failed moments ago; not waiting for it again yet");
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`Redis command timed out after ${commandTimeoutMs} ms`)),
        commandTimeoutMs,
      );
    });
    const work = connected.then(() => command(client));
    // Once the timeout has won, a late failure of the command has nobody left to hear it.
    work.catch(() => {});
    try {
      const result = await Promise.race([work, timeout]);
      outage?.succeeded();
      return result;
    } catch (error) {
      outage?.failed(toError(error));
      throw error;
    } finally {
      clearTimeout(timer);
    }
  };

  // This instance's writes that have not expired, oldest first: stats() counts items and
  // bytes from them, since a synchronous stats() cannot ask Redis.
  const written = new Map<string, { bytes: number; expiresAt: number }>();
  const dropExpired = (oldestOnly: boolean) => {
    const now = Date.now();
    for (const [key, record] of written) {
      if (record.expiresAt > now) {
        if (oldestOnly) return;
      } else {
        written.delete(key);
      }
    }
  };

  let hits = 0;
  let misses = 0;
  return {
    async get(key) {
      let stored: Buffer | null;
      try {
        stored = await run((redis) => redis.getBuffer(keyPrefix + key));
        succeeded();
      } catch (error) {
        failed(error);
        misses += 1;
        return undefined;
      }
      const entry = stored === null ? undefined : decode(stored);
      if (entry === undefined) {
        misses += 1;
        written.delete(key);
      } else {
        hits += 1;
      }
      return entry;
    },
    async set(key, value, setOptions: CacheSetOptions = {}) {
      const ttlMs = setOptions.ttlMs ?? defaultTtlMs;
      assertPositiveInteger("ttlMs", ttlMs);
      const storedAt = Date.now();
      const expiresAt = storedAt + ttlMs;
      try {
        await run((redis) =>
          redis.set(keyPrefix + key, encode(value, storedAt, expiresAt), "PX", ttlMs),
        );
        succeeded();
      } catch (error) {
        failed(error);
        return;
      }
      written.delete(key);
      written.set(key, { bytes: value.byteLength + key.length, expiresAt });
      dropExpired(true);
    },
    async delete(key) {
      written.delete(key);
      try {
        await run((redis) => redis.unlink(keyPrefix + key));
        succeeded();
      } catch (error) {
        failed(error);
      }
    },
    async clear() {
      const pattern = `${keyPrefix.replace(/[*?[\]\\]/g, "\\$&")}*`;
      let cursor = "0";
      do {
        const [next, keys] = await run((redis) =>
          redis.scan(cursor, "MATCH", pattern, "COUNT", scanBatchSize),
        );
        if (keys.length > 0) await run((redis) => redis.unlink(keys));
        cursor = next;
      } while (cursor !== "0");
      succeeded();
      written.clear();
    },
    stats(): CacheStats {
      dropExpired(false);
      let bytes = 0;
      for (const record of written.values()) bytes += record.bytes;
      return { hits, misses, items: written.size, bytes, evictions: 0 };
    },
    async close() {
      written.clear();
      if (isClient(connection)) return;
      try {
        await run((redis) => redis.quit());
      } catch {
        // Redis is gone or slow: dropping the connection below is all that is left to do.
      }
      if (client.status !== "end") client.disconnect();
    },
  };
}
