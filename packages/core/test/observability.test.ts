import { spawnSync } from "node:child_process";
import { createMetrics } from "@aigw/metrics";
import { createOpenAICompatible } from "@aigw/provider";
import {
  collectLines,
  type MockUpstream,
  readSse,
  startMockUpstream,
  waitFor,
} from "@aigw/testing";
import { trace } from "@opentelemetry/api";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { GatewayMetrics, GatewayOptions } from "../src/index.js";
import { type RunningGateway, startGateway } from "./start-gateway.js";

const upstreamKey = "sk-upstream-observed-5f1e";
let upstream: MockUpstream;
let running: RunningGateway | undefined;

beforeAll(async () => {
  upstream = await startMockUpstream({ apiKey: upstreamKey });
});
afterAll(() => upstream?.close());
afterEach(async () => {
  await running?.close();
  running = undefined;
  upstream.reset();
});

function gatewayOptions(extra: Partial<GatewayOptions> = {}): GatewayOptions {
  return {
    providers: {
      mock: createOpenAICompatible({
        baseURL: upstream.baseURL,
        apiKey: upstreamKey,
        retry: { initialBackoff: 10 },
      }),
    },
    models: { "gpt-4o-mini": { provider: "mock" }, "gpt-*": { provider: "mock" } },
    ...extra,
  };
}

/** One sample of the text exposition, by metric name and exact labels. */
function sample(exposition: string, name: string, labels: Record<string, string> = {}) {
  for (const line of exposition.split("\n")) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries(
      [...(match[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map(([, key, value]) => [key, value]),
    );
    const wanted = Object.entries(labels);
    if (wanted.length === Object.keys(found).length && wanted.every(([k, v]) => found[k] === v)) {
      return Number(match[3]);
    }
  }
  return undefined;
}

function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${running?.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

describe("metrics move with real traffic", () => {
  it("counts chat, streamed chat, embeddings and failures with bounded labels", async () => {
    const metrics = createMetrics();
    running = await startGateway(gatewayOptions({ metrics }));
    const { client } = running;

    const chat = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "count me" }],
    });
    const stream = await client.chat.completions.create({
      model: "gpt-4.1-nano",
      messages: [{ role: "user", content: "stream me please" }],
      stream: true,
    });
    for await (const _chunk of stream) {
      // drain
    }
    const embedding = await client.embeddings.create({ model: "gpt-embed", input: "vector" });
    await client.chat.completions
      .create({ model: "claude-3", messages: [{ role: "user", content: "x" }] })
      .catch(() => undefined);
    upstream.enqueue({ kind: "status", status: 500 });
    await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "retry me" }],
    });
    upstream.enqueue({ kind: "status", status: 400 });
    await client.chat.completions
      .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "bad" }] })
      .catch(() => undefined);

    const text = await metrics.expose();
    const chatLabels = { method: "POST", endpoint: "chat/completions" };
    expect(
      sample(text, "aigw_requests_total", { ...chatLabels, status: "200", model: "gpt-4o-mini" }),
    ).toBe(2);
    expect(
      sample(text, "aigw_requests_total", { ...chatLabels, status: "200", model: "gpt-4.1-nano" }),
    ).toBe(1);
    expect(
      sample(text, "aigw_requests_total", { ...chatLabels, status: "404", model: "none" }),
    ).toBe(1);
    expect(
      sample(text, "aigw_requests_total", { ...chatLabels, status: "400", model: "gpt-4o-mini" }),
    ).toBe(1);
    expect(
      sample(text, "aigw_requests_total", {
        method: "POST",
        endpoint: "embeddings",
        status: "200",
        model: "gpt-embed",
      }),
    ).toBe(1);
    expect(
      sample(text, "aigw_errors_total", {
        ...chatLabels,
        error_type: "invalid_request_error",
        model: "none",
      }),
    ).toBe(1);
    expect(
      sample(text, "aigw_errors_total", {
        ...chatLabels,
        error_type: "invalid_request_error",
        model: "gpt-4o-mini",
      }),
    ).toBe(1);
    expect(
      sample(text, "aigw_request_duration_seconds_count", { ...chatLabels, model: "gpt-4o-mini" }),
    ).toBe(3);
    expect(sample(text, "aigw_active_requests")).toBe(0);

    // Tokens: what the upstream reported, per requested model (a wildcard route's too).
    expect(
      sample(text, "aigw_tokens_used_total", { model: "gpt-4o-mini", type: "input" }),
    ).toBeGreaterThanOrEqual(chat.usage?.prompt_tokens ?? Number.NaN);
    expect(sample(text, "aigw_tokens_used_total", { model: "gpt-embed", type: "input" })).toBe(
      embedding.usage.prompt_tokens,
    );
    expect(
      sample(text, "aigw_gen_ai_client_token_usage_count", {
        gen_ai_request_model: "gpt-4o-mini",
        gen_ai_token_type: "output",
      }),
    ).toBe(2);

    // Attempts: the 500 was retried.
    expect(sample(text, "aigw_provider_requests_total", { provider: "mock", status: "500" })).toBe(
      1,
    );
    expect(sample(text, "aigw_provider_requests_total", { provider: "mock", status: "400" })).toBe(
      1,
    );
    expect(sample(text, "aigw_provider_requests_total", { provider: "mock", status: "200" })).toBe(
      4,
    );
    expect(sample(text, "aigw_provider_retries_total", { provider: "mock" })).toBe(1);
    expect(sample(text, "aigw_provider_request_duration_seconds_count", { provider: "mock" })).toBe(
      6,
    );

    // The stream's time to first token, and the gateway's own overhead.
    expect(
      sample(text, "aigw_gen_ai_server_time_to_first_token_seconds_count", {
        gen_ai_request_model: "gpt-4.1-nano",
      }),
    ).toBe(1);
    expect(
      sample(text, "aigw_gateway_overhead_seconds_count", { endpoint: "chat/completions" }),
    ).toBe(4);
  });

  it("serves GET /metrics when metrics are on, 404 when not", async () => {
    const metrics = createMetrics();
    running = await startGateway(gatewayOptions({ metrics }));
    await post("/v1/chat/completions", {
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "x" }],
    });
    const response = await fetch(`${running.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/plain");
    const text = await response.text();
    expect(text).toContain("aigw_requests_total");
    expect(text).not.toContain(upstreamKey);

    await running.close();
    running = await startGateway(gatewayOptions());
    expect((await fetch(`${running.url}/metrics`)).status).toBe(404);
  });

  const promtool = spawnSync("promtool", ["--version"]).status === 0;
  it.skipIf(!promtool && !process.env.REQUIRE_PROMTOOL)(
    "the exposition after real traffic passes promtool check metrics",
    async () => {
      const metrics = createMetrics({ collectDefaultMetrics: false });
      running = await startGateway(gatewayOptions({ metrics }));
      await post("/v1/chat/completions", {
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "x" }],
      });
      await post("/v1/embeddings", { model: "gpt-e", input: "y" });
      const text = await (await fetch(`${running.url}/metrics`)).text();
      const check = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
      expect(`${check.stdout}${check.stderr}`.trim()).toBe("");
      expect(check.status).toBe(0);
    },
  );

  it("createMetrics() of @aigw/metrics is what the gateway takes", () => {
    const metrics: GatewayMetrics = createMetrics();
    expect(metrics.contentType).toContain("text/plain");
  });
});

describe("trace context, end to end", () => {
  const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
  const parentSpanId = "00f067aa0ba902b7";

  it("continues a valid traceparent: the upstream gets the same trace and the gateway's span", async () => {
    running = await startGateway(gatewayOptions());
    const response = await post(
      "/v1/chat/completions",
      { model: "gpt-4o-mini", messages: [{ role: "user", content: "trace me" }] },
      { traceparent: `00-${traceId}-${parentSpanId}-01`, "x-request-id": "req-from-client-1" },
    );
    expect(response.headers.get("x-trace-id")).toBe(traceId);
    expect(response.headers.get("x-request-id")).toBe("req-from-client-1");
    const sent = upstream.requests[0]?.headers ?? {};
    const [version, sentTrace, sentSpan, flags] = (sent.traceparent ?? "").split("-");
    expect([version, sentTrace, flags]).toEqual(["00", traceId, "01"]);
    expect(sentSpan).toMatch(/^[0-9a-f]{16}$/);
    expect(sentSpan).not.toBe(parentSpanId);
    expect(sent["x-request-id"]).toBe("req-from-client-1");
  });

  it("replaces an invalid traceparent, and falls back to X-Trace-Id", async () => {
    running = await startGateway(gatewayOptions());
    const invalid = await post(
      "/v1/chat/completions",
      { model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }] },
      { traceparent: `00-${"0".repeat(32)}-${parentSpanId}-01` },
    );
    const newTrace = invalid.headers.get("x-trace-id");
    expect(newTrace).toMatch(/^[0-9a-f]{32}$/);
    expect(newTrace).not.toBe("0".repeat(32));
    expect(upstream.requests[0]?.headers.traceparent).toContain(newTrace);

    const viaHeader = await post(
      "/v1/chat/completions",
      { model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }] },
      { "x-trace-id": traceId.toUpperCase() },
    );
    expect(viaHeader.headers.get("x-trace-id")).toBe(traceId);
    expect(upstream.requests[1]?.headers.traceparent?.split("-")[1]).toBe(traceId);
  });

  it("records a server span and a client span per attempt with GenAI attributes, when OpenTelemetry is set up", async () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    trace.setGlobalTracerProvider(provider);
    try {
      running = await startGateway(gatewayOptions());
      upstream.enqueue({ kind: "status", status: 503 });
      await post(
        "/v1/chat/completions",
        { model: "gpt-4o-mini", messages: [{ role: "user", content: "span me" }] },
        { traceparent: `00-${traceId}-${parentSpanId}-01` },
      );
      const streamed = await post("/v1/chat/completions", {
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "stream span" }],
        stream: true,
      });
      for await (const _event of readSse(streamed)) {
        // drain
      }
      const spans = await waitFor(() =>
        exporter.getFinishedSpans().length >= 5 ? exporter.getFinishedSpans() : false,
      );
      const first = spans.filter((span) => span.spanContext().traceId === traceId);
      const server = first.find((span) => span.kind === 1);
      const clients = first.filter((span) => span.kind === 2);
      expect(server?.parentSpanContext?.spanId).toBe(parentSpanId);
      expect(clients).toHaveLength(2);
      expect(clients.map((span) => span.attributes["http.response.status_code"])).toEqual([
        503, 200,
      ]);
      for (const client of clients) {
        expect(client.parentSpanContext?.spanId).toBe(server?.spanContext().spanId);
        expect(client.attributes).toMatchObject({
          "gen_ai.operation.name": "chat",
          "gen_ai.provider.name": "openai",
          "gen_ai.request.model": "gpt-4o-mini",
        });
      }
      expect(server?.attributes).toMatchObject({
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": expect.any(Number),
        "gen_ai.usage.output_tokens": expect.any(Number),
      });
      // The upstream saw the client span of the attempt that succeeded.
      const sentSpan = upstream.requests[1]?.headers.traceparent?.split("-")[2];
      expect(sentSpan).toBe(clients[1]?.spanContext().spanId);

      const streamSpans = spans.filter((span) => span.spanContext().traceId !== traceId);
      const streamServer = streamSpans.find((span) => span.kind === 1);
      expect(streamServer?.attributes["gen_ai.usage.output_tokens"]).toBeGreaterThan(0);
    } finally {
      trace.disable();
      await provider.shutdown();
    }
  });

  it("records nothing when no tracer provider is registered", async () => {
    const exporter = new InMemorySpanExporter();
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }); // not registered
    running = await startGateway(gatewayOptions());
    const response = await post("/v1/chat/completions", {
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "x" }],
    });
    expect(response.status).toBe(200);
    expect(exporter.getFinishedSpans()).toHaveLength(0);
  });
});

describe("access logs", () => {
  function capture() {
    const lines: Record<string, unknown>[] = [];
    const raw: string[] = [];
    const logger = pino(
      { level: "info" },
      collectLines((line) => {
        raw.push(line);
        lines.push(JSON.parse(line));
      }),
    );
    return { logger, lines, raw };
  }

  it("writes one line per request with ids, model, provider, tokens and timings", async () => {
    const { logger, lines } = capture();
    running = await startGateway(gatewayOptions({ logger }));
    const response = await post("/v1/chat/completions", {
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "log me" }],
      stream: true,
    });
    for await (const _event of readSse(response)) {
      // drain
    }
    await post("/v1/chat/completions", { model: "nope", messages: [] });
    await waitFor(() => lines.length >= 2);
    const [stream, failure] = lines;
    expect(stream).toMatchObject({
      level: 30,
      requestId: response.headers.get("x-request-id"),
      traceId: response.headers.get("x-trace-id"),
      spanId: expect.stringMatching(/^[0-9a-f]{16}$/),
      method: "POST",
      path: "/v1/chat/completions",
      status: 200,
      model: "gpt-4o-mini",
      provider: "mock",
      attempts: 1,
      stream: true,
      inputTokens: expect.any(Number),
      outputTokens: expect.any(Number),
      durationMs: expect.any(Number),
      ttftMs: expect.any(Number),
      tenant: "anonymous",
    });
    expect(failure).toMatchObject({ level: 40, status: 404, errorType: "invalid_request_error" });
  });

  it("never logs keys, authorization headers, prompts or completions", async () => {
    const { logger, raw } = capture();
    running = await startGateway(gatewayOptions({ logger }));
    const prompt = "my secret prompt about project nightingale";
    const clientKey = "sk-client-gateway-key-77aa";
    await post(
      "/v1/chat/completions",
      { model: "gpt-4o-mini", messages: [{ role: "user", content: prompt }] },
      { authorization: `Bearer ${clientKey}`, "x-api-key": clientKey },
    );
    upstream.enqueue({ kind: "status", status: 401 });
    await post("/v1/chat/completions", {
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: prompt }],
    });
    upstream.enqueue({ kind: "status", status: 500, body: `crash while holding ${upstreamKey}` });
    await post("/v1/chat/completions", {
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: prompt }],
    });
    await waitFor(() => raw.length >= 3);
    const everything = raw.join("");
    for (const secret of [prompt, "nightingale", clientKey, upstreamKey, "mock: my secret"]) {
      expect(everything).not.toContain(secret);
    }
  });
});

describe("AsyncLocalStorage, opt-in", () => {
  it("is off by default, and when on, hooks anywhere in the call tree see the request context", async () => {
    const seen: (string | undefined)[] = [];
    let gatewayRef: RunningGateway["gateway"] | undefined;
    const lookup = async () => {
      await Promise.resolve();
      return gatewayRef?.currentContext()?.requestId;
    };
    running = await startGateway(
      gatewayOptions({
        asyncContext: true,
        hooks: [
          {
            async beforeRequest() {
              seen.push(await lookup());
            },
            onChunk(event) {
              seen.push(gatewayRef?.currentContext()?.requestId);
              return event;
            },
          },
        ],
      }),
    );
    gatewayRef = running.gateway;
    const response = await post(
      "/v1/chat/completions",
      { model: "gpt-4o-mini", messages: [{ role: "user", content: "als" }], stream: true },
      { "x-request-id": "als-request-1" },
    );
    for await (const _event of readSse(response)) {
      // drain
    }
    expect(seen.length).toBeGreaterThan(2);
    expect(new Set(seen)).toEqual(new Set(["als-request-1"]));

    await running.close();
    running = await startGateway(gatewayOptions());
    expect(running.gateway.currentContext()).toBeUndefined();
  });
});
