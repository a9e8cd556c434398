import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type MockUpstream, startMockUpstream } from "./mock-upstream.js";
import { readSse, type SseEvent } from "./sse.js";
import { waitFor } from "./wait-for.js";

// biome-ignore lint/suspicious/noExplicitAny: the assertions walk the returned JSON freely
async function readJson(response: Response): Promise<any> {
  return response.json();
}

let mock: MockUpstream;

beforeAll(async () => {
  mock = await startMockUpstream();
});
afterEach(() => mock.reset());
afterAll(() => mock.close());

const chatBody = { model: "m", messages: [{ role: "user", content: "one two" }] };

function chat(options: { stream?: boolean; signal?: AbortSignal } = {}) {
  return fetch(`${mock.baseURL}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      ...chatBody,
      stream: options.stream ?? false,
      stream_options: { include_usage: true },
    }),
    signal: options.signal ?? null,
  });
}

/** Reads events until the body ends or fails; `error` is set when it fails. */
async function drain(response: Response, events: SseEvent[] = []) {
  try {
    for await (const event of readSse(response)) events.push(event);
    return { events, error: undefined };
  } catch (error) {
    return { events, error };
  }
}

describe("behaviours", () => {
  it("applies each queued behaviour to one request, in order, and records them", async () => {
    mock.enqueue(
      { kind: "status", status: 429, headers: { "retry-after": "1" } },
      {
        kind: "status",
        status: 503,
        body: "down",
      },
    );
    const first = await chat();
    expect(first.status).toBe(429);
    expect(first.headers.get("retry-after")).toBe("1");
    expect(first.headers.get("x-request-id")).toMatch(/^req_mock_/);
    expect((await readJson(first)).error.code).toBe("rate_limit_exceeded");
    const second = await chat();
    expect(second.status).toBe(503);
    expect(await second.text()).toBe("down");
    expect((await chat()).status).toBe(200);
    expect(mock.requests.map((request) => request.body)).toHaveLength(3);
  });

  it("JSON-encodes object bodies of a status behaviour", async () => {
    mock.enqueue({ kind: "status", status: 500, body: { error: { message: "boom" } } });
    const response = await chat();
    expect(response.status).toBe(500);
    expect(await readJson(response)).toEqual({ error: { message: "boom" } });
  });

  it("resets the connection without a response", async () => {
    mock.enqueue({ kind: "reset" });
    await expect(chat()).rejects.toThrow();
    expect(mock.requests[0]).toMatchObject({ clientClosed: false, finished: false });
  });

  it("stalls until the client gives up, then marks the request clientClosed", async () => {
    mock.enqueue({ kind: "stall" });
    await expect(chat({ signal: AbortSignal.timeout(100) })).rejects.toThrow();
    await waitFor(() => mock.requests[0]?.clientClosed);
    expect(mock.requests[0]?.finished).toBe(false);
  });

  it("delays the headers with slowHeaders", async () => {
    mock.enqueue({ kind: "slowHeaders", delayMs: 100 });
    const startedAt = performance.now();
    const response = await chat();
    expect(performance.now() - startedAt).toBeGreaterThanOrEqual(90);
    expect((await readJson(response)).object).toBe("chat.completion");
  });

  it("cuts a stream after some events", async () => {
    mock.enqueue({ kind: "cutStream", afterEvents: 2 });
    const { events, error } = await drain(await chat({ stream: true }));
    expect(events).toHaveLength(2);
    expect(error).toBeDefined();
    expect(mock.requests[0]).toMatchObject({ clientClosed: false, finished: false });
  });

  it("cuts a JSON reply halfway", async () => {
    mock.enqueue({ kind: "cutStream", afterEvents: 0 });
    const response = await chat();
    expect(response.status).toBe(200);
    await expect(response.text()).rejects.toThrow();
  });

  it("stalls a stream after some events", async () => {
    mock.enqueue({ kind: "stallStream", afterEvents: 1 });
    const controller = new AbortController();
    const events: SseEvent[] = [];
    const drained = drain(await chat({ stream: true, signal: controller.signal }), events);
    await waitFor(() => events.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(events).toHaveLength(1);
    controller.abort();
    expect((await drained).error).toBeDefined();
    await waitFor(() => mock.requests[0]?.clientClosed);
  });

  it("answers malformed JSON", async () => {
    mock.enqueue({ kind: "malformedJson" });
    const response = await chat();
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/json");
    await expect(response.json()).rejects.toThrow();
  });

  it("waits between events with delayEvents", async () => {
    mock.enqueue({ kind: "delayEvents", delayMs: 30 });
    const startedAt = performance.now();
    const { events } = await drain(await chat({ stream: true }));
    // role, 3 words, stop, usage, [DONE]: 6 waits between 7 events.
    expect(events).toHaveLength(7);
    expect(performance.now() - startedAt).toBeGreaterThanOrEqual(170);
  });

  it("answers a large valid JSON body with usage last", async () => {
    mock.enqueue({ kind: "largeBody", bytes: 1_000_000 });
    const text = await (await chat()).text();
    expect(text.length).toBeGreaterThanOrEqual(1_000_000);
    expect(text.length).toBeLessThan(1_010_000);
    const body = JSON.parse(text);
    expect(Object.keys(body).at(-1)).toBe("usage");
    expect(body.model).toBe("m");
  });
});

describe("holdStream", () => {
  it("holds the final events until released", async () => {
    const gate = mock.holdStream();
    const events: SseEvent[] = [];
    const drained = drain(await chat({ stream: true }), events);
    await gate.reached;
    // role, 2 words, stop: the usage chunk and [DONE] are held.
    await waitFor(() => events.length === 5);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(events.map((event) => event.data)).not.toContain("[DONE]");
    expect(mock.requests[0]).toMatchObject({ finished: false, eventsWritten: 5 });
    gate.release();
    const { error } = await drained;
    expect(error).toBeUndefined();
    expect(events).toHaveLength(7);
    expect(mock.requests[0]?.eventsWritten).toBe(7);
    expect(events.at(-1)?.data).toBe("[DONE]");
    await waitFor(() => mock.requests[0]?.finished);
  });

  it("marks a held stream clientClosed when the client aborts", async () => {
    const gate = mock.holdStream();
    const controller = new AbortController();
    const drained = drain(await chat({ stream: true, signal: controller.signal }));
    await gate.reached;
    controller.abort();
    await drained;
    await waitFor(() => mock.requests[0]?.clientClosed);
    gate.release();
  });
});

describe("connections", () => {
  it("counts open sockets and closes with stalled requests", async () => {
    const own = await startMockUpstream();
    own.enqueue({ kind: "stall" });
    const pending = fetch(`${own.baseURL}/models`).catch((error: unknown) => error);
    await own.waitForRequests(1);
    expect(own.openConnections()).toBe(1);
    await own.close();
    expect(await pending).toBeInstanceOf(Error);
    expect(own.requests[0]?.clientClosed).toBe(false);
  });

  it("closes during a slowHeaders delay", async () => {
    const own = await startMockUpstream();
    own.enqueue({ kind: "slowHeaders", delayMs: 60_000 });
    const pending = fetch(`${own.baseURL}/models`).catch((error: unknown) => error);
    await own.waitForRequests(1);
    await own.close();
    expect(await pending).toBeInstanceOf(Error);
  });
});
