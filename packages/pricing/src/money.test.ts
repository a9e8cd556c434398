import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatUsd, usdToNano } from "./money.js";

/** A decimal USD string back to nano-USD, with integers only. */
function parseUsd(text: string): bigint {
  const negative = text.startsWith("-");
  const [whole = "", fraction = ""] = text.replace(/^-/, "").split(".");
  const nano = BigInt(whole) * 1_000_000_000n + BigInt(fraction.padEnd(9, "0"));
  return negative ? -nano : nano;
}

describe("formatUsd", () => {
  it("writes nano-USD as an exact decimal number of USD", () => {
    expect(formatUsd(123_456)).toBe("0.000123456");
    expect(formatUsd(1_500_000_000)).toBe("1.5");
    expect(formatUsd(0)).toBe("0");
    expect(formatUsd(-0)).toBe("0");
    expect(formatUsd(1)).toBe("0.000000001");
    expect(formatUsd(-1)).toBe("-0.000000001");
    expect(formatUsd(42_000_000_000)).toBe("42");
    expect(formatUsd(Number.MAX_SAFE_INTEGER)).toBe("9007199.254740991");
  });

  it("refuses what is not a safe integer", () => {
    for (const value of [0.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, "1" as never]) {
      expect(() => formatUsd(value)).toThrow(TypeError);
    }
  });

  it("is read back exactly (property)", () => {
    fc.assert(
      fc.property(fc.maxSafeInteger(), (nano) => {
        expect(parseUsd(formatUsd(nano))).toBe(BigInt(nano));
      }),
    );
  });
});

describe("usdToNano", () => {
  it("converts amounts of up to 9 decimals exactly", () => {
    expect(usdToNano(1.5)).toBe(1_500_000_000);
    expect(usdToNano(0.000123456)).toBe(123_456);
    expect(usdToNano(0.1)).toBe(100_000_000);
    expect(usdToNano(1e-9)).toBe(1);
    expect(usdToNano(5e-7)).toBe(500);
    expect(usdToNano(1.5e-7)).toBe(150);
    expect(usdToNano(0)).toBe(0);
    expect(usdToNano(-0)).toBe(0);
    expect(usdToNano(1000)).toBe(1e12);
    expect(usdToNano(999999.999999999)).toBe(999_999_999_999_999);
    expect(usdToNano(9007199.25474099)).toBe(9_007_199_254_740_990);
  });

  it("refuses negative, non-finite, too precise and too large amounts", () => {
    expect(() => usdToNano(-1)).toThrow(/not -1/);
    expect(() => usdToNano(Number.NaN)).toThrow(TypeError);
    expect(() => usdToNano(Number.POSITIVE_INFINITY)).toThrow(TypeError);
    expect(() => usdToNano(1e-10)).toThrow(/at most 9 decimals/);
    expect(() => usdToNano(0.1 + 0.2)).toThrow(/at most 9 decimals/);
    expect(() => usdToNano(1e7)).toThrow(/MAX_SAFE_INTEGER/);
    expect(() => usdToNano(1e21)).toThrow(/MAX_SAFE_INTEGER/);
    expect(() => usdToNano("1" as never)).toThrow(TypeError);
  });

  it("reads formatUsd's output back (property)", () => {
    // 15 significant digits always survive a trip through a double
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 999_999_999_999_999 }), (nano) => {
        expect(usdToNano(Number(formatUsd(nano)))).toBe(nano);
      }),
    );
  });
});
