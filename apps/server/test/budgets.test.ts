import { createServer, type Server } from "node:http";
import {
  closeServer,
  listen,
  type MockUpstream,
  type RedisServer,
  startMockUpstream,
  startRedis,
  waitFor,
} from "@aigw/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKey, runServer, type ServerProcess, writeConfig } from "./run-server.js";

let upstream: MockUpstream;
let redis: RedisServer;
let webhook: Server;
let webhookURL: string;
const alerts: { body: Record<string, unknown>; authorization: string | undefined }[] = [];
const servers: ServerProcess[] = [];

beforeAll(async () => {
  upstream = await startMockUpstream();
  redis = await startRedis();
  webhook = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => {
      body += chunk;
    });
    request.on("end", () => {
      alerts.push({ body: JSON.parse(body), authorization: request.headers.authorization });
      response.end();
    });
  });
  webhookURL = (await listen(webhook)).url;
});
afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()));
  await upstream?.close();
  await redis?.stop();
  if (webhook) await closeServer(webhook);
});

const nano = (usd: string | number | null | undefined) => Math.round(Number(usd) * 1e9);

describe("a money budget across two gateway instances on one Redis", () => {
  it("50 concurrent requests against a budget that fits 10: never overshot, no drift, one webhook", async () => {
    const { key, hash } = createKey();
    // 1 USD per million tokens: 1,000 nano-USD per token. A request below reserves its prompt
    // estimate plus 100 output tokens (about 111,000 nano-USD) and costs about 14,000.
    const file = await writeConfig(
      [
        "providers:",
        `  up: { type: openai-compatible, baseURL: '${upstream.baseURL}' }`,
        "models:",
        "  m: { provider: up, price: { input: 1, output: 1 } }",
        "tenants:",
        "  acme:",
        `    keys: ['${hash}']`,
        "    limits: { budget: { usd: 0.00117, softUsd: 0.00007, period: month } }",
        "limits:",
        "  store: redis",
        `  redis: { url: '${redis.url}' }`,
        `  budgetWebhook: { url: '${webhookURL}', headers: { authorization: 'Bearer \${HOOK_TOKEN}' } }`,
      ].join("\n"),
    );
    const env = { HOOK_TOKEN: "hook-secret-token" };
    const instances = [
      await runServer(["--config", file], env),
      await runServer(["--config", file], env),
    ];
    servers.push(...instances);
    const ask = (index: number, maxTokens = 100) =>
      fetch(`${instances[index % 2]?.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({
          model: "m",
          max_tokens: maxTokens,
          messages: [{ role: "user", content: "hello there" }],
        }),
      });
    const usage = async () => {
      const response = await fetch(`${instances[0]?.url}/v1/usage`, {
        headers: { authorization: `Bearer ${key}` },
      });
      return ((await response.json()) as { budget: Record<string, number> }).budget;
    };

    // Every admitted request is held upstream, so all 50 ask while none has settled.
    upstream.enqueue(
      ...Array.from({ length: 50 }, () => ({ kind: "delayEvents" as const, delayMs: 3_000 })),
    );
    const first = await Promise.all(Array.from({ length: 50 }, (_, index) => ask(index)));
    const costs: number[] = [];
    const refusals: string[] = [];
    for (const response of first) {
      const body = (await response.json()) as { error?: { code: string; message: string } };
      if (response.status === 200) costs.push(nano(response.headers.get("x-aigw-cost-usd")));
      else {
        expect(response.status).toBe(429);
        expect(body.error?.code).toBe("insufficient_quota");
        refusals.push(body.error?.message ?? "");
      }
    }
    // What one request reserves, as its refusals say: exactly as many as fit were admitted.
    const reservation = nano(/may cost up to \$([\d.]+)/.exec(refusals[0] ?? "")?.[1]);
    expect(reservation).toBeGreaterThan(100_000);
    expect(costs).toHaveLength(Math.floor(1_170_000 / reservation));
    expect(costs.length).toBe(10);

    // Requests that cost what they reserve (the 3 words the mock answers), far more than
    // remains: the budget is spent to within one reservation, and not past it.
    upstream.reset();
    const second = await Promise.all(Array.from({ length: 100 }, (_, index) => ask(index, 3)));
    let refused = 0;
    for (const response of second) {
      await response.arrayBuffer();
      if (response.status === 200) costs.push(nano(response.headers.get("x-aigw-cost-usd")));
      else {
        expect(response.status).toBe(429);
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(0);
    await waitFor(async () => (await usage()).reserved === 0);
    const budget = await usage();
    expect(nano(budget.remaining)).toBeLessThan(costs.at(-1) ?? 0);
    const spent = costs.reduce((sum, cost) => sum + cost, 0);
    expect(nano(budget.spent)).toBe(spent);
    expect(nano(budget.spent)).toBeLessThanOrEqual(1_170_000);
    expect(budget).toMatchObject({ currency: "usd", limit: 0.00117, soft_limits: [0.00007] });

    // The soft threshold was passed on one instance or the other: one call, one warning.
    await waitFor(() => alerts.length > 0);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({
      authorization: "Bearer hook-secret-token",
      body: {
        type: "budget.threshold_reached",
        scope: "tenant",
        key: "acme",
        threshold_usd: 0.00007,
        limit_usd: 0.00117,
      },
    });
    const warnings = () =>
      instances.flatMap((instance) =>
        instance.lines.map((line) => JSON.parse(line)).filter((line) => line.budget),
      );
    await waitFor(() => warnings().length > 0);
    expect(warnings()).toHaveLength(1);
    for (const instance of instances) {
      expect(instance.lines.join("\n")).not.toContain("hook-secret-token");
    }
  });

  it("names the models without a price at startup, as a warning when a hard budget applies", async () => {
    const config = (budget: string) =>
      writeConfig(
        [
          "providers:",
          `  up: { type: openai-compatible, baseURL: '${upstream.baseURL}' }`,
          "models:",
          "  gpt-4o-mini: { provider: up }",
          "  house: { provider: up, model: llama }",
          "  priced: { provider: up, model: llama, price: { input: 1, output: 1 } }",
          "  'gpt-*': { provider: up }",
          budget,
        ].join("\n"),
      );
    const notice = (server: ServerProcess) =>
      server.lines.map((line) => JSON.parse(line)).find((line) => /^no price for/.test(line.msg));
    const soft = await runServer(["--config", await config("")]);
    servers.push(soft);
    await waitFor(() => notice(soft) !== undefined);
    expect(notice(soft)).toMatchObject({ level: 30, models: ["house (upstream llama)"] });
    const hard = await runServer([
      "--config",
      await config("limits: { default: { budget: { usd: 10, period: day } } }"),
    ]);
    servers.push(hard);
    await waitFor(() => notice(hard) !== undefined);
    expect(notice(hard)).toMatchObject({ level: 40, models: ["house (upstream llama)"] });
    expect(notice(hard).msg).toMatch(/refused where a hard budget applies/);
  });
});
