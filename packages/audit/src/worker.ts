import { parentPort, workerData } from "node:worker_threads";
import { createFileSink } from "./file.js";
import { readFrames } from "./frames.js";
import { type AuditLogger, createAuditLogTakingValues } from "./log.js";
import type { FromWorker, ThreadedSink, ToWorker, WorkerSettings } from "./threaded.js";
import type { AuditSink } from "./types.js";

// The thread a `createThreadedAuditLog` starts: the log and its sink live here, so hashing
// bodies, sealing (JSON and HMAC) and writing cost the request thread nothing.
if (!parentPort) {
  throw new Error("@aigw/audit/worker runs only as the thread of createThreadedAuditLog");
}
const port = parentPort;
const settings = workerData as WorkerSettings;

/** Log lines go to the thread that owns the logger. */
const logger: AuditLogger = {
  info: (object, message) => report("info", object, message),
  error: (object, message) => report("error", object, message),
};

/**
 * An error as a plain object: a copy between threads keeps only an Error's name, message and
 * stack, and would lose `code`, `errno`, `syscall` and `path`.
 */
function plainError(error: Error): Record<string, unknown> {
  return { ...error, name: error.name, message: error.message, stack: error.stack };
}

function report(level: "info" | "error", object: object, message?: string) {
  const fields = Object.fromEntries(
    Object.entries(object).map(([name, value]) => [
      name,
      value instanceof Error ? plainError(value) : value,
    ]),
  );
  try {
    port.postMessage({ type: "log", level, object: fields, message } satisfies FromWorker);
  } catch {
    port.postMessage({
      type: "log",
      level,
      object: { detail: String(message) },
      message,
    } satisfies FromWorker);
  }
}

async function sinkOf(sink: ThreadedSink): Promise<AuditSink> {
  if ("file" in sink) return createFileSink({ ...sink.file, logger });
  // Not bundled into this file: pg loads only for a PostgreSQL sink.
  const postgresModule = "./postgres.js";
  const { createPostgresSink } = (await import(postgresModule)) as typeof import("./postgres.js");
  return createPostgresSink({ ...sink.postgres, logger });
}

// A bad setting (a short key, say) rejects here and ends the thread with that error.
const ready = sinkOf(settings.sink).then((sink) =>
  createAuditLogTakingValues({ ...settings.log, sink, logger }),
);

port.on("message", async (message: ToWorker) => {
  const { log, appendValues } = await ready;
  if (message.type === "append") {
    const { records } = message;
    readFrames(records, appendValues);
    // Written at once: the hand-overs are the batches. The stats follow the write, so that the
    // caller, which bounds what waits by them (`maxQueued`), sees these records written.
    await log.flush();
    // The buffer goes back with them.
    const spare = records.buffer;
    port.postMessage(
      { type: "stats", stats: log.stats(), spare, bytes: records.byteLength } satisfies FromWorker,
      [spare],
    );
    return;
  }
  await (message.type === "flush" ? log.flush() : log.close());
  port.postMessage({ type: "done", id: message.id, stats: log.stats() } satisfies FromWorker);
  if (message.type === "close") port.close();
});
