import type { AuditLogger } from "./log.js";

/** How long the records lost after a reported one are held, to be reported together. */
const quietMs = 1000;

/**
 * @internal Writes losses of records to `logger.error`, at most one line a second per reason:
 * the first loss at once, those that follow within the second as one line with their count
 * (`lost`), so that an overloaded log does not flood its logger. `flush` writes what it holds.
 * `fields` gives a line's fields for a count (instance, totals).
 */
export function createLossReporter(
  logger: AuditLogger | undefined,
  fields: (lost: number) => object,
): { report(count: number, reason: string, error?: unknown): void; flush(): void } {
  const held = new Map<string, { count: number; error: unknown }>();
  let timer: NodeJS.Timeout | undefined;
  const write = (count: number, reason: string, error: unknown) =>
    logger?.error({ ...fields(count), err: error }, reason);
  function flush() {
    clearTimeout(timer);
    timer = undefined;
    if (held.size === 0) return;
    for (const [reason, { count, error }] of held) write(count, reason, error);
    held.clear();
    // What follows within the next second is held again.
    timer = setTimeout(flush, quietMs).unref();
  }
  return {
    report(count, reason, error) {
      if (!timer) {
        write(count, reason, error);
        timer = setTimeout(flush, quietMs).unref();
        return;
      }
      const same = held.get(reason);
      if (same) same.count += count;
      else held.set(reason, { count, error });
    },
    flush,
  };
}
