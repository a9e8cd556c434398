import { createMetrics } from "@aigw/metrics";
import { createOpenAICompatible } from "@aigw/provider";
import { collectLines, type MockUpstream, startMockUpstream, waitFor } from "@aigw/testing";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type RunningGateway, startGateway } from "./start-gateway.js";

let upstream: MockUpstream;
let running: RunningGateway | undefined;

beforeAll(async () => {
  upstream = await startMockUpstream();
});
afterAll(() => upstream?.close());
afterEach(async () => {
  await running?.close();
  running = undefined;
  upstream.reset();
});

function chat(gateway: RunningGateway, stream: boolean) {
  return fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: "gpt-x",
      stream,
      messages: [{ role: "user", content: "one two three four five six" }],
    }),
  });
}

describe("connections to an upstream", () => {
  it("are not capped by default: 300 requests at once all reach the upstream together", async () => {
    running = await startGateway({
      providers: { mock: createOpenAICompatible({ baseURL: upstream.baseURL }) },
      models: { "gpt-*": { provider: "mock" } },
    });
    const gateway = running;
    // Answers that never come hold every connection: 128 would be the old cap.
    upstream.enqueue(...Array.from({ length: 300 }, () => ({ kind: "stall" as const })));
    const controller = new AbortController();
    const requests = Array.from({ length: 300 }, () =>
      fetch(`${gateway.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-x", stream: true, messages: [] }),
        signal: controller.signal,
      }).catch(() => undefined),
    );
    try {
      await upstream.waitForRequests(300, 10_000);
    } finally {
      controller.abort();
      await Promise.all(requests);
    }
  });

  it("with a cap, a request waits for a connection: the wait shows in the log and metrics, and counts against its timeout", async () => {
    const lines: string[] = [];
    const metrics = createMetrics();
    running = await startGateway({
      providers: {
        mock: createOpenAICompatible({
          baseURL: upstream.baseURL,
          pool: { connections: 1 },
          timeout: 2_500,
          retry: { maxRetries: 0 },
        }),
      },
      models: { "gpt-*": { provider: "mock" } },
      logger: pino(collectLines((line) => lines.push(line))),
      metrics,
    });
    const gateway = running;
    upstream.enqueue(
      { kind: "slowHeaders", delayMs: 1_000 },
      { kind: "slowHeaders", delayMs: 2_000 },
    );
    const first = chat(gateway, false);
    await upstream.waitForRequests(1);
    const sentAt = performance.now();
    const second = chat(gateway, false);
    const waiting = await waitFor(async () => {
      const text = await metrics.expose();
      return /aigw_provider_waiting_requests\{provider="mock"\} 1/.test(text) ? text : undefined;
    });
    expect(waiting).toBeTruthy();
    expect((await first).status).toBe(200);
    const late = await second;
    // It waited about a second for the connection, and the upstream would take two more: past
    // the attempt's 2.5 s, counted from the request's start, not from when it got a connection.
    expect(late.status).toBe(504);
    expect(performance.now() - sentAt).toBeLessThan(2_900);
    const logged = await waitFor(() =>
      lines.map((line) => JSON.parse(line)).find((line) => line.status === 504),
    );
    expect(logged.waitMs).toBeGreaterThan(500);
    const text = await metrics.expose();
    expect(text).toMatch(/aigw_provider_connection_wait_seconds_count\{provider="mock"\} [12]/);
  });

  it("with a cap, a request that never gets a connection ends at its timeout with a 504", async () => {
    running = await startGateway({
      providers: {
        mock: createOpenAICompatible({
          baseURL: upstream.baseURL,
          pool: { connections: 1 },
          timeout: 1_000,
          retry: { maxRetries: 0 },
        }),
      },
      models: { "gpt-*": { provider: "mock" } },
    });
    const gateway = running;
    upstream.enqueue({ kind: "stallStream", afterEvents: 2 });
    const holder = await chat(gateway, true);
    expect(holder.status).toBe(200);
    const started = performance.now();
    const starved = await chat(gateway, false);
    expect(starved.status).toBe(504);
    expect(((await starved.json()) as { error: { message: string } }).error.message).toMatch(
      /No connection to the upstream was free in time/,
    );
    expect(performance.now() - started).toBeLessThan(2_500);
    await holder.body?.cancel();
  });
});
