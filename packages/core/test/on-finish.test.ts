import { createHash } from "node:crypto";
import { createOpenAICompatible } from "@aigw/provider";
import { type MockUpstream, readSse, startMockUpstream, waitFor } from "@aigw/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type FinishedRequest, type GatewayHooks, hashApiKey } from "../src/index.js";
import { type RunningGateway, startGateway } from "./start-gateway.js";

let upstream: MockUpstream;
let running: RunningGateway;
const finished: FinishedRequest[] = [];
const order: string[] = [];
const clientKey = "sk-tenant-key-for-on-finish";

function recorder(name: string): GatewayHooks {
  return {
    onFinishBodies: name === "outer",
    onFinish(request) {
      order.push(name);
      if (name === "outer") finished.push(request);
    },
  };
}
const failing: GatewayHooks = {
  onFinish() {
    throw new Error("a broken onFinish hook");
  },
};
const rejecting: GatewayHooks = {
  onFinish: () => Promise.reject(new Error("a rejecting onFinish hook")),
};
const logged: string[] = [];
const logger = {
  info() {},
  warn() {},
  error(_object: object, message?: string) {
    logged.push(message ?? "");
  },
};

beforeAll(async () => {
  upstream = await startMockUpstream();
  running = await startGateway({
    providers: { mock: createOpenAICompatible({ baseURL: upstream.baseURL }) },
    models: { "gpt-*": { provider: "mock" } },
    tenants: { acme: { keyHashes: [hashApiKey(clientKey)] } },
    hooks: [recorder("outer"), failing, rejecting, recorder("inner")],
    logger,
  });
});

afterAll(async () => {
  await running?.close();
  await upstream?.close();
});

afterEach(() => {
  upstream.reset();
  finished.length = 0;
  order.length = 0;
  logged.length = 0;
});

function post(body: unknown, key = clientKey, signal?: AbortSignal) {
  return fetch(`${running.url}/v1/chat/completions`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      authorization: `Bearer ${key}`,
      "x-request-id": "finish-test-1",
    },
    body: JSON.stringify(body),
    signal,
  });
}

const chat = { model: "gpt-x", messages: [{ role: "user", content: "hello there" }] };

describe("onFinish", () => {
  it("sees a JSON answer's whole outcome, once, hooks in reverse order", async () => {
    const sent = JSON.stringify(chat);
    const response = await post(chat);
    const text = await response.text();
    expect(response.status).toBe(200);
    await waitFor(() => finished.length === 1);
    const [request] = finished;
    expect(request).toMatchObject({
      requestId: "finish-test-1",
      method: "POST",
      path: "/v1/chat/completions",
      endpoint: "chat/completions",
      protocol: "openai",
      tenant: "acme",
      keyId: hashApiKey(clientKey).slice(0, 16),
      model: "gpt-x",
      route: "gpt-*",
      provider: "mock",
      responseModel: "gpt-x",
      status: 200,
      stream: false,
      attempts: [{ target: "mock/gpt-*", status: 200 }],
      usage: { inputTokens: expect.any(Number), outputTokens: expect.any(Number) },
      error: undefined,
    });
    expect(request?.clientAddress).toMatch(/127\.0\.0\.1/);
    expect(Buffer.from(request?.requestBody ?? "").toString()).toBe(sent);
    expect(request?.requestSha256).toBe(createHash("sha256").update(sent).digest("hex"));
    expect(Buffer.from(request?.responseBody ?? "").toString()).toBe(text);
    expect(request?.startedAt).toBeGreaterThan(Date.now() - 60_000);
    expect(request?.durationMs).toBeGreaterThan(0);
    expect(order).toEqual(["inner", "outer"]);
    await waitFor(() => logged.length === 2);
    expect(logged).toEqual(["onFinish hook failed", "onFinish hook failed"]);
  });

  async function streamed(body: unknown): Promise<FinishedRequest | undefined> {
    const response = await post(body);
    for await (const _event of readSse(response)) {
      // read to the end
    }
    await waitFor(() => finished.length === 1);
    return finished[0];
  }

  it("sees a stream once it ended: usage, time to first token, both bodies", async () => {
    const sent = JSON.stringify({ ...chat, stream: true });
    const response = await post({ ...chat, stream: true });
    // What an SSE client dispatches: each event's data, a newline after each.
    let dispatched = "";
    for await (const event of readSse(response)) dispatched += `${event.data}\n`;
    await waitFor(() => finished.length === 1);
    const request = finished[0];
    expect(request).toMatchObject({
      status: 200,
      stream: true,
      usage: { outputTokens: expect.any(Number) },
      timeToFirstTokenMs: expect.any(Number),
    });
    expect(dispatched).toContain("[DONE]\n");
    expect(request?.responseBody).toBe(dispatched);
    expect(request?.responseSha256).toBe(createHash("sha256").update(dispatched).digest("hex"));
    expect(Buffer.from(request?.requestBody ?? "").toString()).toBe(sent);
    expect(request?.requestSha256).toBe(createHash("sha256").update(sent).digest("hex"));
  });

  it("lets a stream's long request body go when the stream starts, keeping its digest", async () => {
    const long = {
      ...chat,
      stream: true,
      messages: [{ role: "user", content: "x".repeat(16 * 1024) }],
    };
    const request = await streamed(long);
    expect(request?.requestBody).toBeUndefined();
    expect(request?.requestSha256).toBe(
      createHash("sha256").update(JSON.stringify(long)).digest("hex"),
    );
  });

  it("keeps only the digest of a stream's answer past 64 Ki characters", async () => {
    const chunk = (index: number) => ({
      id: "chatcmpl-long",
      object: "chat.completion.chunk",
      created: 1,
      model: "gpt-x",
      choices: [{ index: 0, delta: { content: `${index} ${"é".repeat(2_000)}` } }],
    });
    const events = Array.from({ length: 40 }, (_, index) => chunk(index));
    upstream.enqueue({ kind: "events", events: [...events, "[DONE]"] });
    const response = await post({ ...chat, stream: true });
    const hash = createHash("sha256");
    let characters = 0;
    for await (const event of readSse(response)) {
      hash.update(`${event.data}\n`);
      characters += event.data.length + 1;
    }
    expect(characters).toBeGreaterThan(65_536);
    await waitFor(() => finished.length === 1);
    expect(finished[0]?.responseBody).toBeUndefined();
    expect(finished[0]?.responseSha256).toBe(hash.digest("hex"));
  });

  it("sees a stream whose client went away as 499", async () => {
    upstream.enqueue({ kind: "stallStream", afterEvents: 2 });
    const abort = new AbortController();
    const response = await post({ ...chat, stream: true }, clientKey, abort.signal);
    const reader = response.body?.getReader();
    await reader?.read();
    abort.abort();
    await waitFor(() => finished.length === 1);
    expect(finished[0]).toMatchObject({ status: 499, stream: true });
  });

  it("sees failures: a refused key, and an upstream error with its attempts", async () => {
    expect((await post(chat, "sk-wrong")).status).toBe(401);
    upstream.enqueue({ kind: "status", status: 400 });
    expect((await post(chat)).status).toBe(400);
    await waitFor(() => finished.length === 2);
    expect(finished[0]).toMatchObject({ status: 401, tenant: "anonymous", keyId: undefined });
    expect(finished[0]?.error?.type).toBe("authentication_error");
    expect(String(finished[0]?.responseBody)).toContain("Incorrect API key");
    expect(finished[1]).toMatchObject({
      status: 400,
      attempts: [{ target: "mock/gpt-*", status: 400 }],
    });
  });

  it("keeps no bodies and hashes nothing when no hook sets onFinishBodies", async () => {
    const seen: FinishedRequest[] = [];
    const plain = await startGateway({
      providers: { mock: createOpenAICompatible({ baseURL: upstream.baseURL }) },
      models: { "gpt-*": { provider: "mock" } },
      hooks: [{ onFinish: (request) => void seen.push(request) }],
    });
    try {
      const response = await fetch(`${plain.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(chat),
      });
      expect(response.status).toBe(200);
      await waitFor(() => seen.length === 1);
      expect(seen[0]).toMatchObject({ status: 200, model: "gpt-x" });
      expect(seen[0]?.requestBody).toBeUndefined();
      expect(seen[0]?.responseBody).toBeUndefined();
      expect(seen[0]?.requestSha256).toBeUndefined();
    } finally {
      await plain.close();
    }
  });
});
