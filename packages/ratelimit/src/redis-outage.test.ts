import { describe, expect, it } from "vitest";
import { createRedisOutage } from "./redis-outage.js";

describe("createRedisOutage", () => {
  it("skips Redis for the cooldown after a failure, and reports each outage once", () => {
    const seen: string[] = [];
    const outage = createRedisOutage({
      cooldownMs: 60_000,
      onOutage: (error) => seen.push(`down: ${error.message}`),
      onRecovery: () => seen.push("up"),
    });
    expect(outage.skipping).toBe(false);
    outage.succeeded();
    outage.failed(new Error("timeout"));
    outage.failed(new Error("again"));
    expect(outage.skipping).toBe(true);
    outage.succeeded();
    outage.succeeded();
    outage.failed(new Error("second outage"));
    expect(seen).toEqual(["down: timeout", "up", "down: second outage"]);
  });

  it("tries Redis again at once with no cooldown, and refuses a bad one", () => {
    const outage = createRedisOutage({ cooldownMs: 0 });
    outage.failed(new Error("x"));
    expect(outage.skipping).toBe(false);
    expect(() => createRedisOutage({ cooldownMs: -1 })).toThrow(/cooldownMs/);
  });
});
