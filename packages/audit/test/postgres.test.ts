import { randomBytes } from "node:crypto";
import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { waitFor } from "@aigw/testing";
import pg from "pg";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { genesisMac, sealRecord, signCheckpoint } from "../src/chain.js";
import {
  type AuditEntry,
  type AuditLog,
  type AuditSink,
  type Checkpoint,
  createAuditLog,
  verifyRecords,
} from "../src/index.js";
import {
  auditMigrations,
  createPostgresSink,
  createPostgresSource,
  migrate,
  type PostgresSink,
} from "../src/postgres.js";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.js";

// The machine's PostgreSQL: trust auth, database "test".
const DATABASE = "postgres://postgres@127.0.0.1:5432/test";
const key = "an audit key of at least thirty-two bytes, for tests";

const entry = (n: number, tenant = n % 3 === 0 ? "globex" : "acme"): AuditEntry => ({
  time: new Date(Date.UTC(2026, 0, 1, 0, 0, 0, n * 1000)).toISOString(),
  requestId: `req-${n}`,
  tenant,
  endpoint: "/v1/chat/completions",
  model: n % 2 === 0 ? "gpt-4o-mini" : "claude-haiku",
  status: 200,
  durationMs: 12,
});

function recordingLogger() {
  const lines: { level: "info" | "error"; object: object; message: string | undefined }[] = [];
  return {
    lines,
    info: (object: object, message?: string) => lines.push({ level: "info", object, message }),
    error: (object: object, message?: string) => lines.push({ level: "error", object, message }),
    errors: () => lines.filter((line) => line.level === "error").map((line) => line.message ?? ""),
    text: () => JSON.stringify(lines),
  };
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

describe("PostgreSQL sink and source", () => {
  let admin: pg.Pool;
  let schema: string;
  let directory: string;
  let spoolPath: string;
  let proxy: TcpProxy;
  let proxyUrl: string;
  let cleanups: (() => Promise<unknown>)[] = [];

  const table = (name: string) => `${pg.escapeIdentifier(schema)}.${name}`;
  const count = async (instance: string) =>
    Number(
      (
        await admin.query(
          `SELECT count(*) AS n FROM ${table("aigw_audit_log")} WHERE instance_id = $1`,
          [instance],
        )
      ).rows[0].n,
    );
  const source = (options: { pageSize?: number } = {}) => {
    const opened = createPostgresSource({ connectionString: DATABASE, schema, ...options });
    cleanups.push(() => opened.close());
    return opened;
  };
  const verify = () => {
    const reader = source({ pageSize: 16 });
    return verifyRecords(reader.records(), reader.checkpoints(), key);
  };
  const sinkAndLog = (
    sinkOptions: Partial<Parameters<typeof createPostgresSink>[0]>,
    logOptions: {
      instance: string;
      batchSize?: number;
      maxQueued?: number;
      logger?: ReturnType<typeof recordingLogger>;
    },
  ): { sink: PostgresSink; log: AuditLog } => {
    const sink = createPostgresSink({
      connectionString: DATABASE,
      schema,
      spoolPath,
      ...sinkOptions,
    });
    const log = createAuditLog({ sink, key, flushIntervalMs: 5, ...logOptions });
    cleanups.push(() => log.close());
    return { sink, log };
  };

  beforeAll(async () => {
    admin = new pg.Pool({ connectionString: DATABASE, max: 2 });
    admin.on("error", () => {});
    try {
      await admin.query("SELECT 1");
    } catch (error) {
      throw new Error(
        `these tests need PostgreSQL on 127.0.0.1:5432 (database "test", trust auth): ${String(error)}`,
      );
    }
  });
  afterAll(async () => {
    await admin?.end();
  });
  beforeEach(async () => {
    schema = `aigw_audit_test_${randomBytes(5).toString("hex")}`;
    directory = await mkdtemp(join(tmpdir(), "aigw-audit-pg-"));
    spoolPath = join(directory, "spool", "audit-spool.jsonl");
    proxy = await startTcpProxy({ port: 5432 });
    proxyUrl = `postgres://postgres@127.0.0.1:${proxy.port}/test`;
  });
  afterEach(async () => {
    proxy.setMode("forward");
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
    cleanups = [];
    await proxy.close();
    await admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
    await rm(directory, { recursive: true, force: true });
  });

  it("ships the migration file and the SQL it runs, identical", async () => {
    const file = await readFile(
      new URL("../migrations/001_audit_log.sql", import.meta.url),
      "utf8",
    );
    expect(auditMigrations.map(({ version, name }) => ({ version, name }))).toEqual([
      { version: 1, name: "001_audit_log.sql" },
    ]);
    expect(auditMigrations[0]?.sql).toBe(file);
  });

  it("migrates once: twice in a row, and from two pools at the same time", async () => {
    const together = await Promise.all([
      migrate({ connectionString: DATABASE, schema }),
      migrate({ connectionString: DATABASE, schema }),
    ]);
    expect(together.sort()).toEqual([[], [1]]);
    expect(await migrate({ connectionString: DATABASE, schema })).toEqual([]);
    const versions = await admin.query(`SELECT version FROM ${table("aigw_audit_migrations")}`);
    expect(versions.rows).toEqual([{ version: 1 }]);
    const indexes = await admin.query(
      "SELECT indexname FROM pg_indexes WHERE schemaname = $1 ORDER BY indexname",
      [schema],
    );
    expect(indexes.rows.map((row) => row.indexname)).toEqual(
      expect.arrayContaining([
        "aigw_audit_log_request_id",
        "aigw_audit_log_tenant_time",
        "aigw_audit_log_time",
      ]),
    );
  });

  it("stores each record once; verify finds a removed, a removed newest and an edited record", async () => {
    const { sink, log } = sinkAndLog({}, { instance: "gw-1", batchSize: 7 });
    // A file sink's checkpoint names its file; a table has no column for it.
    const naming = signCheckpoint(
      key,
      { instance: "gw-1", seq: 40, mac: "0".repeat(64), file: "x" },
      "retention",
    );
    await expect(sink.checkpoint(naming)).rejects.toThrow(/and no file/);
    for (let n = 1; n <= 40; n += 1) log.append(entry(n));
    await log.close();
    expect(log.stats()).toMatchObject({ appended: 40, written: 40, lost: 0 });
    expect(sink.stats()).toEqual({
      inserted: 40,
      spooled: 0,
      replayed: 0,
      rejected: 0,
      spoolBytes: 0,
    });
    expect(await count("gw-1")).toBe(40);

    const clean = await verify();
    expect(clean.problems).toEqual([]);
    expect(clean).toMatchObject({ ok: true, records: 40 });
    expect(clean.chains).toMatchObject([{ instance: "gw-1", lastSeq: 40, checkpointSeq: 40 }]);

    const reader = source({ pageSize: 16 });
    const seqOf = (line: string) => (JSON.parse(line) as { seq: number }).seq;
    expect((await reader.tail(3)).map(seqOf)).toEqual([38, 39, 40]);
    expect(await reader.tail(100_000)).toHaveLength(40);
    await expect(reader.tail(100_001)).rejects.toThrow(TypeError);
    const checkpoints: Checkpoint[] = [];
    for await (const checkpoint of reader.checkpoints()) checkpoints.push(checkpoint);
    expect(checkpoints.at(-1)).toMatchObject({ instance: "gw-1", seq: 40, reason: "shutdown" });
    for (const checkpoint of checkpoints) {
      const { sig, ...head } = checkpoint;
      expect(sig).toMatch(/^[0-9a-f]{64}$/);
      expect(signCheckpoint(key, head, head.reason, head.time).sig).toBe(sig);
    }
    const globex: number[] = [];
    for await (const line of reader.records({ tenant: "globex", model: "gpt-4o-mini" })) {
      globex.push(seqOf(line));
    }
    expect(globex).toEqual([6, 12, 18, 24, 30, 36]);
    const window: number[] = [];
    const since = new Date(entry(10).time);
    const until = new Date(entry(29).time);
    for await (const line of reader.records({ since, until })) window.push(seqOf(line));
    expect(window).toEqual(Array.from({ length: 20 }, (_, index) => index + 10));

    const take = async (seq: number) =>
      (
        await admin.query(
          `DELETE FROM ${table("aigw_audit_log")} WHERE instance_id = 'gw-1' AND seq = $1 RETURNING *`,
          [seq],
        )
      ).rows[0];
    const putBack = (row: Record<string, unknown>) =>
      admin.query(
        `INSERT INTO ${table("aigw_audit_log")} (instance_id, seq, time, tenant, request_id, model, status, line)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [
          row.instance_id,
          row.seq,
          row.time,
          row.tenant,
          row.request_id,
          row.model,
          row.status,
          row.line,
        ],
      );

    const middle = await take(20);
    expect((await verify()).problems).toEqual(["gw-1: records 20..20 are missing"]);
    await putBack(middle);

    const newest = await take(40);
    expect((await verify()).problems).toEqual([
      "gw-1: the newest records 40..40 are missing (checkpointed)",
    ]);
    await putBack(newest);
    expect((await verify()).ok).toBe(true);

    await admin.query(
      `UPDATE ${table("aigw_audit_log")} SET line = replace(line, '"status":200', '"status":201')
       WHERE instance_id = 'gw-1' AND seq = 10`,
    );
    const edited = await verify();
    expect(edited.ok).toBe(false);
    expect(edited.problems).toContain("gw-1: record 10 was altered (its MAC does not match)");
  });

  it("keeps every record through refused, stalled and cut connections: each arrives once", async () => {
    const logger = recordingLogger();
    const { sink, log } = sinkAndLog(
      {
        connectionString: proxyUrl,
        queryTimeoutMs: 400,
        connectTimeoutMs: 400,
        retryIntervalMs: 50,
        logger,
      },
      { instance: "gw-faults", batchSize: 5 },
    );
    let appended = 0;
    const appendSome = async (total: number) => {
      for (let n = 0; n < total; n += 1) {
        log.append(entry(++appended));
        if (n % 5 === 4) await delay(2);
      }
      await log.flush();
    };
    const drained = () =>
      waitFor(() => sink.stats().spoolBytes === 0, {
        timeoutMs: 10_000,
        message: "spool not delivered",
      });

    await appendSome(50);
    expect(sink.stats()).toMatchObject({ inserted: 50, spooled: 0 });

    proxy.setMode("refuse");
    await appendSome(50);
    expect(sink.stats().spooled).toBe(50);
    proxy.setMode("forward");
    await drained();

    proxy.setMode("stall");
    const stalledAt = Date.now();
    await appendSome(50);
    // The first batch waited for its timeout, the others went straight to the spool.
    expect(Date.now() - stalledAt).toBeLessThan(5000);
    expect(sink.stats().spooled).toBe(100);
    proxy.setMode("forward");
    await drained();

    // The insert reaches PostgreSQL and commits, its reply never comes back: the replay of
    // the same batch must not store it twice.
    const dropped = proxy.dropNextReply("INSERT INTO");
    await appendSome(50);
    await dropped;
    expect(sink.stats().spooled).toBeGreaterThan(100);
    await drained();

    await appendSome(100);
    await log.close();

    expect(log.stats()).toMatchObject({ appended: 300, written: 300, lost: 0 });
    expect(await count("gw-faults")).toBe(300);
    const report = await verify();
    expect(report.problems).toEqual([]);
    expect(report).toMatchObject({ ok: true, records: 300 });
    expect(report.chains).toMatchObject([{ lastSeq: 300, checkpointSeq: 300 }]);
    const stats = sink.stats();
    expect(stats.replayed).toBe(stats.spooled);
    expect(stats.inserted + stats.spooled).toBeGreaterThanOrEqual(300);
    expect(stats.rejected).toBe(0);
    expect(logger.errors().some((message) => message.includes("spool until it answers"))).toBe(
      true,
    );
    expect(logger.lines.some((line) => line.message?.includes("spool was delivered"))).toBe(true);
  });

  it("replays a batch whose reply was lost without storing it twice", async () => {
    await migrate({ connectionString: DATABASE, schema });
    const sink = createPostgresSink({
      connectionString: proxyUrl,
      schema,
      spoolPath,
      migrate: false,
      retryIntervalMs: 60_000,
    });
    cleanups.push(() => sink.close());
    // Unsigned: PostgreSQL would refuse it every time, holding up a spool behind it.
    const unsigned = { instance: "gw-lost", seq: 1, mac: "0".repeat(64), reason: "interval" };
    await expect(sink.checkpoint(unsigned as unknown as Checkpoint)).rejects.toThrow(TypeError);
    let previous = genesisMac(key, "gw-lost");
    const records = [1, 2, 3, 4, 5].map((seq) => {
      const sealed = sealRecord(key, entry(seq), "gw-lost", seq, previous);
      previous = sealed.mac;
      return sealed;
    });
    const dropped = proxy.dropNextReply("INSERT INTO");
    await sink.write(records);
    await dropped;
    expect(sink.stats()).toMatchObject({ inserted: 0, spooled: 5 });
    // PostgreSQL committed the batch; only its acknowledgement was lost.
    expect(await count("gw-lost")).toBe(5);
    await sink.close();
    expect(sink.stats()).toMatchObject({ replayed: 5, spoolBytes: 0 });
    expect(await count("gw-lost")).toBe(5);
  });

  it("bounds a write on a stalled connection and destroys it rather than reuse it", async () => {
    const pool = new pg.Pool({ connectionString: proxyUrl, max: 1 });
    pool.on("error", () => {});
    cleanups.push(() => pool.end());
    const logger = recordingLogger();
    const sink = createPostgresSink({
      pool,
      schema,
      spoolPath,
      spoolAfterMs: 200,
      queryTimeoutMs: 1500,
      connectTimeoutMs: 1500,
      retryIntervalMs: 60_000,
      logger,
    });
    cleanups.push(() => sink.close());
    const first = sealRecord(key, entry(1), "gw-pool", 1, genesisMac(key, "gw-pool"));
    const second = sealRecord(key, entry(2), "gw-pool", 2, first.mac);
    await sink.write([first]);
    expect(pool.totalCount).toBe(1);

    proxy.setMode("stall");
    const started = Date.now();
    expect(await sink.write([second])).toBeUndefined();
    // Spooled after spoolAfterMs, not after queryTimeoutMs.
    expect(Date.now() - started).toBeLessThan(600);
    expect(sink.stats()).toMatchObject({ inserted: 1, spooled: 1 });
    // The insert went on in the background until queryTimeoutMs, then its connection was
    // destroyed, not returned to the pool.
    expect(pool.totalCount).toBe(1);
    await waitFor(() => pool.totalCount === 0, { timeoutMs: 5000, message: "not destroyed" });
    await waitFor(() => logger.text().includes("outlasted spoolAfterMs failed"));

    proxy.setMode("forward");
    await sink.close();
    expect(sink.stats()).toMatchObject({ replayed: 1, spoolBytes: 0 });
    expect(await exists(spoolPath)).toBe(false);
    expect(await count("gw-pool")).toBe(2);
    // The caller's pool is the caller's: still open.
    expect((await pool.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
  });

  it("rejects what a full spool cannot take, so the log reports it lost", async () => {
    proxy.setMode("refuse");
    const logger = recordingLogger();
    const logLogger = recordingLogger();
    const { sink, log } = sinkAndLog(
      {
        connectionString: proxyUrl,
        maxSpoolBytes: 3000,
        queryTimeoutMs: 300,
        connectTimeoutMs: 300,
        retryIntervalMs: 50,
        logger,
      },
      { instance: "gw-full", batchSize: 5, logger: logLogger },
    );
    for (let n = 1; n <= 40; n += 1) log.append(entry(n));
    await log.flush();

    const { written, lost } = log.stats();
    expect(lost).toBeGreaterThan(0);
    expect(written).toBeGreaterThan(0);
    expect(written + lost).toBe(40);
    expect(sink.stats()).toMatchObject({ spooled: written, rejected: lost });
    expect(sink.stats().spoolBytes).toBeLessThanOrEqual(3000);
    expect(logger.errors().some((message) => message.includes("spool is full"))).toBe(true);
    expect(logLogger.errors().some((message) => message.includes("records lost"))).toBe(true);

    proxy.setMode("forward");
    await waitFor(() => sink.stats().spoolBytes === 0, { timeoutMs: 10_000 });
    expect(await count("gw-full")).toBe(written);
    await log.close();
    // The lost records are missing from the chain, and verify says so.
    const report = await verify();
    expect(report.ok).toBe(false);
    expect(report.problems).toEqual([
      `gw-full: the newest records ${written + 1}..40 are missing (checkpointed)`,
    ]);
  });

  it("takes new records while a nearly full spool drains: replayed lines no longer count", async () => {
    proxy.setMode("refuse");
    const first = sinkAndLog(
      { connectionString: proxyUrl, queryTimeoutMs: 300, connectTimeoutMs: 300 },
      { instance: "gw-backlog", batchSize: 500 },
    );
    // Six replay reads of 500 lines: the drain can be caught in the middle.
    for (let n = 1; n <= 3000; n += 1) first.log.append(entry(n));
    await first.log.close();
    const spool = await stat(spoolPath);
    const backlog = spool.size;
    expect(spool.mode & 0o777).toBe(0o600);

    // A sink whose spool is full with that backlog alone.
    const { sink, log } = sinkAndLog(
      {
        connectionString: proxyUrl,
        maxSpoolBytes: backlog,
        queryTimeoutMs: 1000,
        connectTimeoutMs: 300,
        retryIntervalMs: 20,
        logger: recordingLogger(),
      },
      { instance: "gw-after", batchSize: 5 },
    );
    proxy.setMode("forward");
    await waitFor(() => sink.stats().replayed >= 500, { intervalMs: 2 });
    proxy.setMode("stall");
    expect(sink.stats().spoolBytes).toBe(backlog);

    for (let n = 1; n <= 5; n += 1) log.append(entry(n));
    await log.flush();
    expect(log.stats()).toMatchObject({ written: 5, lost: 0 });
    expect(sink.stats()).toMatchObject({ spooled: 5, rejected: 0 });

    proxy.setMode("forward");
    await waitFor(() => sink.stats().spoolBytes === 0, { timeoutMs: 10_000 });
    expect(await count("gw-backlog")).toBe(3000);
    expect(await count("gw-after")).toBe(5);
    await log.close();
    expect((await verify()).problems).toEqual([]);
  });

  it("replays every line after one torn in the middle of a character", async () => {
    proxy.setMode("refuse");
    const first = sinkAndLog(
      { connectionString: proxyUrl, queryTimeoutMs: 300, connectTimeoutMs: 300 },
      { instance: "gw-t", batchSize: 100 },
    );
    // More than one replay read (500 lines), so a miscounted torn line would shift the next.
    for (let n = 1; n <= 520; n += 1) first.log.append(entry(n));
    await first.log.close();
    const lines = (await readFile(spoolPath, "utf8")).trimEnd().split("\n");
    // A line cut inside "é" (two bytes), ended by a newline, between whole lines.
    const torn = Buffer.concat([
      Buffer.from('{"instance":"gw-t","tenant":"caf'),
      Buffer.from([0xc3]),
    ]);
    await writeFile(
      spoolPath,
      Buffer.concat([
        Buffer.from(`${lines.slice(0, 5).join("\n")}\n`),
        torn,
        Buffer.from(`\n${lines.slice(5).join("\n")}\n`),
      ]),
    );
    proxy.setMode("forward");
    const second = createPostgresSink({
      connectionString: DATABASE,
      schema,
      spoolPath,
      retryIntervalMs: 50,
      logger: recordingLogger(),
    });
    cleanups.push(() => second.close());
    // The records and the shutdown checkpoint; the torn line is moved aside.
    await waitFor(() => second.stats().replayed === 521 && second.stats().spoolBytes === 0);
    expect(await count("gw-t")).toBe(520);
    expect((await verify()).problems).toEqual([]);
    await second.close();
  });

  it("delivers at start the spool a previous sink left behind, torn line aside", async () => {
    proxy.setMode("refuse");
    const first = sinkAndLog(
      {
        connectionString: proxyUrl,
        queryTimeoutMs: 300,
        connectTimeoutMs: 300,
        retryIntervalMs: 50,
      },
      { instance: "gw-a", batchSize: 4 },
    );
    for (let n = 1; n <= 10; n += 1) first.log.append(entry(n));
    await first.log.close();
    expect(first.log.stats()).toMatchObject({ written: 10, lost: 0 });
    expect(first.sink.stats()).toMatchObject({ spooled: 11, replayed: 0 });
    const spooled = (await readFile(spoolPath, "utf8")).trimEnd().split("\n");
    expect(spooled).toHaveLength(11);
    expect(JSON.parse(spooled[10] as string)).toMatchObject({
      checkpoint: { instance: "gw-a", seq: 10, reason: "shutdown" },
    });
    // A crash in the middle of an append.
    await appendFile(spoolPath, '{"instance":"gw-a","se');
    proxy.setMode("forward");
    await migrate({ connectionString: DATABASE, schema });
    expect(await count("gw-a")).toBe(0);

    const logger = recordingLogger();
    const second = createPostgresSink({
      connectionString: DATABASE,
      schema,
      spoolPath,
      retryIntervalMs: 50,
      logger,
    });
    cleanups.push(() => second.close());
    await waitFor(() => second.stats().spoolBytes === 0 && second.stats().replayed === 11);
    expect(await exists(spoolPath)).toBe(false);
    expect(await readFile(`${spoolPath}.bad`, "utf8")).toBe('{"instance":"gw-a","se\n');
    expect(logger.errors().some((message) => message.includes("moved aside"))).toBe(true);
    expect(await count("gw-a")).toBe(10);
    const report = await verify();
    expect(report.problems).toEqual([]);
    expect(report.chains).toMatchObject([{ instance: "gw-a", lastSeq: 10, checkpointSeq: 10 }]);
    await second.close();
  });

  it("never shows the password of the connection string", async () => {
    proxy.setMode("refuse");
    const password = "Sup3r-Secret-pw";
    const connectionString = `postgres://postgres:${password}@127.0.0.1:${proxy.port}/test`;
    const logger = recordingLogger();
    const sink = createPostgresSink({
      connectionString,
      schema,
      spoolPath,
      queryTimeoutMs: 300,
      connectTimeoutMs: 300,
      retryIntervalMs: 50,
      maxSpoolBytes: 10,
      logger,
    });
    const record = sealRecord(key, entry(1), "gw-secret", 1, genesisMac(key, "gw-secret"));
    const failure = await sink.write([record]).catch((error: Error) => error);
    expect(failure).toBeInstanceOf(Error);
    await sink.close();
    const migration = await migrate({ connectionString, schema, connectTimeoutMs: 300 }).catch(
      (error: Error) => error,
    );
    expect(migration).toBeInstanceOf(Error);
    const shown = `${logger.text()} ${String(failure)} ${String(migration)} ${JSON.stringify(migration)}`;
    expect(logger.errors().length).toBeGreaterThan(0);
    expect(shown).not.toContain(password);

    // The server names the database in its error: here, a database named like the password.
    const echoed = `postgres://postgres:${password}@127.0.0.1:5432/${password}`;
    const echoLogger = recordingLogger();
    const echoSink = createPostgresSink({
      connectionString: echoed,
      schema,
      spoolPath: join(directory, "echo-spool.jsonl"),
      logger: echoLogger,
    });
    await echoSink.write([record]);
    await echoSink.close();
    const echoMigration = await migrate({ connectionString: echoed, schema }).catch(
      (error: Error) => error,
    );
    expect(String(echoMigration)).toMatch(/database "\*\*\*" does not exist/);
    expect(`${echoLogger.text()} ${JSON.stringify(echoMigration)}`).not.toContain(password);
  });

  it("does not hold the writer while PostgreSQL stalls: each write is spooled within spoolAfterMs", async () => {
    await migrate({ connectionString: DATABASE, schema });
    const spoolAfterMs = 300;
    const logger = recordingLogger();
    const sink = createPostgresSink({
      connectionString: proxyUrl,
      schema,
      spoolPath,
      spoolAfterMs,
      // Without spoolAfterMs the first stalled write would wait out queryTimeoutMs, 5 s.
      queryTimeoutMs: 5000,
      connectTimeoutMs: 5000,
      retryIntervalMs: 100,
      logger,
    });
    const writes: number[] = [];
    const timed: AuditSink = {
      async write(records) {
        const started = performance.now();
        try {
          return await sink.write(records);
        } finally {
          writes.push(performance.now() - started);
        }
      },
      checkpoint: (checkpoint) => sink.checkpoint(checkpoint),
      close: () => sink.close(),
    };
    const log = createAuditLog({
      sink: timed,
      key,
      instance: "gw-stall",
      batchSize: 50,
      maxQueued: 600,
      flushIntervalMs: 5,
    });
    cleanups.push(() => log.close());

    for (let n = 1; n <= 10; n += 1) log.append(entry(n));
    await log.flush();
    expect(sink.stats()).toMatchObject({ inserted: 10, spooled: 0 });

    proxy.setMode("stall");
    // About 1,000 records a second: 300 wait while the first stalled write does.
    const total = 1210;
    for (let n = 11; n <= total; n += 1) {
      log.append(entry(n));
      if (n % 20 === 0) await delay(20);
    }
    await log.flush();
    expect(log.stats()).toMatchObject({ appended: total, written: total, lost: 0 });
    expect(sink.stats().spooled).toBeGreaterThanOrEqual(total - 10);
    expect(Math.max(...writes)).toBeLessThan(3 * spoolAfterMs);
    expect(await count("gw-stall")).toBe(10);

    proxy.setMode("forward");
    await waitFor(() => sink.stats().spoolBytes === 0, {
      timeoutMs: 15_000,
      message: "spool not delivered",
    });
    await log.close();
    expect(await count("gw-stall")).toBe(total);
    const ids = await admin.query(
      `SELECT count(DISTINCT request_id) AS n FROM ${table("aigw_audit_log")} WHERE instance_id = 'gw-stall'`,
    );
    expect(Number(ids.rows[0].n)).toBe(total);
    const report = await verify();
    expect(report.problems).toEqual([]);
    expect(report).toMatchObject({ ok: true, records: total });
    expect(report.chains).toMatchObject([
      { instance: "gw-stall", lastSeq: total, checkpointSeq: total },
    ]);
    expect(sink.stats()).toMatchObject({ rejected: 0, spoolBytes: 0 });
    expect(sink.stats().replayed).toBe(sink.stats().spooled);
    expect(logger.errors().some((message) => message.includes("spool until it answers"))).toBe(
      true,
    );
  });

  it("writes as a role with only INSERT and SELECT once the tables are migrated", async () => {
    expect(await migrate({ connectionString: DATABASE, schema })).toEqual([1]);
    const role = `aigw_audit_writer_${randomBytes(4).toString("hex")}`;
    const quotedSchema = pg.escapeIdentifier(schema);
    await admin.query(`CREATE ROLE ${role} LOGIN`);
    cleanups.push(async () => {
      await admin.query(`DROP OWNED BY ${role}`);
      await admin.query(`DROP ROLE ${role}`);
    });
    await admin.query(`GRANT USAGE ON SCHEMA ${quotedSchema} TO ${role}`);
    await admin.query(`GRANT INSERT, SELECT ON ALL TABLES IN SCHEMA ${quotedSchema} TO ${role}`);
    const writerUrl = `postgres://${role}@127.0.0.1:5432/test`;

    // The role can indeed not change the schema.
    const writer = new pg.Client({ connectionString: writerUrl });
    await writer.connect();
    cleanups.push(() => writer.end());
    await expect(
      writer.query(`CREATE TABLE IF NOT EXISTS ${table("aigw_audit_migrations")} (version int)`),
    ).rejects.toThrow(/permission denied/);
    expect(await migrate({ connectionString: writerUrl, schema })).toEqual([]);

    const logger = recordingLogger();
    const { sink, log } = sinkAndLog(
      { connectionString: writerUrl, logger },
      { instance: "gw-writer", batchSize: 10 },
    );
    for (let n = 1; n <= 30; n += 1) log.append(entry(n));
    await log.close();
    expect(logger.errors()).toEqual([]);
    expect(sink.stats()).toEqual({
      inserted: 30,
      spooled: 0,
      replayed: 0,
      rejected: 0,
      spoolBytes: 0,
    });
    expect(await count("gw-writer")).toBe(30);
    const checkpoints = await admin.query(
      `SELECT seq::int AS seq, reason FROM ${table("aigw_audit_checkpoints")} WHERE instance_id = 'gw-writer'`,
    );
    expect(checkpoints.rows).toEqual([{ seq: 30, reason: "shutdown" }]);
    expect(await exists(spoolPath)).toBe(false);
    const report = await verify();
    expect(report.problems).toEqual([]);
    expect(report.chains).toMatchObject([
      { instance: "gw-writer", lastSeq: 30, checkpointSeq: 30 },
    ]);
  });

  it("answers queries from the sealed line and reports rows whose columns were edited", async () => {
    const { log } = sinkAndLog({}, { instance: "gw-edit", batchSize: 20 });
    for (let n = 1; n <= 40; n += 1) {
      // A NUL in a record: PostgreSQL cannot read its line as jsonb (that page is compared in
      // JavaScript instead).
      log.append(n === 5 ? { ...entry(n), endpoint: "/v1/chat/completions\u0000" } : entry(n));
    }
    await log.close();
    const reader = source({ pageSize: 8 });
    const collect = async (lines: AsyncIterable<string>) => {
      const all: string[] = [];
      for await (const line of lines) all.push(line);
      return all;
    };
    const seqs = async (query: Parameters<typeof reader.records>[0]) =>
      (await collect(reader.records(query))).map(
        (line) => (JSON.parse(line) as { seq: number }).seq,
      );
    const inconsistencies = () => {
      const found = reader.inconsistencies?.();
      if (!found) throw new Error("the PostgreSQL source has no inconsistencies()");
      return collect(found);
    };
    expect(await inconsistencies()).toEqual([]);

    const update = (set: string, where = "true") =>
      admin.query(
        `UPDATE ${table("aigw_audit_log")} SET ${set} WHERE instance_id = 'gw-edit' AND ${where}`,
      );
    await update("tenant = 'mallory'", "seq = 7");
    await update("time = time + interval '1 second'", "seq = 3");
    await update(`model = '${"m".repeat(100)}'`, "seq = 12");
    await update("status = 500", "seq = 30");
    expect(await inconsistencies()).toEqual([
      "gw-edit: record 3: column time is '2026-01-01T00:00:04.000Z', its record says '2026-01-01T00:00:03.000Z'",
      "gw-edit: record 7: column tenant is 'mallory', its record says 'acme'",
      `gw-edit: record 12: column model is '${"m".repeat(63)}…', its record says 'gpt-4o-mini'`,
      "gw-edit: record 30: column status is 500, its record says 200",
    ]);
    // The SQL finds the edited rows, their lines say otherwise: left out.
    expect(await seqs({ tenant: "mallory" })).toEqual([]);
    expect(await seqs({ model: "m".repeat(100) })).toEqual([]);
    expect(await seqs({ since: new Date(entry(4).time), until: new Date(entry(4).time) })).toEqual([
      4,
    ]);
    expect(await seqs({ tenant: "acme", until: new Date(entry(8).time) })).toEqual([1, 2, 4, 5, 8]);
    // The chain itself is intact: only the copies in the columns changed.
    expect((await verify()).ok).toBe(true);

    // At most 100 sentences.
    await update("request_id = 'x', tenant = 'x', status = 0");
    expect(await inconsistencies()).toHaveLength(100);
  });
});
