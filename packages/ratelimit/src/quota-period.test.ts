import { describe, expect, it } from "vitest";
import { type QuotaPeriod, quotaPeriodAt } from "./index.js";
import { createQuotaCalendar } from "./quota-period.js";

const at = (iso: string) => Date.parse(iso);
const window = (start: string, end: string) => ({ start: at(start), end: at(end) });

describe("quotaPeriodAt", () => {
  it.each<[QuotaPeriod, string, { start: number; end: number }]>([
    ["hour", "2024-06-15T10:10:05.123Z", window("2024-06-15T10:00:00Z", "2024-06-15T11:00:00Z")],
    ["day", "2024-06-15T10:10:00Z", window("2024-06-15T00:00:00Z", "2024-06-16T00:00:00Z")],
    ["day", "2024-06-15T00:00:00Z", window("2024-06-15T00:00:00Z", "2024-06-16T00:00:00Z")],
    ["day", "2024-06-15T23:59:59.999Z", window("2024-06-15T00:00:00Z", "2024-06-16T00:00:00Z")],
    // 2024-06-15 is a Saturday; weeks start on Monday.
    ["week", "2024-06-15T10:10:00Z", window("2024-06-10T00:00:00Z", "2024-06-17T00:00:00Z")],
    ["week", "2024-06-17T00:00:00Z", window("2024-06-17T00:00:00Z", "2024-06-24T00:00:00Z")],
    ["week", "2024-12-31T12:00:00Z", window("2024-12-30T00:00:00Z", "2025-01-06T00:00:00Z")],
    ["month", "2024-02-29T23:00:00Z", window("2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z")],
    ["month", "2024-12-31T23:00:00Z", window("2024-12-01T00:00:00Z", "2025-01-01T00:00:00Z")],
  ])("aligns a %s to the UTC calendar at %s", (period, instant, expected) => {
    expect(quotaPeriodAt(at(instant), period)).toEqual(expected);
    expect(quotaPeriodAt(at(instant), period, "UTC")).toEqual(expected);
  });

  it.each<[string, QuotaPeriod, string, { start: number; end: number }]>([
    // 23:59 on 30 June in New York (UTC-4) is still June there.
    [
      "America/New_York",
      "day",
      "2024-07-01T03:59:00Z",
      window("2024-06-30T04:00:00Z", "2024-07-01T04:00:00Z"),
    ],
    [
      "America/New_York",
      "month",
      "2024-07-01T03:59:00Z",
      window("2024-06-01T04:00:00Z", "2024-07-01T04:00:00Z"),
    ],
    // Daylight saving time: a 23-hour day in March and a 25-hour day in November.
    [
      "America/New_York",
      "day",
      "2024-03-10T12:00:00Z",
      window("2024-03-10T05:00:00Z", "2024-03-11T04:00:00Z"),
    ],
    [
      "America/New_York",
      "day",
      "2024-11-03T12:00:00Z",
      window("2024-11-03T04:00:00Z", "2024-11-04T05:00:00Z"),
    ],
    // The repeated hour 01:00-02:00 on 3 November is two real hours.
    [
      "America/New_York",
      "hour",
      "2024-11-03T05:30:00Z",
      window("2024-11-03T05:00:00Z", "2024-11-03T06:00:00Z"),
    ],
    [
      "America/New_York",
      "hour",
      "2024-11-03T06:30:00Z",
      window("2024-11-03T06:00:00Z", "2024-11-03T07:00:00Z"),
    ],
    // A half-hour offset (UTC+5:30) moves hour boundaries to :30 UTC.
    [
      "Asia/Kolkata",
      "hour",
      "2024-06-15T10:10:00Z",
      window("2024-06-15T09:30:00Z", "2024-06-15T10:30:00Z"),
    ],
    [
      "Asia/Kolkata",
      "day",
      "2024-06-15T20:00:00Z",
      window("2024-06-15T18:30:00Z", "2024-06-16T18:30:00Z"),
    ],
    // Santiago skips midnight on 8 September 2024: that day starts at 01:00 local (04:00 UTC).
    [
      "America/Santiago",
      "day",
      "2024-09-08T12:00:00Z",
      window("2024-09-08T04:00:00Z", "2024-09-09T03:00:00Z"),
    ],
    [
      "America/Santiago",
      "day",
      "2024-09-08T03:59:59Z",
      window("2024-09-07T04:00:00Z", "2024-09-08T04:00:00Z"),
    ],
    // ... and repeats 23:00 on 6 April 2024, a 25-hour day.
    [
      "America/Santiago",
      "day",
      "2024-04-06T12:00:00Z",
      window("2024-04-06T03:00:00Z", "2024-04-07T04:00:00Z"),
    ],
    [
      "Europe/Berlin",
      "month",
      "2024-12-31T23:00:00Z",
      window("2024-12-31T23:00:00Z", "2025-01-31T23:00:00Z"),
    ],
    [
      "Europe/Berlin",
      "day",
      "2024-03-31T01:30:00Z",
      window("2024-03-30T23:00:00Z", "2024-03-31T22:00:00Z"),
    ],
    // A week in Auckland across the end of daylight saving time: 169 hours.
    [
      "Pacific/Auckland",
      "week",
      "2024-03-31T12:00:00Z",
      window("2024-03-31T11:00:00Z", "2024-04-07T12:00:00Z"),
    ],
  ])("aligns to %s: a %s at %s", (timeZone, period, instant, expected) => {
    expect(quotaPeriodAt(at(instant), period, timeZone)).toEqual(expected);
  });

  it("tiles time: each period ends where the next starts", () => {
    for (const period of ["hour", "day", "week", "month"] as const) {
      const calendar = createQuotaCalendar(period, "America/Santiago");
      let current = calendar.periodAt(at("2024-03-25T00:00:00Z"));
      while (current.end < at("2024-10-01T00:00:00Z")) {
        const next = calendar.periodAt(current.end);
        expect(next.start).toBe(current.end);
        expect(calendar.periodAt(next.start - 1)).toEqual(current);
        current = next;
      }
    }
  });

  it("rejects an unknown time zone or period", () => {
    expect(() => quotaPeriodAt(0, "day", "Mars/Olympus_Mons")).toThrow(/quota.timeZone/);
    expect(() => quotaPeriodAt(0, "fortnight" as QuotaPeriod)).toThrow(/quota.period/);
  });
});
