import { describe, expect, it } from "vitest";
import { createCircuitBreaker, type Outcome } from "./breaker.js";

function clock() {
  const time = { now: 1_000_000 };
  return { time, now: () => time.now };
}

describe("createCircuitBreaker", () => {
  it("trips on consecutive failures, and a success resets the run", () => {
    const { now } = clock();
    const breaker = createCircuitBreaker({ consecutiveFailures: 3, minimumRequests: 100 }, now);
    for (const ok of [false, false, true, false, false])
      breaker.record("t", ok ? { ok } : { ok }, false);
    expect(breaker.state("t").status).toBe("closed");
    breaker.record("t", { ok: false }, false);
    expect(breaker.state("t")).toEqual({ status: "open", until: now() + 5_000, trips: 1 });
  });

  it("trips on a failure ratio once the window holds enough requests", () => {
    const { time, now } = clock();
    const breaker = createCircuitBreaker(
      { failureRatio: 0.5, minimumRequests: 4, consecutiveFailures: 100, windowMs: 10_000 },
      now,
    );
    for (const ok of [true, false, true]) breaker.record("t", { ok } as Outcome, false);
    expect(breaker.state("t").status).toBe("closed");
    time.now += 10_000; // a new window: the old outcomes no longer count
    for (const ok of [true, false, true]) breaker.record("t", { ok } as Outcome, false);
    expect(breaker.state("t").status).toBe("closed");
    breaker.record("t", { ok: false }, false);
    expect(breaker.state("t").status).toBe("open");
  });

  it("honours Retry-After, extends the cooldown on a failure during it (B.5 7), and doubles it on a failed probe", () => {
    const { time, now } = clock();
    const breaker = createCircuitBreaker(
      { consecutiveFailures: 1, cooldownMs: 1_000, probes: 2 },
      now,
    );
    breaker.record("t", { ok: false, retryAfterMs: 47_000 }, false);
    expect(breaker.state("t").until).toBe(now() + 47_000);
    time.now += 40_000;
    breaker.record("t", { ok: false }, false); // started before the trip, failed during it
    expect(breaker.state("t").until).toBe(now() + 7_000);
    time.now += 1_000;
    breaker.record("t", { ok: false, retryAfterMs: 20_000 }, false);
    expect(breaker.state("t").until).toBe(now() + 20_000);
    time.now += 20_000;
    expect(breaker.state("t").status).toBe("half_open");
    expect(breaker.claimProbe("t")).toBe(true);
    expect(breaker.claimProbe("t")).toBe(true);
    expect(breaker.claimProbe("t")).toBe(false);
    breaker.record("t", { ok: false }, true);
    expect(breaker.state("t")).toEqual({ status: "open", until: now() + 2_000, trips: 2 });
    time.now += 2_000;
    expect(breaker.claimProbe("t")).toBe(true);
    breaker.release("t"); // the probe said nothing of the target
    expect(breaker.claimProbe("t")).toBe(true);
    expect(breaker.claimProbe("t")).toBe(true);
    breaker.record("t", { ok: true }, true);
    expect(breaker.state("t").status).toBe("half_open");
    breaker.record("t", { ok: true }, true);
    expect(breaker.state("t")).toEqual({ status: "closed", until: 0, trips: 0 });
  });

  it("tells of each trip", () => {
    const { time, now } = clock();
    const trips: string[] = [];
    const breaker = createCircuitBreaker(
      { consecutiveFailures: 1, onTrip: (target) => trips.push(target) },
      now,
    );
    breaker.record("a", { ok: false }, false);
    breaker.record("a", { ok: false }, false); // during the cooldown: extends it, no new trip
    time.now += 5_000;
    breaker.claimProbe("a");
    breaker.record("a", { ok: false }, true);
    expect(trips).toEqual(["a", "a"]);
  });

  it("caps the doubled cooldown", () => {
    const { time, now } = clock();
    const breaker = createCircuitBreaker(
      { consecutiveFailures: 1, cooldownMs: 1_000, maxCooldownMs: 3_000 },
      now,
    );
    breaker.record("t", { ok: false }, false);
    for (let trip = 0; trip < 5; trip++) {
      time.now = breaker.state("t").until;
      breaker.claimProbe("t");
      breaker.record("t", { ok: false }, true);
    }
    expect(breaker.state("t").until - now()).toBe(3_000);
  });

  it("refuses settings that make no sense", () => {
    expect(() => createCircuitBreaker({ failureRatio: 0 })).toThrow(/failureRatio/);
    expect(() => createCircuitBreaker({ probes: 0 })).toThrow(/probes/);
    expect(() => createCircuitBreaker({ cooldownMs: 10, maxCooldownMs: 5 })).toThrow(
      /maxCooldownMs/,
    );
  });
});
