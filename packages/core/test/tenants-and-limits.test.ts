import { createMetrics } from "@aigw/metrics";
import { createOpenAICompatible } from "@aigw/provider";
import {
  createMemoryLimiter,
  createRedisLimiter,
  type Limiter,
  type LimiterOptions,
} from "@aigw/ratelimit";
import {
  type MockUpstream,
  type RedisServer,
  readSse,
  startMockUpstream,
  startRedis,
  waitFor,
} from "@aigw/testing";
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type GatewayOptions, hashApiKey } from "../src/index.js";
import { type RunningGateway, startGateway } from "./start-gateway.js";

const acmeKey = "aigw-acme-key-1";
const globexKey = "aigw-globex-key-2";
let upstream: MockUpstream;
let running: RunningGateway | undefined;
const limiters: Limiter[] = [];

beforeAll(async () => {
  upstream = await startMockUpstream();
});
afterAll(() => upstream?.close());
afterEach(async () => {
  await running?.close();
  running = undefined;
  upstream.reset();
  await Promise.all(limiters.splice(0).map((limiter) => limiter.close()));
});

function options(extra: Partial<GatewayOptions> = {}): GatewayOptions {
  return {
    providers: { mock: createOpenAICompatible({ baseURL: upstream.baseURL }) },
    models: { "gpt-4o-mini": { provider: "mock" }, "gpt-*": { provider: "mock" } },
    ...extra,
  };
}

function client(key: string) {
  return new OpenAI({ baseURL: `${running?.url}/v1`, apiKey: key, maxRetries: 0 });
}

const hello = { model: "gpt-4o-mini", messages: [{ role: "user" as const, content: "hello" }] };

describe("tenants and gateway keys", () => {
  it("401 for a missing or unknown key; a known key, as Bearer or x-api-key, names the tenant", async () => {
    const seen: string[] = [];
    running = await startGateway(
      options({
        tenants: {
          acme: { keyHashes: [hashApiKey(acmeKey)] },
          globex: { keyHashes: [hashApiKey(globexKey)] },
        },
        hooks: [{ onRequest: (_request, context) => void seen.push(context.tenant) }],
      }),
    );
    const missing = await fetch(`${running.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(hello),
    });
    expect(missing.status).toBe(401);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe(
      "invalid_api_key",
    );
    await expect(client("aigw-wrong").chat.completions.create(hello)).rejects.toBeInstanceOf(
      OpenAI.AuthenticationError,
    );
    await client(acmeKey).chat.completions.create(hello);
    await fetch(`${running.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "x-api-key": globexKey, "content-type": "application/json" },
      body: JSON.stringify(hello),
    });
    expect(seen).toEqual(["acme", "globex"]);
    expect(
      upstream.requests.every((request) => !request.headers.authorization?.includes("aigw-")),
    ).toBe(true);
  });

  it("403 model_not_allowed outside the tenant's models, which also shapes /v1/models", async () => {
    running = await startGateway(
      options({ tenants: { acme: { keyHashes: [hashApiKey(acmeKey)], models: ["gpt-4o-mini"] } } }),
    );
    const acme = client(acmeKey);
    const error = await acme.chat.completions
      .create({ ...hello, model: "gpt-5" })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe("model_not_allowed");
    await acme.chat.completions.create(hello);
    expect((await acme.models.list()).data.map((model) => model.id)).toEqual(["gpt-4o-mini"]);
  });

  it("an authenticate hook replaces key lookup", async () => {
    running = await startGateway(
      options({
        authenticate: (request) => (request.headers["x-team"] === "blue" ? "blue-team" : undefined),
        hooks: [
          {
            onRequest(_request, context) {
              if (context.tenant !== "blue-team") throw new Error("wrong tenant");
            },
          },
        ],
      }),
    );
    const denied = await fetch(`${running.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(hello),
    });
    expect(denied.status).toBe(401);
    const allowed = await fetch(`${running.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "x-team": "blue", "content-type": "application/json" },
      body: JSON.stringify(hello),
    });
    expect(allowed.status).toBe(200);
  });
});

type LimiterFactory = (options: LimiterOptions) => Limiter;

function describeLimits(storeName: string, factory: () => LimiterFactory) {
  describe(`limits (${storeName} store)`, () => {
    function limiter(limits: LimiterOptions) {
      const created = factory()(limits);
      limiters.push(created);
      return created;
    }

    it("refuses past the burst with 429, Retry-After and x-ratelimit-* headers, on success too", async () => {
      const metrics = createMetrics();
      running = await startGateway(
        options({
          metrics,
          tenants: {
            acme: {
              keyHashes: [hashApiKey(acmeKey)],
              limiter: limiter({ requests: { rate: 1 / 60, burst: 2 } }),
            },
          },
        }),
      );
      const acme = client(acmeKey);
      const first = await acme.chat.completions.create(hello).withResponse();
      expect(first.response.headers.get("x-ratelimit-limit-requests")).toBe("2");
      expect(first.response.headers.get("x-ratelimit-remaining-requests")).toBe("1");
      expect(first.response.headers.get("x-ratelimit-reset-requests")).toMatch(/^\d+(\.\d+)?m?s$/);
      await acme.chat.completions.create(hello);
      const error = await acme.chat.completions.create(hello).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(OpenAI.RateLimitError);
      const headers = (error as InstanceType<typeof OpenAI.APIError>).headers;
      expect(Number(headers?.get("retry-after"))).toBeGreaterThan(10);
      expect(headers?.get("x-ratelimit-remaining-requests")).toBe("0");
      expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe("rate_limit_exceeded");
      expect(upstream.requests).toHaveLength(2);
      expect(await metrics.expose()).toContain(
        'aigw_rate_limit_exceeded_total{endpoint="chat/completions"} 1',
      );
    });

    it("insufficient_quota when the period's tokens are spent; usage is settled to what the upstream reported", async () => {
      running = await startGateway(
        options({
          tenants: {
            acme: {
              keyHashes: [hashApiKey(acmeKey)],
              limiter: limiter({ quota: { limit: 600, period: "day" } }),
            },
          },
        }),
      );
      const acme = client(acmeKey);
      const completion = await acme.chat.completions.create({ ...hello, max_tokens: 100 });
      const reported = completion.usage?.total_tokens ?? 0;
      const usage = await waitFor(async () => {
        const body = (await (
          await fetch(`${running?.url}/v1/usage`, {
            headers: { authorization: `Bearer ${acmeKey}` },
          })
        ).json()) as {
          tenant: string;
          quota: { used: number; reserved: number; remaining: number };
        };
        return body.quota.reserved === 0 ? body : undefined;
      });
      expect(usage.tenant).toBe("acme");
      expect(usage.quota.used).toBe(reported);
      expect(usage.quota.remaining).toBe(600 - reported);
      // The estimate (prompt + max_tokens 4096 by default) no longer fits the quota.
      const error = await acme.chat.completions.create(hello).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(OpenAI.RateLimitError);
      expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe("insufficient_quota");
      expect((error as InstanceType<typeof OpenAI.APIError>).type).toBe("insufficient_quota");
      expect((error as Error).message).toMatch(
        /may use up to about 4,1\d\d tokens, more than your whole token quota \(600 this period\); without max_tokens, 4,096 output tokens are assumed: set max_tokens/,
      );
      // With max_tokens, one that does not fit what is left says so, and that waiting helps.
      const left = usage.quota.remaining;
      const tooMuch = await acme.chat.completions
        .create({ ...hello, max_tokens: left })
        .catch((caught: unknown) => caught as Error);
      expect((tooMuch as Error).message).toMatch(
        new RegExp(
          `about \\d+ tokens and only ${left} of your token quota \\(600 this period\\) remain; a lower max_tokens \\(or max_completion_tokens\\) lowers it, or wait: it resets in \\d`,
        ),
      );
    });

    it("an estimate larger than the token bucket gets 429 with x-should-retry: false", async () => {
      running = await startGateway(
        options({ limits: { limiter: limiter({ tokens: { perMinute: 1000 } }) } }),
      );
      const response = await fetch(`${running.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ ...hello, max_tokens: 5000 }),
      });
      expect(response.status).toBe(429);
      expect(response.headers.get("x-should-retry")).toBe("false");
      const { error } = (await response.json()) as { error: { message: string } };
      expect(error.message).toMatch(
        /^This request may use up to about 5,0\d\d tokens, more than the token rate limit ever allows at once \(1,000\); a lower max_tokens/,
      );
      const small = await fetch(`${running.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ ...hello, max_tokens: 50 }),
      });
      expect(small.status).toBe(200);
      expect(small.headers.get("x-ratelimit-limit-tokens")).toBe("1000");
    });

    it("max_tokens past 2^53 reserves the most a limit can count: 429, never a 500", async () => {
      running = await startGateway(
        options({ limits: { limiter: limiter({ tokens: { perMinute: 1000 } }) } }),
      );
      const response = await fetch(`${running.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: `{"model":"gpt-4o-mini","messages":[],"max_tokens":15283538489513957000}`,
      });
      expect(response.status).toBe(429);
      expect(upstream.requests).toHaveLength(0);
    });

    it("limits per user on top of the tenant's, the user from the body's user or a header", async () => {
      running = await startGateway(
        options({
          tenants: {
            acme: {
              keyHashes: [hashApiKey(acmeKey)],
              limiter: limiter({ requests: { rate: 1 / 60, burst: 3 } }),
            },
          },
          limits: {
            keyBy: "tenant+user",
            userHeader: "x-user-id",
            userLimiter: limiter({ requests: { rate: 1 / 60, burst: 1 } }),
          },
        }),
      );
      const acme = client(acmeKey);
      await acme.chat.completions.create({ ...hello, user: "ann" });
      await acme.chat.completions.create({ ...hello, user: "bob" });
      await expect(acme.chat.completions.create({ ...hello, user: "ann" })).rejects.toBeInstanceOf(
        OpenAI.RateLimitError,
      );
      const viaHeader = await acme.chat.completions
        .create(hello, { headers: { "x-user-id": "cid" } })
        .withResponse();
      expect(viaHeader.response.status).toBe(200);
      // The tenant's burst of 3 is spent: a new user is refused too.
      await expect(acme.chat.completions.create({ ...hello, user: "dan" })).rejects.toBeInstanceOf(
        OpenAI.RateLimitError,
      );
      const tooLong = await fetch(`${running.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${acmeKey}` },
        body: JSON.stringify({ ...hello, user: "u".repeat(300) }),
      });
      expect(tooLong.status).toBe(400);
      expect(((await tooLong.json()) as { error: { param: string } }).error.param).toBe("user");
    });

    it("500 concurrent requests, each naming another user, cannot get past the tenant's limits", async () => {
      const tenantLimiter = limiter({
        requests: { rate: 1 / 60, burst: 10 },
        quota: { limit: 1_000_000, period: "day" },
      });
      running = await startGateway(
        options({
          tenants: { acme: { keyHashes: [hashApiKey(acmeKey)], limiter: tenantLimiter } },
          limits: {
            keyBy: "tenant+user",
            userLimiter: limiter({ requests: { rate: 1, burst: 5 } }),
          },
        }),
      );
      const gateway = running;
      const outcomes = await Promise.all(
        Array.from({ length: 500 }, async (_, index) => {
          const response = await fetch(`${gateway.url}/v1/chat/completions`, {
            method: "POST",
            headers: { "content-type": "application/json", authorization: `Bearer ${acmeKey}` },
            body: JSON.stringify({ ...hello, user: `user-${index}` }),
          });
          const body = (await response.json()) as { usage?: { total_tokens: number } };
          return { status: response.status, tokens: body.usage?.total_tokens ?? 0 };
        }),
      );
      const admitted = outcomes.filter((outcome) => outcome.status === 200);
      expect(admitted).toHaveLength(10);
      expect(outcomes.filter((outcome) => outcome.status === 429)).toHaveLength(490);
      expect(upstream.requests).toHaveLength(10);
      const quota = await waitFor(async () => {
        const state = await tenantLimiter.usage("acme");
        return state && state.reserved === 0 ? state : undefined;
      });
      expect(quota.used).toBe(admitted.reduce((sum, outcome) => sum + outcome.tokens, 0));
      expect(quota.used).toBeGreaterThan(0);
    });

    it("20 concurrent streams near the quota's end: never more admitted than fits; usage equals what the upstream reported", async () => {
      const quota = 2_000;
      const shared = limiter({ quota: { limit: quota, period: "month" } });
      running = await startGateway(options({ limits: { limiter: shared } }));
      const gateway = running;
      const body = {
        ...hello,
        max_tokens: 150,
        stream: true,
        stream_options: { include_usage: true },
      };
      // Slow streams keep every admitted reservation in flight while the others ask.
      upstream.enqueue(
        ...Array.from({ length: 20 }, () => ({ kind: "delayEvents" as const, delayMs: 100 })),
      );
      const outcomes = await Promise.all(
        Array.from({ length: 20 }, async () => {
          const response = await fetch(`${gateway.url}/v1/chat/completions`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify(body),
          });
          if (response.status !== 200) return { status: response.status, tokens: 0 };
          let tokens = 0;
          for await (const event of readSse(response)) {
            if (event.data.includes('"usage":{'))
              tokens = JSON.parse(event.data).usage.total_tokens;
          }
          return { status: 200, tokens };
        }),
      );
      const admitted = outcomes.filter((outcome) => outcome.status === 200);
      const refused = outcomes.filter((outcome) => outcome.status === 429);
      expect(admitted.length + refused.length).toBe(20);
      // Each reservation is 150 + the prompt's estimate: at most quota / estimate fit at once.
      const estimate = 150 + Math.ceil(Buffer.byteLength(JSON.stringify(hello.messages)) / 4);
      expect(admitted.length).toBeLessThanOrEqual(Math.floor(quota / estimate));
      expect(admitted.length).toBeGreaterThan(0);
      const reported = admitted.reduce((sum, outcome) => sum + outcome.tokens, 0);
      const usage = await waitFor(async () => {
        const state = await shared.usage("127.0.0.1");
        return state && state.reserved === 0 ? state : undefined;
      });
      expect(usage.used).toBe(reported);
    });
  });
}

describeLimits("memory", () => (limits) => createMemoryLimiter(limits));

let redis: RedisServer;
describe("with a real redis-server", () => {
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(() => redis?.stop());

  let prefixes = 0;
  // Each limiter gets keys of its own: tests reuse tenant names on one Redis.
  describeLimits(
    "redis",
    () => (limits) =>
      createRedisLimiter({ ...limits, redis: redis.url, keyPrefix: `test${prefixes++}:` }),
  );

  it.each([
    ["open", 200],
    ["closed", 503],
  ] as const)(
    "Redis stopped mid-traffic, failing %s: requests never hang and get %i",
    async (policy, status) => {
      const shared = createRedisLimiter({
        redis: redis.url,
        requests: { rate: 100, burst: 100 },
        failurePolicy: policy,
        commandTimeoutMs: 300,
      });
      limiters.push(shared);
      const metrics = createMetrics();
      running = await startGateway(options({ limits: { limiter: shared }, metrics }));
      expect(
        (
          await fetch(`${running.url}/v1/chat/completions`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify(hello),
          })
        ).status,
      ).toBe(200);
      redis.pause();
      try {
        const started = performance.now();
        const responses = await Promise.all(
          Array.from({ length: 5 }, () =>
            fetch(`${running?.url}/v1/chat/completions`, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify(hello),
            }),
          ),
        );
        expect(performance.now() - started).toBeLessThan(3_000);
        expect(responses.map((response) => response.status)).toEqual(Array(5).fill(status));
        expect(await metrics.expose()).toContain('aigw_store_errors_total{store="ratelimit"} 5');
      } finally {
        redis.resume();
      }
    },
  );
});
