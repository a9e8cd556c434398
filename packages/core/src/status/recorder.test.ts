import { AigwError } from "@aigw/provider";
import { describe, expect, it } from "vitest";
import type { FinishedRequest } from "../types.js";
import { DurationHistogram } from "./histogram.js";
import { createStatusRecorder } from "./recorder.js";

function finished(overrides: Partial<FinishedRequest> = {}): FinishedRequest {
  return {
    requestId: "req-1",
    traceId: "0".repeat(32),
    startedAt: 0,
    durationMs: 100,
    timeToFirstTokenMs: undefined,
    method: "POST",
    path: "/v1/chat/completions",
    endpoint: "chat/completions",
    protocol: "openai",
    tenant: "acme",
    keyId: undefined,
    clientAddress: "127.0.0.1",
    model: "gpt-4o-mini",
    route: "gpt-4o-mini",
    provider: "openai",
    responseModel: "gpt-4o-mini",
    status: 200,
    error: undefined,
    stream: false,
    attempts: [{ target: "openai/gpt-4o-mini", status: 200, durationMs: 90 }],
    usage: { inputTokens: 10, outputTokens: 5, totalTokens: 15, cacheReadTokens: 4 },
    cost: { nanoUsd: 2_000_000, estimated: false },
    cache: "MISS",
    verdicts: [],
    requestSha256: undefined,
    responseSha256: undefined,
    requestBody: undefined,
    responseBody: undefined,
    ...overrides,
  };
}

function clock(start = Date.UTC(2026, 10, 30, 23, 59, 30)) {
  const time = { now: start };
  return { time, now: () => time.now };
}

describe("createStatusRecorder", () => {
  it("counts requests, errors by origin and type, tokens, cache, cost, fallbacks and retries", () => {
    const { now } = clock();
    const status = createStatusRecorder({ now });
    const { onFinish } = status.hooks;
    const context = {} as never;
    onFinish?.(finished(), context);
    onFinish?.(finished({ cache: "HIT", cost: { nanoUsd: 0, estimated: false } }), context);
    onFinish?.(
      finished({
        status: 429,
        error: new AigwError("limit", { status: 429, type: "rate_limit_error" }),
        attempts: [],
        usage: undefined,
        cost: undefined,
      }),
      context,
    );
    onFinish?.(
      finished({
        status: 503,
        error: new AigwError("down", { status: 503, type: "api_error", upstreamStatus: 503 }),
        attempts: [
          { target: "a/x", status: 429, durationMs: 5 },
          { target: "a/x", status: 503, durationMs: 5 },
          { target: "b/x", route: "backup", status: 503, durationMs: 5 },
        ],
        usage: undefined,
        cost: undefined,
      }),
      context,
    );
    onFinish?.(finished({ status: 499, usage: undefined }), context);
    onFinish?.(finished({ endpoint: "health", status: 200 }), context);

    const hour = status.snapshot().last_hour;
    expect(hour).toMatchObject({
      requests: 5,
      errors: 2,
      error_rate: 0.4,
      client_closed: 1,
      errors_by_type: { "gateway rate_limit_error": 1, "upstream api_error": 1 },
      rate_limited: { gateway: 1, upstream: 1 },
      tokens: { input: 20, output: 10, cached: 8 },
      cache: { hits: 1, lookups: 5, hit_ratio: 0.2 },
      fallbacks: 1,
      retries: 1,
      cost_usd: 0.004,
    });
    expect(status.snapshot().last_day.requests).toBe(5);
    // A target's health counts its attempts, those a fallback made good included.
    const targetA = status.snapshot().targets.find((target) => target.name === "a/x");
    expect(targetA?.last_hour).toMatchObject({
      requests: 2,
      errors: 2,
      errors_by_type: { "upstream http_429": 1, "upstream http_503": 1 },
      rate_limited: { gateway: 0, upstream: 1 },
      tokens: { input: 0 },
    });
    const answering = status
      .snapshot()
      .targets.find((target) => target.name === "openai/gpt-4o-mini");
    expect(answering?.last_hour).toMatchObject({ requests: 3, tokens: { input: 20 } });
  });

  it("reads percentiles within the histogram's 12%", () => {
    const histogram = new DurationHistogram();
    for (let ms = 1; ms <= 1000; ms++) histogram.add(ms);
    expect(Math.abs((histogram.quantile(0.5) ?? 0) - 500) / 500).toBeLessThan(0.13);
    expect(Math.abs((histogram.quantile(0.95) ?? 0) - 950) / 950).toBeLessThan(0.13);
    expect(new DurationHistogram().quantile(0.5)).toBeNull();
    histogram.add(3_600_000);
    expect(histogram.total).toBe(1001);
  });

  it("rolls minutes out of the hour, hours out of the day, and keeps spend by UTC day and month", () => {
    const { time, now } = clock();
    const status = createStatusRecorder({ now });
    const context = {} as never;
    status.hooks.onFinish?.(finished(), context); // 2026-11-30, the last minute of the month
    time.now += 60_000; // 2026-12-01
    status.hooks.onFinish?.(finished({ tenant: "beta" }), context);
    let snapshot = status.snapshot();
    expect(snapshot.per_minute).toHaveLength(60);
    expect(snapshot.per_minute.at(-1)?.requests).toBe(1);
    expect(snapshot.per_minute.at(-2)?.requests).toBe(1);
    expect(snapshot.spend).toEqual({ today_usd: 0.002, month_usd: 0.002 });
    const acme = snapshot.tenants.find((tenant) => tenant.name === "acme");
    expect(acme?.spend).toMatchObject({ today_usd: 0, month_usd: 0 });
    expect(acme?.last_hour.requests).toBe(1);

    time.now += 60 * 60_000;
    snapshot = status.snapshot();
    expect(snapshot.last_hour.requests).toBe(0);
    expect(snapshot.last_day.requests).toBe(2);
    time.now += 24 * 60 * 60_000;
    snapshot = status.snapshot();
    expect(snapshot.last_day.requests).toBe(0);
    expect(snapshot.spend).toEqual({ today_usd: 0, month_usd: 0.002 });
    expect(snapshot.per_hour.every((point) => point.requests === 0)).toBe(true);
  });

  it("stays bounded: names beyond maxSeries count as (other), the tail keeps recentRequests", () => {
    const status = createStatusRecorder({ maxSeries: 3, recentRequests: 5 });
    for (let index = 0; index < 1000; index++) {
      status.hooks.onFinish?.(
        finished({ requestId: `req-${index}`, model: `model-${index}`, tenant: `t-${index}` }),
        {} as never,
      );
    }
    const snapshot = status.snapshot();
    expect(snapshot.models.map((model) => model.name).sort()).toEqual([
      "(other)",
      "model-0",
      "model-1",
      "model-2",
    ]);
    expect(snapshot.models.find((model) => model.name === "(other)")?.last_hour.requests).toBe(997);
    expect(snapshot.tenants).toHaveLength(4);
    expect(snapshot.recent.map((request) => request.id)).toEqual([
      "req-999",
      "req-998",
      "req-997",
      "req-996",
      "req-995",
    ]);
    expect(status.recentRequest("req-998")?.attempts).toEqual([
      { target: "openai/gpt-4o-mini", route: null, status: 200, duration_ms: 90 },
    ]);
    expect(status.recentRequest("req-1")).toBeUndefined();
  });

  it("gives an idle, unspent name's place to a new one", () => {
    const { time, now } = clock(Date.UTC(2026, 11, 10, 12));
    const status = createStatusRecorder({ now, maxSeries: 2 });
    const unpriced = { cost: undefined, usage: undefined };
    status.hooks.onFinish?.(finished({ model: "made-up-1", ...unpriced }), {} as never);
    status.hooks.onFinish?.(finished({ model: "gpt-4o" }), {} as never); // spent: kept
    status.hooks.onFinish?.(finished({ model: "made-up-2", ...unpriced }), {} as never);
    status.hooks.onFinish?.(finished({ model: "<b>x</b>", route: undefined }), {} as never);
    expect(
      status
        .snapshot()
        .models.map((model) => model.name)
        .sort(),
    ).toEqual(["(other)", "gpt-4o", "made-up-1"]);
    // A name that keeps coming, counted as "(other)" meanwhile, takes the place of one idle for
    // an hour that used nothing; the one that spent keeps its place.
    for (let step = 0; step < 124; step++) {
      time.now += 30_000;
      status.hooks.onFinish?.(finished({ model: "made-up-3", ...unpriced }), {} as never);
    }
    const names = status.snapshot().models.map((model) => model.name);
    expect(names).toContain("made-up-3");
    expect(names).toContain("gpt-4o");
    expect(names).not.toContain("made-up-1");
  });

  it("counts a model no route matched under (no route)", () => {
    const status = createStatusRecorder();
    status.hooks.onFinish?.(finished({ model: "<b>x</b>", route: undefined }), {} as never);
    expect(status.snapshot().models.map((model) => model.name)).toEqual(["(no route)"]);
  });

  it("reports requests per second over the last ten whole seconds", () => {
    const { time, now } = clock(Date.UTC(2026, 11, 1, 12, 0, 0));
    const status = createStatusRecorder({ now });
    for (let second = 0; second < 10; second++) {
      for (let index = 0; index < 3; index++) status.hooks.onFinish?.(finished(), {} as never);
      time.now += 1000;
    }
    expect(status.snapshot().now).toEqual({ requests_per_second: 3, errors_per_second: 0 });
  });
});
