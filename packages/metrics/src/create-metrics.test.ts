import { spawnSync } from "node:child_process";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { createMetrics, type Metrics } from "./index.js";

async function valuesOf(metrics: Metrics, name: string) {
  const metric = metrics.registry.getSingleMetric(name);
  if (!metric) throw new Error(`metric ${name} is not registered`);
  return (await metric.get()).values;
}

async function seriesValue(
  metrics: Metrics,
  name: string,
  labels: Record<string, string | number>,
) {
  const values = await valuesOf(metrics, name);
  const match = values.find(
    (entry) =>
      Object.keys(entry.labels).length === Object.keys(labels).length &&
      Object.entries(labels).every(([key, value]) => entry.labels[key] === value),
  );
  return match?.value;
}

async function histogramOf(metrics: Metrics, name: string, labels: Record<string, string>) {
  const values = await valuesOf(metrics, name);
  const matches = (entry: (typeof values)[number]) =>
    Object.entries(labels).every(([key, value]) => entry.labels[key] === value);
  const sum = values.find(
    (entry) => (entry as { metricName?: string }).metricName === `${name}_sum` && matches(entry),
  );
  const count = values.find(
    (entry) => (entry as { metricName?: string }).metricName === `${name}_count` && matches(entry),
  );
  return { sum: sum?.value, count: count?.value };
}

const request = { method: "POST", endpoint: "/v1/chat/completions", model: "gpt-4o-mini" };

describe("createMetrics", () => {
  it("sums costs in integer nano-USD and shows dollars without drift; unknown costs are counted apart", async () => {
    const metrics = createMetrics({ tenantLabel: true });
    const finished = {
      ...request,
      route: "gpt-4o-mini",
      status: 200,
      durationSeconds: 0.1,
    };
    // 0.1 + 0.2 in floats is 0.30000000000000004; a million additions of 1e-9 drift further.
    for (let index = 0; index < 1_000_000; index++) {
      metrics.requestFinished({ ...finished, cost: { nanoUsd: 1, tenant: "acme" } });
    }
    metrics.requestFinished({ ...finished, cost: { nanoUsd: 100_000_000, tenant: "acme" } });
    metrics.requestFinished({ ...finished, cost: { nanoUsd: 200_000_000, tenant: "acme" } });
    metrics.requestFinished({
      ...finished,
      cached: true,
      cost: { nanoUsd: 0, savedNanoUsd: 150_000, tenant: "beta" },
    });
    metrics.requestFinished({ ...finished, cost: { nanoUsd: undefined, tenant: "acme" } });
    const text = await metrics.expose();
    expect(text).toContain('aigw_cost_usd_total{model="gpt-4o-mini",tenant="acme"} 0.301\n');
    expect(text).toContain(
      'aigw_cost_saved_usd_total{model="gpt-4o-mini",tenant="beta"} 0.00015\n',
    );
    expect(text).toContain('aigw_cost_unknown_total{model="gpt-4o-mini"} 1\n');
    // Read twice: the totals are set from the sums, not added again.
    expect(await metrics.expose()).toContain(
      'aigw_cost_usd_total{model="gpt-4o-mini",tenant="acme"} 0.301\n',
    );
    metrics.budgetThresholdReached({ scope: "tenant" });
    expect(await metrics.expose()).toContain(
      'aigw_budget_threshold_reached_total{scope="tenant"} 1\n',
    );
  });

  it("registers every metric under the namespace in a private registry", async () => {
    const metrics = createMetrics();
    const names = (await metrics.registry.getMetricsAsJSON()).map((metric) => metric.name).sort();
    expect(names).toEqual(
      [
        "active_requests",
        "budget_threshold_reached_total",
        "cache_hits_total",
        "cache_misses_total",
        "cache_tokens_served_total",
        "circuit_breaker_state",
        "circuit_breaker_trips_total",
        "cost_saved_usd_total",
        "cost_unknown_total",
        "cost_usd_total",
        "errors_total",
        "gateway_overhead_seconds",
        "gen_ai_client_token_usage",
        "gen_ai_server_time_to_first_token_seconds",
        "guardrail_pii_entities_total",
        "guardrail_verdicts_total",
        "provider_connection_wait_seconds",
        "provider_request_duration_seconds",
        "provider_requests_total",
        "provider_retries_total",
        "provider_waiting_requests",
        "rate_limit_exceeded_total",
        "request_duration_seconds",
        "requests_total",
        "route_target_attempts_total",
        "store_errors_total",
        "tokens_used_total",
      ].map((name) => `aigw_${name}`),
    );
    expect(metrics.contentType).toContain("text/plain");
    expect(await metrics.expose()).toContain("# TYPE aigw_requests_total counter");
  });

  it("uses a custom namespace and a given registry", async () => {
    const registry = new Registry();
    const metrics = createMetrics({ namespace: "gateway", registry });
    expect(metrics.registry).toBe(registry);
    expect(registry.getSingleMetric("gateway_requests_total")).toBeDefined();
  });

  it("rejects a namespace that is not a metric name", () => {
    expect(() => createMetrics({ namespace: "my-gateway" })).toThrow(TypeError);
    expect(() => createMetrics({ namespace: "" })).toThrow(/namespace/);
  });

  it("lets two instances live in one process without colliding", async () => {
    const first = createMetrics();
    const second = createMetrics();
    first.cacheLookup({ endpoint: "/v1/embeddings", hit: true });
    expect(await seriesValue(first, "aigw_cache_hits_total", { endpoint: "/v1/embeddings" })).toBe(
      1,
    );
    expect(
      await seriesValue(second, "aigw_cache_hits_total", { endpoint: "/v1/embeddings" }),
    ).toBeUndefined();
  });

  it("tracks active requests", async () => {
    const metrics = createMetrics();
    metrics.requestStarted();
    metrics.requestStarted();
    expect(await seriesValue(metrics, "aigw_active_requests", {})).toBe(2);
    metrics.requestFinished({
      ...request,
      route: request.model,
      status: 200,
      durationSeconds: 0.2,
    });
    expect(await seriesValue(metrics, "aigw_active_requests", {})).toBe(1);
  });

  it("records a finished request with tokens, overhead and time to first token", async () => {
    const metrics = createMetrics();
    metrics.requestStarted();
    metrics.requestFinished({
      ...request,
      route: request.model,
      status: 200,
      durationSeconds: 1.5,
      upstreamSeconds: 1.4,
      timeToFirstTokenSeconds: 0.3,
      inputTokens: 10,
      outputTokens: 32,
    });

    expect(await seriesValue(metrics, "aigw_requests_total", { ...request, status: 200 })).toBe(1);
    const { method, endpoint, model } = request;
    expect(
      await histogramOf(metrics, "aigw_request_duration_seconds", { method, endpoint, model }),
    ).toEqual({ sum: 1.5, count: 1 });
    expect(await seriesValue(metrics, "aigw_tokens_used_total", { model, type: "input" })).toBe(10);
    expect(await seriesValue(metrics, "aigw_tokens_used_total", { model, type: "output" })).toBe(
      32,
    );
    expect(await seriesValue(metrics, "aigw_tokens_used_total", { model, type: "total" })).toBe(42);

    const overhead = await histogramOf(metrics, "aigw_gateway_overhead_seconds", { endpoint });
    expect(overhead.count).toBe(1);
    expect(overhead.sum).toBeCloseTo(0.1, 10);
    expect(
      await histogramOf(metrics, "aigw_gen_ai_server_time_to_first_token_seconds", {
        gen_ai_request_model: model,
      }),
    ).toEqual({ sum: 0.3, count: 1 });
    expect(
      await histogramOf(metrics, "aigw_gen_ai_client_token_usage", {
        gen_ai_request_model: model,
        gen_ai_token_type: "output",
      }),
    ).toEqual({ sum: 32, count: 1 });
    expect(await valuesOf(metrics, "aigw_errors_total")).toEqual([]);
  });

  it("counts every request and attempt once, however often and however it is scraped", async () => {
    const metrics = createMetrics();
    const finish = (inputTokens?: number) => {
      metrics.requestFinished({
        ...request,
        route: request.model,
        status: 200,
        durationSeconds: 0.1,
        inputTokens,
      });
      metrics.attempt({ provider: "openai", status: 200, durationSeconds: 0.1, retry: false });
    };
    const { model } = request;
    finish(5);
    finish();
    expect(await seriesValue(metrics, "aigw_requests_total", { ...request, status: 200 })).toBe(2);
    expect(await seriesValue(metrics, "aigw_tokens_used_total", { model, type: "input" })).toBe(5);
    expect(await seriesValue(metrics, "aigw_tokens_used_total", { model, type: "output" })).toBe(
      undefined,
    );
    finish(7);
    const exposition = await metrics.expose();
    expect(exposition).toContain(
      'aigw_requests_total{method="POST",endpoint="/v1/chat/completions",status="200",model="gpt-4o-mini"} 3',
    );
    expect(exposition).toContain('aigw_tokens_used_total{model="gpt-4o-mini",type="input"} 12');
    expect(exposition).toContain('aigw_tokens_used_total{model="gpt-4o-mini",type="total"} 12');
    expect(exposition).toContain('aigw_provider_requests_total{provider="openai",status="200"} 3');
    expect(await metrics.expose()).toBe(exposition);
    expect(
      await seriesValue(metrics, "aigw_provider_requests_total", {
        provider: "openai",
        status: 200,
      }),
    ).toBe(3);
  });

  it("leaves optional series alone when their fields are missing", async () => {
    const metrics = createMetrics();
    metrics.requestFinished({
      ...request,
      route: request.model,
      status: 200,
      durationSeconds: 0.1,
    });
    for (const name of [
      "aigw_tokens_used_total",
      "aigw_gateway_overhead_seconds",
      "aigw_gen_ai_server_time_to_first_token_seconds",
      "aigw_gen_ai_client_token_usage",
    ]) {
      expect(await valuesOf(metrics, name), name).toEqual([]);
    }
  });

  it("counts an error with its type", async () => {
    const metrics = createMetrics();
    metrics.requestFinished({
      ...request,
      route: request.model,
      status: 502,
      durationSeconds: 3,
      errorType: "upstream_error",
    });
    expect(await seriesValue(metrics, "aigw_requests_total", { ...request, status: 502 })).toBe(1);
    expect(
      await seriesValue(metrics, "aigw_errors_total", { ...request, error_type: "upstream_error" }),
    ).toBe(1);
  });

  it("records upstream attempts, their duration and retries", async () => {
    const metrics = createMetrics();
    metrics.attempt({ provider: "openai", status: 503, durationSeconds: 0.5, retry: false });
    metrics.attempt({ provider: "openai", status: "error", durationSeconds: 0.25, retry: true });
    metrics.attempt({ provider: "openai", status: 200, durationSeconds: 1, retry: true });

    const requests = "aigw_provider_requests_total";
    expect(await seriesValue(metrics, requests, { provider: "openai", status: 503 })).toBe(1);
    expect(await seriesValue(metrics, requests, { provider: "openai", status: "error" })).toBe(1);
    expect(await seriesValue(metrics, requests, { provider: "openai", status: 200 })).toBe(1);
    expect(await seriesValue(metrics, "aigw_provider_retries_total", { provider: "openai" })).toBe(
      2,
    );
    expect(
      await histogramOf(metrics, "aigw_provider_request_duration_seconds", { provider: "openai" }),
    ).toEqual({ sum: 1.75, count: 3 });
  });

  it("counts cache hits and misses per endpoint", async () => {
    const metrics = createMetrics();
    metrics.cacheLookup({ endpoint: "/v1/chat/completions", hit: true });
    metrics.cacheLookup({ endpoint: "/v1/chat/completions", hit: false });
    metrics.cacheLookup({ endpoint: "/v1/chat/completions", hit: false });
    const labels = { endpoint: "/v1/chat/completions" };
    expect(await seriesValue(metrics, "aigw_cache_hits_total", labels)).toBe(1);
    expect(await seriesValue(metrics, "aigw_cache_misses_total", labels)).toBe(2);
  });

  it("labels rate limits by tenant only when enabled", async () => {
    const plain = createMetrics();
    plain.rateLimited({ endpoint: "/v1/embeddings", tenant: "acme" });
    expect(await valuesOf(plain, "aigw_rate_limit_exceeded_total")).toEqual([
      { value: 1, labels: { endpoint: "/v1/embeddings" } },
    ]);

    const perTenant = createMetrics({ tenantLabel: true });
    perTenant.rateLimited({ endpoint: "/v1/embeddings", tenant: "acme" });
    perTenant.rateLimited({ endpoint: "/v1/embeddings" });
    const name = "aigw_rate_limit_exceeded_total";
    expect(await seriesValue(perTenant, name, { endpoint: "/v1/embeddings", tenant: "acme" })).toBe(
      1,
    );
    expect(
      await seriesValue(perTenant, name, { endpoint: "/v1/embeddings", tenant: "anonymous" }),
    ).toBe(1);
  });

  it("counts guardrail verdicts and the PII entities they found", async () => {
    const metrics = createMetrics();
    metrics.guardrailVerdict({
      rule: "pii",
      phase: "input",
      action: "redact",
      matches: 3,
      entities: { EMAIL_ADDRESS: 2, PHONE_NUMBER: 1 },
    });
    metrics.guardrailVerdict({ rule: "words", phase: "output", action: "block", matches: 1 });
    const verdicts = "aigw_guardrail_verdicts_total";
    expect(
      await seriesValue(metrics, verdicts, { rule: "pii", phase: "input", action: "redact" }),
    ).toBe(1);
    expect(
      await seriesValue(metrics, verdicts, { rule: "words", phase: "output", action: "block" }),
    ).toBe(1);
    const entities = "aigw_guardrail_pii_entities_total";
    expect(await seriesValue(metrics, entities, { entity: "EMAIL_ADDRESS", phase: "input" })).toBe(
      2,
    );
    expect(await seriesValue(metrics, entities, { entity: "PHONE_NUMBER", phase: "input" })).toBe(
      1,
    );
  });

  it("counts store errors", async () => {
    const metrics = createMetrics();
    metrics.storeError({ store: "cache" });
    metrics.storeError({ store: "cache" });
    expect(await seriesValue(metrics, "aigw_store_errors_total", { store: "cache" })).toBe(2);
  });

  it("labels the requested model of a wildcard route, bounded, and never a failed junk name", async () => {
    const metrics = createMetrics({ maxModelsPerRoute: 2 });
    const finish = (model: string | undefined, status = 200) =>
      metrics.requestFinished({ ...request, route: "gpt-*", model, status, durationSeconds: 0.1 });
    finish("gpt-4o");
    finish("gpt-4o-mini");
    finish("gpt-junk-1", 404);
    finish("gpt-4.1"); // past the bound
    finish("gpt-4o", 500); // known already: keeps its label
    finish(undefined);
    const labels = (await valuesOf(metrics, "aigw_requests_total")).map(
      (entry) => `${entry.labels.model} ${entry.labels.status} ${entry.value}`,
    );
    expect(labels.sort()).toEqual([
      "gpt-* 200 2",
      "gpt-* 404 1",
      "gpt-4o 200 1",
      "gpt-4o 500 1",
      "gpt-4o-mini 200 1",
    ]);
  });

  it("keeps tokens served from the cache apart from tokens upstreams used", async () => {
    const metrics = createMetrics();
    const finish = (cached: boolean, inputTokens: number, outputTokens: number) =>
      metrics.requestFinished({
        ...request,
        route: request.model,
        status: 200,
        durationSeconds: 0.1,
        inputTokens,
        outputTokens,
        cached,
      });
    finish(false, 10, 20);
    finish(true, 10, 20);
    finish(true, 1, 2);
    const { model } = request;
    expect(await seriesValue(metrics, "aigw_tokens_used_total", { model, type: "total" })).toBe(30);
    expect(
      await seriesValue(metrics, "aigw_cache_tokens_served_total", { model, type: "input" }),
    ).toBe(11);
    expect(
      await seriesValue(metrics, "aigw_cache_tokens_served_total", { model, type: "output" }),
    ).toBe(22);
    expect(
      await seriesValue(metrics, "aigw_cache_tokens_served_total", { model, type: "total" }),
    ).toBe(33);
    const usage = await histogramOf(metrics, "aigw_gen_ai_client_token_usage", {
      gen_ai_request_model: model,
      gen_ai_token_type: "output",
    });
    expect(usage).toEqual({ sum: 20, count: 1 });
  });

  it("collects default process metrics only when asked", async () => {
    expect(await createMetrics().expose()).not.toContain("process_cpu_seconds_total");
    expect(await createMetrics({ collectDefaultMetrics: true }).expose()).toContain(
      "process_cpu_seconds_total",
    );
  });

  const hasPromtool = spawnSync("promtool", ["--version"]).status === 0;
  // .ci/run installs promtool and sets REQUIRE_PROMTOOL, so there the check cannot be skipped.
  it.skipIf(!hasPromtool && !process.env.REQUIRE_PROMTOOL)(
    "exposes text that promtool accepts",
    async () => {
      const metrics = createMetrics({ tenantLabel: true, collectDefaultMetrics: true });
      metrics.requestStarted();
      metrics.requestFinished({
        ...request,
        route: request.model,
        status: 500,
        durationSeconds: 0.7,
        upstreamSeconds: 0.6,
        timeToFirstTokenSeconds: 0.2,
        inputTokens: 5,
        outputTokens: 7,
        errorType: "server_error",
      });
      metrics.attempt({ provider: "openai", status: 500, durationSeconds: 0.6, retry: true });
      metrics.cacheLookup({ endpoint: "/v1/chat/completions", hit: false });
      metrics.rateLimited({ endpoint: "/v1/chat/completions", tenant: "acme" });
      metrics.storeError({ store: "ratelimit" });
      metrics.guardrailVerdict({
        rule: "pii",
        phase: "input",
        action: "block",
        matches: 1,
        entities: { US_SSN: 1 },
      });

      const result = spawnSync("promtool", ["check", "metrics"], {
        input: await metrics.expose(),
        encoding: "utf8",
      });
      expect(result.stdout + result.stderr).toBe("");
      expect(result.status).toBe(0);
    },
  );
});
