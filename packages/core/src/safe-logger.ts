import type { Logger } from "./types.js";

/**
 * `logger` behind calls that never throw: a line it cannot take is lost, nothing else. The
 * gateway logs where a throw would do harm (a stream's timers, a response's end, the catch of
 * a failing hook), so a failing logger costs lines, never requests.
 */
export function neverThrowing(logger: Logger): Logger {
  const guarded =
    (level: keyof Logger) =>
    (...line: Parameters<Logger["info"]>) => {
      try {
        logger[level](...line);
      } catch {}
    };
  return { info: guarded("info"), warn: guarded("warn"), error: guarded("error") };
}
