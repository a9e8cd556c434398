import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";

// The built package as a user's ESM and CommonJS code load it: two copies of every class.
const esm = await import("@aigw/provider");
const cjs = createRequire(import.meta.url)("@aigw/provider") as typeof esm;

describe("the ESM and CommonJS builds together", () => {
  it("are two copies, told apart by no instanceof check", () => {
    expect(cjs.Cancellation).not.toBe(esm.Cancellation);
    expect(new cjs.Cancellation()).not.toBeInstanceOf(esm.Cancellation);
  });

  it("cancel a sleep with a Cancellation made by the other build, and clear its timer", async () => {
    const cancellation = new cjs.Cancellation();
    expect(esm.Cancellation.isInstance(cancellation)).toBe(true);
    const slept = esm.sleep(60_000, cancellation);
    const reason = new Error("stop");
    cancellation.abort(reason);
    await expect(slept).rejects.toBe(reason);
    expect(cancellation.listenerCount("abort")).toBe(0);

    const other = new esm.Cancellation();
    const sleeping = cjs.sleep(60_000, other);
    other.abort(reason);
    await expect(sleeping).rejects.toBe(reason);
  });

  it("recognise each other's errors", () => {
    const error = new cjs.AigwError("boom", { status: 502, type: "upstream_error" });
    expect(esm.AigwError.isInstance(error)).toBe(true);
    expect(esm.Cancellation.isInstance(error)).toBe(false);
    expect(esm.Cancellation.isInstance(undefined)).toBe(false);
  });
});
