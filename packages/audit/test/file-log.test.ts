import { execFileSync } from "node:child_process";
import { createSecretKey, generateKeyPairSync } from "node:crypto";
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type AuditEntry,
  type AuditLog,
  type AuditLogger,
  type AuditSink,
  type Checkpoint,
  createAuditLog,
  createFileSink,
  createFileSource,
  genesisMac,
  type SealedRecord,
  sealRecord,
  signCheckpoint,
  verifyRecords,
} from "../src/index.js";

const key = "an audit key of at least 32 bytes!";
let directory: string;
let path: string;

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), "aigw-audit-"));
  path = join(directory, "audit.jsonl");
});
afterEach(() => rmSync(directory, { recursive: true, force: true }));

function entry(index: number, extra: Partial<AuditEntry> = {}): AuditEntry {
  return {
    time: new Date(Date.UTC(2026, 11, 1, 10, 0, index)).toISOString(),
    requestId: `request-${index}`,
    tenant: index % 2 === 0 ? "acme" : "globex",
    endpoint: "/v1/chat/completions",
    model: index % 3 === 0 ? "gpt-4o-mini" : "claude-sonnet-4-5",
    status: 200,
    durationMs: 12,
    ...extra,
  };
}

async function writeRecords(
  count: number,
  options: Partial<Parameters<typeof createFileSink>[0]> = {},
) {
  const log = fileLog(
    { batchSize: 7, checkpointEvery: 20, minCheckpointIntervalMs: 0 },
    createFileSink({ path, ...options }),
  );
  for (let index = 1; index <= count; index += 1) log.append(entry(index));
  await log.close();
  return log;
}

/** Instance "gw-1" of a log under `key`, to a file sink at `path` unless given another. */
function fileLog(
  options: Omit<Parameters<typeof createAuditLog>[0], "sink" | "key">,
  sink = createFileSink({ path }),
) {
  return createAuditLog({ sink, key, instance: "gw-1", ...options });
}

/** A logger keeping what `error` gets: each call's object with its message. */
function errorLog() {
  const errors: Record<string, unknown>[] = [];
  const logger = {
    info() {},
    error: (object: object, message?: string) => void errors.push({ ...object, message }),
  };
  return { logger, errors, messages: () => errors.map((error) => error.message) };
}

/** A log of `instance` in batches of 7 to a file sink at `path`, both reporting to `logger`. */
function nextRun(
  instance: string,
  sinkOptions: Omit<Parameters<typeof createFileSink>[0], "path" | "logger">,
  logger?: AuditLogger,
) {
  return createAuditLog({
    sink: createFileSink({ path, ...sinkOptions, logger }),
    key,
    instance,
    batchSize: 7,
    logger,
  });
}

/** Appends entries 1..count, letting the log write after every `every`. */
async function appendFlushing(log: AuditLog, count: number, every = 7) {
  for (let index = 1; index <= count; index += 1) {
    log.append(entry(index));
    if (index % every === 0) await log.flush();
  }
}

/** Twelve records appended to a log that checkpoints every 5, its log lines going to `info`. */
function twelveRecords(minCheckpointIntervalMs: number, info: (object: object) => void) {
  const log = fileLog({
    batchSize: 5,
    checkpointEvery: 5,
    minCheckpointIntervalMs,
    logger: { info, error() {} },
  });
  for (let index = 1; index <= 12; index += 1) log.append(entry(index));
  return log;
}

const verify = (source = createFileSource({ path })) =>
  verifyRecords(source.records(), source.checkpoints(), key);
const lines = () => readFileSync(path, "utf8").trimEnd().split("\n");
const rewrite = (kept: string[]) => writeFileSync(path, `${kept.join("\n")}\n`);

describe("the chain in a file", () => {
  it("writes every record once, in order, and verifies", async () => {
    const log = await writeRecords(50);
    expect(log.stats()).toMatchObject({ appended: 50, written: 50, lost: 0, queued: 0 });
    const records = lines().map((line) => JSON.parse(line));
    expect(records.map((record) => record.seq)).toEqual(
      Array.from({ length: 50 }, (_, index) => index + 1),
    );
    expect(records[0]).toMatchObject({
      instance: "gw-1",
      requestId: "request-1",
      tenant: "globex",
    });
    expect(Object.keys(records[0]).at(-1)).toBe("mac");
    const report = await verify();
    expect(report).toMatchObject({ ok: true, records: 50, problems: [] });
    expect(report.chains).toEqual([
      { instance: "gw-1", records: 50, firstSeq: 1, lastSeq: 50, checkpointSeq: 50, unanchored: 0 },
    ]);
  });

  it("creates its files, records and checkpoints, for their owner alone", async () => {
    await writeRecords(3);
    for (const file of [path, join(directory, "audit.checkpoints.jsonl")]) {
      expect(statSync(file).mode & 0o777).toBe(0o600);
    }
  });

  it("an entry JSON cannot hold is lost and reported, and the chain goes on unbroken", async () => {
    const errors: string[] = [];
    const log = createAuditLog({
      sink: createFileSink({ path }),
      key,
      instance: "gw-1",
      logger: { info() {}, error: (_object, message) => void errors.push(message ?? "") },
    });
    log.append(entry(1));
    log.append(entry(2, { status: 10n as unknown as number }));
    log.append(entry(3));
    await log.close();
    expect(log.stats()).toMatchObject({ appended: 3, written: 2, lost: 1 });
    expect(errors).toEqual(["audit record lost: its entry could not be read"]);
    expect(lines().map((line) => JSON.parse(line).seq)).toEqual([1, 2]);
    expect(await verify()).toMatchObject({ ok: true, records: 2 });
  });

  it("reports a removed record, the newest included", async () => {
    await writeRecords(30);
    const all = lines();
    rewrite([...all.slice(0, 10), ...all.slice(11)]);
    expect((await verify()).problems).toEqual(["gw-1: records 11..11 are missing"]);
    rewrite(all.slice(0, -1));
    expect((await verify()).problems).toEqual([
      "gw-1: the newest records 30..30 are missing (checkpointed)",
    ]);
  });

  it("reports an edited record and reordered records", async () => {
    await writeRecords(10);
    const all = lines();
    rewrite(
      all.map((line, index) => (index === 4 ? line.replace('"status":200', '"status":201') : line)),
    );
    expect((await verify()).problems).toEqual([
      "gw-1: record 5 was altered (its MAC does not match)",
    ]);
    rewrite([...all.slice(0, 3), all[4] as string, all[3] as string, ...all.slice(5)]);
    const { ok, problems } = await verify();
    expect(ok).toBe(false);
    expect(problems[0]).toBe("gw-1: records 4..4 are missing");
  });

  it("needs the key: another key finds every record altered", async () => {
    await writeRecords(3);
    const source = createFileSource({ path });
    const report = await verifyRecords(source.records(), source.checkpoints(), "x".repeat(32));
    expect(report.ok).toBe(false);
    expect(report.problems).toEqual([
      "no record matches this key: is it the key the log was written with?",
      "gw-1: a checkpoint at 3 is not signed with this key",
      "gw-1: record 1 was altered (its MAC does not match)",
      "gw-1: record 2 was altered (its MAC does not match)",
      "gw-1: record 3 was altered (its MAC does not match)",
    ]);
  });

  it("seals a record into the same line as earlier versions, MAC included", () => {
    const sealed = sealRecord(key, entry(1), "gw-1", 1, genesisMac(key, "gw-1"));
    // Made by the release before the key became a KeyObject and the MAC one update.
    expect(sealed.line).toBe(
      '{"instance":"gw-1","seq":1,"time":"2026-12-01T10:00:01.000Z","requestId":"request-1","tenant":"globex","endpoint":"/v1/chat/completions","model":"claude-sonnet-4-5","status":200,"durationMs":12,"mac":"fb5b906a6340872a61274822ec13c563cf38630fc6702b77dc043eab275fcff3"}',
    );
  });

  it("refuses a key shorter than 32 bytes, or one that is not a secret key", () => {
    const refused = (key: Parameters<typeof createAuditLog>[0]["key"]) => () =>
      createAuditLog({ sink: createFileSink({ path }), key });
    expect(refused("short")).toThrow("at least 32 bytes");
    expect(refused(createSecretKey(Buffer.from("short")))).toThrow("at least 32 bytes");
    const { privateKey } = generateKeyPairSync("ed25519");
    expect(refused(privateKey)).toThrow("must be a secret key");
  });

  it("takes the key as a KeyObject, with the same MACs as its text", async () => {
    const log = createAuditLog({
      sink: createFileSink({ path }),
      key: createSecretKey(Buffer.from(key)),
      instance: "gw-1",
    });
    for (let index = 1; index <= 3; index += 1) log.append(entry(index));
    await log.close();
    expect(await verify()).toMatchObject({ ok: true });
  });
});

describe("checkpoints", () => {
  it("a checkpoint not signed with the key is reported and not believed", async () => {
    await writeRecords(10);
    const all = lines();
    rewrite(all.slice(0, 4));
    const checkpointFile = join(directory, "audit.checkpoints.jsonl");
    const forged = { instance: "gw-1", seq: 4, mac: JSON.parse(all[3] as string).mac };
    // Someone who cannot sign tries to pass records 5..10 off as deleted by retention.
    writeFileSync(
      checkpointFile,
      `${JSON.stringify({ ...forged, time: new Date().toISOString(), reason: "shutdown", sig: "00" })}\n`,
    );
    const report = await verify();
    expect(report.problems).toEqual(["gw-1: a checkpoint at 4 is not signed with this key"]);
  });

  it("checkpoints kept elsewhere catch the newest records deleted with the stored ones", async () => {
    const logged: object[] = [];
    const log = twelveRecords(0, (object) => logged.push(object));
    await log.close();
    // Both the newest records and the checkpoints that name them are removed from the store.
    rewrite(lines().slice(0, 5));
    const checkpointFile = join(directory, "audit.checkpoints.jsonl");
    const stored = readFileSync(checkpointFile, "utf8").trimEnd().split("\n");
    writeFileSync(checkpointFile, `${stored[0]}\n`);
    expect((await verify()).ok).toBe(true);
    const source = createFileSource({ path });
    async function* withLogged() {
      yield* source.checkpoints();
      for (const line of logged) {
        const checkpoint = (line as { auditCheckpoint?: Checkpoint }).auditCheckpoint;
        if (checkpoint) yield checkpoint;
      }
    }
    const report = await verifyRecords(source.records(), withLogged(), key);
    expect(report.problems).toEqual(["gw-1: the newest records 6..12 are missing (checkpointed)"]);
  });
});

/** A sink that stores nothing but checkpoints, and fails the first of those. */
function sinkFailingOneCheckpoint() {
  const stored: number[] = [];
  let failures = 0;
  const sink: AuditSink = {
    async write() {
      return undefined;
    },
    async checkpoint(checkpoint) {
      if (failures++ === 0) throw new Error("the checkpoint store is away");
      stored.push(checkpoint.seq);
    },
    async close() {},
  };
  return { sink, stored, failures: () => failures };
}

describe("the checkpoint interval", () => {
  it("holds a due checkpoint back for its interval, then writes it without waiting for records", async () => {
    const checkpoints: { seq: number; reason: string; at: number }[] = [];
    const log = twelveRecords(1000, (object) => {
      const checkpoint = (object as { auditCheckpoint?: Checkpoint }).auditCheckpoint;
      if (checkpoint) checkpoints.push({ ...checkpoint, at: performance.now() });
    });
    await log.flush();
    // The first is due at 5 records and written at once; the next, due at 10, waits.
    expect(checkpoints.map(({ seq, reason }) => ({ seq, reason }))).toEqual([
      { seq: 5, reason: "interval" },
    ]);
    while (checkpoints.length < 2) await new Promise((resolve) => setTimeout(resolve, 20));
    const [first, second] = checkpoints;
    expect(second).toMatchObject({ seq: 12, reason: "interval" });
    expect((second?.at ?? 0) - (first?.at ?? 0)).toBeGreaterThanOrEqual(990);
    await log.close();
    // Nothing after the last checkpoint: close has nothing more to cover.
    expect(checkpoints.map(({ seq, reason }) => `${seq} ${reason}`)).toEqual([
      "5 interval",
      "12 interval",
    ]);
    expect((await verify()).ok).toBe(true);
  });

  it("writes a checkpoint it holds back at close, as the shutdown one, without waiting", async () => {
    const log = fileLog({ checkpointEvery: 1, minCheckpointIntervalMs: 60_000 });
    log.append(entry(1));
    await log.flush();
    log.append(entry(2));
    await log.flush();
    await log.close();
    const stored = createFileSource({ path }).checkpoints();
    const reasons = [];
    for await (const checkpoint of stored) reasons.push(`${checkpoint.seq} ${checkpoint.reason}`);
    expect(reasons).toEqual(["1 interval", "2 shutdown"]);
  });

  it("never checkpoints a record the sink is still writing", async () => {
    let written = 0;
    let gate: Promise<void> | undefined;
    const covered: { seq: number; written: number }[] = [];
    const sink: AuditSink = {
      async write(records: readonly SealedRecord[]) {
        await gate;
        written += records.length;
        return undefined;
      },
      async checkpoint(checkpoint) {
        covered.push({ seq: checkpoint.seq, written });
      },
      async close() {},
    };
    const log = createAuditLog({
      sink,
      key,
      batchSize: 5,
      checkpointEvery: 5,
      minCheckpointIntervalMs: 100,
    });
    const appendFive = (from: number) => {
      for (let index = from; index < from + 5; index += 1) log.append(entry(index));
    };
    appendFive(1);
    await log.flush(); // checkpointed at 5 at once
    appendFive(6);
    await log.flush(); // due at 10, held back: its timer fires in 100 ms
    let open = () => {};
    gate = new Promise((resolve) => {
      open = resolve;
    });
    appendFive(11); // sealed up to 15, but only 10 written until the gate opens
    // Past the timer: a checkpoint taken now would name 15 with 10 written.
    await new Promise((resolve) => setTimeout(resolve, 250));
    open();
    await log.close();
    expect(covered).toEqual([
      { seq: 5, written: 5 },
      { seq: 15, written: 15 },
    ]);
  });

  it("tries a failed checkpoint again an interval later, with no new records", async () => {
    const { sink, stored, failures } = sinkFailingOneCheckpoint();
    const log = createAuditLog({ sink, key, checkpointEvery: 5, minCheckpointIntervalMs: 100 });
    for (let index = 1; index <= 5; index += 1) log.append(entry(index));
    await log.flush();
    expect(failures()).toBe(1);
    while (stored.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(stored).toEqual([5]);
    await log.close();
  });

  it("checkpoints a quiet log's newest records within checkpointWithinMs", async () => {
    const checkpoints: { seq: number; reason: string; at: number }[] = [];
    const log = fileLog({
      checkpointWithinMs: 300,
      logger: {
        info(object) {
          const checkpoint = (object as { auditCheckpoint?: Checkpoint }).auditCheckpoint;
          if (checkpoint) checkpoints.push({ ...checkpoint, at: performance.now() });
        },
        error() {},
      },
    });
    const checkpointed = async (count: number) => {
      while (checkpoints.length < count) await new Promise((resolve) => setTimeout(resolve, 20));
      return checkpoints[count - 1];
    };
    const start = performance.now();
    log.append(entry(1));
    log.append(entry(2));
    // Far fewer than checkpointEvery (1,000) records, and no close.
    const first = await checkpointed(1);
    expect(first).toMatchObject({ seq: 2, reason: "interval" });
    expect((first?.at ?? 0) - start).toBeGreaterThanOrEqual(290);
    log.append(entry(3));
    expect(await checkpointed(2)).toMatchObject({ seq: 3, reason: "interval" });
    await log.close();
    // Every record was covered already: no shutdown checkpoint.
    expect(checkpoints.map(({ seq, reason }) => `${seq} ${reason}`)).toEqual([
      "2 interval",
      "3 interval",
    ]);
    expect((await verify()).chains[0]).toMatchObject({ checkpointSeq: 3, unanchored: 0 });
  });

  it("tries a failed checkpoint of a quiet log again, with no interval to wait", async () => {
    const { sink, stored, failures } = sinkFailingOneCheckpoint();
    const log = createAuditLog({ sink, key, minCheckpointIntervalMs: 0, checkpointWithinMs: 50 });
    log.append(entry(1));
    // No more records come: the retry needs a timer of its own.
    while (stored.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    expect({ failures: failures(), stored }).toEqual({ failures: 2, stored: [1] });
    await log.close();
  });

  it("refuses an interval that is not a whole number of milliseconds a timer can wait", () => {
    for (const minCheckpointIntervalMs of [-1, 1.5, Number.NaN, 2 ** 31]) {
      expect(() => fileLog({ minCheckpointIntervalMs })).toThrow(
        "minCheckpointIntervalMs must be an integer from 0 to 2147483647",
      );
      expect(() => fileLog({ checkpointWithinMs: minCheckpointIntervalMs })).toThrow(
        "checkpointWithinMs must be an integer from 0 to 2147483647",
      );
    }
  });
});

describe("what verify does not take on trust", () => {
  it("records past a retention point, a checkpoint it cannot read, a sig that is not hex", async () => {
    await writeRecords(6);
    const all = lines();
    const checkpointFile = join(directory, "audit.checkpoints.jsonl");
    const source = createFileSource({ path });
    const stored: Checkpoint[] = [];
    for await (const checkpoint of source.checkpoints()) stored.push(checkpoint);
    const retention = signCheckpoint(
      key,
      { instance: "gw-1", seq: 3, mac: JSON.parse(all[2] as string).mac },
      "retention",
    );
    writeFileSync(
      checkpointFile,
      [
        ...stored.map((each) => JSON.stringify(each)),
        JSON.stringify(retention),
        '{"instance":"gw-1","se',
        JSON.stringify({ ...stored[0], sig: "é".repeat(64) }),
      ].join("\n"),
    );
    const report = await verify();
    expect(report.problems).toEqual([
      "a checkpoint cannot be read",
      "gw-1: a checkpoint at 6 is not signed with this key",
      "gw-1: record 1 is past retention (at 3) yet still there",
      "gw-1: record 2 is past retention (at 3) yet still there",
      "gw-1: record 3 is past retention (at 3) yet still there",
    ]);
    // A checkpoint appended after a torn line starts a line of its own.
    const log = createAuditLog({ sink: createFileSink({ path }), key, instance: "gw-9" });
    log.append(entry(1));
    await log.close();
    expect(readFileSync(checkpointFile, "utf8").split("\n").at(-2)).toMatch(/"instance":"gw-9"/);
  });

  it("signs retention only for rotation checkpoints, naming a file, signed with the key", async () => {
    const head = {
      instance: "gw-0",
      seq: 3,
      mac: "a".repeat(64),
      file: "audit.2026-12-01.1.jsonl",
    };
    const genuine = signCheckpoint(key, head, "rotation");
    const { file: _file, ...unnamed } = head;
    const reported = [
      { ...genuine, sig: "0".repeat(64) },
      signCheckpoint(key, unnamed, "rotation"),
      signCheckpoint(key, head, "interval"),
      genuine,
    ];
    const stored: Checkpoint[] = [];
    const sink: AuditSink = {
      write: async () => ({ retained: reported }),
      checkpoint: async (checkpoint) => void stored.push(checkpoint),
      close: async () => {},
    };
    const errors: string[] = [];
    const log = fileLog(
      { logger: { info() {}, error: (_object, message) => errors.push(message as string) } },
      sink,
    );
    log.append(entry(1));
    await log.close();
    expect(stored.filter((checkpoint) => checkpoint.reason === "retention")).toEqual([
      expect.objectContaining({ ...head, reason: "retention" }),
    ]);
    expect(errors).toEqual(
      Array(3).fill(
        "audit rotation checkpoint not signed with this key: retention does not vouch for it",
      ),
    );
  });
});

describe("rotation and retention", () => {
  it("rotates by size, keeps maxFiles, and the kept chain still verifies", async () => {
    await writeRecords(120, { maxBytes: 2_000, maxFiles: 3 });
    const files = readdirSync(directory).sort();
    const rotated = files.filter((name) => /^audit\.\d{4}-\d{2}-\d{2}\.\d+\.jsonl$/.test(name));
    expect(rotated).toHaveLength(3);
    expect(files).toContain("audit.checkpoints.jsonl");
    const checkpoints = readFileSync(join(directory, "audit.checkpoints.jsonl"), "utf8");
    expect(checkpoints).toContain('"reason":"rotation"');
    expect(checkpoints).toContain('"reason":"retention"');
    expect(checkpoints).toMatch(/"sig":"[0-9a-f]{64}"/);
    const report = await verify();
    expect(report.ok, report.problems.join("\n")).toBe(true);
    expect(report.chains[0]?.firstSeq).toBeGreaterThan(1);
    expect(report.chains[0]?.lastSeq).toBe(120);
  });

  it("rotates the checkpoints with the records, and deletes them once older than every record file left", async () => {
    const checkpointFiles = () =>
      readdirSync(directory).filter((name) => name.startsWith("audit.checkpoints."));
    // Left by a crash between deleting a record file and its checkpoints: goes at the next.
    const orphan = join(directory, "audit.checkpoints.2000-01-01.1.jsonl");
    writeFileSync(orphan, "{}\n");
    await writeRecords(600, { maxBytes: 2_000, maxFiles: 3 });
    expect(existsSync(orphan)).toBe(false);
    const rotated = rotatedNames();
    expect(rotated).toHaveLength(3);
    // One per kept file (the checkpoints written while it was open), and the open one.
    expect(checkpointFiles().sort()).toEqual(
      [
        ...rotated.map((name) => name.replace(/^audit\./, "audit.checkpoints.")),
        "audit.checkpoints.jsonl",
      ].sort(),
    );
    const checkpoints = checkpointFiles().reduce(
      (count, name) => count + readFileSync(join(directory, name), "utf8").split("\n").length - 1,
      0,
    );
    expect(checkpoints).toBeLessThan(40);
    const report = await verify();
    expect(report.problems).toEqual([]);
    expect(report.chains[0]?.lastSeq).toBe(600);
    // The kept checkpoints still catch the newest record removed.
    const newest = [path, ...rotated.map((name) => join(directory, name)).reverse()].find(
      (file) => readFileSync(file, "utf8").length > 0,
    ) as string;
    const kept = readFileSync(newest, "utf8").trimEnd().split("\n").slice(0, -1);
    writeFileSync(newest, kept.length > 0 ? `${kept.join("\n")}\n` : "");
    expect((await verify()).problems).toEqual([
      "gw-1: the newest records 600..600 are missing (checkpointed)",
    ]);
  });

  it("keeps the checkpoints a file kept out of order needs: one closed by a crash before its rotation checkpoint", async () => {
    await writeRecords(60, { maxBytes: 2_000, maxFiles: 30 });
    const newest = rotatedNames().at(-1) as string;
    const checkpointFile = join(directory, "audit.checkpoints.jsonl");
    // The crash came after the record file's rename: its checkpoints were not renamed, and its
    // rotation checkpoint was never stored.
    const segment = join(directory, newest.replace(/^audit\./, "audit.checkpoints."));
    const unrenamed = `${readFileSync(segment, "utf8")}${readFileSync(checkpointFile, "utf8")}`;
    rmSync(segment);
    writeFileSync(
      checkpointFile,
      unrenamed
        .split("\n")
        .filter((line) => !line.includes(`"file":"${newest}"`))
        .join("\n"),
    );
    const { logger, errors } = errorLog();
    const log = nextRun("gw-2", { maxBytes: 2_000, maxFiles: 2 }, logger);
    for (let index = 1; index <= 100; index += 1) log.append(entry(index));
    await log.close();
    expect(existsSync(join(directory, newest))).toBe(true);
    expect(errors).toHaveLength(1);
    // Nothing reads as missing: the kept file's records show as outliving the retention of
    // the newer files around them, which is what happened.
    const { problems } = await verify();
    const kept = readFileSync(join(directory, newest), "utf8").trimEnd().split("\n");
    expect(problems).toEqual(
      kept.map(
        (line) => `gw-1: record ${JSON.parse(line).seq} is past retention (at 60) yet still there`,
      ),
    );
  });

  it("waits for every instance's rotation checkpoint, tried again at close if need be", async () => {
    // gw-1's records, then gw-2's in the same file: its rotation names two heads.
    await writeRecords(3);
    const inner = createFileSink({ path, maxBytes: 2_000, maxFiles: 0 });
    let failures = 0;
    const sink: AuditSink = {
      ...inner,
      async checkpoint(checkpoint) {
        if (checkpoint.reason === "rotation" && checkpoint.instance === "gw-1" && failures < 2) {
          failures += 1;
          throw new Error("disk full");
        }
        return inner.checkpoint(checkpoint);
      },
    };
    const log = createAuditLog({
      sink,
      key,
      instance: "gw-2",
      batchSize: 7,
      logger: { info() {}, error() {} },
    });
    await appendFlushing(log, 40);
    await log.close();
    expect(failures).toBe(2);
    const report = await verify();
    expect(report.problems).toEqual([]);
    expect(report.chains.map((chain) => chain.instance)).toEqual(["gw-2"]);
    // A failure at the last rotation before close: stored by close.
    const last = createFileSink({ path, maxBytes: 1, maxFiles: 10 });
    let failed = false;
    const closing = createAuditLog({
      sink: {
        ...last,
        async checkpoint(checkpoint) {
          if (checkpoint.reason === "rotation" && checkpoint.instance === "gw-3" && !failed) {
            failed = true;
            throw new Error("disk full");
          }
          return last.checkpoint(checkpoint);
        },
      },
      key,
      instance: "gw-3",
      logger: { info() {}, error() {} },
    });
    closing.append(entry(1));
    await closing.close();
    const rotation = readFileSync(join(directory, "audit.checkpoints.jsonl"), "utf8")
      .trimEnd()
      .split("\n")
      .map((line) => JSON.parse(line) as Checkpoint)
      .filter((checkpoint) => checkpoint.reason === "rotation" && checkpoint.instance === "gw-3");
    expect(failed).toBe(true);
    expect(rotation).toHaveLength(1);
  });

  it("keeps an earlier run's file holding an instance no signed rotation checkpoint names", async () => {
    await writeRecords(3);
    // gw-2 writes on in gw-1's file, and never gets its own rotation checkpoint stored.
    const inner = createFileSink({ path, maxBytes: 2_000, maxFiles: 10 });
    const failing = createAuditLog({
      sink: {
        ...inner,
        async checkpoint(checkpoint) {
          if (checkpoint.reason === "rotation" && checkpoint.instance === "gw-2") {
            throw new Error("disk full");
          }
          return inner.checkpoint(checkpoint);
        },
      },
      key,
      instance: "gw-2",
      batchSize: 7,
      logger: { info() {}, error() {} },
    });
    for (let index = 1; index <= 10; index += 1) failing.append(entry(index));
    await failing.close();
    const [first] = rotatedNames() as [string];
    const { logger, errors } = errorLog();
    const log = nextRun("gw-3", { maxBytes: 2_000, maxFiles: 1 }, logger);
    await appendFlushing(log, 60);
    await log.close();
    expect(existsSync(join(directory, first))).toBe(true);
    expect(errors).toContainEqual(
      expect.objectContaining({ path: join(directory, first), instances: ["gw-2"] }),
    );
    // Newer files go on around it: verify shows its records as outliving their retention.
    expect(rotatedNames()).toHaveLength(2);
    const { problems } = await verify();
    expect(problems.length).toBeGreaterThan(0);
    for (const problem of problems) expect(problem).toMatch(/^gw-2: record \d+ is past retention/);
  });

  it("keeps the order of files whose rotation checkpoints were stored late", async () => {
    const inner = createFileSink({ path, maxBytes: 1, maxFiles: 2 });
    let failures = 0;
    const log = fileLog(
      { batchSize: 1, logger: { info() {}, error() {} } },
      {
        ...inner,
        async checkpoint(checkpoint) {
          if (checkpoint.reason === "rotation" && checkpoint.seq === 1 && failures < 6) {
            failures += 1;
            throw new Error("disk full");
          }
          return inner.checkpoint(checkpoint);
        },
      },
    );
    const numbers = () => rotatedNames().map((name) => Number(name.split(".")[2]));
    for (let index = 1; index <= 21; index += 1) {
      log.append(entry(index));
      await log.flush();
      // Never a newer file deleted while an older one is kept.
      const kept = numbers();
      expect(kept).toEqual(kept.map((_, offset) => (kept[0] as number) + offset));
    }
    await log.close();
    expect(failures).toBe(6);
    const report = await verify();
    expect(report.problems).toEqual([]);
    expect(report.chains[0]?.lastSeq).toBe(21);
  });

  it("takes no rotation number a checkpoint file left behind has, so that it goes as the oldest", async () => {
    const today = new Date().toISOString().slice(0, 10);
    // Checkpoints whose record file is gone, of an instance whose records are gone too.
    const stale = signCheckpoint(
      key,
      { instance: "gw-0", seq: 5, mac: "a".repeat(64) },
      "interval",
    );
    writeFileSync(
      join(directory, `audit.checkpoints.${today}.5.jsonl`),
      `${JSON.stringify(stale)}\n`,
    );
    const log = fileLog({ batchSize: 1 }, createFileSink({ path, maxBytes: 1, maxFiles: 2 }));
    for (let index = 1; index <= 3; index += 1) {
      log.append(entry(index));
      await log.flush();
    }
    await log.close();
    expect(rotatedNames()).toEqual([`audit.${today}.7.jsonl`, `audit.${today}.8.jsonl`]);
    expect(existsSync(join(directory, `audit.checkpoints.${today}.5.jsonl`))).toBe(false);
    expect((await verify()).problems).toEqual([]);
  });

  it("never reuses a name when a file takes a day's highest number: today's, or none, said once", async () => {
    const today = new Date().toISOString().slice(0, 10);
    const yesterday = new Date(Date.now() - 86_400_000);
    const day = yesterday.toISOString().slice(0, 10);
    await writeRecords(3);
    utimesSync(path, yesterday, yesterday);
    writeFileSync(join(directory, `audit.${day}.999999999.jsonl`), "");
    const log = fileLog({}, createFileSink({ path }));
    log.append(entry(4));
    await log.close();
    // Yesterday's file, named for today: it still sorts before today's later ones.
    expect(readFileSync(join(directory, `audit.${today}.1.jsonl`), "utf8")).toContain('"seq":3,');
    rmSync(directory, { recursive: true, force: true });
    mkdirSync(directory);

    writeFileSync(join(directory, `audit.${today}.999999999.jsonl`), "");
    const { logger, messages } = errorLog();
    const stuck = fileLog(
      { batchSize: 7, logger },
      createFileSink({ path, maxBytes: 2_000, logger }),
    );
    await appendFlushing(stuck, 60);
    await stuck.close();
    expect(messages()).toEqual(["audit file rotation failed"]);
    expect(lines()).toHaveLength(60);
    expect((await verify()).problems).toEqual([]);
  });

  it("stops retention, not the rotation, when it cannot read an earlier run's file", async () => {
    await writeRecords(60, { maxBytes: 2_000, maxFiles: 30 });
    const oldest = join(directory, rotatedNames()[0] as string);
    rmSync(oldest);
    symlinkSync(oldest, oldest);
    const { logger, messages } = errorLog();
    const log = nextRun("gw-2", { maxBytes: 2_000, maxFiles: 1 }, logger);
    await appendFlushing(log, 30);
    // Tried at each rotation, and reported once: the failure stays the same.
    expect(messages()).toEqual(["audit retention could not read a file"]);
    expect(rotatedNames().length).toBeGreaterThan(1);
    // Once the file can be read (here: it is gone), retention goes on at the next rotation.
    rmSync(oldest);
    for (let index = 31; index <= 45; index += 1) log.append(entry(index));
    await log.close();
    expect(rotatedNames()).toHaveLength(1);
    expect(messages()).toHaveLength(1);
    const gw2Rotations = readdirSync(directory)
      .filter((name) => name.startsWith("audit.checkpoints"))
      .flatMap((name) => readFileSync(join(directory, name), "utf8").split("\n"))
      .filter((line) => line.includes('"reason":"rotation"') && line.includes('"gw-2"'));
    expect(gw2Rotations.length).toBeGreaterThan(1);
  });

  it("reads past a FIFO or a directory under a rotated name instead of waiting on it", async () => {
    const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    // Opened for reading, a FIFO waits for a writer that never comes. The one under a record
    // file's name makes the sink read earlier runs' checkpoints, from the other one.
    execFileSync("mkfifo", [join(directory, `audit.checkpoints.${yesterday}.1.jsonl`)]);
    execFileSync("mkfifo", [join(directory, `audit.${yesterday}.1.jsonl`)]);
    mkdirSync(join(directory, `audit.checkpoints.${yesterday}.2.jsonl`));
    const log = fileLog({ batchSize: 7 }, createFileSink({ path, maxBytes: 2_000, maxFiles: 1 }));
    await appendFlushing(log, 30);
    await log.close();
    expect(rotatedNames().filter((name) => !name.includes(yesterday)).length).toBeGreaterThan(0);
    const report = await verify();
    expect(report.problems).toEqual([]);
    expect(report.chains[0]?.lastSeq).toBe(30);
    const source = createFileSource({ path });
    expect((await source.tail(1)).map((line) => JSON.parse(line).seq)).toEqual([30]);
  });

  it("goes on when retention cannot delete a file, and never rotates onto a name in use", async () => {
    const planted = join(directory, "audit.checkpoints.2000-01-01.1.jsonl");
    mkdirSync(planted);
    const today = new Date().toISOString().slice(0, 10);
    // A name no rotation makes, ignored.
    writeFileSync(join(directory, `audit.${today}.9007199254740993.jsonl`), "");
    const { logger, errors } = errorLog();
    const log = fileLog(
      { batchSize: 7, logger },
      createFileSink({ path, maxBytes: 2_000, maxFiles: 2, logger }),
    );
    await appendFlushing(log, 100);
    await log.close();
    expect(errors).toContainEqual(
      expect.objectContaining({
        path: planted,
        message: "audit retention could not delete a file",
      }),
    );
    expect(
      errors.filter((error) => (error as { message: string }).message.includes("rotation failed")),
    ).toEqual([]);
    const made = rotatedNames().filter((name) => !name.includes("9007199254740993"));
    expect(made).toHaveLength(2);
    const report = await verify();
    expect(report.problems).toEqual([]);
    expect(report.chains[0]).toMatchObject({ instance: "gw-1", lastSeq: 100 });
  });

  it("retention that deletes every record of an earlier instance is no loss", async () => {
    await writeRecords(20, { maxBytes: 2_000, maxFiles: 2 });
    const log = createAuditLog({
      sink: createFileSink({ path, maxBytes: 2_000, maxFiles: 2 }),
      key,
      instance: "gw-2",
      batchSize: 7,
    });
    for (let index = 1; index <= 100; index += 1) log.append(entry(index));
    await log.close();
    const source = createFileSource({ path });
    const instances = new Set<string>();
    for await (const line of source.records()) instances.add(JSON.parse(line).instance);
    expect([...instances]).toEqual(["gw-2"]);
    const report = await verify();
    expect(report.problems).toEqual([]);
    expect(report.chains.map((chain) => chain.lastSeq)).toEqual([100]);
  });

  it("a line torn by a crash is ended, and the next records keep lines of their own", async () => {
    await writeRecords(5);
    writeFileSync(path, `${readFileSync(path, "utf8")}{"instance":"gw-1","seq":6,"ti`);
    const log = createAuditLog({ sink: createFileSink({ path }), key, instance: "gw-2" });
    for (let index = 1; index <= 3; index += 1) log.append(entry(index));
    await log.close();
    expect(lines()).toHaveLength(9);
    const report = await verify();
    expect(report.problems).toEqual(["record 6: not a sealed audit record"]);
    expect(report.chains.find((chain) => chain.instance === "gw-2")).toMatchObject({
      records: 3,
      lastSeq: 3,
    });
  });

  it("a removed rotated file (not by retention) shows as missing records", async () => {
    await writeRecords(60, { maxBytes: 2_000, maxFiles: 10 });
    const rotated = readdirSync(directory)
      .filter((name) => /\.\d+\.jsonl$/.test(name))
      .sort((left, right) => Number(left.split(".")[2]) - Number(right.split(".")[2]));
    rmSync(join(directory, rotated[1] as string));
    const report = await verify();
    expect(report.ok).toBe(false);
    expect(report.problems[0]).toMatch(/^gw-1: records \d+\.\.\d+ are missing$/);
  });

  /** The rotated files in `directory`, oldest first (all of one day in these tests). */
  const rotatedNames = () =>
    readdirSync(directory)
      .filter((name) => /^audit\.\d{4}-\d{2}-\d{2}\.\d+\.jsonl$/.test(name))
      .sort((left, right) => Number(left.split(".")[2]) - Number(right.split(".")[2]));

  /** gw-1's 60 records in rotated files, then gw-2's one: its rotation deletes the oldest file. */
  async function retainOldest(
    logger?: { info(object: object): void; error(object: object, message: string): void },
    maxFiles = rotatedNames().length,
  ) {
    const log = createAuditLog({
      sink: createFileSink({ path, maxBytes: 1, maxFiles, logger }),
      key,
      instance: "gw-2",
      logger,
    });
    log.append(entry(1));
    await log.close();
  }

  const lastRecord = (file: string) =>
    JSON.parse(readFileSync(file, "utf8").trimEnd().split("\n").at(-1) as string);
  const retentionCheckpoints = () =>
    readFileSync(join(directory, "audit.checkpoints.jsonl"), "utf8")
      .trimEnd()
      .split("\n")
      .map((line) => JSON.parse(line) as Checkpoint)
      .filter((checkpoint) => checkpoint.reason === "retention");

  /** What someone who can write the record files, but has no key, does after retention. */
  function removeRecordsOf(instance: string) {
    for (const name of readdirSync(directory)) {
      if (!/^audit\..*jsonl$/.test(name) || name.includes("checkpoints")) continue;
      const file = join(directory, name);
      const kept = readFileSync(file, "utf8")
        .split("\n")
        .filter((line) => !line.includes(`"instance":"${instance}"`));
      writeFileSync(file, kept.join("\n"));
    }
  }

  it("retention vouches for where a file ended when it rotated, not for lines copied into it", async () => {
    await writeRecords(60, { maxBytes: 2_000, maxFiles: 30 });
    const oldest = join(directory, rotatedNames()[0] as string);
    const oldestEnd = lastRecord(oldest);
    // gw-1's newest records, copied into the file retention deletes next...
    appendFileSync(oldest, `${lines().slice(-2).join("\n")}\n`);
    await retainOldest();
    expect(existsSync(oldest)).toBe(false);
    expect(retentionCheckpoints()).toEqual([
      expect.objectContaining({ instance: "gw-1", seq: oldestEnd.seq, file: basename(oldest) }),
    ]);
    // ...would have passed gw-1's every record off as deleted by retention.
    removeRecordsOf("gw-1");
    const report = await verify();
    expect(report.problems).toEqual([`gw-1: records ${oldestEnd.seq + 1}..60 are missing`]);
  });

  it("counts earlier runs' files only once their rotation checkpoints are read, however many lines that takes", async () => {
    await writeRecords(60, { maxBytes: 2_000, maxFiles: 30 });
    const oldest = rotatedNames()[0] as string;
    const checkpointFile = join(directory, "audit.checkpoints.jsonl");
    // Lines it has to check one by one, before the genuine ones: made-up rotation checkpoints.
    const madeUp = JSON.stringify({
      instance: "gw-1",
      seq: 60,
      mac: "0".repeat(64),
      time: new Date().toISOString(),
      reason: "rotation",
      file: oldest,
      sig: "0".repeat(64),
    });
    writeFileSync(checkpointFile, `${madeUp}\n`.repeat(30_000) + readFileSync(checkpointFile));
    await retainOldest();
    expect(existsSync(join(directory, oldest))).toBe(false);
    expect(retentionCheckpoints()).toEqual([expect.objectContaining({ file: oldest })]);
  });

  it("believes only rotation checkpoints signed with the key, the file's name included", async () => {
    await writeRecords(60, { maxBytes: 2_000, maxFiles: 30 });
    const names = rotatedNames();
    const [oldest, newest] = [names[0] as string, names.at(-1) as string];
    const oldestEnd = lastRecord(join(directory, oldest)).seq;
    const checkpointFile = join(directory, "audit.checkpoints.jsonl");
    const stored = readFileSync(checkpointFile, "utf8").trimEnd().split("\n");
    const newestRotation = JSON.parse(
      stored.find((line) => line.includes(`"file":"${newest}"`)) as string,
    );
    const madeUp = {
      ...newestRotation,
      seq: 60,
      mac: lastRecord(path).mac,
      sig: "0".repeat(64),
    };
    // The newest file's genuine checkpoint, made to name the oldest: its sig covers the name.
    const renamed = { ...newestRotation, file: oldest };
    const duplicates = Array.from({ length: 500 }, () => stored[0]);
    appendFileSync(
      checkpointFile,
      `${[JSON.stringify({ ...madeUp, file: oldest }), JSON.stringify(renamed), ...duplicates].join("\n")}\n`,
    );
    await retainOldest();
    expect(existsSync(join(directory, oldest))).toBe(false);
    expect(retentionCheckpoints()).toEqual([
      expect.objectContaining({ instance: "gw-1", seq: oldestEnd, file: oldest }),
    ]);
  });

  it("neither counts nor deletes a file no signed rotation checkpoint names, and says so once", async () => {
    await writeRecords(60, { maxBytes: 2_000, maxFiles: 30 });
    const names = rotatedNames();
    // Files made up to push the real ones past retention, dated to sort last or first.
    const future = join(directory, "audit.2099-01-01.1.jsonl");
    const past = join(directory, "audit.2000-01-01.1.jsonl");
    writeFileSync(future, "");
    writeFileSync(past, "");
    const { logger, errors } = errorLog();
    await retainOldest(logger, names.length);
    // Only the oldest real file went, as maxFiles says.
    expect(existsSync(join(directory, names[0] as string))).toBe(false);
    for (const name of names.slice(1)) expect(existsSync(join(directory, name))).toBe(true);
    expect(existsSync(future) && existsSync(past)).toBe(true);
    const message =
      "audit file kept: no rotation checkpoint signed with the audit key vouches for it (or for the instances listed); retention keeps it, and the checkpoint files after it, until it is removed";
    expect(errors).toEqual([
      { path: past, message },
      { path: future, message },
    ]);
    expect(retentionCheckpoints()).toHaveLength(1);
  });

  it("orders files by their signed rotation time, not by the date a name or a file's mtime gives", async () => {
    await writeRecords(60, { maxBytes: 2_000, maxFiles: 30 });
    const names = rotatedNames();
    // The file an earlier run left, backdated: its rotation would name it as the oldest.
    const yesterday = new Date(Date.now() - 86_400_000);
    utimesSync(path, yesterday, yesterday);
    // Two rotations: the day's at the first write, then the size's.
    await retainOldest(undefined, names.length + 1);
    const backdated = `audit.${yesterday.toISOString().slice(0, 10)}.1.jsonl`;
    expect(existsSync(join(directory, backdated))).toBe(true);
    expect(existsSync(join(directory, names[0] as string))).toBe(false);
    expect(retentionCheckpoints()).toEqual([
      expect.objectContaining({ instance: "gw-1", file: names[0] }),
    ]);
  });

  it("with maxFiles 0, deletes each file once its rotation checkpoint is stored, never before", async () => {
    const log = fileLog({ batchSize: 7 }, createFileSink({ path, maxBytes: 2_000, maxFiles: 0 }));
    await appendFlushing(log, 60);
    await log.close();
    expect(rotatedNames().length).toBeLessThanOrEqual(1);
    const report = await verify();
    expect(report.problems).toEqual([]);
    expect(report.chains[0]?.lastSeq).toBe(60);
  });

  it("stores a rotation checkpoint that failed again, and retention still vouches for its file", async () => {
    const inner = createFileSink({ path, maxBytes: 2_000, maxFiles: 1 });
    let failed = 0;
    const sink: AuditSink = {
      ...inner,
      async checkpoint(checkpoint) {
        if (checkpoint.reason === "rotation" && failed++ === 0) throw new Error("disk full");
        return inner.checkpoint(checkpoint);
      },
    };
    const log = fileLog({ batchSize: 7, logger: { info() {}, error() {} } }, sink);
    await appendFlushing(log, 60);
    await log.close();
    expect(failed).toBeGreaterThan(1);
    expect(rotatedNames()).toHaveLength(1);
    const report = await verify();
    expect(report.problems).toEqual([]);
    expect(report.chains[0]?.lastSeq).toBe(60);
  });

  it("stores the retention checkpoints that failed with the next write, and deletes their files then", async () => {
    const inner = createFileSink({ path, maxBytes: 2_000, maxFiles: 1 });
    let storing = false;
    let failed = 0;
    const sink: AuditSink = {
      ...inner,
      async checkpoint(checkpoint) {
        if (checkpoint.reason === "retention" && !storing) {
          failed += 1;
          throw new Error("disk full");
        }
        return inner.checkpoint(checkpoint);
      },
    };
    const log = fileLog({ batchSize: 7, logger: { info() {}, error() {} } }, sink);
    await appendFlushing(log, 60);
    expect(failed).toBeGreaterThan(0);
    expect(rotatedNames().length).toBeGreaterThan(1);
    storing = true;
    log.append(entry(61));
    await log.flush();
    expect(rotatedNames()).toHaveLength(1);
    await log.close();
    const report = await verify();
    expect(report.problems).toEqual([]);
    expect(report.chains[0]?.lastSeq).toBe(61);
  });

  it("rotates a file left from an earlier day before writing", async () => {
    await writeRecords(3);
    const yesterday = new Date(Date.now() - 86_400_000);
    utimesSync(path, yesterday, yesterday);
    const log = createAuditLog({ sink: createFileSink({ path }), key, instance: "gw-2" });
    log.append(entry(4));
    await log.close();
    const day = yesterday.toISOString().slice(0, 10);
    expect(readdirSync(directory)).toContain(`audit.${day}.1.jsonl`);
    expect(lines()).toHaveLength(1);
    expect((await verify()).ok).toBe(true);
  });
});

describe("reading back", () => {
  it("query filters by tenant, model and time; tail gives the newest", async () => {
    await writeRecords(12);
    const source = createFileSource({ path });
    const found: string[] = [];
    for await (const line of source.records({
      tenant: "acme",
      model: "gpt-4o-mini",
      since: new Date(Date.UTC(2026, 11, 1, 10, 0, 5)),
    })) {
      found.push(JSON.parse(line).requestId);
    }
    expect(found).toEqual(["request-6", "request-12"]);
    const newest = (await source.tail(2)).map((line) => JSON.parse(line).seq);
    expect(newest).toEqual([11, 12]);
    expect((await source.tail(5)).map((line) => JSON.parse(line).seq)).toEqual([8, 9, 10, 11, 12]);
    expect(await source.tail(100)).toHaveLength(12);
  });
});

describe("content and losses", () => {
  it("redacts PII in content before it is sealed", async () => {
    const log = createAuditLog({ sink: createFileSink({ path }), key, instance: "gw-1" });
    log.append(
      entry(1, {
        content: {
          request: [{ role: "user", kind: "text", text: "Mail jane.doe@example.com please" }],
          response: [{ role: "assistant", kind: "text", text: "Sent to jane.doe@example.com." }],
        },
      }),
    );
    await log.close();
    const text = readFileSync(path, "utf8");
    expect(text).not.toContain("jane.doe@example.com");
    const record = JSON.parse(text);
    expect(record.content.request[0].text).toMatch(/^Mail <EMAIL_ADDRESS_[0-9a-f]{8}> please$/);
    // The same value gets the same placeholder: records can be correlated without the value.
    expect(record.content.response[0].text).toContain(record.content.request[0].text.split(" ")[1]);
    expect(record.content.redacted).toEqual({ EMAIL_ADDRESS: 2 });
    expect((await verify()).ok).toBe(true);
  });

  it("cuts content to maxContentChars, never inside a value, and masks what it keeps", async () => {
    const log = createAuditLog({
      sink: createFileSink({ path }),
      key,
      instance: "gw-1",
      maxContentChars: 12,
    });
    expect(log.contentCharsWanted).toBe(12 + 16_500);
    const text = (role: "system" | "user" | "assistant", value: string) =>
      ({ role, kind: "text", text: value }) as const;
    // A plain cut would keep "Mail jane.do" and "Card 4111 11", unmasked.
    log.append(
      entry(1, {
        content: {
          request: [text("user", "Mail jane.doe@example.com")],
          response: [text("assistant", "Card 4111 1111 1111 1111 noted."), text("assistant", "x")],
        },
      }),
    );
    log.append(
      entry(2, {
        content: { request: [text("system", "Mail a@b.io"), text("user", "hi there")] },
      }),
    );
    log.append(entry(3, { content: { request: [text("user", "short")] } }));
    await log.close();
    for (const part of ["jane", "doe", "example", "4111", "a@b.io"]) {
      expect(readFileSync(path, "utf8")).not.toContain(part);
    }
    const [cutOff, pieces, whole] = lines().map((line) => JSON.parse(line));
    expect(cutOff.content).toEqual({
      request: [text("user", "Mail ")],
      response: [text("assistant", "Card ")],
      truncated: true,
    });
    // The cap counts the text as given (11 + 1 characters), and masks what it keeps.
    expect(pieces.content.request).toEqual([
      { role: "system", kind: "text", text: expect.stringMatching(/^Mail <EMAIL_ADDRESS_\w+>$/) },
      text("user", "h"),
    ]);
    expect(pieces.content).toMatchObject({ truncated: true, redacted: { EMAIL_ADDRESS: 1 } });
    expect(whole.content).toEqual({ request: [text("user", "short")] });
    expect((await verify()).ok).toBe(true);
  });

  it("keeps no part of a value however much the masking before the cap shortens the text", async () => {
    const pem = generateKeyPairSync("rsa", { modulusLength: 2048 })
      .privateKey.export({ type: "pkcs8", format: "pem" })
      .toString();
    const log = createAuditLog({ sink: createFileSink({ path }), key, maxContentChars: 1000 });
    // What the hooks would give: contentCharsWanted characters, the last key cut off.
    const given = `keys: ${Array.from({ length: 12 }, () => pem).join("\n")}`.slice(
      0,
      log.contentCharsWanted,
    );
    log.append(entry(1, { content: { request: [{ role: "user", kind: "text", text: given }] } }));
    await log.close();
    const record = JSON.parse(lines()[0] as string);
    // Masked first, ten keys would shrink to ten placeholders, and the cap would reach into
    // the eleventh, cut and so not found.
    expect(record.content.request).toEqual([{ role: "user", kind: "text", text: "keys: " }]);
    expect(readFileSync(path, "utf8")).not.toMatch(/PRIVATE KEY|MII/);
  });

  it("refuses content options that would store text unmasked by mistake, or no cap", () => {
    const sink = createFileSink({ path });
    const withOptions = (options: Partial<Parameters<typeof createAuditLog>[0]>) => () =>
      createAuditLog({ sink, key, ...options });
    expect(withOptions({ redaction: { entities: ["EMAIL"] } })).toThrow(
      /unknown entity 'EMAIL'; built-in: .*EMAIL_ADDRESS/,
    );
    expect(withOptions({ redaction: { actions: { US_SNN: "mask" } } })).toThrow(/'US_SNN'/);
    expect(withOptions({ redaction: { entities: [] } })).toThrow(/redaction to false/);
    expect(withOptions({ redaction: { actions: { EMAIL_ADDRESS: "block" } } })).toThrow(
      /redaction.actions.EMAIL_ADDRESS: 'block' is not "mask" or "allow"/,
    );
    expect(withOptions({ redaction: { actions: { EMAIL_ADDRESS: "allow" } } })).not.toThrow();
    for (const maxContentChars of [0, 1.5, Number.NaN]) {
      expect(withOptions({ maxContentChars })).toThrow(/maxContentChars/);
    }
    expect(withOptions({ redaction: false, maxContentChars: 5 })().contentCharsWanted).toBe(5);
  });

  it("counts and reports records it cannot keep, without waiting for the sink or flooding its logger", async () => {
    const errors: { lost: number; totalLost: number; message: string | undefined }[] = [];
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const stuck: AuditSink = {
      async write() {
        await released;
        return undefined;
      },
      checkpoint: async () => {},
      close: async () => {},
    };
    const log = createAuditLog({
      sink: stuck,
      key,
      batchSize: 2,
      maxQueued: 3,
      logger: {
        info() {},
        error: (object, message) =>
          errors.push({ ...(object as { lost: number; totalLost: number }), message }),
      },
    });
    for (let index = 1; index <= 10; index += 1) log.append(entry(index));
    expect(log.stats()).toMatchObject({ appended: 10, lost: 5, queued: 3 });
    const dropped = "audit record dropped: too many waiting to be written";
    // The first at once; the others of that second in one line, at the latest at close.
    expect(errors).toMatchObject([{ lost: 1, totalLost: 1, message: dropped }]);
    release();
    await log.close();
    expect(errors).toMatchObject([
      { lost: 1, totalLost: 1, message: dropped },
      { lost: 4, totalLost: 5, message: dropped },
    ]);
  });
});
