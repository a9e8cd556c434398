import { type RedisServer, startRedis, waitFor } from "@aigw/testing";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBalancer, createRedisCircuitBreaker } from "../src/index.js";

let server: RedisServer;
const clients: Redis[] = [];

beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  for (const client of clients) client.disconnect();
  await server?.stop();
});

function client() {
  const created = new Redis(server.port);
  clients.push(created);
  return created;
}

let prefixes = 0;
/** Two breakers on one Redis, as two gateway instances would have. */
function pair(
  options: Parameters<typeof createRedisCircuitBreaker>[0] extends infer O ? Partial<O> : never,
) {
  const keyPrefix = `test${++prefixes}:`;
  const settings = {
    flushIntervalMs: 50,
    consecutiveFailures: 2,
    cooldownMs: 1_000,
    ...options,
    keyPrefix,
  };
  return [
    createRedisCircuitBreaker({ redis: client(), ...settings }),
    createRedisCircuitBreaker({ redis: client(), ...settings }),
  ] as const;
}

describe("createRedisCircuitBreaker", () => {
  it("shares a trip between instances, within a flush or two", async () => {
    const [first, second] = pair({});
    first.record("openai/gpt-4o", { ok: false }, false);
    first.record("openai/gpt-4o", { ok: false }, false);
    await waitFor(() => first.state("openai/gpt-4o").status === "open");
    // The other instance never sent this target anything: it learns of the trip as it asks.
    expect(second.state("openai/gpt-4o").status).toBe("closed");
    await waitFor(() => second.state("openai/gpt-4o").status === "open");
    expect(second.state("openai/gpt-4o").until).toBeGreaterThan(Date.now() + 500);
    await Promise.all([first.close(), second.close()]);
  });

  it("hands out a half-open target's probe slots once, across instances, then closes it", async () => {
    const [first, second] = pair({ probes: 2, cooldownMs: 200 });
    const id = "anthropic/claude";
    first.record(id, { ok: false }, false);
    first.record(id, { ok: false }, false);
    await waitFor(() => first.state(id).status === "open");
    await waitFor(() => first.state(id).status === "half_open", { timeoutMs: 2_000 });
    const claims = await Promise.all([
      first.claimProbe(id),
      second.claimProbe(id),
      first.claimProbe(id),
      second.claimProbe(id),
    ]);
    expect(claims.filter(Boolean).length).toBe(2);
    first.record(id, { ok: true }, true);
    second.record(id, { ok: true }, true);
    await waitFor(
      () => first.state(id).status === "closed" && second.state(id).status === "closed",
    );
    await Promise.all([first.close(), second.close()]);
  });

  it("tells of a trip once, on the instance whose outcomes tripped it", async () => {
    const trips: string[] = [];
    const [first, second] = pair({ onTrip: (target: string) => trips.push(target) });
    first.record("t", { ok: false }, false);
    first.record("t", { ok: false }, false);
    second.state("t");
    await waitFor(() => second.state("t").status === "open" && first.state("t").status === "open");
    expect(trips).toEqual(["t"]);
    await Promise.all([first.close(), second.close()]);
  });

  it("honours Retry-After and extends the cooldown on a failure during it", async () => {
    const [breaker] = pair({ consecutiveFailures: 1 });
    breaker.record("t", { ok: false, retryAfterMs: 47_000 }, false);
    await waitFor(() => breaker.state("t").status === "open");
    const until = breaker.state("t").until;
    expect(until - Date.now()).toBeGreaterThan(45_000);
    breaker.record("t", { ok: false, retryAfterMs: 90_000 }, false);
    await waitFor(() => breaker.state("t").until > until + 30_000);
    await breaker.close();
  });

  it("fails open when Redis is gone, and keeps balancing", async () => {
    const lost = await startRedis();
    const redis = new Redis(lost.port, { maxRetriesPerRequest: 0, enableOfflineQueue: false });
    redis.on("error", () => {});
    const errors: Error[] = [];
    const breaker = createRedisCircuitBreaker({
      redis,
      consecutiveFailures: 1,
      flushIntervalMs: 50,
      onStoreError: (error) => errors.push(error),
    });
    breaker.record("t", { ok: false }, false);
    await waitFor(() => breaker.state("t").status === "open");
    await lost.stop();
    await waitFor(() => errors.length > 0);
    expect(breaker.state("t").status).toBe("closed");
    const balancer = createBalancer({ targets: [{ id: "t" }], breaker });
    expect((await balancer.pick())?.target).toBe("t");
    await breaker.close();
    redis.disconnect();
  });
});
