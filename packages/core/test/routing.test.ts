import { createCircuitBreaker } from "@aigw/balancer";
import { createMetrics } from "@aigw/metrics";
import { createAnthropic, createOpenAICompatible } from "@aigw/provider";
import {
  type AnthropicMock,
  collectLines,
  getFreePort,
  type MockUpstream,
  startAnthropicMock,
  startMockUpstream,
  waitFor,
} from "@aigw/testing";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { GatewayOptions } from "../src/index.js";
import { type RunningGateway, startGateway } from "./start-gateway.js";

// Three upstreams: one that answers, one that fails, stalls or refuses on command, and Anthropic.
let openai: MockUpstream;
let flaky: MockUpstream;
let anthropic: AnthropicMock;
let running: RunningGateway | undefined;

beforeAll(async () => {
  openai = await startMockUpstream();
  flaky = await startMockUpstream();
  anthropic = await startAnthropicMock({ apiKey: "sk-ant-routing" });
});
afterAll(async () => {
  await Promise.all([openai?.close(), flaky?.close(), anthropic?.close()]);
});
afterEach(async () => {
  await running?.close();
  running = undefined;
  openai.reset();
  flaky.reset();
  anthropic.reset();
});

const noRetries = { maxRetries: 0 };

async function start(extra: Partial<GatewayOptions> & Pick<GatewayOptions, "models">) {
  running = await startGateway({
    providers: {
      openai: createOpenAICompatible({ baseURL: openai.baseURL, retry: noRetries }),
      flaky: createOpenAICompatible({ baseURL: flaky.baseURL, retry: noRetries }),
      anthropic: createAnthropic({
        baseURL: `${anthropic.url}/v1`,
        apiKey: "sk-ant-routing",
        retry: noRetries,
      }),
    },
    ...extra,
  });
  return running;
}

function chat(model: string, extra: Record<string, unknown> = {}) {
  return fetch(`${running?.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model,
      max_tokens: 20,
      messages: [{ role: "user", content: "Hello" }],
      ...extra,
    }),
  });
}

const modelsSent = (upstream: MockUpstream) =>
  upstream.requests.map((request) => (request.body as { model: string }).model);

describe("balancing", () => {
  it("weighted: weights 5, 1, 1 give a a b a c a a, in order, through the gateway", async () => {
    await start({
      models: {
        chat: {
          targets: [
            { provider: "openai", model: "a", weight: 5 },
            { provider: "openai", model: "b", weight: 1 },
            { provider: "openai", model: "c", weight: 1 },
          ],
        },
      },
    });
    for (let index = 0; index < 14; index++) {
      const response = await chat("chat");
      expect(response.status).toBe(200);
      await response.text();
    }
    expect(modelsSent(openai).join(" ")).toBe("a a b a c a a a a b a c a a");
  });

  it("latency: sends under 20 % to a target 300 ms slower", async () => {
    await start({
      models: {
        chat: {
          strategy: "latency",
          targets: [
            { provider: "openai", model: "fast" },
            { provider: "flaky", model: "slow" },
          ],
        },
      },
    });
    flaky.enqueue(
      ...Array.from({ length: 40 }, () => ({ kind: "slowHeaders" as const, delayMs: 300 })),
    );
    for (let index = 0; index < 30; index++) {
      const response = await chat("chat");
      expect(response.status).toBe(200);
      await response.text();
    }
    expect(flaky.requests.length).toBeLessThan(30 * 0.2);
    expect(openai.requests.length + flaky.requests.length).toBe(30);
  });

  it("(B.5 10) a dead target (connection refused) gives no client errors while another is up, and trips its breaker", async () => {
    const closedPort = await getFreePort();
    const targets: string[] = [];
    running = await startGateway({
      providers: {
        dead: createOpenAICompatible({
          baseURL: `http://127.0.0.1:${closedPort}/v1`,
          retry: noRetries,
        }),
        openai: createOpenAICompatible({ baseURL: openai.baseURL, retry: noRetries }),
      },
      models: {
        chat: {
          strategy: "round-robin",
          maxAttempts: 2,
          targets: [{ provider: "dead" }, { provider: "openai" }],
        },
      },
      hooks: [{ onAttempt: (event) => void targets.push(event.target) }],
    });
    const statuses: number[] = [];
    for (let index = 0; index < 20; index++) {
      const response = await chat("chat");
      statuses.push(response.status);
      expect(response.headers.get("x-aigw-provider")).toBe("openai");
      await response.text();
    }
    expect(statuses.every((status) => status === 200)).toBe(true);
    expect(openai.requests.length).toBe(20);
    // Five refused connections in a row open its breaker: it is tried no more.
    expect(targets.filter((target) => target === "dead/chat").length).toBe(5);
  });
});

describe("moving on", () => {
  it("(B.5 1) never once a stream reached the client: a cut ends it with an error event", async () => {
    await start({
      models: {
        chat: {
          strategy: "priority",
          maxAttempts: 2,
          targets: [{ provider: "flaky" }, { provider: "openai" }],
        },
      },
    });
    flaky.enqueue({ kind: "cutStream", afterEvents: 2 });
    const response = await chat("chat", { stream: true });
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).toContain('"error"');
    expect(text).not.toContain("[DONE]");
    expect(openai.requests.length).toBe(0);
  });

  it("(B.5 5) a 429 with Retry-After 47 and no retries left fails over within 1 s, in two upstream calls", async () => {
    await start({
      models: {
        chat: {
          strategy: "priority",
          maxAttempts: 2,
          targets: [{ provider: "flaky" }, { provider: "openai" }],
        },
      },
    });
    flaky.enqueue({ kind: "status", status: 429, headers: { "retry-after": "47" } });
    const started = performance.now();
    const response = await chat("chat");
    expect(response.status).toBe(200);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(response.headers.get("x-aigw-provider")).toBe("openai");
    expect(response.headers.get("x-aigw-attempts")).toBe("2");
    expect(flaky.requests.length + openai.requests.length).toBe(2);
  });

  it("(B.5 3) a 429 at the start of a stream falls back like any other", async () => {
    await start({
      models: {
        chat: {
          strategy: "priority",
          maxAttempts: 2,
          targets: [{ provider: "flaky" }, { provider: "openai" }],
        },
      },
    });
    flaky.enqueue({ kind: "status", status: 429 });
    const response = await chat("chat", { stream: true });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-aigw-provider")).toBe("openai");
    expect(await response.text()).toContain("[DONE]");
  });

  it("reaches every target and fallback route by default, whatever the retries", async () => {
    await start({
      models: {
        chat: {
          targets: [
            { provider: "flaky", model: "one" },
            { provider: "flaky", model: "two" },
          ],
          fallbacks: ["backup"],
        },
        backup: { provider: "openai", model: "spare" },
      },
    });
    flaky.enqueue({ kind: "status", status: 500 }, { kind: "status", status: 500 });
    const response = await chat("chat");
    expect(response.status).toBe(200);
    expect(response.headers.get("x-aigw-attempts")).toBe("3");
    expect(modelsSent(openai)).toEqual(["spare"]);
  });

  it("(B.5 4) never goes past the attempt budget across targets and fallback routes", async () => {
    await start({
      models: {
        chat: {
          maxAttempts: 3,
          strategy: "priority",
          targets: [
            { provider: "flaky", model: "one" },
            { provider: "flaky", model: "two" },
          ],
          fallbacks: ["backup"],
        },
        backup: {
          targets: [
            { provider: "flaky", model: "three" },
            { provider: "flaky", model: "four" },
          ],
        },
      },
      routing: { breaker: createCircuitBreaker({ consecutiveFailures: 100 }) },
    });
    flaky.enqueue(...Array.from({ length: 10 }, () => ({ kind: "status" as const, status: 500 })));
    const response = await chat("chat");
    expect(response.status).toBe(502);
    expect(response.headers.get("x-aigw-attempts")).toBe("3");
    expect(response.headers.get("x-should-retry")).toBe("false");
    expect(modelsSent(flaky)).toEqual(["one", "two", "three"]);
  });

  it("a stream whose first token is late moves on before anything reached the client", async () => {
    await start({
      models: {
        chat: {
          strategy: "priority",
          maxAttempts: 2,
          targets: [{ provider: "flaky", firstTokenTimeoutMs: 2_500 }, { provider: "openai" }],
        },
      },
    });
    flaky.enqueue({ kind: "slowFirstEvent", delayMs: 10_000 });
    const response = await chat("chat", { stream: true });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-aigw-provider")).toBe("openai");
    expect(await response.text()).toContain("[DONE]");
    await waitFor(() => flaky.requests[0]?.clientClosed === true);
  });

  it("(B.5 6) a 400 does not move on; a context-length error goes to the context fallbacks", async () => {
    await start({
      models: {
        chat: {
          strategy: "priority",
          maxAttempts: 2,
          targets: [{ provider: "flaky" }, { provider: "openai" }],
          contextFallbacks: ["big"],
        },
        big: { provider: "openai", model: "big-context" },
      },
    });
    flaky.enqueue({ kind: "status", status: 400 });
    const refused = await chat("chat");
    expect(refused.status).toBe(400);
    expect(openai.requests.length).toBe(0);

    flaky.enqueue({
      kind: "status",
      status: 400,
      body: {
        error: {
          message: "This model's maximum context length is 8192 tokens.",
          type: "invalid_request_error",
          param: "messages",
          code: "context_length_exceeded",
        },
      },
    });
    const moved = await chat("chat");
    expect(moved.status).toBe(200);
    expect(modelsSent(openai)).toEqual(["big-context"]);
  });

  it("answers an OpenAI client from an Anthropic fallback when the OpenAI target fails", async () => {
    await start({
      models: {
        chat: { provider: "flaky", model: "gpt-4o-mini", maxAttempts: 2, fallbacks: ["claude"] },
        claude: { provider: "anthropic", model: "claude-sonnet-4-5" },
      },
    });
    flaky.enqueue({ kind: "status", status: 503 });
    const completion = await running?.client.chat.completions.create({
      model: "chat",
      max_tokens: 20,
      messages: [{ role: "user", content: "Hello" }],
    });
    expect(completion?.object).toBe("chat.completion");
    expect(completion?.choices[0]?.message.content).toBeTruthy();
    expect(anthropic.requests[0]?.path).toBe("/v1/messages");
  });
});

describe("routes that mix protocols", () => {
  it("send what one provider cannot translate to a target that can, and refuse it only when none can", async () => {
    await start({
      models: {
        mixed: {
          strategy: "round-robin",
          maxAttempts: 1,
          targets: [
            { provider: "openai", model: "gpt-4o-mini" },
            { provider: "anthropic", model: "claude-sonnet-4-5" },
          ],
        },
        claude: { provider: "anthropic", model: "claude-sonnet-4-5" },
      },
    });
    for (let index = 0; index < 4; index++) {
      const response = await chat("mixed", { n: 2 });
      expect(response.status).toBe(200);
      expect(response.headers.get("x-aigw-provider")).toBe("openai");
      expect(response.headers.get("x-aigw-attempts")).toBe("1");
      await response.text();
    }
    const refused = await chat("claude", { n: 2 });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe(
      "unsupported_parameter",
    );
    expect(anthropic.requests.length).toBe(0);
  });
});

describe("targets' own rate limits", () => {
  it("(B.5 2) skip a target over its rpm, to the next one, and answer 429 once all are", async () => {
    await start({
      models: {
        chat: {
          strategy: "priority",
          maxAttempts: 2,
          targets: [
            { provider: "flaky", model: "small", rpm: 2 },
            { provider: "openai", model: "spare", rpm: 1 },
          ],
        },
      },
    });
    const providers: (string | null)[] = [];
    for (let index = 0; index < 3; index++) {
      const response = await chat("chat");
      expect(response.status).toBe(200);
      providers.push(response.headers.get("x-aigw-provider"));
      await response.text();
    }
    expect(providers).toEqual(["flaky", "flaky", "openai"]);
    const full = await chat("chat");
    expect(full.status).toBe(429);
    expect(Number(full.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(((await full.json()) as { error: { code: string } }).error.code).toBe(
      "upstream_capacity_exceeded",
    );
    expect(flaky.requests.length + openai.requests.length).toBe(3);
  });
});

describe("the circuit breaker", () => {
  it("takes a target that answers 401 out after its failures, and moves on meanwhile", async () => {
    const locked = await startMockUpstream({ apiKey: "sk-right" });
    try {
      running = await startGateway({
        providers: {
          locked: createOpenAICompatible({
            baseURL: locked.baseURL,
            apiKey: "sk-wrong",
            retry: noRetries,
          }),
          openai: createOpenAICompatible({ baseURL: openai.baseURL, retry: noRetries }),
        },
        models: {
          chat: {
            strategy: "priority",
            maxAttempts: 2,
            targets: [{ provider: "locked" }, { provider: "openai" }],
          },
        },
        routing: { breaker: createCircuitBreaker({ consecutiveFailures: 2, cooldownMs: 60_000 }) },
      });
      for (let index = 0; index < 5; index++) {
        const response = await chat("chat");
        expect(response.status).toBe(200);
        await response.text();
      }
      expect(locked.requests.length).toBe(2);
      expect(openai.requests.length).toBe(5);
    } finally {
      await locked.close();
    }
  });

  it("(B.5 8) answers 503 with Retry-After once every target is out, and lets a target back after it recovers", async () => {
    await start({
      models: { chat: { targets: [{ provider: "flaky" }] } },
      routing: {
        breaker: createCircuitBreaker({ consecutiveFailures: 2, cooldownMs: 1_000, probes: 1 }),
      },
    });
    flaky.enqueue({ kind: "status", status: 500 }, { kind: "status", status: 500 });
    expect((await chat("chat")).status).toBe(502);
    expect((await chat("chat")).status).toBe(502);
    const out = await chat("chat");
    expect(out.status).toBe(503);
    expect(out.headers.get("retry-after")).toBe("1");
    expect(((await out.json()) as { error: { code: string } }).error.code).toBe(
      "no_healthy_upstream",
    );
    expect(flaky.requests.length).toBe(2);
    // After the cooldown, one probe goes through, and its success closes the breaker.
    await waitFor(async () => (await chat("chat")).status === 200, { timeoutMs: 5_000 });
    expect((await chat("chat")).status).toBe(200);
    expect(flaky.requests.length).toBe(4);
  });

  it("answers with the upstream's failure, not 'out of rotation', when the fallback's targets are all out", async () => {
    await start({
      models: {
        chat: { provider: "flaky", model: "a", fallbacks: ["backup"] },
        backup: { provider: "openai", model: "b" },
      },
      routing: { breaker: createCircuitBreaker({ consecutiveFailures: 1, cooldownMs: 60_000 }) },
    });
    openai.enqueue({ kind: "status", status: 500 });
    expect((await chat("backup")).status).toBe(502);
    expect((await chat("backup")).status).toBe(503);
    flaky.enqueue({ kind: "status", status: 500 });
    const response = await chat("chat");
    expect(response.status).toBe(502);
    expect(response.headers.get("x-aigw-attempts")).toBe("1");
    expect(response.headers.get("x-should-retry")).toBe("false");
    const { error } = (await response.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe("upstream_error");
    expect(error.message).not.toContain("backup");
  });

  it("(B.5 9) passes a single target's 429 through instead of cooling it", async () => {
    await start({
      models: { chat: { provider: "flaky" } },
      routing: { breaker: createCircuitBreaker({ consecutiveFailures: 1 }) },
    });
    flaky.enqueue(
      ...Array.from({ length: 3 }, () => ({
        kind: "status" as const,
        status: 429,
        headers: { "retry-after": "47" },
      })),
    );
    for (let index = 0; index < 3; index++) {
      const response = await chat("chat");
      expect(response.status).toBe(429);
      expect(response.headers.get("retry-after")).toBe("47");
    }
    expect((await chat("chat")).status).toBe(200);
    expect(flaky.requests.length).toBe(4);
  });
});

describe("what operators see", () => {
  it("metrics per target, breaker trips and state, each attempt in the access log, and /admin/targets", async () => {
    const metrics = createMetrics();
    const lines: string[] = [];
    await start({
      models: {
        chat: { provider: "flaky", model: "m", maxAttempts: 2, fallbacks: ["backup"] },
        backup: { provider: "openai", model: "b" },
      },
      metrics,
      logger: pino(collectLines((line) => lines.push(line))),
      adminEndpoint: { bearerToken: "admin-secret-token" },
    });
    flaky.enqueue(...Array.from({ length: 5 }, () => ({ kind: "status" as const, status: 500 })));
    for (let index = 0; index < 5; index++) {
      const response = await chat("chat");
      expect(response.status).toBe(200);
      await response.text();
    }
    const text = await metrics.expose();
    expect(text).toContain('aigw_circuit_breaker_trips_total{target="flaky/m"} 1');
    expect(text).toContain('aigw_circuit_breaker_state{target="flaky/m"} 2');
    expect(text).toContain('aigw_circuit_breaker_state{target="openai/b"} 0');
    expect(text).toContain('aigw_route_target_attempts_total{target="flaky/m",fallback="false"} 5');
    expect(text).toContain('aigw_route_target_attempts_total{target="openai/b",fallback="true"} 5');
    await waitFor(() => lines.length >= 5);
    const access = JSON.parse(lines[0] as string);
    expect(access.target).toBe("openai/b");
    expect(access.tried).toEqual([
      { target: "flaky/m", status: 500, ms: expect.any(Number) },
      { target: "openai/b", status: 200, ms: expect.any(Number), route: "backup" },
    ]);

    const admin = await fetch(`${running?.url}/admin/targets`, {
      headers: { authorization: "Bearer admin-secret-token" },
    });
    const { data } = (await admin.json()) as { data: Record<string, unknown>[] };
    expect(data.find((target) => target.id === "flaky/m")).toMatchObject({
      provider: "flaky",
      model: "m",
      routes: ["chat"],
      status: "open",
      trips: 1,
      in_flight: 0,
    });
    expect((await fetch(`${running?.url}/admin/targets`)).status).toBe(401);
  });

  it("serves no admin endpoint unless asked to", async () => {
    await start({ models: { chat: { provider: "openai" } } });
    expect((await fetch(`${running?.url}/admin/targets`)).status).toBe(404);
  });
});

describe("the response cache", () => {
  it("keys on the route and the requested model, never on the target that answered", async () => {
    const { createMemoryCache } = await import("@aigw/cache");
    await start({
      models: {
        chat: {
          strategy: "round-robin",
          targets: [
            { provider: "openai", model: "a" },
            { provider: "flaky", model: "b" },
          ],
        },
      },
      cache: { store: createMemoryCache() },
    });
    const first = await chat("chat");
    expect(first.headers.get("x-aigw-cache")).toBe("MISS");
    await first.text();
    const second = await chat("chat");
    expect(second.headers.get("x-aigw-cache")).toBe("HIT");
    expect(openai.requests.length + flaky.requests.length).toBe(1);
  });
});
