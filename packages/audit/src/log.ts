import { createHmac, randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { setImmediate as nextTurn } from "node:timers/promises";
import type { RedactOptions } from "@aigw/guardrails";
import {
  type AuditKey,
  checkKey,
  genesisMac,
  isSignedCheckpoint,
  keyObjectOf,
  sealMembers,
  signCheckpoint,
} from "./chain.js";
import { contentSettingsOf, keptContent } from "./content.js";
import { draftMembers, draftOf, type EntryDraft, entryValues, withDigests } from "./entry.js";
import { createLossReporter } from "./loss-report.js";
import type {
  AuditBodies,
  AuditContent,
  AuditEntry,
  AuditSink,
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
   * Milliseconds at most from sealing a record to a checkpoint that covers it, however few
   * records follow: a quiet log checkpoints too, so that its newest records are never long
   * past its last checkpoint (nor, in a file, unsynced). `minCheckpointIntervalMs` still
   * applies. Default 10,000, at most 2^31 - 1.
   * @throws TypeError (from createAuditLog) for anything else.
   */
  checkpointWithinMs?: number;
  /**
   * Milliseconds at least from the log's last checkpoint of its own head (interval or
   * rotation, or a failed attempt) to the next interval one: a checkpoint due sooner
   * waits on a timer, then covers every record sealed by then. A busy log so checkpoints (and
   * the file sink syncs to disk) about once per interval, and leaves up to about an
   * interval's records after its newest checkpoint rather than `checkpointEvery`; a failed
   * checkpoint is tried again an interval later, records or not. 0: as soon as one is due (a
   * failed one is tried again a second later). Default 1000, at most 2^31 - 1 (Node's longest
   * timer).
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
   * How `content` is redacted before it is sealed: the PII entities to mask (Presidio names,
   * built-in ones of @aigw/guardrails) and their actions ("mask" or "allow"), as `redactText`
   * takes them. Default: mask every built-in entity. `false` stores content as given.
   * @throws TypeError (from createAuditLog) for no entities, an unknown one or another action.
   */
  redaction?: Omit<RedactOptions, "key"> | false;
  /**
   * Characters of prompt text, and of completion text, a record keeps, counted in the text as
   * given: what is beyond is cut and the content marked `truncated`. A value the cap would
   * split is cut off whole, so no part of it is kept unmasked. Default 32,768.
   * @throws TypeError (from createAuditLog) for anything but a positive integer.
   */
  maxContentChars?: number;
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
   * Characters of prompt text, and of completion text, worth giving `append` per record: the
   * `maxContentChars` a record keeps and, when content is redacted, `maxEntityLength` of
   * @aigw/guardrails (16,500) more, so that a value the cap falls in is seen whole. More is
   * taken, and cut.
   */
  readonly contentCharsWanted: number;
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
/** When a failed checkpoint is tried again with no `minCheckpointIntervalMs` to wait. */
const failedCheckpointRetryMs = 1000;

function contentChars(content: AuditContent): number {
  let chars = 0;
  for (const piece of [...(content.request ?? []), ...(content.response ?? [])]) {
    chars += piece.text.length;
  }
  return chars;
}

/**
 * @internal A numeric option, `fallback` when undefined, checked to be an integer from `min` to
 * `max`.
 * @throws TypeError naming the option for anything else.
 */
export function integerOption(
  value: number | undefined,
  name: string,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const chosen = value ?? fallback;
  if (!Number.isInteger(chosen) || chosen < min || chosen > max) {
    throw new TypeError(`${name} must be an integer from ${min} to ${max}`);
  }
  return chosen;
}

/** @internal A delay option in ms: from 0 to the longest a Node timer waits. */
export const timerMs = (value: number | undefined, name: string, fallback: number) =>
  integerOption(value, name, fallback, 0, maxTimerMs);

/**
 * @internal What a log makes of its options, checked: the threaded log checks them on the
 * calling thread too.
 * @throws TypeError as `createAuditLog` does.
 */
export function settingsOf(options: Omit<AuditLogOptions, "sink">) {
  checkKey(options.key);
  return {
    ...contentSettingsOf(options),
    minCheckpointIntervalMs: timerMs(
      options.minCheckpointIntervalMs,
      "minCheckpointIntervalMs",
      1000,
    ),
    checkpointWithinMs: timerMs(options.checkpointWithinMs, "checkpointWithinMs", 10_000),
    flushIntervalMs: timerMs(options.flushIntervalMs, "flushIntervalMs", 100),
    checkpointEvery: integerOption(options.checkpointEvery, "checkpointEvery", 1000, 1),
    batchSize: integerOption(options.batchSize, "batchSize", 500, 1),
    maxQueued: integerOption(options.maxQueued, "maxQueued", 10_000, 1),
    maxQueuedContentChars: integerOption(
      options.maxQueuedContentChars,
      "maxQueuedContentChars",
      64 * 2 ** 20,
      0,
    ),
  };
}

/** @internal An instance name for a log given none: the host name and 8 random hex digits. */
export function defaultInstance(): string {
  return `${hostname()}-${randomBytes(4).toString("hex")}`;
}

/**
 * Seals entries into an HMAC chain (a sequence number and a MAC over the previous record's
 * MAC and this record's text) and writes them to a sink in batches, off the caller's path.
 * @throws TypeError for a key shorter than 32 bytes or not a secret one, a
 * `minCheckpointIntervalMs`, `checkpointWithinMs` or `flushIntervalMs` out of range (an integer
 * of ms from 0 to 2^31 - 1), a `maxContentChars`, `batchSize`, `maxQueued` or `checkpointEvery`
 * that is not a positive integer, a `maxQueuedContentChars` that is not a non-negative
 * integer, redaction entities that are none or not built-in ones, or an
 * action other than "mask" or "allow" (a record has nothing to block: it would keep the value).
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
  const {
    contentCharsWanted,
    maxContentChars,
    minCheckpointIntervalMs,
    checkpointWithinMs,
    flushIntervalMs,
    batchSize,
    maxQueued,
    maxQueuedContentChars,
    checkpointEvery,
  } = settingsOf(options);
  const key = keyObjectOf(options.key);
  const instance = options.instance ?? defaultInstance();
  const redaction: RedactOptions | undefined =
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
  /** When the oldest record past the last checkpoint was sealed (or one older). */
  let uncoveredSince: number | undefined;
  let checkpointTimer: NodeJS.Timeout | undefined;
  /** When `checkpointTimer` fires. */
  let checkpointTimerAt = Number.POSITIVE_INFINITY;
  let queuedContentChars = 0;
  const stats = { appended: 0, written: 0, lost: 0 };
  sink.setCheckpointVerifier?.((checkpoint) => isSignedCheckpoint(key, checkpoint));

  const losses = createLossReporter(logger, (lost) => ({ instance, lost, totalLost: stats.lost }));
  const contentDrops = createLossReporter(logger, (records) => ({ instance, records }));

  function reportLost(count: number, reason: string, error?: unknown) {
    stats.lost += count;
    losses.report(count, reason, error);
  }

  /** Signs and stores a chain head: this log's own, or one a sink reported. */
  function storeCheckpoint(head: ChainHead, reason: Checkpoint["reason"]) {
    return storeSigned(signCheckpoint(key, head, reason));
  }

  /** Stores a signed checkpoint; whether it could. */
  async function storeSigned(checkpoint: Checkpoint) {
    try {
      await sink.checkpoint(checkpoint);
      logger?.info({ auditCheckpoint: checkpoint }, "audit checkpoint");
      return true;
    } catch (error) {
      logger?.error(
        { instance: checkpoint.instance, seq: checkpoint.seq, err: error },
        "audit checkpoint failed",
      );
      return false;
    }
  }

  /** Checkpoints the head, unless no record is past the last checkpoint; whether it could. */
  async function checkpoint(reason: Checkpoint["reason"]): Promise<boolean> {
    if (seq === checkpointedSeq) return true;
    const head = { instance, seq, mac: previousMac };
    const stored = await storeCheckpoint(head, reason);
    if (stored) markCovered(head.seq);
    // A failed one waits its interval too, rather than being retried after every batch.
    checkpointedAt = performance.now();
    return stored;
  }

  /** A checkpoint of this log's head at `upTo` was stored. */
  function markCovered(upTo: number) {
    checkpointedSeq = upTo;
    if (upTo === seq) uncoveredSince = undefined;
  }

  /**
   * When the next checkpoint may be written (undefined: none is needed): at once after
   * `checkpointEvery` records, else `checkpointWithinMs` after the oldest record it covers was
   * sealed; never within `minCheckpointIntervalMs` of the last.
   */
  function nextCheckpointAt(): number | undefined {
    if (seq === checkpointedSeq) return undefined;
    const due =
      seq - checkpointedSeq >= checkpointEvery
        ? Number.NEGATIVE_INFINITY
        : (uncoveredSince as number) + checkpointWithinMs;
    return Math.max(due, checkpointedAt + minCheckpointIntervalMs);
  }

  /** The interval checkpoint once it is due; a timer for one due later, held back or failed. */
  async function checkpointWhenDue() {
    let at = nextCheckpointAt();
    if (at !== undefined && at <= performance.now()) {
      clearTimeout(checkpointTimer);
      checkpointTimer = undefined;
      at = (await checkpoint("interval"))
        ? nextCheckpointAt()
        : performance.now() + (minCheckpointIntervalMs || failedCheckpointRetryMs);
    }
    // At close, the shutdown checkpoint covers what is left.
    if (at === undefined || closed || (checkpointTimer && checkpointTimerAt <= at)) return;
    clearTimeout(checkpointTimer);
    checkpointTimerAt = at;
    // Through startWriting, so that a checkpoint never covers a record still being written.
    checkpointTimer = setTimeout(
      () => {
        checkpointTimer = undefined;
        void startWriting();
      },
      Math.max(0, at - performance.now()),
    );
    checkpointTimer.unref();
  }

  /**
   * Rotation and retention checkpoints that could not be stored: the same ones are tried again
   * with the next report, and at close, so that a rotation's keeps the time its file was closed,
   * and a file past retention, which the sink deletes only once its checkpoint is stored, goes.
   */
  let unstored: Checkpoint[] = [];

  /** Retention checkpoints of the rotations a sink reported, those signed with this key. */
  function retentionsOf(rotations: readonly Checkpoint[]): Checkpoint[] {
    const signed: Checkpoint[] = [];
    for (const rotation of rotations) {
      const named = rotation.reason === "rotation" && typeof rotation.file === "string";
      if (named && isSignedCheckpoint(key, rotation)) {
        signed.push(signCheckpoint(key, rotation, "retention"));
      } else {
        logger?.error(
          { instance: rotation.instance, seq: rotation.seq, file: rotation.file },
          "audit rotation checkpoint not signed with this key: retention does not vouch for it",
        );
      }
    }
    return signed;
  }

  async function checkpointReport(report: SinkReport | undefined) {
    const due = [
      ...unstored,
      ...(report?.rotated ?? []).map((head) => signCheckpoint(key, head, "rotation", head.time)),
      ...retentionsOf(report?.retained ?? []),
    ];
    unstored = [];
    for (const checkpoint of due) {
      const stored = await storeSigned(checkpoint);
      if (!stored) unstored.push(checkpoint);
      else if (
        checkpoint.reason === "rotation" &&
        checkpoint.instance === instance &&
        checkpoint.seq > checkpointedSeq
      ) {
        markCovered(checkpoint.seq);
        checkpointedAt = performance.now();
      }
    }
  }

  /** The entry sealed as the chain's next record; the chain moves on only once it is. */
  function seal(draft: EntryDraft) {
    const content = draft.content && keptContent(draft.content, maxContentChars, redaction);
    const members = draftMembers(draft, content);
    const sealed = sealMembers(key, members, draft, instance, seq + 1, previousMac);
    uncoveredSince ??= performance.now();
    seq = sealed.seq;
    previousMac = sealed.mac;
    return sealed;
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
    contentDrops.report(1, "audit content dropped: too much waiting to be written");
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
    contentCharsWanted,
    append: (entry, bodies) =>
      enqueue(() => draftOf(JSON.stringify(withDigests(entryValues(entry), bodies)))),
    async flush() {
      while (queue.length > 0 || writing) await (writing ?? startWriting());
    },
    async close() {
      closed = true;
      clearTimeout(checkpointTimer);
      checkpointTimer = undefined;
      try {
        await log.flush();
        await checkpointReport(undefined);
        await checkpoint("shutdown");
        await sink.close();
      } finally {
        losses.flush();
        contentDrops.flush();
      }
    },
    stats: () => ({ ...stats, queued: queue.length }),
  };
  return {
    log,
    appendValues: (valuesJson, requestSha256, responseSha256) =>
      enqueue(() => draftOf(valuesJson, requestSha256, responseSha256)),
  };
}
