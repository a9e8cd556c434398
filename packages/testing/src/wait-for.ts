import { setTimeout as delay } from "node:timers/promises";

export interface WaitForOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Leads the timeout error, before the last falsy result or thrown error. */
  message?: string;
}

type Truthy<T> = Exclude<T, false | 0 | "" | null | undefined>;

/**
 * Polls `check` until it returns a truthy value, which it resolves with. A check that throws
 * is retried too, so an assertion that returns `true` at its end can be used as the check.
 */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  { timeoutMs = 5000, intervalMs = 20, message }: WaitForOptions = {},
): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let outcome: string;
    try {
      const result = await check();
      if (result) return result as Truthy<T>;
      outcome = `last result: ${String(result)}`;
    } catch (error) {
      outcome = `last error: ${error instanceof Error ? error.message : String(error)}`;
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `${message ?? "waitFor: condition not met"} after ${timeoutMs} ms (${outcome})`,
      );
    }
    await delay(intervalMs);
  }
}
