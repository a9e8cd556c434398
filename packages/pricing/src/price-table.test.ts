import { describe, expect, it } from "vitest";
import { builtInPriceSource, builtInPrices } from "./built-in-prices.js";
import { priceModel } from "./price-model.js";
import { createPriceTable } from "./price-table.js";

describe("the built-in prices", () => {
  it("pin three reference prices of the snapshot", () => {
    expect(builtInPrices["gpt-4o-mini"]).toEqual({ input: 0.15, output: 0.6, cachedInput: 0.075 });
    expect(builtInPrices["claude-sonnet-4-5"]).toEqual({
      input: 3,
      output: 15,
      cachedInput: 0.3,
      cacheWrite: 3.75,
      cacheWrite1h: 6,
      tiers: [
        {
          aboveInputTokens: 200_000,
          input: 6,
          output: 22.5,
          cachedInput: 0.6,
          cacheWrite: 7.5,
          cacheWrite1h: 12,
        },
      ],
    });
    expect(builtInPrices["gemini-2.5-flash"]).toEqual({
      input: 0.3,
      output: 2.5,
      cachedInput: 0.03,
    });
  });

  it("are all valid prices of OpenAI, Anthropic and Gemini models", () => {
    const names = Object.keys(builtInPrices);
    expect(names.length).toBe(179);
    for (const name of names) {
      expect(name).toBe(name.toLowerCase());
      expect(() => priceModel(name, builtInPrices[name] as never)).not.toThrow();
      expect(createPriceTable().lookup(name)?.name).toBe(name);
    }
  });

  it("say where they come from, and that they may be old", () => {
    expect(builtInPriceSource.snapshotDate).toBe("2026-07-24");
    expect(builtInPriceSource.source).toContain("Wei-Shaw/model-price-repo");
    expect(builtInPriceSource.source).toContain("f9ff147");
    expect(builtInPriceSource.note).toMatch(/older than the snapshot date/);
  });
});

describe("lookup", () => {
  const table = createPriceTable();
  const found = (model: string) => table.lookup(model)?.name;

  it("compares names in lower case", () => {
    expect(found("GPT-4o-Mini")).toBe("gpt-4o-mini");
  });

  it("tries the name without a provider prefix", () => {
    expect(found("openai/gpt-4o")).toBe("gpt-4o");
    expect(found("models/gemini-2.5-flash")).toBe("gemini-2.5-flash");
    expect(found("anthropic/claude-sonnet-4-5")).toBe("claude-sonnet-4-5");
    expect(found("vertex_ai/publishers/google/gemini-2.5-pro")).toBe("gemini-2.5-pro");
  });

  it("tries the name without a date suffix, after the dated name", () => {
    expect(found("gpt-4o-2099-01-01")).toBe("gpt-4o");
    expect(found("claude-sonnet-4-5@20250929")).toBe("claude-sonnet-4-5");
    expect(found("claude-opus-4-1-20990101")).toBe("claude-opus-4-1");
    expect(found("gpt-4o-2024-05-13")).toBe("gpt-4o-2024-05-13");
    expect(table.lookup("gpt-4o-2024-05-13")?.price.input).not.toBe(
      table.lookup("gpt-4o")?.price.input,
    );
    expect(found("claude-sonnet-4-5-20250929")).toBe("claude-sonnet-4-5-20250929");
  });

  it("tries both off together", () => {
    expect(found("anthropic/claude-haiku-4-5@20991231")).toBe("claude-haiku-4-5");
    expect(found("openai/gpt-4o-2024-05-13")).toBe("gpt-4o-2024-05-13");
    expect(found("OpenAI/GPT-4o-2099-12-31")).toBe("gpt-4o");
  });

  it("finds nothing for unknown names, however often asked", () => {
    expect(table.lookup("llama-3.3-70b")).toBeUndefined();
    expect(table.lookup("")).toBeUndefined();
    expect(table.lookup("openai/")).toBeUndefined();
    expect(table.lookup(42 as never)).toBeUndefined();
    expect(table.lookup("gpt-4o-0513")).toBeUndefined();
    for (let index = 0; index < 3000; index += 1) {
      expect(table.lookup(`unknown-${index}`)).toBeUndefined();
      expect(
        table.lookup(`openai/gpt-4o-2099-01-${String((index % 28) + 1).padStart(2, "0")}`),
      ).toBe(table.lookup("gpt-4o"));
    }
    expect(found("x".repeat(10_000))).toBeUndefined();
    expect(found("gpt-4o-mini")).toBe("gpt-4o-mini");
  });
});

describe("createPriceTable options", () => {
  it("lets your prices replace built-in ones of the same name, in any case", () => {
    const table = createPriceTable({ prices: { "GPT-4o": { input: 1, output: 2 } } });
    expect(table.lookup("gpt-4o")?.price).toEqual({ input: 1, output: 2 });
    expect(table.lookup("openai/gpt-4o")?.name).toBe("GPT-4o");
    expect(table.lookup("gpt-4o-2099-01-01")?.price.input).toBe(1);
    // a dated built-in entry is its own name, and stays
    expect(table.lookup("gpt-4o-2024-05-13")?.name).toBe("gpt-4o-2024-05-13");
    expect(table.lookup("gpt-4o-mini")?.price.input).toBe(0.15);
  });

  it("adds models of your own, and leaves out the built-in ones when asked", () => {
    const table = createPriceTable({
      prices: { "acme/llama-3.3-70b": { input: 0.6, output: 0.6 } },
      builtIn: false,
    });
    expect(table.lookup("ACME/Llama-3.3-70B")?.name).toBe("acme/llama-3.3-70b");
    expect(table.lookup("gpt-4o")).toBeUndefined();
    expect(createPriceTable({ builtIn: false }).lookup("gpt-4o-mini")).toBeUndefined();
  });

  it("refuses invalid prices and names given twice when created", () => {
    expect(() => createPriceTable({ prices: { mine: { input: -1, output: 1 } } })).toThrow(
      /"mine": input/,
    );
    expect(() =>
      createPriceTable({
        prices: { Mine: { input: 1, output: 1 }, mine: { input: 2, output: 2 } },
      }),
    ).toThrow(/"mine" twice/);
    expect(() => createPriceTable({ prices: null as never })).toThrow(TypeError);
  });
});
