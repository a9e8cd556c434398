import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
// The worker is a file of the build: these tests run what the package ships.
import {
  type AuditBodies,
  type AuditEntry,
  type AuditLogger,
  createAuditLog,
  createFileSink,
  createFileSource,
  createThreadedAuditLog,
  verifyRecords,
} from "../dist/index.js";

const key = "an audit key of at least 32 bytes!";
let directory: string;

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), "aigw-audit-threaded-"));
});
afterEach(() => rmSync(directory, { recursive: true, force: true }));

function entries(): AuditEntry[] {
  return Array.from({ length: 40 }, (_, index) => ({
    time: new Date(Date.UTC(2026, 11, 1, 10, 0, index)).toISOString(),
    requestId: `request-${index}`,
    tenant: index % 2 === 0 ? "acme" : "globex",
    endpoint: "/v1/chat/completions",
    model: "gpt-4o-mini",
    status: 200,
    durationMs: index,
    usage: { inputTokens: index, outputTokens: 2 * index, reasoningTokens: undefined },
    costUsd: index === 3 ? null : index / 1e6,
    // Keys that are not AuditEntry fields stay out of the record, in both logs.
    ...(index % 10 === 6 ? { seq: 1, mac: "forged", instance: "elsewhere" } : {}),
    ...(index % 10 === 7 ? { keyId: `Grüße 👋 \udc00 "content": ${index}` } : {}),
    ...(index % 10 === 8
      ? {
          guardrails: [
            { rule: "pii", phase: "input", action: "flag", matches: 1, entities: { content: 1 } },
          ],
        }
      : {}),
    ...(index % 10 === 5
      ? {
          content: {
            request: [
              {
                role: "user",
                kind: "text",
                text: `Grüße 👋 \ud800 mail jane.doe@example.com ${index}`,
              },
            ],
          },
        }
      : {}),
  }));
}

/** Bodies to hash for some entries: text, bytes, empty, none. */
function bodiesOf(index: number): AuditBodies | undefined {
  if (index % 4 === 0) {
    return {
      request: `{"n":${index},"text":"Grüße 👋 \ud800"}`,
      response: new TextEncoder().encode(`answer ${index}`),
    };
  }
  return index % 4 === 1 ? { response: "" } : undefined;
}

const sha256 = (body: string | Uint8Array) => createHash("sha256").update(body).digest("hex");

function recorder() {
  const lines: { level: string; object: Record<string, unknown>; message?: string }[] = [];
  const logger: AuditLogger = {
    info: (object, message) => lines.push({ level: "info", object: { ...object }, message }),
    error: (object, message) => lines.push({ level: "error", object: { ...object }, message }),
  };
  return { lines, logger };
}

const settings = { key, instance: "gw-1", checkpointEvery: 10, minCheckpointIntervalMs: 0 };

/** Counts the 1 MiB hand-over buffers created on this thread until `stop`. */
function countFreshBuffers() {
  const original = globalThis.ArrayBuffer;
  const counter = {
    count: 0,
    stop: () => {
      globalThis.ArrayBuffer = original;
    },
  };
  globalThis.ArrayBuffer = new Proxy(original, {
    construct(target, args: [number]) {
      if (args[0] === 1024 * 1024) counter.count += 1;
      return new target(...args);
    },
  });
  return counter;
}

describe("the threaded audit log", () => {
  it("writes byte for byte what the log on one thread writes, and reports through this thread", async () => {
    const inThread = join(directory, "in-thread.jsonl");
    const log = createAuditLog({ ...settings, sink: createFileSink({ path: inThread }) });
    for (const [index, each] of entries().entries()) log.append(each, bodiesOf(index));
    await log.close();

    const threadedPath = join(directory, "threaded.jsonl");
    const { lines, logger } = recorder();
    const threaded = createThreadedAuditLog({
      ...settings,
      sink: { file: { path: threadedPath } },
      handOverBatch: 7,
      logger,
    });
    for (const [index, each] of entries().entries()) threaded.append(each, bodiesOf(index));
    // JSON cannot hold a BigInt: that record is lost and said so; the chain goes on.
    threaded.append({ ...entries()[0], durationMs: 1n } as unknown as AuditEntry);
    // Nor can a body that is neither text nor bytes be hashed: lost too.
    threaded.append(entries()[1] as AuditEntry, { request: { length: 3 } as unknown as string });
    threaded.append({ ...(entries()[1] as AuditEntry), requestId: "after-the-lost-one" });
    await threaded.flush();
    expect(threaded.stats()).toEqual({ appended: 43, written: 41, lost: 2, queued: 0 });
    await threaded.close();

    const written = readFileSync(threadedPath, "utf8");
    expect(written.startsWith(readFileSync(inThread, "utf8"))).toBe(true);
    expect(written).not.toContain("jane.doe@example.com");
    expect(written).not.toContain("forged");
    expect(written).toContain("Grüße 👋 \\ud800 mail <EMAIL_ADDRESS_");
    expect(written.trim().split("\n")).toHaveLength(41);
    const [first, second] = written.split("\n").map((line) => line && JSON.parse(line));
    expect(first.requestSha256).toBe(sha256(Buffer.from('{"n":0,"text":"Grüße 👋 \ufffd"}')));
    expect(first.responseSha256).toBe(sha256("answer 0"));
    expect(second.responseSha256).toBe(sha256(""));
    expect(second.requestSha256).toBeUndefined();

    const source = createFileSource({ path: threadedPath });
    const report = await verifyRecords(source.records(), source.checkpoints(), key);
    expect(report).toMatchObject({ ok: true, records: 41 });
    expect(report.chains[0]).toMatchObject({ lastSeq: 41, checkpointSeq: 41, unanchored: 0 });
    const checkpoints = lines.filter((line) => line.message === "audit checkpoint");
    expect(checkpoints.at(-1)?.object.auditCheckpoint).toMatchObject({ instance: "gw-1", seq: 41 });
    expect(lines.filter((line) => line.level === "error").map((line) => line.message)).toEqual([
      // At append: the body.
      "audit record lost: its entry could not be read",
      // At the hand-over: the BigInt.
      "audit record lost: it could not be handed to the worker",
    ]);
  });

  it("hands bodies to the worker to hash, but hashes them itself while too many bytes wait", async () => {
    const handedBytes: number[] = [];
    const post = Worker.prototype.postMessage;
    Worker.prototype.postMessage = function (this: Worker, message: unknown, transfer) {
      const records = (message as { records?: Uint8Array }).records;
      if (records) handedBytes.push(records.byteLength);
      return post.call(this, message, transfer);
    };
    try {
      const inThread = join(directory, "in-thread.jsonl");
      const log = createAuditLog({ ...settings, sink: createFileSink({ path: inThread }) });
      const threadedPath = join(directory, "threaded.jsonl");
      // A body of 10,000 ASCII characters counts as 30,000 bytes at most: one fits the bound.
      const threaded = createThreadedAuditLog({
        ...settings,
        sink: { file: { path: threadedPath } },
        maxHandedBytes: 40_000,
        handOverBatch: 1,
      });
      const bodies = { request: "x".repeat(10_000), response: new Uint8Array(0) };
      const [first, second, third] = entries() as [AuditEntry, AuditEntry, AuditEntry];
      for (const each of [first, second, third]) log.append(each, bodies);
      await log.close();
      // Each is handed over at once. The first goes with its body; the second comes while
      // those bytes wait for the worker: hashed here.
      threaded.append(first, bodies);
      threaded.append(second, bodies);
      await threaded.flush();
      // The worker has read them: the third goes with its body again.
      threaded.append(third, bodies);
      await threaded.close();
      expect(handedBytes).toHaveLength(3);
      expect(handedBytes[0]).toBeGreaterThan(10_000);
      expect(handedBytes[1]).toBeLessThan(1_000);
      expect(handedBytes[2]).toBeGreaterThan(10_000);
      expect(readFileSync(threadedPath, "utf8")).toBe(readFileSync(inThread, "utf8"));
    } finally {
      Worker.prototype.postMessage = post;
    }
  });

  it("reuses the buffers the worker hands back without writing their old bytes again", async () => {
    const long = entries().map((each) => ({ ...each, endpoint: `/v1/${"x".repeat(2_000)}` }));
    const short = entries().map((each, index) => ({ ...each, requestId: `short-${index}` }));
    const inThread = join(directory, "in-thread.jsonl");
    const log = createAuditLog({ ...settings, sink: createFileSink({ path: inThread }) });
    for (const each of [...long, ...short, ...short]) log.append(each);
    await log.close();

    const threadedPath = join(directory, "threaded.jsonl");
    const threaded = createThreadedAuditLog({
      ...settings,
      sink: { file: { path: threadedPath } },
      handOverBatch: 9,
    });
    // Rounds apart: by the second, buffers full of long lines are back for the short ones.
    for (const each of long) threaded.append(each);
    await threaded.flush();
    const fresh = countFreshBuffers();
    try {
      for (const round of [short, short]) {
        for (const each of round) threaded.append(each);
        await threaded.flush();
      }
    } finally {
      fresh.stop();
    }
    await threaded.close();
    expect(readFileSync(threadedPath, "utf8")).toBe(readFileSync(inThread, "utf8"));
    // Each round hands over 5 buffers: the one in use, 3 given back by the round before, and
    // 2 new ones (10 if none came back).
    expect(fresh.count).toBe(4);
  });

  it("takes records again once those it bounds by maxQueued are written, without a flush", async () => {
    const path = join(directory, "bounded.jsonl");
    const log = createThreadedAuditLog({
      ...settings,
      sink: { file: { path } },
      maxQueued: 5,
      handOverMs: 1,
    });
    const [first, ...rest] = entries() as [AuditEntry, ...AuditEntry[]];
    for (const each of rest.slice(0, 5)) log.append(each);
    // Past the bound: counted lost, as nothing is written yet.
    log.append(first);
    expect(log.stats()).toMatchObject({ appended: 6, lost: 1, queued: 5 });
    // The worker says so once it has written them: the bound has room again.
    for (let tries = 0; log.stats().written < 5 && tries < 200; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(log.stats()).toMatchObject({ written: 5, queued: 0 });
    log.append(first);
    await log.close();
    expect(log.stats()).toEqual({ appended: 7, written: 6, lost: 1, queued: 0 });
    expect(readFileSync(path, "utf8").trim().split("\n")).toHaveLength(6);
  });

  it("throws for bad log options at once; a worker that fails counts what it was given as lost", async () => {
    const sink = { file: { path: "unused" } };
    expect(() => createThreadedAuditLog({ key: "too short", sink })).toThrow(TypeError);
    expect(() => createThreadedAuditLog({ key, minCheckpointIntervalMs: -1, sink })).toThrow(
      "minCheckpointIntervalMs must be an integer",
    );
    expect(() => createThreadedAuditLog({ key, redaction: { entities: ["EMAIL"] }, sink })).toThrow(
      "unknown entity 'EMAIL'",
    );
    for (const [option, value, message] of [
      ["handOverMs", -1, "handOverMs must be an integer from 0 to 2147483647"],
      ["handOverMs", 1.5, "handOverMs must be an integer"],
      ["handOverBatch", 0, "handOverBatch must be an integer from 1"],
      ["maxHandedBytes", Number.NaN, "maxHandedBytes must be an integer from 0"],
      ["maxQueued", -1, "maxQueued must be an integer from 1"],
      ["batchSize", 0, "batchSize must be an integer from 1"],
      ["checkpointEvery", 0, "checkpointEvery must be an integer from 1"],
      ["maxQueuedContentChars", -1, "maxQueuedContentChars must be an integer from 0"],
    ] as const) {
      expect(() => createThreadedAuditLog({ key, sink, [option]: value })).toThrow(message);
    }
    // The one-thread log checks its own the same way, and its flush interval.
    expect(() =>
      createAuditLog({ key, sink: createFileSink({ path: "unused" }), flushIntervalMs: -1 }),
    ).toThrow("flushIntervalMs must be an integer from 0 to 2147483647");

    const { lines, logger } = recorder();
    const log = createThreadedAuditLog({
      key,
      // What only the worker can find out: the sink it builds cannot be made.
      sink: { postgres: { spoolPath: join(directory, "spool.jsonl") } },
      logger,
    });
    for (const each of entries().slice(0, 3)) log.append(each);
    await log.close();
    expect(log.stats()).toMatchObject({ appended: 3, written: 0, lost: 3 });
    expect(
      lines.find((line) => line.message?.startsWith("audit worker failed"))?.object.err,
    ).toBeInstanceOf(Error);
    log.append(entries()[0] as AuditEntry);
    expect(log.stats().lost).toBe(4);
  });

  it("reports a sink's error with its code, and counts an entry it cannot read as lost", async () => {
    const { lines, logger } = recorder();
    // A directory where the file should be: every write fails with EISDIR.
    const log = createThreadedAuditLog({ key, sink: { file: { path: directory } }, logger });
    const unreadable = {
      ...(entries()[0] as AuditEntry),
      get tenant(): string {
        throw new Error("no tenant");
      },
    };
    expect(() => log.append(unreadable)).not.toThrow();
    log.append(entries()[1] as AuditEntry);
    await log.close();
    expect(log.stats()).toMatchObject({ appended: 2, written: 0, lost: 2, queued: 0 });
    expect(lines.find((line) => line.message?.startsWith("audit record lost"))?.object.err).toEqual(
      new Error("no tenant"),
    );
    const failed = lines.find((line) => line.message?.startsWith("audit records lost"));
    expect(failed?.object.err).toMatchObject({ code: "EISDIR", syscall: "open" });
  });

  for (const [format, load] of [
    [
      "ESM",
      `const { createThreadedAuditLog } = await import(${JSON.stringify(new URL("../dist/index.js", import.meta.url).href)});`,
    ],
    [
      "CommonJS",
      `const { createThreadedAuditLog } = require(${JSON.stringify(new URL("../dist/index.cjs", import.meta.url).pathname)});`,
    ],
  ] as const) {
    it(`starts its worker from the ${format} build, and lets the process exit without close`, async () => {
      const path = join(directory, "exits.jsonl");
      const script = `(async () => {
        ${load}
        const log = createThreadedAuditLog({ key: ${JSON.stringify(key)}, sink: { file: { path: ${JSON.stringify(path)} } } });
        for (let index = 0; index < 3; index++) {
          log.append({ time: "2026-12-01T10:00:00.000Z", requestId: "r" + index, tenant: "t", endpoint: "/v1/chat/completions", status: 200, durationMs: 1 });
        }
        await log.flush();
        console.log(JSON.stringify(log.stats()));
      })();`;
      const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) =>
        execFile(process.execPath, ["-e", script], { timeout: 20_000 }, (error, stdout) =>
          error ? reject(error) : resolve({ stdout }),
        ),
      );
      expect(JSON.parse(stdout)).toMatchObject({ appended: 3, written: 3, lost: 0 });
      expect(readFileSync(path, "utf8").trim().split("\n")).toHaveLength(3);
    });
  }
});
