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
      `  redis: { url: '${redis.url}', keyPrefix: '${keyPrefix}', commandTimeoutMs: 200 }`,
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

  it("serves through a Redis outage, logging it once and counting it", async () => {
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
        .filter((line) => line.msg === "response cache unreachable: serving without it");
      return found.length > 0 && found;
    });
    expect(warnings).toHaveLength(1);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toContain('aigw_store_errors_total{store="cache"} 1');
  });
});
