import { createMemoryCache } from "@aigw/cache";
import { createMetrics } from "@aigw/metrics";
import { createPriceTable, formatUsd } from "@aigw/pricing";
import { createOpenAICompatible } from "@aigw/provider";
import { createMemoryLimiter, type Limiter, type LimiterOptions } from "@aigw/ratelimit";
import { type MockUpstream, startMockUpstream, waitFor } from "@aigw/testing";
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type GatewayOptions, hashApiKey, type Logger } from "../src/index.js";
import { type RunningGateway, startGateway } from "./start-gateway.js";

// Costs and money budgets through a real gateway, with the openai SDK as the client.

const acmeKey = "aigw-acme-key-1";
const globexKey = "aigw-globex-key-2";
let upstream: MockUpstream;
let running: RunningGateway | undefined;
const limiters: Limiter[] = [];
let lines: Record<string, unknown>[] = [];
const logger: Logger = {
  info: (line) => void lines.push(line as Record<string, unknown>),
  warn: (line) => void lines.push(line as Record<string, unknown>),
  error: (line) => void lines.push(line as Record<string, unknown>),
};

beforeAll(async () => {
  upstream = await startMockUpstream();
});
afterAll(() => upstream?.close());
afterEach(async () => {
  await running?.close();
  running = undefined;
  upstream.reset();
  lines = [];
  await Promise.all(limiters.splice(0).map((limiter) => limiter.close()));
});

// gpt-4o-mini in the built-in table: 0.15 USD per million input tokens, 0.6 output, i.e. 150
// and 600 nano-USD per token.
const miniCost = (usage: { prompt_tokens: number; completion_tokens: number }) =>
  usage.prompt_tokens * 150 + usage.completion_tokens * 600;

function limiter(options: LimiterOptions): Limiter {
  const created = createMemoryLimiter(options);
  limiters.push(created);
  return created;
}

function options(extra: Partial<GatewayOptions> = {}): GatewayOptions {
  return {
    providers: {
      mock: createOpenAICompatible({ baseURL: upstream.baseURL }),
      other: createOpenAICompatible({ baseURL: upstream.baseURL }),
    },
    models: {
      "gpt-4o-mini": { provider: "mock" },
      llama: { provider: "mock" },
      "house-llama": { provider: "mock", model: "llama", price: { input: 1, output: 2 } },
    },
    logger,
    ...extra,
  };
}

const client = (key = "sk-any") =>
  new OpenAI({ baseURL: `${running?.url}/v1`, apiKey: key, maxRetries: 0 });

const ask = (model = "gpt-4o-mini", content = "hello there", max_tokens?: number) => ({
  model,
  messages: [{ role: "user" as const, content }],
  ...(max_tokens === undefined ? {} : { max_tokens }),
});

const lastLine = () => lines.findLast((line) => line.requestId !== undefined) ?? {};

async function usageOf(key: string) {
  const response = await fetch(`${running?.url}/v1/usage`, {
    headers: { authorization: `Bearer ${key}` },
  });
  return (await response.json()) as {
    budget: {
      limit: number | null;
      spent: number;
      reserved: number;
      remaining: number | null;
      soft_limits: number[];
    } | null;
  };
}

describe("what a request cost", () => {
  it("prices a JSON answer from its usage: header, access log and metrics agree", async () => {
    const metrics = createMetrics();
    running = await startGateway(options({ metrics }));
    const { data, response } = await client().chat.completions.create(ask()).withResponse();
    const usage = data.usage ?? expect.fail("no usage");
    const expected = miniCost(usage);
    expect(expected).toBeGreaterThan(0);
    expect(response.headers.get("x-aigw-cost-usd")).toBe(formatUsd(expected));
    expect(lastLine().costUsd).toBe(expected / 1e9);
    expect(await metrics.expose()).toContain(
      `aigw_cost_usd_total{model="gpt-4o-mini"} ${expected / 1e9}\n`,
    );
  });

  it("ends a stream with its cost in an SSE comment, which the SDK skips", async () => {
    running = await startGateway(options());
    const response = await fetch(`${running.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        ...ask(),
        stream: true,
        stream_options: { include_usage: true },
      }),
    });
    const text = await response.text();
    const usageLine = text.split("\n").find((line) => line.includes('"usage":{'));
    const usage = JSON.parse((usageLine ?? expect.fail("no usage")).slice(6)).usage;
    expect(
      text.endsWith(`data: [DONE]\n\n: x-aigw-cost-usd: ${formatUsd(miniCost(usage))}\n\n`),
    ).toBe(true);

    const stream = await client().chat.completions.create({ ...ask(), stream: true });
    let answer = "";
    for await (const chunk of stream) answer += chunk.choices[0]?.delta.content ?? "";
    expect(answer).toBe("mock: hello there");
  });

  it("a model without a price costs unknown, never 0; a route's own price applies to its alias", async () => {
    const metrics = createMetrics();
    running = await startGateway(options({ metrics }));
    const unknown = await client().chat.completions.create(ask("llama")).withResponse();
    expect(unknown.response.headers.get("x-aigw-cost-usd")).toBeNull();
    expect(lastLine()).toMatchObject({ costUsd: null, model: "llama" });
    expect(await metrics.expose()).toContain('aigw_cost_unknown_total{model="llama"} 1\n');

    const priced = await client().chat.completions.create(ask("house-llama")).withResponse();
    const usage = priced.data.usage ?? expect.fail("no usage");
    // 1 and 2 USD per million tokens: 1,000 and 2,000 nano-USD per token.
    const cost = usage.prompt_tokens * 1000 + usage.completion_tokens * 2000;
    expect(priced.response.headers.get("x-aigw-cost-usd")).toBe(formatUsd(cost));
    expect(upstream.requests.at(-1)?.body).toMatchObject({ model: "llama" });
  });

  it("operators' prices override the built-in table", async () => {
    running = await startGateway(
      options({
        prices: createPriceTable({ prices: { "gpt-4o-mini": { input: 10, output: 20 } } }),
      }),
    );
    const { data, response } = await client().chat.completions.create(ask()).withResponse();
    const usage = data.usage ?? expect.fail("no usage");
    const cost = usage.prompt_tokens * 10_000 + usage.completion_tokens * 20_000;
    expect(response.headers.get("x-aigw-cost-usd")).toBe(formatUsd(cost));
  });

  it("a cache hit costs nothing upstream and says what it saved", async () => {
    const metrics = createMetrics();
    running = await startGateway(options({ metrics, cache: { store: createMemoryCache() } }));
    const first = await client().chat.completions.create(ask()).withResponse();
    const cost = miniCost(first.data.usage ?? expect.fail("no usage"));
    const hit = await client().chat.completions.create(ask()).withResponse();
    expect(hit.response.headers.get("x-aigw-cache")).toBe("HIT");
    expect(hit.response.headers.get("x-aigw-cost-usd")).toBe("0");
    expect(hit.response.headers.get("x-aigw-cost-saved-usd")).toBe(formatUsd(cost));
    expect(lastLine()).toMatchObject({ costUsd: 0, costSavedUsd: cost / 1e9 });
    const text = await metrics.expose();
    expect(text).toContain(`aigw_cost_usd_total{model="gpt-4o-mini"} ${cost / 1e9}\n`);
    expect(text).toContain(`aigw_cost_saved_usd_total{model="gpt-4o-mini"} ${cost / 1e9}\n`);
  });

  it("costHeaders: false keeps the cost from clients, not from the log", async () => {
    running = await startGateway(options({ costHeaders: false }));
    const { response } = await client().chat.completions.create(ask()).withResponse();
    expect(response.headers.get("x-aigw-cost-usd")).toBeNull();
    expect(lastLine().costUsd).toBeGreaterThan(0);
    const streamed = await fetch(`${running.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...ask(), stream: true }),
    });
    expect(await streamed.text()).not.toContain("x-aigw-cost-usd");
  });

  it("prices: false turns costs off", async () => {
    running = await startGateway(options({ prices: false }));
    const { response } = await client().chat.completions.create(ask()).withResponse();
    expect(response.headers.get("x-aigw-cost-usd")).toBeNull();
    expect(lastLine().costUsd).toBeUndefined();
  });
});

describe("money budgets", () => {
  const tenants = (budget: LimiterOptions["budget"]) => ({
    acme: { keyHashes: [hashApiKey(acmeKey)], limiter: limiter({ budget }) },
    globex: { keyHashes: [hashApiKey(globexKey)] },
  });

  it("spends a tenant's budget by what requests cost, and refuses one whose reservation does not fit, saying so", async () => {
    // Each request reserves its prompt estimate at 150 and 100 output tokens at 600 nano-USD:
    // about 62,000; it costs about 3,000.
    running = await startGateway(options({ tenants: tenants({ limit: 70_000, period: "day" }) }));
    const acme = client(acmeKey);
    let spent = 0;
    for (let request = 0; request < 3; request++) {
      const { response } = await acme.chat.completions
        .create(ask(undefined, undefined, 100))
        .withResponse();
      spent += Math.round(Number(response.headers.get("x-aigw-cost-usd")) * 1e9);
    }
    await waitFor(async () => (await usageOf(acmeKey)).budget?.reserved === 0);
    const report = await usageOf(acmeKey);
    expect(report.budget).toMatchObject({ limit: 0.00007, reserved: 0, soft_limits: [] });
    expect(Math.round((report.budget?.spent ?? 0) * 1e9)).toBe(spent);

    const refused = await acme.chat.completions
      .create(ask(undefined, undefined, 100))
      .then(() => expect.fail("admitted"))
      .catch((error: unknown) => error as InstanceType<typeof OpenAI.APIError>);
    expect(refused.status).toBe(429);
    expect(refused.code).toBe("insufficient_quota");
    expect(refused.message).toMatch(
      /^429 This request may cost up to \$0\.0000\d+ and only \$0\.0000\d+ of your budget \(\$0\.00007 this period\) remains; a lower max_tokens .*, or wait: it resets in \d+ (s|min|h|days)\.$/,
    );
    expect(refused.headers?.get("x-should-retry")).toBe("false");
    const tooLarge = await acme.chat.completions
      .create(ask(undefined, undefined, 4_000))
      .catch((error: unknown) => error as InstanceType<typeof OpenAI.APIError>);
    expect((tooLarge as { message: string }).message).toMatch(
      /more than your budget allows in a whole period \(\$0\.00007 this period\)/,
    );
    // Another tenant has no budget.
    await client(globexKey).chat.completions.create(ask());
    expect((await usageOf(globexKey)).budget).toBeNull();
  });

  it("refuses, 400 model_not_priced, a model without a price where a hard budget applies", async () => {
    running = await startGateway(options({ tenants: tenants({ limit: 1e12, period: "month" }) }));
    const refused = await client(acmeKey)
      .chat.completions.create(ask("llama"))
      .catch((error: unknown) => error as InstanceType<typeof OpenAI.APIError>);
    expect(refused).toMatchObject({ status: 400, code: "model_not_priced", param: "model" });
    expect(upstream.requests).toHaveLength(0);
    expect((await usageOf(acmeKey)).budget).toMatchObject({ spent: 0, reserved: 0 });
    // A budget that only warns does not need a price.
    await running.close();
    running = await startGateway(
      options({ tenants: tenants({ thresholds: [1_000], period: "month" }) }),
    );
    await client(acmeKey).chat.completions.create(ask("llama"));
  });

  it("settles a stream cut off by its client to the usage seen so far", async () => {
    running = await startGateway(options({ tenants: tenants({ limit: 1e12, period: "month" }) }));
    upstream.enqueue({ kind: "stallStream", afterEvents: 3 });
    const controller = new AbortController();
    const stream = await client(acmeKey).chat.completions.create(
      { ...ask(undefined, "one two three four five six", 1_000), stream: true },
      { signal: controller.signal },
    );
    for await (const _chunk of stream) {
      controller.abort();
    }
    await waitFor(async () => (await usageOf(acmeKey)).budget?.reserved === 0);
    const spent = Math.round(((await usageOf(acmeKey)).budget?.spent ?? 0) * 1e9);
    // Its prompt, and the few words that came, at gpt-4o-mini's prices: far below the 1,000
    // output tokens it reserved.
    expect(spent).toBeGreaterThan(0);
    expect(spent).toBeLessThan(1_000 * 600);
    const streamLine = lines.find((line) => line.stream === true);
    expect(streamLine).toMatchObject({ status: 499, tokensEstimated: true, costUsd: spent / 1e9 });
  });

  it("a route's budget spans tenants and refuses as the model's budget", async () => {
    running = await startGateway(
      options({
        tenants: {
          acme: { keyHashes: [hashApiKey(acmeKey)] },
          globex: { keyHashes: [hashApiKey(globexKey)] },
        },
        models: { "gpt-4o-mini": { provider: "mock", budget: { usd: 0.0001, period: "day" } } },
      }),
    );
    await client(acmeKey).chat.completions.create(ask(undefined, undefined, 100));
    const refused = await client(globexKey)
      .chat.completions.create(ask(undefined, undefined, 160))
      .catch((error: unknown) => error as InstanceType<typeof OpenAI.APIError>);
    expect(refused).toMatchObject({ status: 429, code: "insufficient_quota" });

    expect((refused as Error).message).toMatch(/of this model's budget \(\$0\.0001 this period\)/);
  });

  it("a target over its budget leaves rotation: traffic goes to the route's other targets", async () => {
    running = await startGateway(
      options({
        models: {
          "gpt-4o-mini": {
            strategy: "priority",
            // About 13 tokens at 1,000 USD per million: each request costs about 0.013 USD
            // and reserves about 0.015 (5 output tokens at most).
            price: { input: 1000, output: 1000 },
            targets: [
              { provider: "mock", budget: { usd: 0.02, period: "month" } },
              { provider: "other" },
            ],
          },
        },
      }),
    );
    const served: (string | null)[] = [];
    for (let request = 0; request < 3; request++) {
      const { response } = await client()
        .chat.completions.create(ask(undefined, undefined, 5))
        .withResponse();
      served.push(response.headers.get("x-aigw-provider"));
    }
    expect(served).toEqual(["mock", "other", "other"]);
  });

  it("a request a target's budget has no room for is refused as such, and leaves the target for smaller ones", async () => {
    running = await startGateway(
      options({
        models: {
          "gpt-4o-mini": {
            price: { input: 1000, output: 1000 },
            targets: [{ provider: "mock", budget: { usd: 0.05, period: "month" } }],
          },
        },
      }),
    );
    const large = await client()
      .chat.completions.create(ask(undefined, undefined, 100))
      .catch((error: unknown) => error as InstanceType<typeof OpenAI.APIError>);
    expect(large).toMatchObject({ status: 429, code: "insufficient_quota" });
    expect((large as Error).message).toMatch(
      /budgets of the upstreams of model route 'gpt-4o-mini' have no room for this request/,
    );
    expect(upstream.requests).toHaveLength(0);
    const { response } = await client()
      .chat.completions.create(ask(undefined, undefined, 5))
      .withResponse();
    expect(response.headers.get("x-aigw-provider")).toBe("mock");
  });

  it("charges a request whose client left before any usage came what it reserved, flagged estimated", async () => {
    running = await startGateway(options({ tenants: tenants({ limit: 1e12, period: "month" }) }));
    upstream.enqueue({ kind: "stall" });
    const controller = new AbortController();
    const asked = client(acmeKey)
      .chat.completions.create(ask(undefined, undefined, 100), { signal: controller.signal })
      .catch(() => undefined);
    await waitFor(() => upstream.requests.length === 1);
    controller.abort();
    await asked;
    await waitFor(async () => (await usageOf(acmeKey)).budget?.reserved === 0);
    const spent = Math.round(((await usageOf(acmeKey)).budget?.spent ?? 0) * 1e9);
    // Its prompt estimate (11 tokens) at 150 and 100 output tokens at 600 nano-USD.
    expect(spent).toBe(11 * 150 + 100 * 600);
    await waitFor(() => lines.some((line) => line.status === 499));
    expect(lines.find((line) => line.status === 499)).toMatchObject({
      costUsd: spent / 1e9,
      costEstimated: true,
    });
  });

  it("refuses budgets it cannot count", async () => {
    await expect(
      startGateway(
        options({
          models: { "gpt-4o-mini": { provider: "mock", budget: { usd: -1, period: "day" } } },
        }),
      ),
    ).rejects.toThrow(/models\.gpt-4o-mini\.budget\.usd: expected an amount of USD above 0/);
    await expect(
      startGateway(
        options({
          models: {
            "gpt-4o-mini": { provider: "mock", price: { input: 1, output: -2 } },
          },
        }),
      ),
    ).rejects.toThrow(/models\.gpt-4o-mini\.price: .*output/);
  });
});
