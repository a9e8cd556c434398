import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type AuditLog,
  type AuditRecord,
  createAuditLog,
  createFileSink,
  createFileSource,
  verifyRecords,
} from "@aigw/audit";
import { createAnthropic, createOpenAICompatible } from "@aigw/provider";
import {
  type AnthropicMock,
  closeServer,
  listen,
  type MockUpstream,
  readSse,
  startAnthropicMock,
  startMockUpstream,
  waitFor,
} from "@aigw/testing";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createAuditHooks } from "../src/audit.js";
import { createGateway, hashApiKey } from "../src/index.js";
import { toNodeListener } from "../src/node.js";

// A real gateway behind a real HTTP server, the official SDKs as clients, mock upstreams.
const key = "the audit chain key, 32 bytes or more";
const clientKey = "aigw-audit-test-client-key";
let directory: string;
let path: string;
let openaiMock: MockUpstream;
let anthropicMock: AnthropicMock;
let log: AuditLog;
let server: ReturnType<typeof createServer>;
let url: string;
let openai: OpenAI;
let anthropic: Anthropic;

/** The providers and routes of the OpenAI and Anthropic mocks, without retries. */
function bothMocks() {
  return {
    providers: {
      openai: createOpenAICompatible({ baseURL: openaiMock.baseURL, retry: { maxRetries: 0 } }),
      anthropic: createAnthropic({
        apiKey: "sk-ant-upstream",
        baseURL: `${anthropicMock.url}/v1`,
        retry: { maxRetries: 0 },
      }),
    },
    models: { "gpt-*": { provider: "openai" }, "claude-*": { provider: "anthropic" } },
  };
}

beforeAll(async () => {
  directory = mkdtempSync(join(tmpdir(), "aigw-audit-gateway-"));
  path = join(directory, "audit.jsonl");
  openaiMock = await startMockUpstream();
  anthropicMock = await startAnthropicMock();
  log = createAuditLog({ sink: createFileSink({ path }), key, instance: "gw-test" });
  const gateway = createGateway({
    ...bothMocks(),
    tenants: { acme: { keyHashes: [hashApiKey(clientKey)] } },
    hooks: [createAuditHooks(log, { content: (context) => context.model !== "gpt-private" })],
  });
  server = createServer(toNodeListener(gateway));
  ({ url } = await listen(server));
  openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: clientKey, maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: url, apiKey: clientKey, maxRetries: 0 });
});

afterAll(async () => {
  await closeServer(server);
  await log?.close();
  await openaiMock?.close();
  await anthropicMock?.close();
  rmSync(directory, { recursive: true, force: true });
});

afterEach(() => {
  openaiMock.reset();
  anthropicMock.reset();
});

async function records(): Promise<AuditRecord[]> {
  await log.flush();
  return readFileSync(path, "utf8")
    .trimEnd()
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}

async function recordOf(requestId: string): Promise<AuditRecord> {
  let found: AuditRecord | undefined;
  await waitFor(async () => {
    found = (await records()).find((record) => record.requestId === requestId);
    return found !== undefined;
  });
  return found as AuditRecord;
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
const prompt = "Write to jane.doe@example.com about the invoice";

describe("one record per request", () => {
  it("a JSON chat answer: outcome, hashes of both bodies, redacted content", async () => {
    const body = JSON.stringify({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: prompt }],
    });
    const sent = Date.now();
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${clientKey}`,
        "x-request-id": "audit-json-1",
      },
      body,
    });
    const answer = await response.text();
    const answered = Date.now();
    expect(response.status).toBe(200);
    const record = await recordOf("audit-json-1");
    // When the request started, as toISOString writes it.
    expect(new Date(record.time).toISOString()).toBe(record.time);
    // The start is the finish (whole ms) less the duration: up to 1 ms early.
    expect(Date.parse(record.time)).toBeGreaterThanOrEqual(sent - 1);
    expect(Date.parse(record.time)).toBeLessThanOrEqual(answered);
    expect(record).toMatchObject({
      instance: "gw-test",
      tenant: "acme",
      keyId: hashApiKey(clientKey).slice(0, 16),
      protocol: "openai",
      method: "POST",
      endpoint: "/v1/chat/completions",
      model: "gpt-4o-mini",
      route: "gpt-*",
      provider: "openai",
      servedModel: "gpt-4o-mini",
      status: 200,
      attempts: [{ target: "openai/gpt-*", status: 200 }],
      usage: { inputTokens: expect.any(Number), outputTokens: expect.any(Number) },
      requestSha256: sha256(body),
      responseSha256: sha256(answer),
    });
    expect(record.clientAddress).toContain("127.0.0.1");
    expect(JSON.stringify(record)).not.toContain("jane.doe@example.com");
    expect(JSON.stringify(record)).not.toContain(clientKey);
    expect(record.content?.request?.[0]?.text).toMatch(/^Write to <EMAIL_ADDRESS_[0-9a-f]{8}>/);
    expect(record.content?.response?.[0]).toMatchObject({ role: "assistant", kind: "text" });
    expect(record.content?.redacted?.EMAIL_ADDRESS).toBeGreaterThanOrEqual(1);
  });

  it("a streamed chat answer: its usage, time to first token and the hashes of its request and events", async () => {
    const body = JSON.stringify({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "hello" }],
      stream: true,
    });
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${clientKey}`,
        "x-request-id": "audit-stream-1",
      },
      body,
    });
    const hash = createHash("sha256");
    let text = "";
    for await (const event of readSse(response)) {
      hash.update(event.data).update("\n");
      if (event.data !== "[DONE]") {
        text += JSON.parse(event.data).choices[0]?.delta?.content ?? "";
      }
    }
    const record = await recordOf("audit-stream-1");
    expect(record.responseSha256).toBe(hash.digest("hex"));
    expect(record.requestSha256).toBe(sha256(body));
    expect(record).toMatchObject({
      status: 200,
      stream: true,
      usage: { outputTokens: expect.any(Number) },
      timeToFirstTokenMs: expect.any(Number),
      responseSha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(record.content?.response?.[0]?.text).toBe(text);
  });

  it("a stream longer than one run of 64 Ki characters: the hash of all its events", async () => {
    const chunk = (text: string) => ({
      id: "chatcmpl-long",
      object: "chat.completion.chunk",
      created: 1,
      model: "gpt-4o-mini",
      choices: [{ index: 0, delta: { content: text }, finish_reason: null }],
    });
    const events = Array.from({ length: 40 }, (_, index) => chunk(`${index} ${"é".repeat(2_000)}`));
    openaiMock.enqueue({ kind: "events", events: [...events, "[DONE]"] });
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${clientKey}`,
        "x-request-id": "audit-stream-long",
      },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [], stream: true }),
    });
    const hash = createHash("sha256");
    let characters = 0;
    for await (const event of readSse(response)) {
      hash.update(event.data).update("\n");
      characters += event.data.length + 1;
    }
    expect(characters).toBeGreaterThan(65_536);
    const record = await recordOf("audit-stream-long");
    expect(record.responseSha256).toBe(hash.digest("hex"));
  });

  it("Anthropic's Messages API, as JSON and as a stream", async () => {
    await anthropic.messages.create(
      { model: "claude-sonnet-4-5", max_tokens: 50, messages: [{ role: "user", content: "hi" }] },
      { headers: { "x-request-id": "audit-anthropic-json" } },
    );
    const stream = anthropic.messages.stream(
      { model: "claude-sonnet-4-5", max_tokens: 50, messages: [{ role: "user", content: "hi" }] },
      { headers: { "x-request-id": "audit-anthropic-stream" } },
    );
    const final = await stream.finalMessage();
    const json = await recordOf("audit-anthropic-json");
    const streamed = await recordOf("audit-anthropic-stream");
    for (const record of [json, streamed]) {
      expect(record).toMatchObject({
        protocol: "anthropic",
        endpoint: "/v1/messages",
        model: "claude-sonnet-4-5",
        provider: "anthropic",
        status: 200,
        usage: { inputTokens: expect.any(Number), outputTokens: expect.any(Number) },
      });
    }
    expect(streamed.stream).toBe(true);
    const said = final.content.map((block) => (block.type === "text" ? block.text : "")).join("");
    expect(streamed.content?.response?.map((piece) => piece.text).join("")).toBe(said);
  });

  it("a stream its client abandoned is a 499", async () => {
    openaiMock.enqueue({ kind: "stallStream", afterEvents: 2 });
    const abort = new AbortController();
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${clientKey}`,
        "x-request-id": "audit-aborted",
      },
      body: JSON.stringify({
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "hi" }],
        stream: true,
      }),
      signal: abort.signal,
    });
    await response.body?.getReader().read();
    abort.abort();
    const record = await recordOf("audit-aborted");
    expect(record).toMatchObject({ status: 499, stream: true, errorType: "client_closed" });
  });

  it("a stream's hash covers the events the gateway adds: keep-alives, the error event", async () => {
    // Keep-alives within a test's time: headers after 100 ms of silence, then one every 200 ms.
    const gateway = createGateway({
      ...bothMocks(),
      keepAliveIntervalMs: 200,
      firstEventWaitMs: 100,
      hooks: [createAuditHooks(log)],
    });
    const quick = createServer(toNodeListener(gateway));
    const quickURL = (await listen(quick)).url;
    const cases = [
      { name: "openai-cut", path: "/v1/chat/completions", model: "gpt-4o-mini", mock: openaiMock },
      {
        name: "anthropic-cut",
        path: "/v1/messages",
        model: "claude-sonnet-4-5",
        mock: anthropicMock,
      },
      // An empty data field is an event; a block of only `event:` is not (SSE's dispatch rule).
      { name: "openai-edges", path: "/v1/chat/completions", model: "gpt-4o-mini" },
      {
        name: "anthropic-slow",
        path: "/v1/messages",
        model: "claude-sonnet-4-5",
        mock: anthropicMock,
      },
    ];
    const chunk = {
      id: "chatcmpl-edges",
      object: "chat.completion.chunk",
      created: 1,
      model: "gpt-4o-mini",
      choices: [{ index: 0, delta: { content: "hi" }, finish_reason: null }],
    };
    openaiMock.enqueue(
      { kind: "cutStream", afterEvents: 2 },
      // Each string follows "data: ": the first makes an empty data field, then a block.
      { kind: "events", events: [chunk, "\n\nevent: only", "[DONE]"] },
    );
    anthropicMock.enqueue(
      { kind: "cutStream", afterEvents: 2 },
      { kind: "delayEvents", delayMs: 500 },
    );
    try {
      for (const { name, path, model } of cases) {
        const requestId = `audit-gateway-events-${name}`;
        const response = await fetch(`${quickURL}${path}`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-request-id": requestId },
          body: JSON.stringify({
            model,
            max_tokens: 50,
            messages: [{ role: "user", content: "hi" }],
            stream: true,
          }),
        });
        const hash = createHash("sha256");
        const events: { event?: string; data: string }[] = [];
        for await (const event of readSse(response)) {
          hash.update(event.data).update("\n");
          events.push(event);
        }
        if (name.endsWith("cut")) expect(events.at(-1)?.data).toContain('"error"');
        else if (name.endsWith("edges")) expect(events.map((event) => event.data)).toContain("");
        else expect(events.filter((event) => event.event === "ping").length).toBeGreaterThan(2);
        const record = await recordOf(requestId);
        expect(record.stream).toBe(true);
        expect(record.responseSha256).toBe(hash.digest("hex"));
      }
    } finally {
      await closeServer(quick);
    }
  });

  it("an upstream failure, and a refused key", async () => {
    openaiMock.enqueue({ kind: "status", status: 500 });
    await expect(
      openai.chat.completions.create(
        { model: "gpt-private", messages: [{ role: "user", content: prompt }] },
        { headers: { "x-request-id": "audit-upstream-500" } },
      ),
    ).rejects.toThrow();
    const failed = await recordOf("audit-upstream-500");
    expect(failed).toMatchObject({
      status: 502,
      errorType: expect.any(String),
      attempts: [{ target: "openai/gpt-*", status: 500 }],
    });
    // Content was turned off for this model by the hook's predicate.
    expect(failed.content).toBeUndefined();

    const refused = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: "Bearer sk-stolen-guess",
        "x-request-id": "audit-401",
      },
      body: "{}",
    });
    expect(refused.status).toBe(401);
    const denied = await recordOf("audit-401");
    expect(denied).toMatchObject({
      status: 401,
      tenant: "anonymous",
      errorType: "authentication_error",
    });
    expect(denied.keyId).toBeUndefined();
    expect(readFileSync(path, "utf8")).not.toContain("sk-stolen-guess");
  });

  it("keeps a hostile path short", async () => {
    const response = await fetch(`${url}/v1/${"x".repeat(10_000)}`, {
      headers: { authorization: `Bearer ${clientKey}`, "x-request-id": "audit-long-path" },
    });
    expect(response.status).toBe(404);
    const record = await recordOf("audit-long-path");
    expect(record.endpoint).toHaveLength(257);
    expect(record.endpoint.endsWith("…")).toBe(true);
  });

  it("health checks are not recorded; the whole file verifies", async () => {
    await fetch(`${url}/health`);
    const all = await records();
    expect(all.every((record) => record.endpoint !== "/health")).toBe(true);
    const source = createFileSource({ path });
    const report = await verifyRecords(source.records(), source.checkpoints(), key);
    expect(report.problems).toEqual([]);
    expect(report.records).toBe(all.length);
  });
});

describe("content size", () => {
  /** A gateway whose audit log keeps `maxContentChars`, and its records once closed. */
  async function recordedContent(
    maxContentChars: number,
    redaction: false | undefined,
    content: string,
  ): Promise<AuditRecord["content"]> {
    const file = join(directory, `capped-${maxContentChars}-${redaction}.jsonl`);
    const capped = createAuditLog({
      sink: createFileSink({ path: file }),
      key,
      maxContentChars,
      redaction,
    });
    const gateway = createGateway({
      providers: {
        openai: createOpenAICompatible({ baseURL: openaiMock.baseURL, retry: { maxRetries: 0 } }),
      },
      models: { "gpt-*": { provider: "openai" } },
      hooks: [createAuditHooks(capped, { content: true })],
    });
    const cappedServer = createServer(toNodeListener(gateway));
    const address = await listen(cappedServer);
    try {
      const client = new OpenAI({ baseURL: `${address.url}/v1`, apiKey: "none", maxRetries: 0 });
      await client.chat.completions.create({
        model: "gpt-4o-mini",
        messages: [{ role: "user", content }],
      });
    } finally {
      await closeServer(cappedServer);
      await capped.close();
    }
    return JSON.parse(readFileSync(file, "utf8")).content;
  }

  it("the hooks take what the log wants; the log cuts it, never inside a value, and masks it", async () => {
    // Without redaction the log wants no more than it keeps: the hooks cut the prompt.
    const plain = await recordedContent(10, false, "0123456789abcdef");
    expect(plain?.request).toEqual([{ role: "user", kind: "text", text: "0123456789" }]);
    expect(plain?.truncated).toBe(true);
    // With it, an address the cap falls in is left out whole; one before the cap is masked.
    const straddling = await recordedContent(12, undefined, "Mail jane.doe@example.com now");
    expect(straddling?.request).toEqual([{ role: "user", kind: "text", text: "Mail " }]);
    expect(JSON.stringify(straddling)).not.toMatch(/jane|doe|example/);
    const masked = await recordedContent(30, undefined, "Mail jane.doe@example.com now please");
    expect(masked?.request?.[0]?.text).toMatch(/^Mail <EMAIL_ADDRESS_[0-9a-f]{8}> now $/);
    expect(masked?.redacted?.EMAIL_ADDRESS).toBeGreaterThanOrEqual(1);
  });
});
