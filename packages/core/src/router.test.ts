import { createEcho } from "@aigw/provider";
import { describe, expect, it } from "vitest";
import { createModelRouter } from "./router.js";

const providers = { a: createEcho(), b: createEcho() };

describe("createModelRouter", () => {
  const router = createModelRouter(
    {
      "gpt-4o": { provider: "a" },
      fast: { provider: "b", model: "gpt-4o-mini" },
      "gpt-*": { provider: "b" },
      "gpt-4*": { provider: "a" },
      "openai/*": { provider: "a" },
      "pinned/*": { provider: "a", model: "fixed" },
    },
    providers,
  );

  const resolve = (model: string) => {
    const route = router.resolve(model);
    return (
      route && {
        name: route.name,
        target: route.targets[0]?.providerName,
        model: route.targets[0]?.model,
      }
    );
  };

  it("prefers an exact name, then an alias, then the longest wildcard", () => {
    expect(resolve("gpt-4o")).toEqual({ name: "gpt-4o", target: "a", model: undefined });
    expect(resolve("fast")).toEqual({ name: "fast", target: "b", model: "gpt-4o-mini" });
    expect(resolve("gpt-4.1")).toEqual({ name: "gpt-4*", target: "a", model: undefined });
    expect(resolve("gpt-3.5-turbo")).toEqual({ name: "gpt-*", target: "b", model: undefined });
  });

  it("strips a provider prefix, unless the route names its own model", () => {
    expect(resolve("openai/gpt-4o")).toEqual({ name: "openai/*", target: "a", model: "gpt-4o" });
    expect(resolve("pinned/anything")).toEqual({ name: "pinned/*", target: "a", model: "fixed" });
    expect(resolve("openai/")).toBeUndefined();
  });

  it("returns undefined for unknown models and lists only concrete names", () => {
    expect(resolve("claude-3")).toBeUndefined();
    expect(router.listModels().map((model) => model.id)).toEqual(["gpt-4o", "fast"]);
  });

  it("rejects routes to unknown providers and misplaced wildcards", () => {
    expect(() => createModelRouter({ x: { provider: "nope" } }, providers)).toThrow(
      /models\.x\.provider/,
    );
    expect(() => createModelRouter({ "a*b": { provider: "a" } }, providers)).toThrow(/'\*'/);
  });
});
