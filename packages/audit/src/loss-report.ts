import type { AuditLogger } from "./log.js";

/** How long the losses after a reported one are held, to be reported together. */
const quietMs = 1000;

/**
 * @internal Writes losses (of records, or of their content) to `logger.error`, at most one line
 * a second per reason: the first at once, those that follow within the second as one line
 * with their count, so that an overloaded log does not flood its logger. `fields` gives a
 * line's fields for a count; `flush` writes what is held at once.
 */
export function createLossReporter(
  logger: AuditLogger | undefined,
  fields: (count: number) => object,
): { report(count: number, reason: string, error?: unknown): void; flush(): void } {
  /** Reasons in their quiet second, with what came since their last line. */
  const held = new Map<string, { count: number; error: unknown; timer: NodeJS.Timeout }>();
  const write = (count: number, reason: string, error: unknown) =>
    logger?.error({ ...fields(count), err: error }, reason);
  const quiet = (reason: string) => setTimeout(() => release(reason), quietMs).unref();
  function release(reason: string) {
    const losses = held.get(reason);
    if (!losses) return;
    if (losses.count === 0) {
      held.delete(reason);
      return;
    }
    write(losses.count, reason, losses.error);
    held.set(reason, { count: 0, error: undefined, timer: quiet(reason) });
  }
  return {
    report(count, reason, error) {
      const losses = held.get(reason);
      if (losses) {
        losses.count += count;
        losses.error ??= error;
        return;
      }
      write(count, reason, error);
      held.set(reason, { count: 0, error: undefined, timer: quiet(reason) });
    },
    flush() {
      for (const [reason, losses] of held) {
        clearTimeout(losses.timer);
        if (losses.count > 0) write(losses.count, reason, losses.error);
      }
      held.clear();
    },
  };
}
