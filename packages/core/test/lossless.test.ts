import { createMemoryCache } from "@aigw/cache";
import { createOpenAICompatible } from "@aigw/provider";
import { type MockUpstream, readSse, startMockUpstream } from "@aigw/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { GatewayOptions } from "../src/index.js";
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

function start(extra: Partial<GatewayOptions> = {}) {
  return startGateway({
    providers: {
      mock: createOpenAICompatible({ baseURL: upstream.baseURL, retry: { maxRetries: 0 } }),
    },
    models: {
      "gpt-*": { provider: "mock" },
      fast: { provider: "mock", model: "gpt-4o-mini" },
      "mock/*": { provider: "mock" },
    },
    ...extra,
  });
}

function post(text: string, path = "/v1/chat/completions") {
  return fetch(`${running?.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: text,
  });
}

const seedBody = (model: string, seed: string, stream = false) =>
  `{"model":"${model}","seed":${seed},"stream":${stream},"messages":[{"role":"user","content":"exact"}]}`;

describe("numbers JSON cannot hold exactly", () => {
  it.each([
    ["an alias", "fast", false],
    ["a provider prefix", "mock/gpt-4o-mini", false],
    ["a stream (the gateway adds stream_options)", "gpt-4o-mini", true],
    ["an aliased stream", "fast", true],
  ] as const)("reach the upstream as written through %s", async (_route, model, stream) => {
    running = await start();
    const response = await post(seedBody(model, "9007199254740993", stream));
    expect(response.status).toBe(200);
    await response.text();
    const sent = upstream.requests[0]?.rawBody ?? "";
    expect(sent).toContain('"seed":9007199254740993');
    expect(JSON.parse(sent).model).toBe("gpt-4o-mini");
  });

  it("give different cache keys: seed ...993 is not answered from seed ...992's entry", async () => {
    running = await start({ cache: { store: createMemoryCache() } });
    const first = await post(seedBody("gpt-4o-mini", "9007199254740992"));
    expect(first.headers.get("x-aigw-cache")).toBe("MISS");
    await first.text();
    const other = await post(seedBody("gpt-4o-mini", "9007199254740993"));
    expect(other.headers.get("x-aigw-cache")).toBe("MISS");
    await other.text();
    const again = await post(seedBody("gpt-4o-mini", "9007199254740993"));
    expect(again.headers.get("x-aigw-cache")).toBe("HIT");
    expect(upstream.requests).toHaveLength(2);
  });
});

describe("compressed upstream answers", () => {
  it.each(["gzip", "deflate", "br"] as const)(
    "are decoded: %s JSON with its usage",
    async (encoding) => {
      running = await start();
      upstream.enqueue({ kind: "compressed", encoding });
      const response = await post(seedBody("gpt-4o-mini", "1"));
      expect(response.status).toBe(200);
      const body = (await response.json()) as {
        choices: { message: { content: string } }[];
        usage: object;
      };
      expect(body.choices[0]?.message.content).toBe("mock: exact");
      expect(body.usage).toBeDefined();
      expect(response.headers.get("content-encoding")).toBeNull();
    },
  );

  it("keep an error's message when the error is compressed", async () => {
    running = await start();
    upstream.enqueue({
      kind: "status",
      status: 400,
      encoding: "gzip",
      body: { error: { message: "max_tokens is too large", type: "invalid_request_error" } },
    });
    const response = await post(seedBody("gpt-4o-mini", "1"));
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { message: string } }).error.message).toBe(
      "max_tokens is too large",
    );
  });

  it("still reach the client event by event when the stream is compressed", async () => {
    running = await start();
    upstream.enqueue({ kind: "compressed", encoding: "gzip", delayMs: 150 });
    const started = performance.now();
    const response = await post(seedBody("gpt-4o-mini", "1", true));
    const arrivals: number[] = [];
    let text = "";
    for await (const event of readSse(response)) {
      arrivals.push(performance.now() - started);
      const chunk = event.data === "[DONE]" ? undefined : JSON.parse(event.data);
      text += chunk?.choices?.[0]?.delta?.content ?? "";
    }
    expect(text).toBe("mock: exact");
    // Events came as they were sent, not all at the end.
    expect((arrivals.at(-1) ?? 0) - (arrivals[0] ?? 0)).toBeGreaterThan(300);
  });
});

describe("what the gateway adds on its own", () => {
  it("never fails a request: an upstream that refuses stream_options gets the client's request, and never the field again", async () => {
    running = await start();
    upstream.enqueue({
      kind: "status",
      status: 400,
      body: {
        error: {
          message: "Unrecognized request argument supplied: stream_options",
          type: "invalid_request_error",
        },
      },
    });
    const stream = seedBody("gpt-4o-mini", "1", true);
    const first = await post(stream);
    expect(first.status).toBe(200);
    expect(await first.text()).toContain("[DONE]");
    const [refused, plain] = upstream.requests;
    expect(JSON.parse(refused?.rawBody ?? "{}").stream_options).toEqual({ include_usage: true });
    expect(JSON.parse(plain?.rawBody ?? "{}").stream_options).toBeUndefined();
    expect(await (await post(stream)).text()).toContain("[DONE]");
    expect(JSON.parse(upstream.requests[2]?.rawBody ?? "{}").stream_options).toBeUndefined();
  });
});
