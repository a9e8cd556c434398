import { mkdir, open, stat, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { escapeIdentifier, Pool, type PoolClient, type QueryResultRow } from "pg";
import { macOf } from "./chain.js";
import { fileMode } from "./file.js";
import type { AuditLogger } from "./log.js";
import type { AuditQuery, AuditSink, AuditSource, Checkpoint, SealedRecord } from "./types.js";

/**
 * The SQL of `migrations/001_audit_log.sql`, kept here too so that the ESM and the CJS build
 * need no file next to them (a test keeps the two identical). Idempotent: it only creates
 * what is missing.
 */
const migration001 = `-- @aigw/audit, migration 1: the audit records, their chain checkpoints, the migrations applied.
-- migrate() of @aigw/audit/postgres runs it in one transaction under an advisory lock, with
-- search_path set to the target schema, unless aigw_audit_migrations already lists the latest
-- version (then it changes nothing and needs no DDL rights). Every statement is idempotent:
-- running it again by hand (psql -f) changes nothing.
CREATE TABLE IF NOT EXISTS aigw_audit_migrations (
  version int PRIMARY KEY,
  applied_at timestamptz NOT NULL DEFAULT now()
);

-- One row per record. \`line\` is the sealed JSON text that verify recomputes the chain from;
-- the other columns are copied out of it for queries.
CREATE TABLE IF NOT EXISTS aigw_audit_log (
  instance_id text NOT NULL,
  seq bigint NOT NULL,
  time timestamptz,
  tenant text,
  request_id text,
  model text,
  status int,
  line text NOT NULL,
  PRIMARY KEY (instance_id, seq)
);
CREATE INDEX IF NOT EXISTS aigw_audit_log_time ON aigw_audit_log (time);
CREATE INDEX IF NOT EXISTS aigw_audit_log_tenant_time ON aigw_audit_log (tenant, time);
CREATE INDEX IF NOT EXISTS aigw_audit_log_request_id ON aigw_audit_log (request_id);

-- Chain heads, kept apart from the records so that deleting the newest records shows. \`sig\`
-- is the HMAC the log signed the checkpoint with: one cannot be made up without the key.
CREATE TABLE IF NOT EXISTS aigw_audit_checkpoints (
  instance_id text NOT NULL,
  seq bigint NOT NULL,
  mac text NOT NULL,
  time timestamptz NOT NULL,
  reason text NOT NULL,
  sig text NOT NULL,
  written_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (instance_id, seq, reason, mac)
);

INSERT INTO aigw_audit_migrations (version) VALUES (1) ON CONFLICT (version) DO NOTHING;
`;

/** The migrations `migrate` applies, in order; `name` is the file under `migrations/`. */
export const auditMigrations: readonly { version: number; name: string; sql: string }[] = [
  { version: 1, name: "001_audit_log.sql", sql: migration001 },
];

/** Where the tables are and how long to wait for PostgreSQL. */
export interface PostgresConnectionOptions {
  /**
   * `postgres://user:password@host:5432/db`; the package makes (and ends) its own pool of at
   * most 2 connections with the timeouts below. Give this or `pool`.
   */
  connectionString?: string | undefined;
  /**
   * A `pg.Pool` you made and end yourself. Its own settings stay as they are (attach its
   * `error` listener yourself); the timeouts below still bound every query the package runs on
   * it. Typed by what the package calls, so these declarations need no `@types/pg`.
   */
  pool?: { connect(): Promise<unknown> } | undefined;
  /** The schema of the tables, created by the migration when missing. Default "public". */
  schema?: string | undefined;
  /**
   * Longest wait for one statement's answer, in ms; then the connection is destroyed (never
   * returned to the pool) and the statement counts as failed. Also the server-side
   * `statement_timeout` of the package's own pool. Default 5000.
   */
  queryTimeoutMs?: number | undefined;
  /** Longest wait for a connection from the pool, in ms. Default 5000. */
  connectTimeoutMs?: number | undefined;
}

export type MigrateOptions = PostgresConnectionOptions;

export interface PostgresSinkOptions extends PostgresConnectionOptions {
  /**
   * A local JSON Lines file holding what PostgreSQL could not take, replayed once it answers
   * again (and at the next start when it is still there). Required.
   */
  spoolPath: string;
  /**
   * Most bytes the spool may hold waiting for PostgreSQL; a write that would go beyond is
   * rejected (the records are reported lost). Lines already replayed stay in the file until
   * the whole of it is delivered: it takes up to twice this on disk while it is replayed.
   * Default 1 GiB.
   */
  maxSpoolBytes?: number | undefined;
  /** Wait between attempts to deliver the spool, in ms. Default 1000. */
  retryIntervalMs?: number | undefined;
  /**
   * Longest wait, in ms, for PostgreSQL to confirm a write or checkpoint (connection and
   * migration included); then it is appended to the spool and resolves, while the insert goes
   * on in the background (a late commit is harmless: the replay stores nothing twice). Keeps a
   * stalled PostgreSQL from holding the log's writer for `connectTimeoutMs + queryTimeoutMs`.
   * Default 1000.
   */
  spoolAfterMs?: number | undefined;
  /** Run `migrate` before the first insert. Default true. */
  migrate?: boolean | undefined;
  /** Outages, spool deliveries, full spools and unreadable spool lines are reported here. */
  logger?: AuditLogger | undefined;
}

export interface PostgresSinkStats {
  /** Records inserted straight away (confirmed within `spoolAfterMs`). */
  inserted: number;
  /** Lines (records and checkpoints) this sink appended to the spool. */
  spooled: number;
  /** Spool lines delivered to PostgreSQL, those left by an earlier run included. */
  replayed: number;
  /** Lines refused because the spool was full (their write or checkpoint rejected). */
  rejected: number;
  /** The size of the spool file, in bytes; 0 when there is none. */
  spoolBytes: number;
}

export type PostgresSink = AuditSink & { stats(): PostgresSinkStats };

export interface PostgresSourceOptions extends PostgresConnectionOptions {
  /** Rows fetched per query while streaming records and checkpoints. Default 1000. */
  pageSize?: number | undefined;
}

const DEFAULT_TIMEOUT_MS = 5000;
/** Most lines `tail` returns: a huge count would load that many rows at once. */
const MAX_TAIL = 100_000;
/** Most sentences `inconsistencies` reports. */
const MAX_INCONSISTENCIES = 100;
const REPLAY_LINES = 500;
const REPLAY_READ_BYTES = 2 ** 20;

/** `user:password@` and `password=...` in a text become `user:***@` and `password=***`. */
function masker(connectionString: string | undefined): (text: string) => string {
  let password: string | undefined;
  if (connectionString) {
    try {
      const url = new URL(connectionString);
      password = url.password ? decodeURIComponent(url.password) : undefined;
    } catch {
      password = undefined;
    }
  }
  return (text) => {
    let masked = text
      .replace(/(\/\/[^:/?#@\s]*):[^@\s]*@/g, "$1:***@")
      .replace(/(password\s*=\s*)('[^']*'|\S+)/gi, "$1***");
    if (password && password.length >= 3) masked = masked.split(password).join("***");
    return masked;
  };
}

/** An error fit to throw or log: its message masked, its code kept, nothing else of it. */
function safeError(error: unknown, mask: (text: string) => string, context?: string): Error {
  const message = mask(error instanceof Error ? error.message : String(error));
  const safe = new Error(context ? `${context}: ${message}` : message);
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === "string") (safe as Error & { code?: string }).code = code;
  return safe;
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

function destroyClient(client: unknown): void {
  (client as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}

type Run = <T>(
  work: (
    query: <R extends QueryResultRow>(text: string, values?: unknown[]) => Promise<R[]>,
  ) => Promise<T>,
) => Promise<T>;

interface Database {
  run: Run;
  /** The schema, quoted, with a dot: `"public".` */
  prefix: string;
  schema: string;
  mask(text: string): string;
  end(): Promise<void>;
}

/**
 * A pool (the caller's or one of ours) and `run`, which checks out one connection within the
 * connect timeout and bounds each query by the query timeout: a connection that did not
 * answer, or that failed in any way, is destroyed rather than returned to the pool.
 */
function database(options: PostgresConnectionOptions, maxConnections: number): Database {
  const { connectionString } = options;
  if (!options.pool && !connectionString) {
    throw new TypeError("@aigw/audit/postgres: give connectionString or pool");
  }
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  const queryTimeoutMs = options.queryTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  const schema = options.schema ?? "public";
  const mask = masker(connectionString);
  const own = !options.pool;
  const clients = new Set<unknown>();
  const pool =
    (options.pool as Pool | undefined) ??
    new Pool({
      connectionString,
      max: maxConnections,
      connectionTimeoutMillis: connectTimeoutMs,
      statement_timeout: queryTimeoutMs,
      keepAlive: true,
      idleTimeoutMillis: 30_000,
      allowExitOnIdle: true,
      fallback_application_name: "aigw-audit",
    });
  if (own) {
    // An idle connection that breaks is removed by the pool; the next query reports the outage.
    pool.on("error", () => {});
    pool.on("connect", (client) => clients.add(client));
    pool.on("remove", (client) => clients.delete(client));
  }

  function connect(): Promise<PoolClient> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        reject(new Error(`no connection to PostgreSQL within ${connectTimeoutMs} ms`));
      }, connectTimeoutMs);
      pool.connect().then(
        (client) => {
          if (!settled) {
            settled = true;
            clearTimeout(timer);
            resolve(client);
          } else {
            client.release();
          }
        },
        (error) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          reject(error);
        },
      );
    });
  }

  const run: Run = async (work) => {
    const client = await connect();
    // Errors of a checked-out connection surface through its query; without a listener an
    // `error` event would end the process.
    const ignore = () => {};
    client.on("error", ignore);
    let failure: Error | undefined;
    const query = async <R extends QueryResultRow>(text: string, values?: unknown[]) => {
      const pending = client.query<R>(text, values);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          reject(new Error(`PostgreSQL did not answer within ${queryTimeoutMs} ms`));
        }, queryTimeoutMs);
      });
      try {
        return (await Promise.race([pending, timeout])).rows;
      } catch (error) {
        pending.catch(() => {});
        failure = error instanceof Error ? error : new Error(String(error));
        destroyClient(client);
        throw error;
      } finally {
        clearTimeout(timer);
      }
    };
    try {
      return await work(query);
    } catch (error) {
      failure ??= error instanceof Error ? error : new Error(String(error));
      throw error;
    } finally {
      client.off("error", ignore);
      client.release(failure);
    }
  };

  let ending: Promise<void> | undefined;
  return {
    run,
    prefix: `${escapeIdentifier(schema)}.`,
    schema,
    mask,
    end() {
      if (!own) return Promise.resolve();
      ending ??= (async () => {
        const ended = pool.end().catch(() => {});
        // A connection that went silent would keep `end` waiting for its goodbye.
        await Promise.race([ended, delay(Math.min(connectTimeoutMs, 1000))]);
        for (const client of clients) destroyClient(client);
        await Promise.race([ended, delay(1000)]);
      })();
      return ending;
    },
  };
}

const latestMigration = Math.max(...auditMigrations.map(({ version }) => version));

async function migrateWith(db: Database): Promise<number[]> {
  // Already done: a look with neither lock nor DDL, so that a role with only INSERT and SELECT
  // on the tables (and USAGE on the schema) can write once an owner migrated.
  const current = await db.run(async (query) => {
    const [table] = await query<{ found: boolean }>(
      "SELECT to_regclass($1::text) IS NOT NULL AS found",
      [`${db.prefix}aigw_audit_migrations`],
    );
    if (!table?.found) return false;
    const [latest] = await query<{ found: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM ${db.prefix}aigw_audit_migrations WHERE version = $1) AS found`,
      [latestMigration],
    );
    return latest?.found === true;
  });
  if (current) return [];
  // On any failure `run` destroys the connection, which rolls the transaction back.
  return db.run(async (query) => {
    await query("BEGIN");
    // One migration at a time per schema, across every instance starting together.
    await query("SELECT pg_advisory_xact_lock(hashtext('aigw_audit_migrations'), hashtext($1))", [
      db.schema,
    ]);
    if (db.schema !== "public") {
      await query(`CREATE SCHEMA IF NOT EXISTS ${escapeIdentifier(db.schema)}`);
    }
    await query(`SET LOCAL search_path TO ${escapeIdentifier(db.schema)}`);
    await query(
      "CREATE TABLE IF NOT EXISTS aigw_audit_migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
    );
    const rows = await query<{ version: number }>("SELECT version FROM aigw_audit_migrations");
    const done = new Set(rows.map((row) => Number(row.version)));
    const applied: number[] = [];
    for (const { version, sql } of auditMigrations) {
      if (done.has(version)) continue;
      await query(sql);
      await query(
        "INSERT INTO aigw_audit_migrations (version) VALUES ($1) ON CONFLICT (version) DO NOTHING",
        [version],
      );
      applied.push(version);
    }
    await query("COMMIT");
    return applied;
  });
}

/**
 * Creates or updates the tables (`aigw_audit_log`, `aigw_audit_checkpoints`,
 * `aigw_audit_migrations`) in `schema`: the migrations not yet applied there run in one
 * transaction under an advisory lock, so instances starting together do not race. When
 * `aigw_audit_migrations` already lists the latest version it only looks (no lock, no DDL):
 * a role with USAGE on the schema and INSERT, SELECT on the tables is enough. Ends the pool
 * it made. Resolves with the versions it applied (none when all were).
 * @throws TypeError without `connectionString` or `pool`; an Error (message masked, SQLSTATE
 * or errno in `code`) when PostgreSQL fails or does not answer in time.
 */
export async function migrate(options: MigrateOptions): Promise<number[]> {
  const db = database(options, 1);
  try {
    return await migrateWith(db);
  } catch (error) {
    throw safeError(error, db.mask, "audit migration failed");
  } finally {
    await db.end();
  }
}

/** PostgreSQL text holds no NUL; timestamps and ints out of range would fail the whole batch. */
const text = (value: unknown) =>
  typeof value === "string" ? value.replaceAll("\u0000", "") : value == null ? null : String(value);

function timestamp(value: unknown): string | null {
  if (typeof value !== "string") return null;
  const time = Date.parse(value);
  if (!Number.isFinite(time)) return null;
  const iso = new Date(time).toISOString();
  return iso.startsWith("+") || iso.startsWith("-") ? null : iso;
}

const int32 = (value: unknown) =>
  Number.isInteger(value) && Math.abs(value as number) < 2 ** 31 ? (value as number) : null;

/**
 * A checkpoint PostgreSQL can store: anything else would fail its insert every time, and
 * hold up the spool behind it. One naming a file (a file sink's rotation or retention) has no
 * column: stored without it, its signature would no longer match.
 */
function isCheckpoint(value: unknown): value is Checkpoint {
  const checkpoint = value as Partial<Checkpoint> | null | undefined;
  return (
    checkpoint !== null &&
    typeof checkpoint === "object" &&
    typeof checkpoint.instance === "string" &&
    Number.isSafeInteger(checkpoint.seq) &&
    typeof checkpoint.mac === "string" &&
    typeof checkpoint.reason === "string" &&
    typeof checkpoint.sig === "string" &&
    checkpoint.file === undefined
  );
}

/** A JSON object's properties, or undefined for any other text. */
function parseObject(line: string): Record<string, unknown> | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return undefined;
  }
  return parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)
    ? (parsed as Record<string, unknown>)
    : undefined;
}

/** A spool line as a record (its own JSON carries every indexed field) or a checkpoint. */
type SpoolItem = { record: SealedRecord } | { checkpoint: Checkpoint };

function parseSpoolLine(line: string): SpoolItem | undefined {
  const parsed = parseObject(line);
  if (!parsed) return undefined;
  if ("checkpoint" in parsed && !("instance" in parsed)) {
    return isCheckpoint(parsed.checkpoint) ? { checkpoint: parsed.checkpoint } : undefined;
  }
  const mac = macOf(line);
  if (typeof parsed.instance !== "string" || !Number.isSafeInteger(parsed.seq) || !mac) {
    return undefined;
  }
  return {
    record: {
      instance: parsed.instance,
      seq: parsed.seq as number,
      time: parsed.time as string,
      tenant: parsed.tenant as string,
      requestId: parsed.requestId as string,
      model: parsed.model as string | undefined,
      status: parsed.status as number,
      mac,
      line,
    },
  };
}

/**
 * A sink that inserts each batch into `aigw_audit_log` with one statement
 * (`INSERT ... SELECT FROM unnest(...) ON CONFLICT (instance_id, seq) DO NOTHING`), each
 * statement bounded by `queryTimeoutMs` after at most `connectTimeoutMs` for a connection.
 *
 * When PostgreSQL fails in any way (refused, timed out, connection cut, the reply to the
 * insert lost), or has not confirmed the insert within `spoolAfterMs`, the batch is appended
 * to the spool, `spoolPath`, and `write` resolves: the records are kept. An insert that
 * outlasts `spoolAfterMs` goes on in the background, still bounded by the timeouts (its
 * connection destroyed when they pass); its outcome is only logged. While the spool holds
 * anything, later batches and checkpoints go to its end too, so their order holds, and every
 * `retryIntervalMs` (an unref'd timer) the spool is delivered from its start, up to 500 lines
 * per statement; the file is deleted only once every line in it was delivered. Replaying a
 * batch PostgreSQL did store (only its reply was lost, or the insert that outlasted
 * `spoolAfterMs` committed after all) inserts nothing twice: the primary key and
 * `DO NOTHING` see to it. A spool left by an earlier run is delivered after the start.
 *
 * The spool is JSON Lines, fsync'd after each append: a record's line is its sealed line as
 * is (so the spool is itself an audit file verify can read), a checkpoint's is
 * `{"checkpoint":{...}}`. A line that cannot be parsed (a torn write from a crash) is moved to
 * `<spoolPath>.bad` and reported to the logger, never dropped silently; so is a line that is
 * not a sealed record (no `mac` at its end) or a signed checkpoint.
 *
 * A batch or checkpoint that would take the spool beyond `maxSpoolBytes` not yet delivered (or
 * its file beyond twice that) is not kept: `write` (or `checkpoint`) rejects, and the error
 * is logged. `close` waits for the inserts still
 * going on in the background, tries once to deliver the spool, leaves it for the next start
 * when it cannot, and ends the pool it made (not yours). `write` and `checkpoint` after
 * `close` reject; `write` resolves with no report (PostgreSQL neither rotates nor retains).
 *
 * Time: a write or checkpoint resolves within about `spoolAfterMs` (plus the spool's fsync),
 * however PostgreSQL behaves; each statement is bounded by `queryTimeoutMs` after at most
 * `connectTimeoutMs` for a connection (the first insert also runs the migration); once the
 * spool holds anything, writes only append to it (milliseconds). One sink per spool file: two
 * processes must not share `spoolPath`.
 * @throws TypeError without `spoolPath`, or without `connectionString` or `pool`;
 * `checkpoint` rejects with a TypeError for a checkpoint without `instance`, `seq`, `mac`,
 * `reason` or `sig`.
 */
export function createPostgresSink(options: PostgresSinkOptions): PostgresSink {
  const { spoolPath, logger } = options;
  if (!spoolPath) throw new TypeError("@aigw/audit/postgres: spoolPath is required");
  const maxSpoolBytes = options.maxSpoolBytes ?? 2 ** 30;
  const retryIntervalMs = options.retryIntervalMs ?? 1000;
  const spoolAfterMs = Math.max(0, options.spoolAfterMs ?? 1000);
  const db = database(options, 2);
  const { prefix } = db;
  const stats = { inserted: 0, spooled: 0, replayed: 0, rejected: 0 };
  /** The spool file's size, and how much of it (from its start) was delivered. */
  let spoolBytes = 0;
  let delivered = 0;
  let retryTimer: NodeJS.Timeout | undefined;
  let replaying: Promise<void> | undefined;
  let stopped = false;
  let closing: Promise<void> | undefined;
  let outage = false;
  let migrated: Promise<unknown> | undefined;
  /** Inserts that outlasted `spoolAfterMs` and still run; `close` waits for them. */
  const late = new Set<Promise<void>>();

  /** Spool and state changes happen one at a time, in call order. */
  let lock: Promise<unknown> = Promise.resolve();
  function exclusive<T>(work: () => Promise<T>): Promise<T> {
    const result = lock.then(work);
    lock = result.catch(() => {});
    return result;
  }

  const describe = (error: unknown) => safeError(error, db.mask).message;

  function noteFailure(error: unknown) {
    if (outage) return;
    outage = true;
    logger?.error(
      { spoolPath, error: describe(error) },
      "audit: PostgreSQL failed; records go to the spool until it answers again",
    );
  }

  function ensureMigrated(): Promise<unknown> {
    if (options.migrate === false) return Promise.resolve();
    migrated ??= migrateWith(db).catch((error) => {
      migrated = undefined;
      throw error;
    });
    return migrated;
  }

  async function insertRecords(records: readonly SealedRecord[]) {
    await ensureMigrated();
    await db.run(async (query) => {
      await query(
        `INSERT INTO ${prefix}aigw_audit_log (instance_id, seq, time, tenant, request_id, model, status, line)
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::int[], $8::text[])
         ON CONFLICT (instance_id, seq) DO NOTHING`,
        [
          records.map((record) => text(record.instance)),
          records.map((record) => record.seq),
          records.map((record) => timestamp(record.time)),
          records.map((record) => text(record.tenant)),
          records.map((record) => text(record.requestId)),
          records.map((record) => text(record.model)),
          records.map((record) => int32(record.status)),
          records.map((record) => record.line),
        ],
      );
    });
  }

  async function insertCheckpoint(checkpoint: Checkpoint) {
    await ensureMigrated();
    await db.run(async (query) => {
      await query(
        `INSERT INTO ${prefix}aigw_audit_checkpoints (instance_id, seq, mac, time, reason, sig)
         VALUES ($1, $2, $3, coalesce($4::timestamptz, now()), $5, $6)
         ON CONFLICT DO NOTHING`,
        [
          text(checkpoint.instance),
          checkpoint.seq,
          text(checkpoint.mac),
          timestamp(checkpoint.time),
          text(checkpoint.reason),
          text(checkpoint.sig),
        ],
      );
    });
  }

  /**
   * Resolves once `insert` is confirmed within `spoolAfterMs`; rejects with its failure, or
   * when it is not confirmed in time, leaving it to go on in the background.
   */
  async function confirmed(insert: Promise<void>, lines: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), spoolAfterMs);
    });
    try {
      if ((await Promise.race([insert, timeout])) !== "late") return;
    } finally {
      clearTimeout(timer);
    }
    const background: Promise<void> = insert
      .then(
        () =>
          logger?.info(
            { spoolPath, lines },
            "audit: PostgreSQL confirmed an insert after spoolAfterMs; its spooled copy stores nothing twice",
          ),
        (error: unknown) =>
          logger?.info(
            { spoolPath, lines, error: describe(error) },
            "audit: an insert that outlasted spoolAfterMs failed; its lines are in the spool",
          ),
      )
      .finally(() => late.delete(background));
    late.add(background);
    throw new Error(
      `PostgreSQL did not confirm the insert within spoolAfterMs (${spoolAfterMs} ms)`,
    );
  }

  const ready = (async () => {
    try {
      spoolBytes = (await stat(spoolPath)).size;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      throw error;
    }
    if (spoolBytes === 0) return;
    // A crash in the middle of an append leaves a torn last line: end it, so it is read as
    // one (unparseable) line and the next append starts a line of its own.
    const handle = await open(spoolPath, "r+");
    try {
      const last = Buffer.alloc(1);
      await handle.read(last, 0, 1, spoolBytes - 1);
      if (last[0] !== 0x0a) {
        await handle.write("\n", spoolBytes);
        await handle.datasync();
        spoolBytes += 1;
      }
    } finally {
      await handle.close();
    }
    logger?.info({ spoolPath, spoolBytes }, "audit: delivering the spool left by an earlier run");
    scheduleRetry(0);
  })();
  ready.catch(() => {});

  /** Appends lines (each ending in "\n") to the spool and syncs it; rejects when it is full. */
  async function appendToSpool(lines: string, count: number, cause?: unknown) {
    const bytes = Buffer.byteLength(lines);
    // New lines go after those being replayed, which count against the disk, not the limit:
    // a spool nearly full when PostgreSQL came back keeps taking records while it drains.
    const waiting = spoolBytes - delivered;
    if (waiting + bytes > maxSpoolBytes || spoolBytes + bytes > 2 * maxSpoolBytes) {
      stats.rejected += count;
      const message = `the audit spool is full (${waiting} bytes waiting, ${spoolBytes} in its file, + ${bytes}; maxSpoolBytes ${maxSpoolBytes})`;
      logger?.error(
        { spoolPath, lines: count, error: cause === undefined ? undefined : describe(cause) },
        `audit: ${message}; the lines are not kept`,
      );
      throw new Error(message);
    }
    if (spoolBytes === 0) await mkdir(dirname(spoolPath), { recursive: true });
    const handle = await open(spoolPath, "a", fileMode);
    try {
      await handle.appendFile(lines);
      await handle.datasync();
    } catch (error) {
      // Leave no torn line behind for the next append to be glued to.
      await handle.truncate(spoolBytes).catch(() => {});
      stats.rejected += count;
      logger?.error(
        { spoolPath, lines: count, error: describe(error) },
        "audit: could not append to the spool; the lines are not kept",
      );
      throw safeError(error, db.mask, "audit spool append failed");
    } finally {
      await handle.close();
    }
    spoolBytes += bytes;
    stats.spooled += count;
    scheduleRetry(retryIntervalMs);
  }

  function scheduleRetry(ms: number) {
    if (stopped || retryTimer || replaying) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      replaying = deliverSpool()
        .catch((error) => noteFailure(error))
        .finally(() => {
          replaying = undefined;
          if (spoolBytes > 0) scheduleRetry(retryIntervalMs);
        });
    }, ms);
    retryTimer.unref();
  }

  /** Reads up to 500 whole lines of the spool from `delivered`; the spool ends in "\n". */
  async function readSpool(): Promise<{ lines: string[]; bytes: number }> {
    const handle = await open(spoolPath, "r");
    try {
      let size = Math.min(REPLAY_READ_BYTES, spoolBytes - delivered);
      for (;;) {
        const buffer = Buffer.allocUnsafe(size);
        const { bytesRead } = await handle.read(buffer, 0, size, delivered);
        const end = buffer.subarray(0, bytesRead).lastIndexOf(0x0a);
        if (end === -1) {
          if (size >= spoolBytes - delivered) throw new Error("the spool does not end a line");
          size = Math.min(size * 2, spoolBytes - delivered);
          continue;
        }
        // Lines are cut on the raw bytes: a line torn mid-character decodes to more bytes
        // than it holds, and counting decoded text would start the next read inside a line.
        const lines: string[] = [];
        let start = 0;
        while (start <= end && lines.length < REPLAY_LINES) {
          const newline = buffer.indexOf(0x0a, start);
          lines.push(buffer.toString("utf8", start, newline));
          start = newline + 1;
        }
        return { lines, bytes: start };
      }
    } finally {
      await handle.close();
    }
  }

  async function keepBadLines(lines: string[]) {
    const handle = await open(`${spoolPath}.bad`, "a", fileMode);
    try {
      await handle.appendFile(lines.map((line) => `${line}\n`).join(""));
      await handle.datasync();
    } finally {
      await handle.close();
    }
    logger?.error(
      { spoolPath, badPath: `${spoolPath}.bad`, lines: lines.length },
      "audit: spool lines that are not records or checkpoints were moved aside",
    );
  }

  /** Delivers the spool, a chunk at a time, until it is empty; rejects at the first failure. */
  async function deliverSpool() {
    await ready;
    let count = 0;
    while (spoolBytes > delivered) {
      // The lines up to spoolBytes are complete and synced; appends only add after them.
      const { lines, bytes } = await readSpool();
      const bad: string[] = [];
      let batch: SealedRecord[] = [];
      const flush = async () => {
        if (batch.length > 0) await insertRecords(batch);
        batch = [];
      };
      for (const line of lines) {
        if (line === "") continue;
        const item = parseSpoolLine(line);
        if (!item) bad.push(line);
        else if ("record" in item) batch.push(item.record);
        else {
          await flush();
          await insertCheckpoint(item.checkpoint);
        }
      }
      await flush();
      if (bad.length > 0) await keepBadLines(bad);
      await exclusive(async () => {
        delivered += bytes;
        stats.replayed += lines.length - bad.length;
        count += lines.length - bad.length;
        if (delivered < spoolBytes) return;
        await unlink(spoolPath).catch((error: NodeJS.ErrnoException) => {
          if (error.code !== "ENOENT") throw error;
        });
        spoolBytes = 0;
        delivered = 0;
      });
    }
    if (count > 0 || outage) {
      logger?.info({ spoolPath, replayed: count }, "audit: the spool was delivered to PostgreSQL");
    }
    outage = false;
  }

  function closedError() {
    return Promise.reject(new Error("the PostgreSQL audit sink is closed"));
  }

  return {
    write(records) {
      if (closing) return closedError();
      if (records.length === 0) return Promise.resolve(undefined);
      return exclusive(async () => {
        await ready;
        let cause: unknown;
        if (spoolBytes === 0) {
          try {
            await confirmed(insertRecords(records), records.length);
            stats.inserted += records.length;
            return undefined;
          } catch (error) {
            noteFailure(error);
            cause = error;
          }
        }
        await appendToSpool(
          records.map((record) => `${record.line}\n`).join(""),
          records.length,
          cause,
        );
        return undefined;
      });
    },
    checkpoint(checkpoint) {
      if (closing) return closedError();
      if (!isCheckpoint(checkpoint)) {
        return Promise.reject(
          new TypeError(
            "@aigw/audit/postgres: a checkpoint needs instance, seq, mac, reason and sig, and no file",
          ),
        );
      }
      return exclusive(async () => {
        await ready;
        let cause: unknown;
        if (spoolBytes === 0) {
          try {
            await confirmed(insertCheckpoint(checkpoint), 1);
            return;
          } catch (error) {
            noteFailure(error);
            cause = error;
          }
        }
        await appendToSpool(`${JSON.stringify({ checkpoint })}\n`, 1, cause);
      });
    },
    close() {
      closing ??= (async () => {
        stopped = true;
        clearTimeout(retryTimer);
        retryTimer = undefined;
        await replaying;
        await exclusive(async () => {});
        await ready.catch(() => {});
        // Bounded by the timeouts; they run while the spool is delivered.
        const background = Promise.all([...late]);
        if (spoolBytes > 0) {
          try {
            await deliverSpool();
          } catch (error) {
            logger?.error(
              { spoolPath, spoolBytes, error: describe(error) },
              "audit: PostgreSQL did not take the spool at close; the next start delivers it",
            );
          }
        }
        await background;
        await db.end();
      })();
      return closing;
    },
    stats: () => ({ ...stats, spoolBytes }),
  };
}

/** Whether a record line satisfies a query's filters, read from the line itself. */
function satisfies(line: string, query: AuditQuery): boolean {
  const record = parseObject(line);
  if (!record) return false;
  if (query.tenant !== undefined && text(record.tenant) !== text(query.tenant)) return false;
  if (query.model !== undefined && text(record.model) !== text(query.model)) return false;
  if (query.since || query.until) {
    const iso = timestamp(record.time);
    if (iso === null) return false;
    const time = Date.parse(iso);
    if (query.since && time < query.since.getTime()) return false;
    if (query.until && time > query.until.getTime()) return false;
  }
  return true;
}

/** A row as `inconsistencies` checks it: `time` to the microsecond, in UTC. */
interface CheckedRow {
  instance_id: string;
  seq_text: string;
  time_text: string | null;
  tenant: string | null;
  request_id: string | null;
  model: string | null;
  status: number | null;
  line: string;
}

/** A value for a sentence: strings quoted, control characters escaped, at most 64 chars. */
function shown(value: unknown, quote = typeof value === "string"): string {
  if (value === undefined || value === null) return "null";
  const raw = typeof value === "string" ? value : (JSON.stringify(value) ?? String(value));
  let escaped = JSON.stringify(raw).slice(1, -1);
  if (escaped.length > 64) escaped = `${escaped.slice(0, 63)}…`;
  return quote ? `'${escaped}'` : escaped;
}

/**
 * Where a row's columns differ from its sealed line: the line read the way the sink reads a
 * record to fill them (so a value the sink stores changed, NULs dropped, counts as equal).
 */
function differences(row: CheckedRow): string[] {
  const record = parseObject(row.line);
  const name = typeof record?.instance === "string" ? record.instance : row.instance_id;
  const seq = Number.isSafeInteger(record?.seq) ? String(record?.seq) : row.seq_text;
  const at = `${shown(name, false)}: record ${shown(seq, false)}`;
  if (!record) return [`${at}: its line is not a JSON record`];
  const found: string[] = [];
  const compare = (column: string, actual: unknown, expected: unknown, says: unknown) => {
    if (actual !== expected) {
      found.push(`${at}: column ${column} is ${shown(actual)}, its record says ${shown(says)}`);
    }
  };
  compare("instance_id", row.instance_id, text(record.instance), record.instance);
  const seqText = Number.isSafeInteger(record.seq) ? String(record.seq) : null;
  if (row.seq_text !== seqText) {
    found.push(`${at}: column seq is ${row.seq_text}, its record says ${shown(record.seq)}`);
  }
  const iso = timestamp(record.time);
  if (row.time_text !== (iso === null ? null : `${iso.slice(0, -1)}000Z`)) {
    const time = row.time_text?.replace(/(\.\d{3})000Z$/, "$1Z") ?? null;
    found.push(`${at}: column time is ${shown(time)}, its record says ${shown(record.time)}`);
  }
  compare("tenant", row.tenant, text(record.tenant), record.tenant);
  compare("request_id", row.request_id, text(record.requestId), record.requestId);
  compare("model", row.model, text(record.model), record.model);
  compare("status", row.status, int32(record.status), record.status);
  return found;
}

/** PostgreSQL could not read a line as jsonb: not JSON, or a `\u0000` in it (prompt text). */
const isJsonError = (error: unknown) => {
  const code = (error as { code?: unknown } | undefined)?.code;
  return code === "22P02" || code === "22P05";
};

/**
 * Reads records back from PostgreSQL for verify, tail and queries. `records` streams in
 * keyset pages of `pageSize` rows ordered by instance and sequence number, with the query's
 * filters in SQL (for the indexes), so memory stays bounded whatever the table's size; the
 * filters are checked again against each sealed line, and a row whose columns were edited to
 * match a query while its line does not is left out. `inconsistencies` reports rows whose
 * columns differ from their line (at most 100 sentences), comparing in SQL page by page and
 * returning only the rows that differ. `tail(count)` holds `count` lines, at most 100,000.
 * Each page is bounded by the timeouts.
 * @throws TypeError without `connectionString` or `pool`; `tail` rejects with a TypeError
 * for a count above 100,000; reading rejects with an Error (message masked) when PostgreSQL
 * fails or does not answer in time.
 */
export function createPostgresSource(options: PostgresSourceOptions): AuditSource {
  const db = database(options, 1);
  const { prefix } = db;
  const pageSize = Math.max(1, Math.floor(options.pageSize ?? 1000));

  async function page<R extends QueryResultRow>(sql: string, values: unknown[]): Promise<R[]> {
    try {
      return await db.run((query) => query<R>(sql, values));
    } catch (error) {
      throw safeError(error, db.mask, "reading the audit log from PostgreSQL failed");
    }
  }

  const checkedColumns = `instance_id, seq::text AS seq_text,
    to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS time_text,
    tenant, request_id, model, status, line`;
  /**
   * Rows whose columns, as text, differ from their line's values: `differences` then decides,
   * as the sink filled them (a time written another way than the column's is no difference).
   */
  const mismatch = [
    "instance_id IS DISTINCT FROM j->>'instance'",
    "seq::text IS DISTINCT FROM j->>'seq'",
    `to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') IS DISTINCT FROM j->>'time'`,
    "time <> date_trunc('milliseconds', time)",
    "tenant IS DISTINCT FROM j->>'tenant'",
    "request_id IS DISTINCT FROM j->>'requestId'",
    "model IS DISTINCT FROM j->>'model'",
    "status::text IS DISTINCT FROM j->>'status'",
  ].join("\n                  OR ");

  return {
    async *records(query?: AuditQuery) {
      const values: unknown[] = [];
      const where: string[] = [];
      const condition = (sql: string, value: unknown) => {
        values.push(value);
        where.push(sql.replace("?", `$${values.length}`));
      };
      if (query?.tenant !== undefined) condition("tenant = ?", text(query.tenant));
      if (query?.model !== undefined) condition("model = ?", text(query.model));
      if (query?.since) condition("time >= ?", query.since.toISOString());
      if (query?.until) condition("time <= ?", query.until.toISOString());
      const filtered = where.length > 0 ? query : undefined;
      let after: [string, string] | undefined;
      for (;;) {
        const keyset = after
          ? [`(instance_id, seq) > ($${values.length + 1}, $${values.length + 2}::bigint)`]
          : [];
        const clauses = [...where, ...keyset];
        const rows = await page<{ instance_id: string; seq_text: string; line: string }>(
          `SELECT instance_id, seq::text AS seq_text, line FROM ${prefix}aigw_audit_log
           ${clauses.length > 0 ? `WHERE ${clauses.join(" AND ")}` : ""}
           ORDER BY instance_id, seq LIMIT ${pageSize}`,
          after ? [...values, ...after] : values,
        );
        for (const row of rows) {
          if (!filtered || satisfies(row.line, filtered)) yield row.line;
        }
        const last = rows.at(-1);
        if (!last || rows.length < pageSize) return;
        after = [last.instance_id, last.seq_text];
      }
    },
    async tail(count) {
      if (count > MAX_TAIL) {
        throw new TypeError(`tail: at most ${MAX_TAIL} records at a time, not ${count}`);
      }
      const limit = Math.floor(count);
      if (!(limit > 0)) return [];
      const rows = await page<{ line: string }>(
        `SELECT line FROM (
           SELECT line, time, instance_id, seq FROM ${prefix}aigw_audit_log
           ORDER BY time DESC NULLS LAST, instance_id DESC, seq DESC LIMIT $1
         ) newest ORDER BY time NULLS FIRST, instance_id, seq`,
        [limit],
      );
      return rows.map((row) => row.line);
    },
    async *checkpoints() {
      let after: unknown[] | undefined;
      for (;;) {
        const rows = await page<{
          instance_id: string;
          seq_text: string;
          mac: string;
          time: string;
          reason: Checkpoint["reason"];
          sig: string;
        }>(
          `SELECT instance_id, seq::text AS seq_text, mac, reason, sig,
             to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS time
           FROM ${prefix}aigw_audit_checkpoints
           ${after ? "WHERE (instance_id, seq, reason, mac) > ($1, $2::bigint, $3, $4)" : ""}
           ORDER BY instance_id, seq, reason, mac LIMIT ${pageSize}`,
          after ?? [],
        );
        for (const row of rows) {
          yield {
            instance: row.instance_id,
            seq: Number(row.seq_text),
            mac: row.mac,
            time: row.time,
            reason: row.reason,
            sig: row.sig,
          };
        }
        const last = rows.at(-1);
        if (!last || rows.length < pageSize) return;
        after = [last.instance_id, last.seq_text, last.reason, last.mac];
      }
    },
    async *inconsistencies() {
      let reported = 0;
      let after: [string, string] | undefined;
      for (;;) {
        const from = after ? "(instance_id, seq) > ($1, $2::bigint)" : "true";
        // The page: from after `after` up to its last row, or to the end.
        const [end] = await page<{ instance_id: string; seq_text: string }>(
          `SELECT instance_id, seq::text AS seq_text FROM ${prefix}aigw_audit_log
           WHERE ${from} ORDER BY instance_id, seq LIMIT 1 OFFSET ${pageSize - 1}`,
          after ?? [],
        );
        const values: unknown[] = [...(after ?? [])];
        let range = from;
        if (end) {
          values.push(end.instance_id, end.seq_text);
          range += ` AND (instance_id, seq) <= ($${values.length - 1}, $${values.length}::bigint)`;
        }
        let rows: CheckedRow[];
        try {
          rows = await db.run((query) =>
            query<CheckedRow>(
              `SELECT ${checkedColumns}
               FROM (
                 -- OFFSET 0 keeps the subquery: each line is parsed once, not once per use.
                 SELECT *, line::jsonb AS j FROM ${prefix}aigw_audit_log WHERE ${range} OFFSET 0
               ) page
               WHERE ${mismatch}
               ORDER BY instance_id, seq`,
              values,
            ),
          );
        } catch (error) {
          if (!isJsonError(error)) {
            throw safeError(error, db.mask, "reading the audit log from PostgreSQL failed");
          }
          // A line PostgreSQL cannot read as JSON: this page is compared here instead.
          rows = await page<CheckedRow>(
            `SELECT ${checkedColumns} FROM ${prefix}aigw_audit_log WHERE ${range}
             ORDER BY instance_id, seq`,
            values,
          );
        }
        for (const row of rows) {
          for (const sentence of differences(row)) {
            yield sentence;
            reported += 1;
            if (reported >= MAX_INCONSISTENCIES) return;
          }
        }
        if (!end) return;
        after = [end.instance_id, end.seq_text];
      }
    },
    close: () => db.end(),
  };
}
