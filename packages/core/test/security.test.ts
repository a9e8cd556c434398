import { request as httpRequest } from "node:http";
import { brotliCompressSync, deflateSync, gzipSync } from "node:zlib";
import { createMemoryCache } from "@aigw/cache";
import {
  createAzureOpenAI,
  createEcho,
  createOpenAICompatible,
  createSecretScrubber,
} from "@aigw/provider";
import { createMemoryLimiter } from "@aigw/ratelimit";
import {
  collectLines,
  type MockUpstream,
  readSse,
  sendRaw,
  startMockUpstream,
  waitFor,
} from "@aigw/testing";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createGateway, type GatewayOptions, hashApiKey } from "../src/index.js";
import { type RunningGateway, startGateway } from "./start-gateway.js";

const upstreamKey = "sk-proj-Hk3vT9qLw2Xz7RbN4mYp8CdF6gJs";
const reveals = (text: string) => createSecretScrubber([upstreamKey]).reveals(text);
let upstream: MockUpstream;
let running: RunningGateway | undefined;
const logLines: string[] = [];

beforeAll(async () => {
  upstream = await startMockUpstream({ apiKey: upstreamKey });
});
afterAll(() => upstream?.close());
afterEach(async () => {
  await running?.close();
  running = undefined;
  upstream.reset();
  logLines.length = 0;
});

function logger() {
  return pino(collectLines((line) => logLines.push(line)));
}

function start(extra: Partial<GatewayOptions> = {}) {
  return startGateway({
    providers: {
      openai: createOpenAICompatible({
        baseURL: upstream.baseURL,
        apiKey: upstreamKey,
        retry: { maxRetries: 0 },
      }),
      azure: createAzureOpenAI({
        endpoint: upstream.url,
        apiKey: upstreamKey,
        apiVersion: "2024-10-21",
        retry: { maxRetries: 0 },
      }),
      echo: createEcho(),
    },
    models: {
      "gpt-4o-mini": { provider: "openai" },
      azure: { provider: "azure", model: "gpt-4o-mini" },
      echo: { provider: "echo" },
    },
    logger: logger(),
    ...extra,
  });
}

const json = { "content-type": "application/json" };
const hello = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hello" }] };

function post(
  body: unknown,
  headers: Record<string, string> = json,
  path = "/v1/chat/completions",
) {
  return fetch(`${running?.url}${path}`, {
    method: "POST",
    headers,
    body: typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body),
  });
}

/** Everything a client and the logs got: the body, every header, every log line. */
async function seen(response: Response): Promise<string> {
  const body = await response.text();
  const headers = [...response.headers].map(([name, value]) => `${name}: ${value}`).join("\n");
  await waitFor(() => logLines.some((line) => line.includes('"status"')));
  return [body, headers, ...logLines].join("\n");
}

describe("the upstream's key never reaches a client or the logs", () => {
  const leaks: [string, object][] = [
    ["error.param", { message: "bad", type: "invalid_request_error", param: upstreamKey }],
    ["error.code", { message: "bad", type: "invalid_request_error", code: upstreamKey }],
    ["error.type", { message: "bad", type: upstreamKey }],
    ["a lowercased copy", { message: `key ${upstreamKey.toLowerCase()} refused` }],
    ["a split copy", { message: `key ${upstreamKey.slice(0, 12)}…${upstreamKey.slice(12)}` }],
    [
      "a base64 copy",
      { message: `auth ${Buffer.from(`Bearer ${upstreamKey}`).toString("base64")}` },
    ],
  ];

  for (const model of ["gpt-4o-mini", "azure"]) {
    for (const stream of [false, true]) {
      it.each(leaks)(
        `${model}, ${stream ? "streamed" : "JSON"}: not in ${"%s"}`,
        async (_where, error) => {
          running ??= await start();
          for (const status of [400, 404, 422]) {
            logLines.length = 0;
            upstream.enqueue({
              kind: "status",
              status,
              body: { error },
              headers: { "x-request-id": upstreamKey, "openai-model": upstreamKey },
            });
            const response = await post({ ...hello, model, stream });
            expect(response.status).toBe(status);
            const everything = await seen(response);
            expect(reveals(everything), everything).toBe(false);
          }
        },
      );
    }
  }

  it("not in fields that each hold a piece of it", async () => {
    running = await start();
    upstream.enqueue({
      kind: "status",
      status: 400,
      body: {
        error: {
          type: upstreamKey.slice(0, 12).replace(/-/g, ""),
          code: upstreamKey.slice(12, 24),
          param: upstreamKey.slice(24),
          message: "bad request",
        },
      },
    });
    const response = await post(hello);
    expect(response.status).toBe(400);
    const everything = await seen(response);
    expect(reveals(everything), everything).toBe(false);
  });

  it("not in error events hidden by JSON escapes or cut short, nor copied into an answer", async () => {
    running = await start();
    const escaped = `{"\\u0065rror":{"message":"leaked ${upstreamKey}","code":"${upstreamKey}"}}`;
    const truncated = `{"error":{"message":"leaked ${upstreamKey}","code":"x"}`;
    for (const event of [escaped, truncated]) {
      upstream.enqueue({ kind: "events", events: [event, "[DONE]"] });
      const response = await post({ ...hello, stream: true });
      const text = await response.text();
      expect(text).toContain("error");
      expect(reveals(text), text).toBe(false);
    }
    // An upstream that repeats the key in an answer: the copy is redacted, JSON and streamed.
    upstream.enqueue({
      kind: "events",
      events: [
        {
          id: "c1",
          object: "chat.completion.chunk",
          choices: [{ index: 0, delta: { content: `your key is ${upstreamKey}` } }],
        },
        "[DONE]",
      ],
    });
    const streamed = await (await post({ ...hello, stream: true })).text();
    expect(streamed).toContain("your key is [redacted]");
    upstream.enqueue({
      kind: "status",
      status: 200,
      body: {
        id: "c2",
        object: "chat.completion",
        choices: [{ index: 0, message: { role: "assistant", content: upstreamKey } }],
      },
    });
    const whole = await (await post(hello)).text();
    expect(whole).not.toContain(upstreamKey);
    expect(JSON.parse(whole).choices[0].message.content).toBe("[redacted]");
  });

  it("not in an error event inside a stream, in either stream shape", async () => {
    running = await start();
    upstream.enqueue({
      kind: "events",
      events: [
        {
          id: "c1",
          object: "chat.completion.chunk",
          choices: [{ index: 0, delta: { content: "a" } }],
        },
        { error: { message: `upstream saw ${upstreamKey}`, type: upstreamKey, code: upstreamKey } },
        "[DONE]",
      ],
    });
    const response = await post({ ...hello, stream: true });
    const events = [];
    for await (const event of readSse(response)) events.push(event.data);
    expect(events.some((data) => data.includes('"error"'))).toBe(true);
    expect(reveals(events.join("\n")), events.join("\n")).toBe(false);

    upstream.enqueue({
      kind: "events",
      events: [
        { type: "response.created", response: { id: "r1", status: "in_progress", error: null } },
        { type: "error", code: upstreamKey, message: `bad key ${upstreamKey}`, param: null },
        {
          type: "response.failed",
          response: { id: "r1", error: { code: "x", message: upstreamKey } },
        },
      ],
    });
    const responses = await post(
      { model: "gpt-4o-mini", input: "hi", stream: true },
      json,
      "/v1/responses",
    );
    const more = [];
    for await (const event of readSse(responses)) more.push(event.data);
    expect(more.join("\n")).toContain("response.failed");
    expect(reveals(more.join("\n")), more.join("\n")).toBe(false);
  });
});

describe("deep nesting", () => {
  const deepArray = (depth: number) => "[".repeat(depth) + "]".repeat(depth);
  const deepObject = (depth: number) => '{"a":'.repeat(depth) + "1" + "}".repeat(depth);

  it.each([
    [
      "messages[0].content",
      `{"model":"M","messages":[{"role":"user","content":${deepArray(5000)}}]}`,
    ],
    [
      "metadata.a.a",
      `{"model":"M","messages":[{"role":"user","content":"x"}],"metadata":${deepObject(10_000)}}`,
    ],
  ])(
    "is a 400 naming %s, with cache, limits and an alias rewrite on, streamed or not",
    async (param, template) => {
      running = await start({
        cache: { store: createMemoryCache() },
        limits: { limiter: createMemoryLimiter({ tokens: { perMinute: 10_000_000 } }) },
        models: { fast: { provider: "openai", model: "gpt-4o-mini" } },
      });
      for (const stream of [false, true]) {
        const text = template.replace('"model":"M"', `"model":"fast","stream":${stream}`);
        const response = await post(text);
        expect(response.status).toBe(400);
        const { error } = (await response.json()) as { error: { param: string; code: string } };
        expect(error.param.startsWith(param.split(".")[0] as string)).toBe(true);
        expect(error.code).toBe("too_deeply_nested");
      }
      expect(upstream.requests).toHaveLength(0);
      expect(logLines.join("")).not.toContain("internal error");
    },
  );

  it("lets ordinary nesting through untouched", async () => {
    running = await start();
    const nested = {
      model: "gpt-4o-mini",
      messages: hello.messages,
      metadata: { a: { b: { c: [1, [2]] } } },
    };
    const response = await post(nested);
    expect(response.status).toBe(200);
    expect(upstream.requests[0]?.body).toMatchObject({ metadata: nested.metadata });
  });
});

describe("client values that are echoed or logged are bounded", () => {
  it("a 10 MB model name is a 400 with a short answer and short log lines", async () => {
    running = await start();
    const response = await post({ model: "m".repeat(10 * 2 ** 20), messages: hello.messages });
    expect(response.status).toBe(400);
    const text = await response.text();
    expect(text.length).toBeLessThan(1_000);
    expect(JSON.parse(text).error.param).toBe("model");
    await waitFor(() => logLines.length > 0);
    expect(Math.max(...logLines.map((line) => line.length))).toBeLessThan(2_000);
  });

  it("a long unknown path is cut in the 404, and a JSON syntax error never quotes the body", async () => {
    running = await start();
    const notFound = await fetch(`${running.url}/v1/${"x".repeat(8_000)}`);
    expect(notFound.status).toBe(404);
    expect((await notFound.text()).length).toBeLessThan(1_000);
    const secretish = `{"model": "gpt-4o-mini", oops PRIVATE-PROMPT-TEXT ${"y".repeat(100)}`;
    const invalid = await post(secretish);
    expect(invalid.status).toBe(400);
    const message = ((await invalid.json()) as { error: { message: string } }).error.message;
    expect(message).toMatch(/not valid JSON \(at position \d+\)/);
    expect(message).not.toContain("PRIVATE");
  });
});

describe("headers the operator controls", () => {
  it("a client cannot choose the organization or project the operator's key bills", async () => {
    running = await startGateway({
      providers: {
        plain: createOpenAICompatible({ baseURL: upstream.baseURL, apiKey: upstreamKey }),
        billed: createOpenAICompatible({
          baseURL: upstream.baseURL,
          apiKey: upstreamKey,
          organization: "org-operator",
          project: "proj-operator",
        }),
      },
      models: { plain: { provider: "plain" }, billed: { provider: "billed" } },
    });
    const clientChoice = {
      ...json,
      "openai-organization": "org-evil",
      "openai-project": "proj-evil",
    };
    expect((await post({ ...hello, model: "plain" }, clientChoice)).status).toBe(200);
    expect((await post({ ...hello, model: "billed" }, clientChoice)).status).toBe(200);
    const [plain, billed] = upstream.requests;
    expect(plain?.headers["openai-organization"]).toBeUndefined();
    expect(plain?.headers["openai-project"]).toBeUndefined();
    expect(billed?.headers).toMatchObject({
      "openai-organization": "org-operator",
      "openai-project": "proj-operator",
    });
  });

  it("tracestate goes on only with a valid traceparent, and within W3C's limits", async () => {
    running = await start();
    const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const cases: [Record<string, string>, (sent: string | undefined) => void][] = [
      [
        { traceparent: "00-zz-bad-01", tracestate: "vendor=1" },
        (sent) => expect(sent).toBeUndefined(),
      ],
      [
        { traceparent, tracestate: "vendor=1,other=2" },
        (sent) => expect(sent).toBe("vendor=1,other=2"),
      ],
      [{ traceparent, tracestate: "not a member" }, (sent) => expect(sent).toBeUndefined()],
      [
        { traceparent, tracestate: Array.from({ length: 40 }, (_, i) => `k${i}=v`).join(",") },
        (sent) => expect(sent).toBeUndefined(),
      ],
      [
        {
          traceparent,
          tracestate: [
            `big=${"x".repeat(200)}`,
            ...Array.from({ length: 30 }, (_, i) => `key${i}=${"v".repeat(20)}`),
          ].join(","),
        },
        (sent) => {
          expect(sent?.length).toBeLessThanOrEqual(512);
          expect(sent).not.toContain("big=");
          expect(sent?.startsWith("key0=")).toBe(true);
        },
      ],
    ];
    for (const [headers, check] of cases) {
      upstream.reset();
      expect((await post(hello, { ...json, ...headers })).status).toBe(200);
      check(upstream.requests[0]?.headers.tracestate);
    }
  });
});

/** GET /health with the given Host header (none when undefined), as a browser cannot send it. */
function healthStatus(url: string, host: string | undefined): Promise<number> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      { host: "127.0.0.1", port, path: "/health", headers: host ? { host } : {}, setHost: false },
      (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      },
    );
    request.on("error", reject);
    request.end();
  });
}

describe("authentication and where requests may come from", () => {
  it("takes the bearer scheme in any letter case", async () => {
    const key = "aigw-case-key";
    running = await start({ tenants: { team: { keyHashes: [hashApiKey(key)] } } });
    for (const scheme of ["Bearer", "bearer", "BEARER"]) {
      const response = await post(
        { ...hello, model: "echo" },
        { ...json, authorization: `${scheme} ${key}` },
      );
      expect(response.status, scheme).toBe(200);
    }
    expect(
      (await post({ ...hello, model: "echo" }, { ...json, authorization: `Basic ${key}` })).status,
    ).toBe(401);
  });

  it("allowedHosts refuses other Host names with 403, before anything else runs", async () => {
    running = await start({ allowedHosts: ["localhost", "127.0.0.1", "::1", ".internal.example"] });
    const { port } = new URL(running.url);
    expect(await healthStatus(running.url, `localhost:${port}`)).toBe(200);
    expect(await healthStatus(running.url, `127.0.0.1:${port}`)).toBe(200);
    expect(await healthStatus(running.url, `[::1]:${port}`)).toBe(200);
    expect(await healthStatus(running.url, "gw.internal.example")).toBe(200);
    expect(await healthStatus(running.url, "attacker.example")).toBe(403);
    expect(await healthStatus(running.url, "localhost.attacker.example")).toBe(403);
    expect(await healthStatus(running.url, "[::1]attacker.example")).toBe(403);
    expect(await healthStatus(running.url, "localhost:80:80")).toBe(403);
    // Without a Host header, Node answers 400 itself; the gateway never serves it.
    expect(await healthStatus(running.url, undefined)).toBeGreaterThanOrEqual(400);
  });

  it("takes allowed names with ports and IPv6 addresses in any form, and refuses what is not a host", async () => {
    running = await start({ allowedHosts: ["gw.example.com:8443", "[::1]", "::2"] });
    expect(await healthStatus(running.url, "gw.example.com:8443")).toBe(200);
    expect(await healthStatus(running.url, "gw.example.com")).toBe(200);
    expect(await healthStatus(running.url, "[::1]:8080")).toBe(200);
    expect(await healthStatus(running.url, "[::2]")).toBe(200);
    expect(await healthStatus(running.url, "other.example.com")).toBe(403);
    expect(() =>
      createGateway({ providers: { echo: createEcho() }, allowedHosts: ["a:b:c]"] }),
    ).toThrow(TypeError);
  });

  it('refuses CORS origins "*" with credentials', () => {
    expect(() =>
      createGateway({
        providers: { echo: createEcho() },
        cors: { origins: "*", credentials: true },
      }),
    ).toThrow(/credentials/);
  });
});

describe("request bodies", () => {
  it("decodes gzip, deflate and br bodies and sends the JSON upstream", async () => {
    running = await start();
    const text = JSON.stringify({ ...hello, messages: [{ role: "user", content: "zipped" }] });
    for (const [coding, encode] of [
      ["gzip", gzipSync],
      ["deflate", deflateSync],
      ["br", brotliCompressSync],
    ] as const) {
      upstream.reset();
      const response = await post(encode(text), { ...json, "content-encoding": coding });
      expect(response.status, coding).toBe(200);
      expect(upstream.requests[0]?.rawBody).toBe(text);
    }
  });

  it("counts decoded bytes against the limit, and refuses unknown or broken codings without echoing", async () => {
    running = await start({ maxBodyBytes: 64 * 1024 });
    const bomb = gzipSync(Buffer.alloc(10 * 2 ** 20, 0x20));
    expect(bomb.length).toBeLessThan(64 * 1024);
    expect((await post(bomb, { ...json, "content-encoding": "gzip" })).status).toBe(413);
    const unknown = await post(JSON.stringify(hello), { ...json, "content-encoding": "compress" });
    expect(unknown.status).toBe(415);
    const broken = await post(Buffer.from("\u0000\u0001binary-not-gzip"), {
      ...json,
      "content-encoding": "gzip",
    });
    expect(broken.status).toBe(400);
    expect(await broken.text()).not.toContain("binary-not-gzip");
    expect(upstream.requests).toHaveLength(0);
  });

  it("a body that stops arriving gets 408 after the idle timeout, and its connection is closed", async () => {
    running = await start({ bodyIdleTimeoutMs: 500 });
    const head = (extra: string) =>
      `POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n${extra}\r\n`;
    const stalls = [
      [head("Content-Length: 100\r\n")],
      [head("Content-Length: 100\r\n"), '{"model"', { pauseMs: 300 }, ':"gpt', { pauseMs: 900 }],
      [head("Transfer-Encoding: chunked\r\n"), '5\r\n{"mod\r\n'],
    ];
    for (const parts of stalls) {
      const exchange = await sendRaw(running.url, parts, 5_000);
      expect(exchange.response).toMatch(/^HTTP\/1\.1 408/);
      expect(exchange.response).toContain("request_timeout");
      expect(exchange.closed).toBe(true);
      expect(exchange.elapsedMs).toBeLessThan(4_000);
    }
    expect(upstream.requests).toHaveLength(0);
  });
});

describe("clients that stop reading", () => {
  it("a stream nobody reads is closed after sendTimeoutMs, and its upstream call cancelled", async () => {
    running = await start({ sendTimeoutMs: 1_000, keepAliveIntervalMs: 500 });
    const { port } = new URL(running.url);
    const body = JSON.stringify({
      model: "echo",
      stream: true,
      messages: [{ role: "user", content: "word ".repeat(400_000) }],
    });
    const request = httpRequest({
      host: "127.0.0.1",
      port,
      path: "/v1/chat/completions",
      method: "POST",
      headers: { "content-type": "application/json" },
    });
    request.on("error", () => {});
    request.on("response", (response) => {
      response.on("error", () => {});
      response.pause();
    });
    request.end(body);
    try {
      // A client that stopped reading does not see the close itself: the gateway's log does.
      const line = await waitFor(
        () => logLines.find((logged) => logged.includes('"path":"/v1/chat/completions"')),
        { timeoutMs: 10_000 },
      );
      expect(JSON.parse(line)).toMatchObject({ status: 499, stream: true });
    } finally {
      request.destroy();
    }
  });

  it("sendTimeoutMs must exceed keepAliveIntervalMs", () => {
    expect(() =>
      createGateway({
        providers: { echo: createEcho() },
        sendTimeoutMs: 10_000,
        keepAliveIntervalMs: 15_000,
      }),
    ).toThrow(/keepAliveIntervalMs/);
  });
});

describe("HEAD", () => {
  it("works wherever GET does", async () => {
    running = await start();
    for (const path of ["/health", "/v1/models"]) {
      const response = await fetch(`${running.url}${path}`, { method: "HEAD" });
      expect(response.status, path).toBe(200);
      expect(Number(response.headers.get("content-length"))).toBeGreaterThan(0);
      expect(await response.text()).toBe("");
    }
    const post = await fetch(`${running.url}/v1/chat/completions`, { method: "HEAD" });
    expect(post.status).toBe(405);
  });
});
