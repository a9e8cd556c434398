import { createCircuitBreaker } from "@aigw/balancer";
import { createOpenAICompatible } from "@aigw/provider";
import {
  collectLines,
  type MockUpstream,
  readChatStream,
  readSse,
  startMockUpstream,
  waitFor,
} from "@aigw/testing";
import OpenAI from "openai";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { AttemptEvent } from "../src/index.js";
import { type RunningGateway, startGateway } from "./start-gateway.js";

const upstreamKey = "sk-upstream-transport-secret";
let upstream: MockUpstream;
let running: RunningGateway;
const logLines: string[] = [];
const attempts: AttemptEvent[] = [];

beforeAll(async () => {
  upstream = await startMockUpstream({ apiKey: upstreamKey });
  const logger = pino(
    { level: "debug" },
    collectLines((line) => logLines.push(line)),
  );
  running = await startGateway({
    providers: {
      mock: createOpenAICompatible({
        baseURL: upstream.baseURL,
        apiKey: upstreamKey,
        timeout: 20_000,
        readTimeout: 1_000,
        retry: { initialBackoff: 50, maxBackoff: 5_000 },
      }),
      quick: createOpenAICompatible({
        baseURL: upstream.baseURL,
        apiKey: upstreamKey,
        timeout: 1_000,
        retry: { maxRetries: 0 },
      }),
      patient: createOpenAICompatible({ baseURL: upstream.baseURL, apiKey: upstreamKey }),
    },
    models: {
      "gpt-*": { provider: "mock" },
      quick: { provider: "quick" },
      patient: { provider: "patient" },
    },
    hooks: [{ onAttempt: (event) => void attempts.push(event) }],
    // These tests fail one upstream on purpose, many times over: its breaker must not trip.
    routing: {
      breaker: createCircuitBreaker({ consecutiveFailures: 1_000, minimumRequests: 1_000 }),
    },
    keepAliveIntervalMs: 500,
    logger,
  });
});

afterAll(async () => {
  await running?.close();
  await upstream?.close();
});

afterEach(() => {
  upstream.reset();
  attempts.length = 0;
});

const chat = { model: "gpt-x", messages: [{ role: "user" as const, content: "hello" }] };

function post(body: unknown, path = "/v1/chat/completions") {
  return fetch(`${running.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

async function rawText(response: Response) {
  return new TextDecoder().decode(await response.arrayBuffer());
}

describe("retries", () => {
  it("retries a 500 and succeeds on the second attempt", async () => {
    upstream.enqueue({ kind: "status", status: 500 });
    const response = await post(chat);
    expect(response.status).toBe(200);
    expect(response.headers.get("x-aigw-attempts")).toBe("2");
    expect(attempts.map((attempt) => attempt.status)).toEqual([500, 200]);
    expect(attempts.map((attempt) => attempt.attempt)).toEqual([1, 2]);
  });

  it("waits for retry-after: 1 before retrying a 429", async () => {
    upstream.enqueue({ kind: "status", status: 429, headers: { "retry-after": "1" } });
    const started = performance.now();
    const response = await post(chat);
    const elapsed = performance.now() - started;
    expect(response.status).toBe(200);
    expect(elapsed).toBeGreaterThanOrEqual(950);
    expect(elapsed).toBeLessThan(5_000);
  });

  it("returns a 429 at once when retry-after is beyond the backoff cap, with x-should-retry: false", async () => {
    upstream.enqueue({ kind: "status", status: 429, headers: { "retry-after": "3600" } });
    const started = performance.now();
    const error = await running.client.chat.completions.create(chat).catch((caught) => caught);
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect(error.headers.get("x-should-retry")).toBe("false");
    expect(upstream.requests).toHaveLength(1);
  });

  it("passes a 400 through with its message, without retrying", async () => {
    upstream.enqueue({
      kind: "status",
      status: 400,
      body: {
        error: {
          message: "Invalid value for 'temperature'.",
          type: "invalid_request_error",
          param: "temperature",
          code: "invalid_value",
        },
      },
    });
    const response = await post(chat);
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      error: {
        message: "Invalid value for 'temperature'.",
        type: "invalid_request_error",
        param: "temperature",
        code: "invalid_value",
      },
    });
    expect(upstream.requests).toHaveLength(1);
  });

  it("retries a connection reset", async () => {
    upstream.enqueue({ kind: "reset" });
    const response = await post(chat);
    expect(response.status).toBe(200);
    expect(response.headers.get("x-aigw-attempts")).toBe("2");
  });

  it("gives up after maxRetries with 502 and x-should-retry: false", async () => {
    upstream.enqueue(
      ...Array.from({ length: 4 }, () => ({ kind: "status" as const, status: 503 })),
    );
    const response = await post(chat);
    expect(response.status).toBe(502);
    expect(response.headers.get("x-should-retry")).toBe("false");
    expect(response.headers.get("x-aigw-attempts")).toBe("4");
    expect(((await response.json()) as { error: { type: string } }).error.type).toBe(
      "upstream_error",
    );
  });

  it("retries a failure before a stream's first event, then streams (200 only after it)", async () => {
    upstream.enqueue({ kind: "status", status: 502 });
    const response = await post({ ...chat, stream: true });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-aigw-attempts")).toBe("2");
    const events = [];
    for await (const event of readSse(response)) events.push(event.data);
    expect(events.at(-1)).toBe("[DONE]");
  });
});

describe("timeouts and broken upstreams", () => {
  it("504 when the upstream stalls before its headers", async () => {
    upstream.enqueue({ kind: "stall" });
    const response = await post({ ...chat, model: "quick" });
    expect(response.status).toBe(504);
    expect(((await response.json()) as { error: { type: string } }).error.type).toBe("timeout");
  });

  it("a stream that stalls midway ends with the protocol's error event, no [DONE]", async () => {
    upstream.enqueue({ kind: "stallStream", afterEvents: 2 });
    const response = await post({ ...chat, stream: true });
    expect(response.status).toBe(200);
    const data = [];
    for await (const event of readSse(response)) data.push(event.data);
    expect(data).not.toContain("[DONE]");
    expect(JSON.parse(data.at(-1) ?? "{}").error.type).toBe("timeout");
  });

  it("a stream cut midway ends with an error event", async () => {
    upstream.enqueue({ kind: "cutStream", afterEvents: 2 });
    const response = await post({ ...chat, stream: true });
    const data = [];
    for await (const event of readSse(response)) data.push(event.data);
    expect(data).not.toContain("[DONE]");
    expect(JSON.parse(data.at(-1) ?? "{}").error.type).toBe("upstream_error");
  });

  it("a responses stream ends with event: error", async () => {
    upstream.enqueue({ kind: "cutStream", afterEvents: 2 });
    const response = await post({ model: "gpt-x", input: "hi", stream: true }, "/v1/responses");
    const events = [];
    for await (const event of readSse(response)) events.push(event);
    expect(events.at(-1)?.event).toBe("error");
  });

  it("502 with a clear message for malformed JSON", async () => {
    upstream.enqueue({ kind: "malformedJson" });
    const response = await post(chat);
    expect(response.status).toBe(502);
    const body = (await response.json()) as { error: { message: string } };
    expect(body.error.message).toMatch(/JSON/i);
  });

  it("sends : keep-alive comments on an idle stream", async () => {
    upstream.enqueue({ kind: "delayEvents", delayMs: 1_200 });
    const response = await post({
      model: "patient",
      messages: [{ role: "user", content: "a" }],
      stream: true,
    });
    const text = await rawText(response);
    expect(text).toContain(": keep-alive\n\n");
    expect(text.trimEnd().endsWith("data: [DONE]")).toBe(true);
  }, 60_000);
});

describe("streams at scale and secrets", () => {
  it("200 concurrent streams all complete intact", async () => {
    const results = await Promise.all(
      Array.from({ length: 200 }, async (_, index) => {
        const stream = await running.client.chat.completions.create({
          model: "gpt-x",
          messages: [{ role: "user", content: `stream number ${index}` }],
          stream: true,
        });
        return (await readChatStream(stream)).text;
      }),
    );
    results.forEach((text, index) => {
      expect(text).toBe(`mock: stream number ${index}`);
    });
  }, 60_000);

  it("asks for usage it can read, and hides the injected chunk from the client", async () => {
    const response = await post({ ...chat, stream: true });
    const data = [];
    for await (const event of readSse(response)) data.push(event.data);
    expect(upstream.requests[0]?.body).toMatchObject({ stream_options: { include_usage: true } });
    expect(data.some((line) => line.includes('"usage"'))).toBe(false);
    const logged = await waitFor(() =>
      logLines.map((line) => JSON.parse(line)).find((line) => line.stream && line.status === 200),
    );
    expect(logged.inputTokens).toBeGreaterThan(0);
  });

  it("never shows the upstream key in a log line or an error body", async () => {
    upstream.enqueue({
      kind: "status",
      status: 400,
      body: { error: { message: `Bad key ${upstreamKey} used`, type: "invalid_request_error" } },
    });
    const bodies = [await rawText(await post(chat))];
    upstream.enqueue({ kind: "status", status: 401 });
    bodies.push(await rawText(await post(chat)));
    upstream.enqueue({ kind: "status", status: 500, body: `upstream died holding ${upstreamKey}` });
    bodies.push(await rawText(await post({ ...chat, model: "quick" })));
    for (const body of bodies) expect(body).not.toContain(upstreamKey);
    expect(logLines.length).toBeGreaterThan(0);
    for (const line of logLines) expect(line).not.toContain(upstreamKey);
  });
});

describe("client aborts", () => {
  it("an abort before the first event cancels the upstream request at once", async () => {
    upstream.enqueue({ kind: "slowHeaders", delayMs: 10_000 });
    const controller = new AbortController();
    const request = fetch(`${running.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...chat, stream: true }),
      signal: controller.signal,
    }).catch((error: Error) => error.name);
    await upstream.waitForRequests(1);
    controller.abort();
    expect(await request).toBe("AbortError");
    await waitFor(() => upstream.requests[0]?.clientClosed, { timeoutMs: 2_000 });
  });
});
