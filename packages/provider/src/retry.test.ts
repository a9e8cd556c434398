import { describe, expect, it } from "vitest";
import { AigwError } from "./errors.js";
import {
  backoffDelay,
  DEFAULT_RETRY,
  parseRetryAfter,
  resolveRetryOptions,
  retryDelay,
  sleep,
  withRetry,
} from "./retry.js";

const retryable = (retryAfterMs?: number) =>
  new AigwError("upstream failed", {
    status: 502,
    type: "upstream_error",
    isRetryable: true,
    retryAfterMs,
  });

describe("resolveRetryOptions", () => {
  it("fills in the defaults", () => {
    expect(resolveRetryOptions()).toEqual({
      maxRetries: 3,
      initialBackoff: 100,
      multiplier: 2,
      maxBackoff: 10_000,
      jitter: 0.25,
      retryableStatusCodes: [408, 429, 500, 502, 503, 504],
    });
    expect(resolveRetryOptions({ maxRetries: 0, jitter: 0 })).toMatchObject({
      maxRetries: 0,
      jitter: 0,
      multiplier: 2,
    });
  });

  it.each([
    ["maxRetries", { maxRetries: -1 }],
    ["maxRetries", { maxRetries: 1.5 }],
    ["initialBackoff", { initialBackoff: Number.NaN }],
    ["multiplier", { multiplier: 0.5 }],
    ["maxBackoff", { maxBackoff: -5 }],
    ["jitter", { jitter: 2 }],
    ["retryableStatusCodes", { retryableStatusCodes: [700] }],
  ])("throws a TypeError naming %s", (field, options) => {
    expect(() => resolveRetryOptions(options)).toThrow(TypeError);
    expect(() => resolveRetryOptions(options)).toThrow(`retry.${field}`);
  });
});

describe("backoffDelay", () => {
  const options = resolveRetryOptions();

  it("grows by the multiplier and stops at maxBackoff", () => {
    const noJitter = () => 0;
    expect([1, 2, 3, 4].map((n) => backoffDelay(n, options, noJitter))).toEqual([
      100, 200, 400, 800,
    ]);
    expect(backoffDelay(20, options, noJitter)).toBe(10_000);
  });

  it("takes off at most the jitter fraction", () => {
    expect(backoffDelay(3, options, () => 1)).toBe(300);
    expect(backoffDelay(3, options, () => 0.5)).toBe(350);
    for (let index = 0; index < 200; index++) {
      const delay = backoffDelay(2, options);
      expect(delay).toBeGreaterThan(150);
      expect(delay).toBeLessThanOrEqual(200);
    }
  });
});

describe("parseRetryAfter", () => {
  const now = Date.parse("2025-01-01T00:00:00Z");

  it("prefers retry-after-ms", () => {
    expect(parseRetryAfter({ "retry-after-ms": "1500", "retry-after": "9" }, now)).toBe(1500);
  });

  it("reads retry-after as seconds or as an HTTP date", () => {
    expect(parseRetryAfter({ "retry-after": "2" }, now)).toBe(2000);
    expect(parseRetryAfter({ "retry-after": "0.5" }, now)).toBe(500);
    expect(parseRetryAfter({ "retry-after": "Wed, 01 Jan 2025 00:00:03 GMT" }, now)).toBe(3000);
    expect(parseRetryAfter({ "retry-after": "Tue, 31 Dec 2024 23:00:00 GMT" }, now)).toBe(0);
    expect(parseRetryAfter({ "retry-after": ["4", "5"] }, now)).toBe(4000);
  });

  it("ignores absent and unreadable values", () => {
    expect(parseRetryAfter({}, now)).toBeUndefined();
    expect(parseRetryAfter({ "retry-after": "soon" }, now)).toBeUndefined();
    expect(parseRetryAfter({ "retry-after-ms": "-1", "retry-after": "1" }, now)).toBe(1000);
  });
});

describe("retryDelay", () => {
  const options = resolveRetryOptions({ jitter: 0 });

  it("never retries errors that are not retryable AigwErrors", () => {
    expect(retryDelay(new Error("bug"), 1, options, 60_000)).toBeUndefined();
    const badRequest = new AigwError("bad", { status: 400, type: "invalid_request_error" });
    expect(retryDelay(badRequest, 1, options, 60_000)).toBeUndefined();
  });

  it("backs off when the wait fits in the time left", () => {
    expect(retryDelay(retryable(), 2, options, 60_000)).toBe(200);
    expect(retryDelay(retryable(), 2, options, 200)).toBeUndefined();
  });

  it("waits what the upstream asked for, unless too long or past the deadline", () => {
    expect(retryDelay(retryable(2000), 1, options, 60_000)).toBe(2000);
    expect(retryDelay(retryable(0), 1, options, 60_000)).toBe(0);
    expect(retryDelay(retryable(20_000), 1, options, 60_000)).toBeUndefined();
    expect(retryDelay(retryable(2000), 1, options, 1000)).toBeUndefined();
  });
});

describe("sleep", () => {
  it("waits", async () => {
    const started = Date.now();
    await sleep(30);
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
  });

  it("rejects with the signal's reason the moment it fires", async () => {
    const controller = new AbortController();
    const reason = new Error("client left");
    const started = Date.now();
    const sleeping = sleep(10_000, controller.signal);
    setTimeout(() => controller.abort(reason), 20);
    await expect(sleeping).rejects.toBe(reason);
    expect(Date.now() - started).toBeLessThan(1000);
    await expect(sleep(10, AbortSignal.abort(reason))).rejects.toBe(reason);
  });
});

describe("withRetry", () => {
  const fast = { initialBackoff: 1, maxBackoff: 5 };

  it("retries retryable errors and passes the attempt number", async () => {
    const attempts: number[] = [];
    const result = await withRetry(async (attempt) => {
      attempts.push(attempt);
      if (attempt < 3) throw retryable();
      return "ok";
    }, fast);
    expect(result).toBe("ok");
    expect(attempts).toEqual([1, 2, 3]);
  });

  it("gives up after maxRetries with the last error", async () => {
    let calls = 0;
    const error = retryable();
    await expect(
      withRetry(
        async () => {
          calls++;
          throw error;
        },
        { ...fast, maxRetries: 2 },
      ),
    ).rejects.toBe(error);
    expect(calls).toBe(3);
  });

  it("does not retry other errors", async () => {
    let calls = 0;
    await expect(
      withRetry(async () => {
        calls++;
        throw new TypeError("bug");
      }, fast),
    ).rejects.toThrow("bug");
    expect(calls).toBe(1);
  });

  it("returns at once when the upstream asks for a wait beyond maxBackoff", async () => {
    let calls = 0;
    const started = Date.now();
    await expect(
      withRetry(async () => {
        calls++;
        throw retryable(60_000);
      }),
    ).rejects.toMatchObject({ retryAfterMs: 60_000 });
    expect(calls).toBe(1);
    expect(Date.now() - started).toBeLessThan(500);
  });

  it("stops at the deadline and on abort", async () => {
    let calls = 0;
    await expect(
      withRetry(
        async () => {
          calls++;
          throw retryable();
        },
        { deadlineAt: Date.now() + 50, initialBackoff: 200 },
      ),
    ).rejects.toBeInstanceOf(AigwError);
    expect(calls).toBe(1);

    const controller = new AbortController();
    const reason = new Error("gone");
    const running = withRetry(
      async () => {
        throw retryable();
      },
      { signal: controller.signal, initialBackoff: 5000, maxBackoff: 5000 },
    );
    setTimeout(() => controller.abort(reason), 20);
    await expect(running).rejects.toBe(reason);
  });

  it("keeps DEFAULT_RETRY frozen", () => {
    expect(Object.isFrozen(DEFAULT_RETRY)).toBe(true);
  });
});
