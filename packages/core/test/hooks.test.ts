import { createOpenAICompatible, createSseEvent } from "@aigw/provider";
import { type MockUpstream, readChatStream, readSse, startMockUpstream } from "@aigw/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AigwError, type GatewayHooks } from "../src/index.js";
import { type RunningGateway, startGateway } from "./start-gateway.js";

let upstream: MockUpstream;
let running: RunningGateway;
const calls: string[] = [];
let behaviour: "none" | "aigw-error" | "crash" = "none";

function recordingHook(name: string): GatewayHooks {
  return {
    onRequest(_request, context) {
      calls.push(`${name}.onRequest`);
      if (behaviour === "aigw-error") {
        throw new AigwError("Blocked by policy.", {
          status: 403,
          type: "permission_error",
          code: "policy_blocked",
        });
      }
      if (behaviour === "crash") throw new Error("secret internal detail");
      context.state[name] = true;
    },
    beforeRequest(call) {
      calls.push(`${name}.beforeRequest`);
      if (name === "first" && call.model === "rewrite-me") call.model = "gpt-rewritten";
      if (name === "second" && call.body.metadata === "stamp-me") call.body.metadata = "stamped";
    },
    afterResponse(response) {
      calls.push(`${name}.afterResponse:${response.stream ? "stream" : "json"}`);
      if (!response.stream) response.headers[`x-${name}`] = "seen";
    },
    onChunk(event) {
      calls.push(`${name}.onChunk`);
      return event;
    },
    onError(error) {
      calls.push(`${name}.onError:${error.status}`);
    },
  };
}

beforeAll(async () => {
  upstream = await startMockUpstream();
  running = await startGateway({
    providers: { mock: createOpenAICompatible({ baseURL: upstream.baseURL }) },
    models: { "gpt-*": { provider: "mock" }, "rewrite-me": { provider: "mock" } },
    hooks: [recordingHook("first"), recordingHook("second")],
  });
});

afterAll(async () => {
  await running?.close();
  await upstream?.close();
});

afterEach(() => {
  upstream.reset();
  calls.length = 0;
  behaviour = "none";
});

const jsonEndpoints = [
  ["/v1/chat/completions", { model: "gpt-x", messages: [{ role: "user", content: "hi" }] }],
  ["/v1/completions", { model: "gpt-x", prompt: "hi" }],
  ["/v1/embeddings", { model: "gpt-x", input: "hi" }],
  ["/v1/responses", { model: "gpt-x", input: "hi" }],
  ["/v1/images/generations", { model: "gpt-x", prompt: "a cat" }],
] as const;

const streamEndpoints = jsonEndpoints.filter(([path]) =>
  ["/v1/chat/completions", "/v1/completions", "/v1/responses"].includes(path),
);

function post(path: string, body: unknown) {
  return fetch(`${running.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

describe.each(jsonEndpoints)("hooks on %s", (path, body) => {
  it("run in order before and in reverse after, and may set response headers", async () => {
    const response = await post(path, body);
    expect(response.status).toBe(200);
    expect(response.headers.get("x-first")).toBe("seen");
    expect(response.headers.get("x-second")).toBe("seen");
    expect(calls).toEqual([
      "first.onRequest",
      "second.onRequest",
      "first.beforeRequest",
      "second.beforeRequest",
      "second.afterResponse:json",
      "first.afterResponse:json",
    ]);
  });

  it("an AigwError thrown by a hook reaches the client as is", async () => {
    behaviour = "aigw-error";
    const response = await post(path, body);
    expect(response.status).toBe(403);
    expect(await response.json()).toEqual({
      error: {
        message: "Blocked by policy.",
        type: "permission_error",
        param: null,
        code: "policy_blocked",
      },
    });
    expect(calls).toContain("second.onError:403");
    expect(upstream.requests).toHaveLength(0);
  });

  it("anything else thrown by a hook is a 500 without details", async () => {
    behaviour = "crash";
    const response = await post(path, body);
    const text = await response.text();
    expect(response.status).toBe(500);
    expect(JSON.parse(text).error.code).toBe("internal_error");
    expect(text).not.toContain("secret internal detail");
    expect(text).not.toMatch(/at .*\.ts/);
  });
});

describe.each(streamEndpoints)("hooks on streamed %s", (path, body) => {
  it("onChunk sees every event and afterResponse runs once, at the end, with usage", async () => {
    let usage: unknown;
    const probe: GatewayHooks = {
      afterResponse(response) {
        usage = response.usage;
      },
    };
    const withProbe = await startGateway({
      providers: { mock: createOpenAICompatible({ baseURL: upstream.baseURL }) },
      models: { "gpt-*": { provider: "mock" } },
      hooks: [probe, recordingHook("only")],
    });
    try {
      const response = await fetch(`${withProbe.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ ...body, stream: true }),
      });
      const events = [];
      for await (const event of readSse(response)) events.push(event);
      const chunkCalls = calls.filter((call) => call === "only.onChunk").length;
      expect(chunkCalls).toBe(events.length);
      expect(calls.filter((call) => call.startsWith("only.afterResponse"))).toEqual([
        "only.afterResponse:stream",
      ]);
      expect(usage).toMatchObject({ inputTokens: expect.any(Number) });
    } finally {
      await withProbe.close();
    }
  });
});

describe("what hooks can change", () => {
  it("beforeRequest changes what is sent upstream", async () => {
    await post("/v1/chat/completions", {
      model: "rewrite-me",
      messages: [{ role: "user", content: "hi" }],
    });
    expect(upstream.requests[0]?.body).toMatchObject({ model: "gpt-rewritten" });
  });

  it("beforeRequest may edit the body in place", async () => {
    await post("/v1/chat/completions", {
      model: "gpt-x",
      metadata: "stamp-me",
      messages: [{ role: "user", content: "hi" }],
    });
    expect(upstream.requests[0]?.body).toMatchObject({ model: "gpt-x", metadata: "stamped" });
  });

  it("onChunk may replace or drop events", async () => {
    const shout: GatewayHooks = {
      onChunk(event) {
        if (event.data === "[DONE]") return undefined;
        const chunk = event.json() as { choices?: { delta?: { content?: string } }[] } | undefined;
        const content = chunk?.choices?.[0]?.delta?.content;
        if (content === undefined) return undefined;
        if (content === "") return null;
        return createSseEvent({
          ...chunk,
          choices: [{ delta: { content: content.toUpperCase() } }],
        });
      },
    };
    const shouting = await startGateway({
      providers: { mock: createOpenAICompatible({ baseURL: upstream.baseURL }) },
      models: { "gpt-*": { provider: "mock" } },
      hooks: [shout],
    });
    try {
      const stream = await shouting.client.chat.completions.create({
        model: "gpt-x",
        messages: [{ role: "user", content: "quiet words" }],
        stream: true,
      });
      const { text } = await readChatStream(stream);
      expect(text).toBe("MOCK: QUIET WORDS");
    } finally {
      await shouting.close();
    }
  });

  it("onEventSent sees each event as the client got it; one that throws is logged, the stream goes on, even when the logger throws", async () => {
    const dropEmpty: GatewayHooks = {
      onChunk(event) {
        if (event.data === "[DONE]") return undefined;
        const chunk = event.json() as { choices?: { delta?: { content?: string } }[] };
        return chunk.choices?.[0]?.delta?.content === "" ? null : undefined;
      },
    };
    const seen: string[] = [];
    const watcher: GatewayHooks = { onEventSent: (event) => void seen.push(event.data) };
    const failing: GatewayHooks = {
      onEventSent() {
        throw new Error("observer failed");
      },
    };
    const logged: string[] = [];
    const logger = {
      debug() {},
      info() {},
      warn() {},
      // A logger that fails too: the stream still goes on.
      error(_object: unknown, message: string) {
        logged.push(message);
        throw new Error("logger down");
      },
    };
    const watched = await startGateway({
      providers: { mock: createOpenAICompatible({ baseURL: upstream.baseURL }) },
      models: { "gpt-*": { provider: "mock" } },
      hooks: [watcher, failing, dropEmpty],
      logger,
    });
    try {
      const response = await fetch(`${watched.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer sk-client-key" },
        body: JSON.stringify({
          model: "gpt-x",
          messages: [{ role: "user", content: "two words" }],
          stream: true,
        }),
      });
      const received: string[] = [];
      for await (const event of readSse(response)) received.push(event.data);
      expect(received.at(-1)).toBe("[DONE]");
      expect(received.some((data) => data.includes('"content":""'))).toBe(false);
      expect(seen).toEqual(received);
      expect(logged).toEqual(received.map(() => "onEventSent hook failed"));
    } finally {
      await watched.close();
    }
  });

  it("afterResponse may replace a JSON body", async () => {
    const replace: GatewayHooks = {
      afterResponse(response) {
        response.body = JSON.stringify({ replaced: true });
      },
    };
    const replacing = await startGateway({
      providers: { mock: createOpenAICompatible({ baseURL: upstream.baseURL }) },
      models: { "gpt-*": { provider: "mock" } },
      hooks: [replace],
    });
    try {
      const response = await fetch(`${replacing.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-x", messages: [{ role: "user", content: "hi" }] }),
      });
      expect(await response.json()).toEqual({ replaced: true });
    } finally {
      await replacing.close();
    }
  });

  it("a logger that throws loses its lines, never a request, even where a hook failed", async () => {
    const lines: string[] = [];
    const failingLine = (_object: object, message?: string) => {
      lines.push(message ?? "");
      throw new Error("logger down");
    };
    const logger = { info: failingLine, warn: failingLine, error: failingLine };
    const failing: GatewayHooks = {
      afterResponse(response) {
        if (response.stream) return Promise.reject(new Error("afterResponse failed"));
      },
      onError() {
        throw new Error("onError failed");
      },
      onFinish: () => Promise.reject(new Error("onFinish failed")),
    };
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown) => void rejections.push(reason);
    process.on("unhandledRejection", onRejection);
    const logging = await startGateway({
      providers: { mock: createOpenAICompatible({ baseURL: upstream.baseURL }) },
      models: { "gpt-*": { provider: "mock" } },
      hooks: [failing],
      logger,
    });
    try {
      const chat = (stream: boolean) =>
        fetch(`${logging.url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            model: "gpt-x",
            messages: [{ role: "user", content: "hi" }],
            stream,
          }),
        });
      const answer = await chat(false);
      expect(answer.status).toBe(200);
      expect(((await answer.json()) as { object: string }).object).toBe("chat.completion");

      const events: string[] = [];
      for await (const event of readSse(await chat(true))) events.push(event.data);
      expect(events.at(-1)).toBe("[DONE]");

      upstream.enqueue({ kind: "status", status: 400 });
      const refused = await chat(false);
      expect(refused.status).toBe(400);
      expect(((await refused.json()) as { error: { type: string } }).error.type).toBe(
        "invalid_request_error",
      );

      upstream.enqueue({ kind: "cutStream", afterEvents: 2 });
      const cut: string[] = [];
      for await (const event of readSse(await chat(true))) cut.push(event.data);
      expect(JSON.parse(cut.at(-1) as string)).toHaveProperty("error");

      // Each request's onFinish failed, and its line was tried: the last request is over.
      await expect
        .poll(() => lines.filter((line) => line === "onFinish hook failed").length)
        .toBe(4);
      // One turn of the event loop: Node reports an unhandled rejection only after it.
      await new Promise(setImmediate);
      expect(lines).toContain("request completed");
      expect(lines).toContain("onError hook failed");
      expect(lines).toContain("afterResponse hook failed");
      expect(rejections).toEqual([]);
    } finally {
      process.off("unhandledRejection", onRejection);
      await logging.close();
    }
  });
});
