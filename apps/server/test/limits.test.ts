import { fileURLToPath } from "node:url";
import {
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
const servers: ServerProcess[] = [];

beforeAll(async () => {
  upstream = await startMockUpstream();
  redis = await startRedis();
});
afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()));
  await upstream?.close();
  await redis?.stop();
});

describe("limits across gateway instances", () => {
  it("`aigw keys create` prints a key and the sha256 the config stores", () => {
    const first = createKey();
    const second = createKey();
    expect(first.key).not.toBe(second.key);
    expect(first.key).toMatch(/^aigw-[\w-]{40,}$/);
  });

  it("says at startup that it runs open, and warns when it listens beyond loopback", async () => {
    const local = await runServer([]);
    servers.push(local);
    const open = await runServer([], { HOST: "0.0.0.0" });
    servers.push(open);
    const notice = (lines: string[]) =>
      lines.map((line) => JSON.parse(line)).find((line) => /no gateway keys/.test(line.msg));
    expect(notice(local.lines)).toMatchObject({ level: 30 });
    expect(notice(open.lines)).toMatchObject({ level: 40, host: "0.0.0.0" });
  });

  it("gives a dozen tenants limiters on one Redis client without a listener warning", async () => {
    const tenants = Array.from(
      { length: 12 },
      (_, index) => `  t${index}: { limits: { requestsPerSecond: 5 } }`,
    );
    const server = await runServer([
      "--config",
      await writeConfig(
        [
          "tenants:",
          ...tenants,
          "limits: { store: redis, redis: { url: 'redis://127.0.0.1:6379' } }",
          "providers: { echo: { type: echo } }",
          "models: { echo: { provider: echo } }",
        ].join("\n"),
      ),
    ]);
    servers.push(server);
    // Warnings are printed on a later tick: let one request pass through first.
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    expect(server.stderr).toBe("");
  });

  it("two gateways sharing one Redis: burst 10, refill 1/min, 100 requests → exactly 10 succeed", async () => {
    const { key, hash } = createKey();
    const file = await writeConfig(
      [
        "providers:",
        `  up: { type: openai-compatible, baseURL: '${upstream.baseURL}' }`,
        "models:",
        "  m: { provider: up }",
        "tenants:",
        `  acme: { keys: ['${hash}'], limits: { requestsPerSecond: ${1 / 60}, burst: 10 } }`,
        "limits:",
        "  store: redis",
        `  redis: { url: '${redis.url}' }`,
      ].join("\n"),
    );
    const pair = [await runServer(["--config", file]), await runServer(["--config", file])];
    servers.push(...pair);
    const statuses = await Promise.all(
      Array.from({ length: 100 }, async (_, index) => {
        const server = pair[index % 2] as ServerProcess;
        const response = await fetch(`${server.url}/v1/chat/completions`, {
          method: "POST",
          headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
          body: JSON.stringify({ model: "m", messages: [{ role: "user", content: `n${index}` }] }),
        });
        await response.arrayBuffer();
        return response.status;
      }),
    );
    expect(statuses.filter((status) => status === 200)).toHaveLength(10);
    expect(statuses.filter((status) => status === 429)).toHaveLength(90);
    expect(upstream.requests).toHaveLength(10);
    const unauthorized = await fetch(`${pair[0]?.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", messages: [] }),
    });
    expect(unauthorized.status).toBe(401);
  });
});

describe("libraries a config does not use", () => {
  const preload = fileURLToPath(new URL("fixtures/report-modules.cjs", import.meta.url));

  async function loadedPackages(config: string[]): Promise<string[]> {
    const server = await runServer(["--config", await writeConfig(config.join("\n"))], {
      NODE_OPTIONS: `--require ${preload}`,
    });
    servers.push(server);
    server.child.kill("SIGUSR2");
    await waitFor(() => server.lines.some((line) => line.includes("loadedPackages")));
    const report = server.lines.find((line) => line.includes("loadedPackages")) as string;
    return (JSON.parse(report) as { loadedPackages: string[] }).loadedPackages;
  }

  it("are not loaded: ioredis only with a Redis store", async () => {
    const base = [
      "providers:",
      `  up: { type: openai-compatible, baseURL: '${upstream.baseURL}' }`,
      "models:",
      "  m: { provider: up }",
    ];
    expect(await loadedPackages(base)).not.toContain("ioredis");
    expect(await loadedPackages([...base, "cache: { store: memory }"])).not.toContain("ioredis");
    const withRedis = [...base, "limits:", "  store: redis", `  redis: { url: '${redis.url}' }`];
    expect(await loadedPackages(withRedis)).toContain("ioredis");
  });
});
