import type { QuotaPeriod } from "./types.js";

export interface QuotaWindow {
  /** First millisecond of the period, since the epoch. */
  start: number;
  /** First millisecond after the period. */
  end: number;
}

export interface QuotaCalendar {
  periodAt(at: number): QuotaWindow;
}

const periods: readonly QuotaPeriod[] = ["hour", "day", "week", "month"];
const hourMs = 3_600_000;
const dayMs = 86_400_000;

const positiveRemainder = (value: number, divisor: number): number =>
  ((value % divisor) + divisor) % divisor;

/**
 * Periods of `period` in `timeZone`, computed with Intl.DateTimeFormat. Hours are real hours
 * (a repeated wall-clock hour is two periods); days, weeks and months start at local midnight,
 * or where a daylight-saving gap skips midnight, at the first instant of the date.
 */
export function createQuotaCalendar(period: QuotaPeriod, timeZone = "UTC"): QuotaCalendar {
  if (!periods.includes(period)) {
    throw new TypeError(`quota.period must be one of ${periods.join(", ")}, got ${String(period)}`);
  }
  let format: Intl.DateTimeFormat;
  try {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
  } catch {
    throw new TypeError(`quota.timeZone must be an IANA time zone, got ${String(timeZone)}`);
  }

  /** The wall-clock time of `instant` in the zone, as milliseconds since the epoch read as UTC. */
  const wallClock = (instant: number): number => {
    const fields: Partial<Record<Intl.DateTimeFormatPartTypes, number>> = {};
    for (const part of format.formatToParts(instant)) fields[part.type] = Number(part.value);
    const { year = 0, month = 1, day = 1, hour = 0, minute = 0, second = 0 } = fields;
    return Date.UTC(year, month - 1, day, hour, minute, second) + positiveRemainder(instant, 1000);
  };
  const offsetAt = (instant: number): number => wallClock(instant) - instant;

  /** The first instant whose wall-clock time is `wall` (a local midnight) or later. */
  const startOf = (wall: number): number => {
    // Offsets a day either side of the date: the one before and the one after any transition near it.
    const earlier = wall - offsetAt(wall - dayMs);
    const later = wall - offsetAt(wall + dayMs);
    const exact = [earlier, later].filter((instant) => wallClock(instant) === wall);
    if (exact.length > 0) return Math.min(...exact);
    // Midnight falls in a gap: the date starts at the transition, found by bisection.
    let before = Math.min(earlier, later);
    let after = Math.max(earlier, later);
    while (after - before > 1) {
      const middle = Math.floor((before + after) / 2);
      if (wallClock(middle) >= wall) after = middle;
      else before = middle;
    }
    return after;
  };

  const compute = (at: number): QuotaWindow => {
    const wall = wallClock(at);
    if (period === "hour") {
      const start = at - positiveRemainder(wall, hourMs);
      return { start, end: start + hourMs };
    }
    const date = new Date(wall);
    const year = date.getUTCFullYear();
    const month = date.getUTCMonth();
    const day = date.getUTCDate();
    if (period === "month") {
      return {
        start: startOf(Date.UTC(year, month, 1)),
        end: startOf(Date.UTC(year, month + 1, 1)),
      };
    }
    const first = period === "week" ? day - positiveRemainder(date.getUTCDay() - 1, 7) : day;
    const length = period === "week" ? 7 : 1;
    return {
      start: startOf(Date.UTC(year, month, first)),
      end: startOf(Date.UTC(year, month, first + length)),
    };
  };

  let cached: QuotaWindow | undefined;
  return {
    periodAt(at) {
      if (cached === undefined || at < cached.start || at >= cached.end) cached = compute(at);
      return cached;
    },
  };
}

/** The period of `period` in `timeZone` (default UTC) that contains the instant `at` (ms since the epoch). */
export function quotaPeriodAt(at: number, period: QuotaPeriod, timeZone = "UTC"): QuotaWindow {
  return createQuotaCalendar(period, timeZone).periodAt(at);
}
