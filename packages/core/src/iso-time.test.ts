import { describe, expect, it } from "vitest";
import { isoTime } from "./iso-time.js";

describe("isoTime", () => {
  it("writes what toISOString writes, within a second and across seconds", () => {
    const now = Date.UTC(2026, 11, 1, 10, 0, 59);
    const times = [
      ...[0, 7, 42, 999, 1000, 1001].map((offset) => now + offset),
      now + 7.9,
      now - 1,
      now + 86_400_000,
      0,
      -1,
      -1001.5,
      8.64e15,
      Date.UTC(10_000, 0, 1, 0, 0, 0, 5),
    ];
    for (const time of [...times, ...times.toReversed()]) {
      expect(isoTime(time)).toBe(new Date(time).toISOString());
    }
  });

  it("throws for a time no Date can hold, as toISOString does", () => {
    for (const time of [Number.NaN, 8.64e15 + 1, -8.64e15 - 999, Number.POSITIVE_INFINITY]) {
      expect(() => isoTime(time)).toThrow(RangeError);
    }
  });
});
