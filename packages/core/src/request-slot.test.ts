import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { requestSlot } from "./request-slot.js";
import type { RequestContext } from "./types.js";

const contextWith = (state: Record<string, unknown>) => ({ state }) as unknown as RequestContext;

describe("requestSlot", () => {
  it("keeps one value per request and slot", () => {
    const first = contextWith({});
    const second = contextWith({});
    const prompts = requestSlot<string>("prompt");
    const others = requestSlot<string>("prompt");
    prompts.set(first, "one");
    prompts.set(second, "two");
    others.set(first, "other");
    expect(prompts.get(first)).toBe("one");
    expect(prompts.get(second)).toBe("two");
    expect(others.get(first)).toBe("other");
    expect(others.get(second)).toBeUndefined();
    prompts.set(first, "again");
    expect(prompts.get(first)).toBe("again");
  });

  it("does not show in the state a hook or a log sees", () => {
    const context = contextWith({ plan: "pro" });
    requestSlot<{ text: string }>("prompt").set(context, { text: "my card is 4111" });
    expect(Object.keys(context.state)).toEqual(["plan"]);
    expect(JSON.stringify(context.state)).toBe('{"plan":"pro"}');
    expect(inspect(context.state, { depth: 5 })).not.toContain("4111");
    expect({ ...context.state }).toEqual({ plan: "pro" });
  });
});
