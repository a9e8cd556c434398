import {
  type MockUpstream,
  type RedisServer,
  startMockUpstream,
  startRedis,
  waitFor,
} from "@aigw/testing";
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { runServer, type ServerProcess, writeConfig } from "./run-server.js";

let upstream: MockUpstream;
let redis: RedisServer;
const servers: ServerProcess[] = [];

beforeAll(async () => {
  upstream = await startMockUpstream();
  redis = await startRedis();
});
afterAll(async () => {
  await upstream?.close();
  await redis?.stop();
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop()));
  upstream.reset();
});

function redisCacheConfig(keyPrefix: string) {
  return writeConfig(
    [
      "providers:",
      `  up: { type: openai-compatible, baseURL: '${upstream.baseURL}' }`,
      "models:",
      "  m: { provider: up }",
      "cache:",
      "  store: redis",
      // A cooldown longer than any test: once Redis failed, it is not waited for again.
      `  redis: { url: '${redis.url}', keyPrefix: '${keyPrefix}', commandTimeoutMs: 200, cooldownMs: 60000 }`,
    ].join("\n"),
  );
}

const request = { model: "m", messages: [{ role: "user" as const, content: "shared answer" }] };

function client(server: ServerProcess) {
  return new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "local", maxRetries: 0 });
}

describe("response cache across gateway instances", () => {
  it("one gateway serves as a HIT what another stored in the same Redis", async () => {
    const file = await redisCacheConfig(`aigw:cache:${process.pid}:shared:`);
    servers.push(await runServer(["--config", file]), await runServer(["--config", file]));
    const [first, second] = servers as [ServerProcess, ServerProcess];
    const miss = await client(first).chat.completions.create(request).withResponse();
    expect(miss.response.headers.get("x-aigw-cache")).toBe("MISS");
    const hit = await client(second).chat.completions.create(request).withResponse();
    expect(hit.response.headers.get("x-aigw-cache")).toBe("HIT");
    expect(hit.data).toEqual(miss.data);
    expect(upstream.requests).toHaveLength(1);

    const metrics = await (await fetch(`${second.url}/metrics`)).text();
    expect(metrics).toContain('aigw_cache_hits_total{endpoint="chat/completions"} 1');
    const access = await waitFor(() =>
      second.lines.map((line) => JSON.parse(line)).find((line) => line.cache),
    );
    expect(access).toMatchObject({ cache: "HIT", status: 200 });
  });

  it("serves through a Redis outage, logging it once, counting it, and skipping Redis meanwhile", async () => {
    const file = await redisCacheConfig(`aigw:cache:${process.pid}:outage:`);
    const server = await runServer(["--config", file]);
    servers.push(server);
    redis.pause();
    try {
      for (const content of ["one", "two", "three"]) {
        const answer = await client(server)
          .chat.completions.create({ model: "m", messages: [{ role: "user", content }] })
          .withResponse();
        expect(answer.response.headers.get("x-aigw-cache")).toBe("MISS");
      }
    } finally {
      redis.resume();
    }
    const warnings = await waitFor(() => {
      const found = server.lines
        .map((line) => JSON.parse(line))
        .filter((line) => /^Redis unreachable/.test(line.msg));
      return found.length > 0 && found;
    });
    expect(warnings).toHaveLength(1);
    expect(warnings[0].msg).toBe("Redis unreachable (response cache): serving without it");
    // Within the cooldown after the first failure, later requests did not wait for Redis.
    const served = server.lines
      .map((line) => JSON.parse(line))
      .filter((line) => line.path && line.status === 200);
    expect(served.at(-1).durationMs).toBeLessThan(200);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toContain('aigw_store_errors_total{store="cache"} 1');
  });

  it("waits for a dead Redis once per request when limits and cache share it, and warns once", async () => {
    const commandTimeoutMs = 1500;
    const file = await writeConfig(
      [
        "providers:",
        `  up: { type: openai-compatible, baseURL: '${upstream.baseURL}' }`,
        "models:",
        "  m: { provider: up }",
        "limits:",
        "  store: redis",
        `  redis: { url: '${redis.url}', commandTimeoutMs: ${commandTimeoutMs}, cooldownMs: 60000 }`,
        "  default: { requestsPerSecond: 100 }",
        "cache:",
        "  store: redis",
        // The same Redis, spelled otherwise: still one outage state.
        `  redis: { url: '${redis.url}/0', keyPrefix: 'aigw:cache:${process.pid}:both:', commandTimeoutMs: ${commandTimeoutMs} }`,
      ].join("\n"),
    );
    const server = await runServer(["--config", file]);
    servers.push(server);
    await client(server).chat.completions.create(request);
    redis.pause();
    try {
      for (const content of ["during one", "during two"]) {
        const answer = await client(server)
          .chat.completions.create({ model: "m", messages: [{ role: "user", content }] })
          .withResponse();
        expect(answer.response.status).toBe(200);
      }
    } finally {
      redis.resume();
    }
    const lines = () => server.lines.map((line) => JSON.parse(line));
    const during = await waitFor(() => {
      const found = lines().filter((line) => line.path && line.status === 200);
      return found.length === 3 && found.slice(1);
    });
    // The limiter's call timed out and the cache, seeing the outage, did not wait again: one
    // command timeout in all (two, one per store, before they shared the outage); the next
    // request, within the cooldown, waited for neither.
    expect(during[0].durationMs).toBeLessThan(2 * commandTimeoutMs - 300);
    expect(during[1].durationMs).toBeLessThan(commandTimeoutMs);
    const warnings = lines().filter((line) => /^Redis unreachable/.test(line.msg));
    expect(warnings).toHaveLength(1);
    expect(warnings[0].msg).toBe(
      "Redis unreachable (rate limits and response cache): letting requests through, serving without the cache",
    );
    expect(lines().some((line) => line.msg.includes("(response cache)"))).toBe(false);
  });
});
