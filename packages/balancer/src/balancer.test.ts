import { describe, expect, it } from "vitest";
import { createBalancer } from "./balancer.js";
import { createCircuitBreaker } from "./breaker.js";

async function sequence(balancer: ReturnType<typeof createBalancer>, count: number) {
  const picked: string[] = [];
  for (let index = 0; index < count; index++) {
    const attempt = await balancer.pick();
    if (!attempt) throw new Error("nothing picked");
    picked.push(attempt.target);
    attempt.answered();
    attempt.end();
  }
  return picked.join(" ");
}

describe("createBalancer", () => {
  it("weighted: weights 5, 1, 1 give a a b a c a a per cycle, and 0 is never picked", async () => {
    const balancer = createBalancer({
      targets: [
        { id: "a", weight: 5 },
        { id: "b", weight: 1 },
        { id: "c", weight: 1 },
        { id: "never", weight: 0 },
      ],
    });
    expect(await sequence(balancer, 14)).toBe("a a b a c a a a a b a c a a");
  });

  it("(B.5 11) weighted: skips a target the breaker holds out, and shares its weight among the rest", async () => {
    let now = 0;
    const breaker = createCircuitBreaker({ consecutiveFailures: 1 }, () => now);
    const balancer = createBalancer({
      targets: [
        { id: "a", weight: 2 },
        { id: "b", weight: 1 },
        { id: "c", weight: 1 },
      ],
      breaker,
    });
    breaker.record("a", { ok: false }, false);
    expect(await sequence(balancer, 4)).toBe("b c b c");
    now = 5_000;
    // Half-open: "a" takes its probes (3 at once at most), then is closed again.
    expect((await sequence(balancer, 8)).split(" ").filter((id) => id === "a").length).toBe(4);
    expect(breaker.state("a").status).toBe("closed");
  });

  it("round-robin, priority and exclusions", async () => {
    const targets = [{ id: "a" }, { id: "b" }, { id: "c" }];
    expect(await sequence(createBalancer({ targets, strategy: "round-robin" }), 5)).toBe(
      "a b c a b",
    );
    const priority = createBalancer({ targets, strategy: "priority" });
    expect(await sequence(priority, 2)).toBe("a a");
    expect((await priority.pick({ exclude: new Set(["a"]) }))?.target).toBe("b");
    expect(await priority.pick({ exclude: new Set(["a", "b", "c"]) })).toBeUndefined();
    expect((await priority.pick({ eligible: (id) => id === "c" }))?.target).toBe("c");
  });

  it("least-busy: counts attempts until they end", async () => {
    const balancer = createBalancer({
      targets: [{ id: "a" }, { id: "b" }],
      strategy: "least-busy",
    });
    const first = await balancer.pick();
    const second = await balancer.pick();
    expect(new Set([first?.target, second?.target])).toEqual(new Set(["a", "b"]));
    second?.answered(); // a stream that is still open
    first?.end();
    expect((await balancer.pick())?.target).toBe(first?.target);
    expect(balancer.inFlight(second?.target as string)).toBe(1);
  });

  it("(B.5 12) latency: tries unknown targets first, then prefers the faster one", async () => {
    const balancer = createBalancer({
      targets: [{ id: "fast" }, { id: "slow" }],
      strategy: "latency",
    });
    const timed = async (id: string, ms: number) => {
      const attempt = await balancer.pick({ eligible: (target) => target === id });
      const until = performance.now() + ms;
      while (performance.now() < until) {}
      attempt?.answered();
      attempt?.end(10);
    };
    await timed("fast", 1);
    await timed("slow", 30);
    const picks = (await sequence(balancer, 50)).split(" ");
    expect(picks.filter((id) => id === "slow").length).toBe(0);
  });

  it("(B.5 12) latency: weighs whole answers by their output tokens, so long ones do not lose", async () => {
    const balancer = createBalancer({
      targets: [{ id: "long" }, { id: "short" }],
      strategy: "latency",
    });
    const answer = async (id: string, ms: number, tokens: number) => {
      const attempt = await balancer.pick({ eligible: (target) => target === id });
      const until = performance.now() + ms;
      while (performance.now() < until) {}
      attempt?.completed(tokens);
    };
    await answer("long", 40, 1_000); // 0.04 ms a token
    await answer("short", 10, 10); // 1 ms a token
    const picks = (await sequence(balancer, 20)).split(" ");
    expect(picks.filter((id) => id === "long").length).toBe(20);
  });

  it("never counts a 429 against a route's only target", async () => {
    const breaker = createCircuitBreaker({ consecutiveFailures: 1 });
    const single = createBalancer({ targets: [{ id: "only" }], breaker });
    (await single.pick())?.failed({ status: 429, retryAfterMs: 47_000 });
    expect(breaker.state("only").status).toBe("closed");
    (await single.pick())?.failed({ status: 500 });
    expect(breaker.state("only").status).toBe("open");
    expect(await single.pick()).toBeUndefined();
    expect(single.soonestRecovery()).toBe(breaker.state("only").until);
  });

  it("refuses what it cannot balance", () => {
    expect(() => createBalancer({ targets: [] })).toThrow(/at least one target/);
    expect(() => createBalancer({ targets: [{ id: "a" }, { id: "a" }] })).toThrow(/twice/);
    expect(() => createBalancer({ targets: [{ id: "a", weight: -1 }] })).toThrow(/weight/);
    expect(() =>
      createBalancer({ targets: [{ id: "a" }], strategy: "fastest" as "latency" }),
    ).toThrow(/strategy/);
  });
});
