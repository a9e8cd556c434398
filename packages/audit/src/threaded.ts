import { Worker } from "node:worker_threads";
import { checkBodies, entryValues, withDigests } from "./entry.js";
import type { FileSinkOptions } from "./file.js";
import { type FrameBody, frameBytes, maxBytesOf, maxFrameBody, writeFrame } from "./frames.js";
import {
  type AuditLog,
  type AuditLogOptions,
  type AuditLogStats,
  defaultInstance,
  integerOption,
  settingsOf,
  timerMs,
} from "./log.js";
import { createLossReporter } from "./loss-report.js";
import type { PostgresSinkOptions } from "./postgres.js";
import type { AuditBodies, AuditEntry } from "./types.js";

/** A sink the worker builds: a file sink's options or a PostgreSQL sink's (without logger). */
export type ThreadedSink =
  | { file: Omit<FileSinkOptions, "logger"> }
  | { postgres: Omit<PostgresSinkOptions, "logger"> };

export interface ThreadedAuditLogOptions extends Omit<AuditLogOptions, "sink" | "flushIntervalMs"> {
  sink: ThreadedSink;
  /**
   * How long appended records wait to be handed to the worker, in ms, unless
   * `handOverBatch` of them wait first. Default 100. Each hand-over wakes the worker, which
   * writes what it brought at once (so there is no `flushIntervalMs`): fewer, larger
   * hand-overs cost the serving thread less than many small ones.
   */
  handOverMs?: number;
  /** Records handed to the worker at once at most. Default 1024. */
  handOverBatch?: number;
  /**
   * Bytes of records and bodies to hash waiting for the worker at most: past it, bodies are
   * hashed on this thread instead of copied. Default 64 MiB.
   */
  maxHandedBytes?: number;
}

/** @internal What the worker is started with. */
export interface WorkerSettings {
  sink: ThreadedSink;
  log: Omit<AuditLogOptions, "sink" | "logger">;
}

/** @internal Messages to the worker; `records` holds frames (see frames.ts). */
export type ToWorker =
  | { type: "append"; records: Uint8Array<ArrayBuffer> }
  | { type: "flush" | "close"; id: number };

// Room for a hand-over's records and bodies in one message at about 3,000 streamed requests a
// second, and for a stream's answer kept whole for hashing (64 Ki characters in @aigw/core).
const chunkBytes = 1024 * 1024;
/** Buffers back from the worker kept for reuse at most: none is new below 3 MiB a hand-over. */
const maxSpares = 3;

/** @internal Messages from the worker. */
export type FromWorker =
  | { type: "log"; level: "info" | "error"; object: object; message?: string }
  | { type: "stats"; stats: AuditLogStats; spare: ArrayBuffer; bytes: number }
  | { type: "done"; id: number; stats: AuditLogStats };

/** Beside this module in dist: worker.js for the ESM build, worker.cjs for the CommonJS one. */
function workerFile(): URL {
  // The CommonJS build gets import.meta.url from its file name.
  const extension = import.meta.url.endsWith(".cjs") ? "cjs" : "js";
  return new URL(`./worker.${extension}`, import.meta.url);
}

/**
 * An audit log whose hashing, sealing (HMAC chain) and sink run on a worker thread: the request
 * thread only holds each entry's field values and the bodies to hash until the hand-over,
 * every `handOverMs` or every `handOverBatch` entries, and then writes them all, the values
 * as JSON arrays and the bodies as bytes, into 1 MiB buffers that it hands over
 * (transferred, not copied); bodies are hashed here instead once `maxHandedBytes` wait for
 * the worker. The records, chain, checkpoints and
 * limits are those of `createAuditLog`, which runs in the worker; the sink is given as options,
 * since the worker builds it (pg loads only for a PostgreSQL sink). Lines the log and sink
 * report reach `logger` on this thread; `stats()` gives the worker's part (written, lost there)
 * as of its last report, once it has written each hand-over. `maxQueued` bounds the records waiting here and
 * in the worker together. The worker does not keep the process alive; `close` (flush, last
 * checkpoint, sink closed) ends it. A worker that fails is reported once, and every record
 * after it is counted lost: requests go on (fail open).
 * @throws TypeError for the options `createAuditLog` refuses (a short key, a count, cap or
 * interval out of range, redaction entities or actions it does not know), a `handOverMs` that
 * is not an integer of ms from 0 to 2^31 - 1, a `handOverBatch` that is not a positive
 * integer or a `maxHandedBytes` that is not a non-negative one. A sink's bad
 * options fail the worker: reported through `logger`, and the records appended are counted
 * lost.
 */
export function createThreadedAuditLog(options: ThreadedAuditLogOptions): AuditLog {
  const { sink, logger, handOverMs, handOverBatch, maxHandedBytes, ...log } = options;
  const handOverDelay = timerMs(handOverMs, "handOverMs", 100);
  const handOverCount = integerOption(handOverBatch, "handOverBatch", 1024, 1);
  const handedLimit = Math.min(
    integerOption(maxHandedBytes, "maxHandedBytes", 64 * 2 ** 20, 0),
    maxFrameBody,
  );
  const { contentCharsWanted, maxQueued } = settingsOf(options);
  const instance = options.instance ?? defaultInstance();
  const settings: WorkerSettings = { sink, log: { ...log, instance } };
  const worker = new Worker(workerFile(), { workerData: settings });
  const exited = new Promise((resolve) => worker.once("exit", resolve));

  // Entries wait as frames (see frames.ts) in a buffer that is handed over whole (transferred,
  // not copied) and comes back once read: fresh memory would cost a page fault per 4 KiB.
  const spares: ArrayBuffer[] = [];
  const emptyBuffer = () => new Uint8Array(spares.pop() ?? new ArrayBuffer(chunkBytes));
  const keepSpare = (spare: ArrayBuffer) => {
    if (spare.byteLength === chunkBytes && spares.length < maxSpares) spares.push(spare);
  };
  let buffer = emptyBuffer();
  let used = 0;
  /**
   * Entries appended since the last hand-over, as `entryValues` and the bodies to hash: they
   * are written out together at the hand-over, in one loop that keeps its code and data in the
   * CPU's caches, rather than one by one between requests.
   */
  let held: { values: unknown[]; request: FrameBody; response: FrameBody }[] = [];
  /** The most bytes the bodies held take in frames. */
  let heldBytes = 0;
  /** Bytes handed over that the worker has not read yet. */
  let handedBytes = 0;
  /** Frames in `buffer`. */
  let pending = 0;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let failure: Error | undefined;
  let nextId = 0;
  const waiting = new Map<number, () => void>();
  const local = { appended: 0, lost: 0 };
  /** Records handed to the worker, and what it last said of them (after each hand-over). */
  let handed = 0;
  let confirmed: AuditLogStats = { appended: 0, written: 0, lost: 0, queued: 0 };
  const unconfirmed = () => handed - confirmed.written - confirmed.lost;
  let closing: Promise<void> | undefined;

  const losses = createLossReporter(logger, (lost) => ({
    instance,
    lost,
    totalLost: local.lost + confirmed.lost,
  }));

  function reportLost(count: number, reason: string, error?: unknown) {
    local.lost += count;
    losses.report(count, reason, error);
  }

  worker.on("message", (message: FromWorker) => {
    if (message.type === "log") {
      logger?.[message.level](message.object, message.message);
      return;
    }
    confirmed = message.stats;
    if (message.type === "stats") {
      handedBytes -= message.bytes;
      keepSpare(message.spare);
      return;
    }
    waiting.get(message.id)?.();
    waiting.delete(message.id);
  });
  worker.on("error", (error) => {
    failure = error;
    logger?.error(
      { instance, err: error },
      "audit worker failed: records are counted lost from now on",
    );
  });
  worker.on("exit", () => {
    failure ??= new Error("the audit worker exited");
    // What was handed over and not confirmed went with the worker (none after a close).
    const gone = unconfirmed();
    handed -= gone;
    if (gone > 0) reportLost(gone, "audit records not confirmed written went with the worker");
    for (const resolve of waiting.values()) resolve();
    waiting.clear();
    handedBytes = 0;
  });
  // Only now: adding the message listener would have kept the process alive again.
  worker.unref();

  /** Writes the entries held into frames and hands them to the worker. */
  function handOver() {
    clearTimeout(timer);
    timer = undefined;
    const entries = held;
    held = [];
    heldBytes = 0;
    if (failure) {
      // The failure was reported once; each loss is counted.
      local.lost += entries.length;
      return;
    }
    for (const { values, request, response } of entries) {
      try {
        queue(JSON.stringify(values), request, response);
      } catch (error) {
        // A value JSON cannot hold (a BigInt, a cycle), or a frame too large to buffer: lost,
        // said so.
        reportLost(1, "audit record lost: it could not be handed to the worker", error);
      }
    }
    post();
  }

  /** Hands the frames in the buffer to the worker (transferred, not copied). */
  function post() {
    if (pending === 0) return;
    const count = pending;
    pending = 0;
    const records = buffer.subarray(0, used);
    const bytes = used;
    buffer = emptyBuffer();
    used = 0;
    try {
      worker.postMessage({ type: "append", records } satisfies ToWorker, [records.buffer]);
    } catch (error) {
      reportLost(count, "audit records lost: the worker could not take them", error);
      return;
    }
    handed += count;
    // Not records.byteLength: the transfer has emptied it.
    handedBytes += bytes;
  }

  /** Adds the entry's frame to the buffer, posting the buffer first when it is full. */
  function queue(json: string, request: FrameBody, response: FrameBody) {
    // Counted exactly (a scan of the text) only when the most it may take does not fit.
    if (used + frameBytes(json, request, response) > buffer.length) {
      const bytes = frameBytes(json, request, response, true);
      if (used + bytes > buffer.length) post();
      if (bytes > buffer.length) {
        keepSpare(buffer.buffer);
        buffer = new Uint8Array(bytes);
      }
    }
    used = writeFrame(buffer, used, json, request, response);
    pending += 1;
  }

  /** Holds the entry for the next hand-over, its bodies hashed here when too much waits already. */
  function hold(entry: AuditEntry, bodies: AuditBodies | undefined) {
    const values = entryValues(entry);
    checkBodies(bodies);
    const { request, response } = bodies ?? {};
    const bodyBytes = maxBytesOf(request) + maxBytesOf(response);
    if (handedBytes + heldBytes + bodyBytes > handedLimit) {
      held.push({ values: withDigests(values, bodies), request: undefined, response: undefined });
    } else {
      held.push({ values, request, response });
      heldBytes += bodyBytes;
    }
  }

  function ask(type: "flush" | "close"): Promise<void> {
    handOver();
    if (failure) return Promise.resolve();
    const id = nextId++;
    worker.ref();
    return new Promise<void>((resolve) => {
      waiting.set(id, resolve);
      worker.postMessage({ type, id } satisfies ToWorker);
    }).finally(() => {
      if (waiting.size === 0 && !closed) worker.unref();
    });
  }

  return {
    instance,
    contentCharsWanted,
    append(entry, bodies) {
      if (closed) {
        reportLost(1, "audit record after close");
        return;
      }
      local.appended += 1;
      if (failure) {
        // Reported once, when the worker failed; each loss is counted.
        local.lost += 1;
        return;
      }
      if (held.length + unconfirmed() >= maxQueued) {
        reportLost(1, "audit record dropped: too many waiting to be written");
        return;
      }
      try {
        hold(entry, bodies);
      } catch (error) {
        // An entry whose fields cannot be read, or a body that is neither text nor bytes:
        // lost, said so.
        reportLost(1, "audit record lost: its entry could not be read", error);
        return;
      }
      if (held.length >= handOverCount) handOver();
      else if (!timer) {
        timer = setTimeout(handOver, handOverDelay);
        timer.unref();
      }
    },
    flush: () => ask("flush"),
    close() {
      closed = true;
      // Held until the worker is gone, so that what follows close runs.
      worker.ref();
      closing ??= ask("close")
        .then(() => exited)
        .finally(() => losses.flush())
        .then(() => undefined);
      return closing;
    },
    // The worker's part as of its last report (after each hand-over).
    stats: () => ({
      appended: local.appended,
      written: confirmed.written,
      lost: local.lost + confirmed.lost,
      queued: held.length + unconfirmed(),
    }),
  };
}
