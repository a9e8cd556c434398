import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { createCoalescer } from "./index.js";

/** A leader whose result the test decides, recording its calls and its signal. */
function createControlledLeader<T>() {
  const calls: AbortSignal[] = [];
  const settlers: { resolve: (value: T) => void; reject: (error: unknown) => void }[] = [];
  const leader = (signal: AbortSignal) => {
    calls.push(signal);
    return new Promise<T>((resolve, reject) => {
      settlers.push({ resolve, reject });
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
    });
  };
  return { leader, calls, settlers };
}

const flushMicrotasks = () => new Promise((resolve) => setImmediate(resolve));

describe("createCoalescer", () => {
  it("runs one leader call for concurrent callers of the same key", async () => {
    const coalescer = createCoalescer<{ answer: number }>();
    const { leader, calls, settlers } = createControlledLeader<{ answer: number }>();
    const results = Array.from({ length: 50 }, () => coalescer.run("key", leader));
    await flushMicrotasks();
    expect(calls).toHaveLength(1);
    expect(coalescer.size).toBe(1);
    const value = { answer: 42 };
    settlers[0]?.resolve(value);
    for (const result of await Promise.all(results)) expect(result).toBe(value);
    expect(coalescer.size).toBe(0);
  });

  it("runs separate calls for different keys, and again once a call has settled", async () => {
    const coalescer = createCoalescer<string>();
    let calls = 0;
    const leader = async () => {
      calls += 1;
      return `call ${calls}`;
    };
    expect(await Promise.all([coalescer.run("a", leader), coalescer.run("b", leader)])).toEqual([
      "call 1",
      "call 2",
    ]);
    expect(await coalescer.run("a", leader)).toBe("call 3");
  });

  it("gives every caller the leader's error", async () => {
    const coalescer = createCoalescer<string>();
    const { leader, settlers } = createControlledLeader<string>();
    const first = coalescer.run("key", leader);
    const second = coalescer.run("key", leader);
    await flushMicrotasks();
    settlers[0]?.reject(new Error("upstream failed"));
    await expect(first).rejects.toThrow("upstream failed");
    await expect(second).rejects.toThrow("upstream failed");
    expect(coalescer.size).toBe(0);
  });

  it("turns a leader that throws at once into a rejection", async () => {
    const coalescer = createCoalescer<string>();
    await expect(
      coalescer.run("key", () => {
        throw new Error("thrown");
      }),
    ).rejects.toThrow("thrown");
  });

  it("lets a waiter stop waiting without affecting the others", async () => {
    const coalescer = createCoalescer<string>();
    const { leader, calls, settlers } = createControlledLeader<string>();
    const leaving = new AbortController();
    const first = coalescer.run("key", leader);
    const second = coalescer.run("key", leader, { signal: leaving.signal });
    const third = coalescer.run("key", leader);
    await flushMicrotasks();
    const reason = new Error("client went away");
    leaving.abort(reason);
    await expect(second).rejects.toBe(reason);
    expect(calls[0]?.aborted).toBe(false);
    settlers[0]?.resolve("done");
    expect(await first).toBe("done");
    expect(await third).toBe("done");
  });

  it("keeps the call going when its own caller leaves but others wait", async () => {
    const coalescer = createCoalescer<string>();
    const { leader, calls, settlers } = createControlledLeader<string>();
    const starter = new AbortController();
    const first = coalescer.run("key", leader, { signal: starter.signal });
    const second = coalescer.run("key", leader);
    await flushMicrotasks();
    starter.abort(new Error("gone"));
    await expect(first).rejects.toThrow("gone");
    expect(calls[0]?.aborted).toBe(false);
    settlers[0]?.resolve("done");
    expect(await second).toBe("done");
  });

  it("cancels the call only when every waiter is gone", async () => {
    const coalescer = createCoalescer<string>();
    const { leader, calls, settlers } = createControlledLeader<string>();
    const controllers = [new AbortController(), new AbortController(), new AbortController()];
    const outcomes = Promise.allSettled(
      controllers.map((controller) => coalescer.run("key", leader, { signal: controller.signal })),
    );
    await flushMicrotasks();
    controllers[0]?.abort(new Error("first gone"));
    controllers[1]?.abort(new Error("second gone"));
    await flushMicrotasks();
    expect(calls[0]?.aborted).toBe(false);
    const lastReason = new Error("last gone");
    controllers[2]?.abort(lastReason);
    expect(calls[0]?.aborted).toBe(true);
    expect(calls[0]?.reason).toBe(lastReason);
    expect((await outcomes).map((outcome) => outcome.status)).toEqual([
      "rejected",
      "rejected",
      "rejected",
    ]);
    expect(coalescer.size).toBe(0);

    const next = coalescer.run("key", leader);
    await flushMicrotasks();
    expect(calls).toHaveLength(2);
    settlers[1]?.resolve("a new call");
    expect(await next).toBe("a new call");
  });

  it("accepts an emitter with aborted and reason as a waiter's signal", async () => {
    const coalescer = createCoalescer<string>();
    const { leader, calls } = createControlledLeader<string>();
    const cancellation = Object.assign(new EventEmitter(), {
      aborted: false,
      reason: undefined as unknown,
    });
    const result = coalescer.run("key", leader, { signal: cancellation });
    await flushMicrotasks();
    cancellation.aborted = true;
    cancellation.reason = new Error("cancelled");
    cancellation.emit("abort");
    await expect(result).rejects.toThrow("cancelled");
    expect(calls[0]?.aborted).toBe(true);
    expect(cancellation.listenerCount("abort")).toBe(0);
  });

  it("rejects at once, without a call, when the signal has already fired", async () => {
    const coalescer = createCoalescer<string>();
    const { leader, calls } = createControlledLeader<string>();
    const reason = new Error("already gone");
    await expect(coalescer.run("key", leader, { signal: AbortSignal.abort(reason) })).rejects.toBe(
      reason,
    );
    expect(calls).toHaveLength(0);
    expect(coalescer.size).toBe(0);
  });

  it("stops listening to a waiter's signal once the call settled", async () => {
    const coalescer = createCoalescer<string>();
    const cancellation = Object.assign(new EventEmitter(), { aborted: false, reason: undefined });
    expect(await coalescer.run("key", async () => "done", { signal: cancellation })).toBe("done");
    expect(cancellation.listenerCount("abort")).toBe(0);
  });

  it("runs a caller's own call beyond maxWaiters", async () => {
    const coalescer = createCoalescer<string>({ maxWaiters: 2 });
    const { leader, calls, settlers } = createControlledLeader<string>();
    const results = Array.from({ length: 5 }, () => coalescer.run("key", leader));
    await flushMicrotasks();
    // One starter with two waiters, then two callers on their own.
    expect(calls).toHaveLength(3);
    settlers.forEach((settler, index) => {
      settler.resolve(`call ${index}`);
    });
    expect(await Promise.all(results)).toEqual(["call 0", "call 0", "call 0", "call 1", "call 2"]);
    expect(coalescer.size).toBe(0);
  });

  it("lets a caller join again once a waiter left a full call", async () => {
    const coalescer = createCoalescer<string>({ maxWaiters: 1 });
    const { leader, calls, settlers } = createControlledLeader<string>();
    const leaving = new AbortController();
    const first = coalescer.run("key", leader);
    const second = coalescer.run("key", leader, { signal: leaving.signal });
    leaving.abort();
    await expect(second).rejects.toThrow();
    const third = coalescer.run("key", leader);
    await flushMicrotasks();
    expect(calls).toHaveLength(1);
    settlers[0]?.resolve("done");
    expect(await Promise.all([first, third])).toEqual(["done", "done"]);
  });

  it.each([0, -1, 1.5, Number.NaN])("rejects maxWaiters %s", (maxWaiters) => {
    expect(() => createCoalescer({ maxWaiters })).toThrow(TypeError);
  });
});
