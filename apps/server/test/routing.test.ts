import {
  type MockUpstream,
  type RedisServer,
  startMockUpstream,
  startRedis,
  waitFor,
} from "@aigw/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runServer, type ServerProcess, writeConfig } from "./run-server.js";

let good: MockUpstream;
let broken: MockUpstream;
let redis: RedisServer;
const adminToken = "admin-token-0123456789";
const servers: ServerProcess[] = [];

beforeAll(async () => {
  good = await startMockUpstream();
  broken = await startMockUpstream({
    defaultBehaviour: { kind: "status", status: 503 },
  });
  redis = await startRedis();
});
afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()));
  await Promise.all([good?.close(), broken?.close()]);
  await redis?.stop();
});

async function chat(server: ServerProcess) {
  const response = await fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "chat", messages: [{ role: "user", content: "Hi" }] }),
  });
  await response.text();
  return response;
}

describe("routing across gateway instances", () => {
  it("two gateway processes on one Redis agree on a target's breaker state", async () => {
    const config = await writeConfig(`
providers:
  broken: { type: openai-compatible, baseURL: "${broken.baseURL}", retry: { maxRetries: 0 } }
  good: { type: openai-compatible, baseURL: "${good.baseURL}", retry: { maxRetries: 0 } }
models:
  chat:
    strategy: priority
    maxAttempts: 2
    targets: [{ provider: broken, model: m }, { provider: good, model: m }]
admin: { bearerToken: "${adminToken}" }
routing:
  store: redis
  redis: { url: "redis://127.0.0.1:${redis.port}" }
  breaker: { consecutiveFailures: 3, cooldownMs: 60000 }
`);
    const first = await runServer(["--config", config]);
    servers.push(first);
    const second = await runServer(["--config", config]);
    servers.push(second);
    // The second instance asks about the target once, so it reads its state from then on.
    expect((await chat(second)).status).toBe(200);
    expect(broken.requests.length).toBe(1);
    for (let index = 0; index < 3; index++) {
      const response = await chat(first);
      expect(response.status).toBe(200);
      expect(response.headers.get("x-aigw-provider")).toBe("good");
    }
    // A flush between two of them may already have tripped it: three or four failures.
    const failures = broken.requests.length;
    expect(failures).toBeGreaterThanOrEqual(3);
    // One failure on the second instance, three on the first: the shared count tripped the
    // breaker, and the second instance, which saw a single failure, holds the target out too.
    const brokenState = async (server: ServerProcess) => {
      const response = await fetch(`${server.url}/admin/targets`, {
        headers: { authorization: `Bearer ${adminToken}` },
      });
      const { data } = (await response.json()) as {
        data: { id: string; status: string; cooldown_until: string | null }[];
      };
      return data.find((target) => target.id === "broken/m");
    };
    // Whichever instance's flush tripped it, the other learns it from Redis a moment later.
    await waitFor(async () => (await brokenState(second))?.status === "open");
    await waitFor(async () => (await brokenState(first))?.status === "open");
    const [seenByFirst, seenBySecond] = [await brokenState(first), await brokenState(second)];
    expect(seenByFirst?.status).toBe("open");
    const cooldownEnd = Date.parse(seenBySecond?.cooldown_until ?? "");
    expect(cooldownEnd).toBeGreaterThan(Date.now() + 50_000);
    expect(Math.abs(cooldownEnd - Date.parse(seenByFirst?.cooldown_until ?? ""))).toBeLessThan(
      1_000,
    );
    for (let index = 0; index < 5; index++) {
      expect((await chat(second)).headers.get("x-aigw-provider")).toBe("good");
      expect((await chat(first)).headers.get("x-aigw-provider")).toBe("good");
    }
    expect(broken.requests.length).toBe(failures);
    const anonymous = await fetch(`${second.url}/admin/targets`);
    expect(anonymous.status).toBe(401);
  });
});
