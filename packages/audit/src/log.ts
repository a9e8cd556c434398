import { createHmac, randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { setImmediate as nextTurn } from "node:timers/promises";
import { type RedactOptions, redactText } from "@aigw/guardrails";
import {
  type AuditKey,
  checkKey,
  genesisMac,
  keyObjectOf,
  sealMembers,
  signCheckpoint,
} from "./chain.js";
import { draftMembers, draftOf, type EntryDraft, entryValues, withDigests } from "./entry.js";
import type {
  AuditBodies,
  AuditContent,
  AuditEntry,
  AuditSink,
  AuditTextPiece,
  ChainHead,
  Checkpoint,
  SinkReport,
} from "./types.js";

/** The subset of a pino logger the audit log reports through. */
export interface AuditLogger {
  info(object: object, message?: string): void;
  error(object: object, message?: string): void;
}

export interface AuditLogOptions {
  sink: AuditSink;
  /** The chain's HMAC-SHA256 key, at least 32 bytes; verify needs the same key. */
  key: AuditKey;
  /**
   * This writer's name in the records: each instance keeps its own chain, from `seq` 1, so
   * the name must be new at each start (a second chain under one name fails verification).
   * Default: the host name and 8 random hex digits.
   */
  instance?: string;
  /** A checkpoint after this many records (besides rotation and close). Default 1000. */
  checkpointEvery?: number;
  /**
   * Milliseconds at least from the log's last checkpoint of its own head (interval or
   * rotation, or a failed attempt) to the next `checkpointEvery` one: a checkpoint due sooner
   * waits on a timer, then covers every record sealed by then. A busy log so checkpoints (and
   * the file sink syncs to disk) about once per interval, and leaves up to about an
   * interval's records after its newest checkpoint rather than `checkpointEvery`; a failed
   * checkpoint is tried again an interval later, records or not. 0: after the batch that
   * makes one due, with no timer (a failed one waits for the next batch). Default 1000, at
   * most 2^31 - 1 (Node's longest timer).
   * @throws TypeError (from createAuditLog) for anything else.
   */
  minCheckpointIntervalMs?: number;
  /** Records per write. Default 500. */
  batchSize?: number;
  /** How long an appended record may wait for more before it is written. Default 100 ms. */
  flushIntervalMs?: number;
  /**
   * Records waiting to be written at most; those appended beyond are counted as lost and
   * reported, never waited for. Default 10,000.
   */
  maxQueued?: number;
  /**
   * Characters of content (prompts and completions) waiting to be written at most; a record
   * appended beyond keeps everything but its text (`content: { truncated: true }`). Default
   * 64 Mi.
   */
  maxQueuedContentChars?: number;
  /**
   * How `content` is redacted before it is sealed: the PII entities to mask (Presidio names)
   * and their actions, as `redactText` of @aigw/guardrails takes them. Default: mask every
   * built-in entity. `false` stores content as given.
   */
  redaction?: Omit<RedactOptions, "key"> | false;
  /**
   * Where lost records and checkpoints are reported. Checkpoints go to `info`, so a log
   * pipeline keeps a copy of every chain head outside the audit store (`verifyRecords` takes
   * them back).
   */
  logger?: AuditLogger | undefined;
}

export interface AuditLogStats {
  appended: number;
  written: number;
  /** Records that were dropped (queue full) or that the sink could not store. */
  lost: number;
  queued: number;
}

export interface AuditLog {
  readonly instance: string;
  /**
   * Queues one record; never throws, never waits. After `close`, records are counted lost.
   * `bodies`, when given, are hashed into the record's `requestSha256` and `responseSha256`.
   * `createAuditLog` reads the entry and bodies at once; the threaded log reads the entry's
   * fields at once, but what they hold (`attempts`, `usage`, `content`) and the bodies only at
   * the next hand-over to its worker (within `handOverMs`): do not change them after the call.
   */
  append(entry: AuditEntry, bodies?: AuditBodies): void;
  /** Resolves once every record appended so far was handed to the sink. */
  flush(): Promise<void>;
  /** Flushes, writes a last checkpoint, and closes the sink. */
  close(): Promise<void>;
  stats(): AuditLogStats;
}

/** The longest delay a Node timer keeps (about 24.8 days); longer ones fire at once. */
const maxTimerMs = 2 ** 31 - 1;

function contentChars(content: AuditContent): number {
  let chars = 0;
  for (const piece of [...(content.request ?? []), ...(content.response ?? [])]) {
    chars += piece.text.length;
  }
  return chars;
}

/** @internal An instance name for a log given none: the host name and 8 random hex digits. */
export function defaultInstance(): string {
  return `${hostname()}-${randomBytes(4).toString("hex")}`;
}

/**
 * Seals entries into an HMAC chain (a sequence number and a MAC over the previous record's
 * MAC and this record's text) and writes them to a sink in batches, off the caller's path.
 * @throws TypeError for a key shorter than 32 bytes or not a secret one, or a
 * `minCheckpointIntervalMs` out of range.
 */
export function createAuditLog(options: AuditLogOptions): AuditLog {
  return createAuditLogTakingValues(options).log;
}

/**
 * @internal `createAuditLog`'s log, and `appendValues`, which appends an entry given as the
 * JSON of its `entryValues` and the hex digests of its bodies (what the threaded log's worker
 * receives).
 */
export function createAuditLogTakingValues(options: AuditLogOptions): {
  log: AuditLog;
  appendValues(valuesJson: string, requestSha256?: string, responseSha256?: string): void;
} {
  const { sink, logger } = options;
  checkKey(options.key);
  const key = keyObjectOf(options.key);
  const instance = options.instance ?? defaultInstance();
  const checkpointEvery = options.checkpointEvery ?? 1000;
  const minCheckpointIntervalMs = options.minCheckpointIntervalMs ?? 1000;
  if (
    !Number.isInteger(minCheckpointIntervalMs) ||
    minCheckpointIntervalMs < 0 ||
    minCheckpointIntervalMs > maxTimerMs
  ) {
    throw new TypeError(`minCheckpointIntervalMs must be an integer from 0 to ${maxTimerMs}`);
  }
  const batchSize = options.batchSize ?? 500;
  const flushIntervalMs = options.flushIntervalMs ?? 100;
  const maxQueued = options.maxQueued ?? 10_000;
  const maxQueuedContentChars = options.maxQueuedContentChars ?? 64 * 2 ** 20;
  const redaction =
    options.redaction === false
      ? undefined
      : {
          ...options.redaction,
          // Placeholders keyed apart from the chain: equal values still match across records.
          key: createHmac("sha256", key).update("aigw-audit redaction").digest(),
        };

  let queue: EntryDraft[] = [];
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> | undefined;
  let closed = false;
  let seq = 0;
  let previousMac = genesisMac(key, instance);
  let checkpointedSeq = 0;
  let checkpointedAt = Number.NEGATIVE_INFINITY;
  let checkpointTimer: NodeJS.Timeout | undefined;
  let queuedContentChars = 0;
  const stats = { appended: 0, written: 0, lost: 0 };

  function reportLost(count: number, reason: string, error?: unknown) {
    stats.lost += count;
    logger?.error({ instance, lost: count, totalLost: stats.lost, err: error }, reason);
  }

  /** Signs and stores a chain head: this log's own, or one a sink reported. */
  async function storeCheckpoint(head: ChainHead, reason: Checkpoint["reason"]) {
    const checkpoint = signCheckpoint(key, head, reason);
    try {
      await sink.checkpoint(checkpoint);
      logger?.info({ auditCheckpoint: checkpoint }, "audit checkpoint");
      return true;
    } catch (error) {
      logger?.error(
        { instance: head.instance, seq: head.seq, err: error },
        "audit checkpoint failed",
      );
      return false;
    }
  }

  async function checkpoint(reason: Checkpoint["reason"]) {
    if (seq === checkpointedSeq) return;
    const head = { instance, seq, mac: previousMac };
    if (await storeCheckpoint(head, reason)) checkpointedSeq = head.seq;
    // A failed one waits its interval too, rather than being retried after every batch.
    checkpointedAt = performance.now();
  }

  /**
   * The `checkpointEvery` checkpoint once it is due and its interval is over; a timer for one
   * held back or failed.
   */
  async function checkpointWhenDue() {
    const due = () => seq - checkpointedSeq >= checkpointEvery;
    if (!due() || checkpointTimer) return;
    if (performance.now() - checkpointedAt >= minCheckpointIntervalMs) {
      await checkpoint("interval");
    }
    // At close, the shutdown checkpoint covers it.
    if (!due() || minCheckpointIntervalMs === 0 || closed) return;
    // Through startWriting, so that a checkpoint never covers a record still being written.
    checkpointTimer = setTimeout(
      () => {
        checkpointTimer = undefined;
        void startWriting();
      },
      Math.max(0, checkpointedAt + minCheckpointIntervalMs - performance.now()),
    );
    checkpointTimer.unref();
  }

  async function checkpointReport(report: SinkReport | undefined) {
    for (const head of report?.rotated ?? []) {
      const stored = await storeCheckpoint(head, "rotation");
      if (stored && head.instance === instance && head.seq > checkpointedSeq) {
        checkpointedSeq = head.seq;
        checkpointedAt = performance.now();
      }
    }
    for (const head of report?.retained ?? []) await storeCheckpoint(head, "retention");
  }

  /** The entry sealed as the chain's next record; the chain moves on only once it is. */
  function seal(draft: EntryDraft) {
    const content = draft.content && redaction ? redacted(draft.content) : draft.content;
    const members = draftMembers(draft, content);
    const sealed = sealMembers(key, members, draft, instance, seq + 1, previousMac);
    seq = sealed.seq;
    previousMac = sealed.mac;
    return sealed;
  }

  function redacted(content: AuditContent): AuditContent {
    const counts: Record<string, number> = {};
    const mask = (pieces: AuditTextPiece[] | undefined) =>
      pieces?.map((piece) => {
        const result = redactText(piece.text, redaction as RedactOptions);
        for (const finding of result.findings) {
          counts[finding.entity] = (counts[finding.entity] ?? 0) + 1;
        }
        return { ...piece, text: result.text };
      });
    const request = mask(content.request);
    const response = mask(content.response);
    return {
      ...content,
      request,
      response,
      redacted: Object.keys(counts).length > 0 ? counts : undefined,
    };
  }

  /** Seals a batch; redacting content is the slow part, so it yields to requests often. */
  async function sealAll(batch: EntryDraft[]) {
    const sealed = [];
    let since = performance.now();
    for (const draft of batch) {
      const { content } = draft;
      if (content) queuedContentChars -= contentChars(content);
      try {
        sealed.push(seal(draft));
      } catch (error) {
        // Content the redactor cannot take: lost and said so, the chain unbroken.
        reportLost(1, "audit record lost: it could not be sealed", error);
        continue;
      }
      if (content) {
        if (performance.now() - since > 5) {
          await nextTurn();
          since = performance.now();
        }
      }
    }
    return sealed;
  }

  async function writeBatch() {
    const batch = queue.length <= batchSize ? queue : queue.slice(0, batchSize);
    queue = batch === queue ? [] : queue.slice(batchSize);
    const sealed = await sealAll(batch);
    let report: SinkReport | undefined;
    try {
      report = await sink.write(sealed);
      stats.written += sealed.length;
    } catch (error) {
      reportLost(sealed.length, "audit records lost: the sink could not store them", error);
    }
    await checkpointReport(report);
  }

  async function drain() {
    do {
      if (queue.length > 0) await writeBatch();
      await checkpointWhenDue();
    } while (queue.length > 0);
  }

  function startWriting(): Promise<void> {
    clearTimeout(timer);
    timer = undefined;
    writing ??= drain().finally(() => {
      writing = undefined;
      if (queue.length > 0) schedule();
    });
    return writing;
  }

  function schedule() {
    if (writing || timer) return;
    timer = setTimeout(startWriting, flushIntervalMs);
    timer.unref();
  }

  function withinContentBudget(draft: EntryDraft, content: AuditContent): EntryDraft {
    const chars = contentChars(content);
    if (queuedContentChars + chars <= maxQueuedContentChars) {
      queuedContentChars += chars;
      return draft;
    }
    // The record is kept; only its text goes, so waiting content stays bounded in bytes.
    logger?.error({ instance }, "audit content dropped: too much waiting to be written");
    return { ...draft, content: { truncated: true } };
  }

  /** Queues the draft `read` gives. */
  function enqueue(read: () => EntryDraft) {
    if (closed) {
      reportLost(1, "audit record after close");
      return;
    }
    stats.appended += 1;
    if (queue.length >= maxQueued) {
      reportLost(1, "audit record dropped: too many waiting to be written");
      return;
    }
    try {
      const draft = read();
      queue.push(draft.content ? withinContentBudget(draft, draft.content) : draft);
    } catch (error) {
      // A getter that throws, a value JSON cannot hold (a BigInt, a cycle), content that is
      // not text pieces: lost and said so, as append never throws.
      reportLost(1, "audit record lost: its entry could not be read", error);
      return;
    }
    if (queue.length >= batchSize && !writing) startWriting();
    else schedule();
  }

  const log: AuditLog = {
    instance,
    append: (entry, bodies) =>
      enqueue(() => draftOf(JSON.stringify(withDigests(entryValues(entry), bodies)))),
    async flush() {
      while (queue.length > 0 || writing) await (writing ?? startWriting());
    },
    async close() {
      closed = true;
      clearTimeout(checkpointTimer);
      checkpointTimer = undefined;
      await log.flush();
      await checkpoint("shutdown");
      await sink.close();
    },
    stats: () => ({ ...stats, queued: queue.length }),
  };
  return {
    log,
    appendValues: (valuesJson, requestSha256, responseSha256) =>
      enqueue(() => draftOf(valuesJson, requestSha256, responseSha256)),
  };
}
