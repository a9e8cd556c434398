import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { priceModel } from "./price-model.js";
import { createPriceTable } from "./price-table.js";
import type { ModelPricing } from "./types.js";

const table = createPriceTable();
function builtIn(model: string): ModelPricing {
  const pricing = table.lookup(model);
  if (!pricing) throw new Error(`no built-in price for ${model}`);
  return pricing;
}

describe("cost", () => {
  it("prices OpenAI's cached tokens at the cached rate (gpt-4o-mini)", () => {
    // 400 × 150,000 + 600 × 75,000 + 200 × 600,000 pico-USD = 225,000,000 pico = 225,000 nano
    const usage = { inputTokens: 1000, outputTokens: 200, cacheReadTokens: 600 };
    expect(builtIn("gpt-4o-mini").cost(usage)).toBe(225_000);
  });

  it("prices Anthropic's cache reads and 5-minute and 1-hour writes apart (claude-sonnet-4-5)", () => {
    const usage = {
      inputTokens: 10_000,
      outputTokens: 500,
      cacheReadTokens: 6000,
      cacheWriteTokens: { fiveMinutes: 2000, oneHour: 1000 },
    };
    // 1,000 × 3,000,000 + 6,000 × 300,000 + 2,000 × 3,750,000 + 1,000 × 6,000,000
    //   + 500 × 15,000,000 = 25,800,000,000 pico-USD
    expect(builtIn("claude-sonnet-4-5").cost(usage)).toBe(25_800_000);
  });

  it("prices a request above 200k input tokens wholly at the tier's rates", () => {
    const pricing = builtIn("claude-sonnet-4-5");
    const usage = {
      inputTokens: 250_000,
      outputTokens: 1000,
      cacheReadTokens: 100_000,
      cacheWriteTokens: { fiveMinutes: 20_000, oneHour: 10_000 },
    };
    // 120,000 × 6,000,000 + 100,000 × 600,000 + 20,000 × 7,500,000 + 10,000 × 12,000,000
    //   + 1,000 × 22,500,000 = 1,072,500,000,000 pico-USD
    expect(pricing.cost(usage)).toBe(1_072_500_000);
    expect(pricing.cost({ inputTokens: 200_000, outputTokens: 0 })).toBe(600_000_000);
    expect(pricing.cost({ inputTokens: 200_001, outputTokens: 0 })).toBe(1_200_006_000);
  });

  it("picks the highest tier the input is above; a tier's missing rates are the base's", () => {
    const pricing = priceModel("tiered", {
      input: 1,
      output: 2,
      cachedInput: 0.5,
      tiers: [
        { aboveInputTokens: 1000, input: 3 },
        { aboveInputTokens: 100, input: 2, output: 4 },
      ],
    });
    expect(pricing.cost({ inputTokens: 100, outputTokens: 10 })).toBe(100 * 1000 + 10 * 2000);
    expect(pricing.cost({ inputTokens: 101, outputTokens: 10 })).toBe(101 * 2000 + 10 * 4000);
    expect(pricing.cost({ inputTokens: 1001, outputTokens: 10, cacheReadTokens: 1 })).toBe(
      1000 * 3000 + 1 * 500 + 10 * 2000,
    );
  });

  it("prices Gemini's thoughts as output when no reasoning rate is set", () => {
    // gemini-2.5-flash: 1,000 × 300,000 + 2,000 × 2,500,000 pico-USD, thoughts within output
    const usage = { inputTokens: 1000, outputTokens: 2000, reasoningTokens: 1500 };
    expect(builtIn("gemini-2.5-flash").cost(usage)).toBe(5_300_000);
  });

  it("prices reasoning apart when a reasoning rate is set", () => {
    const pricing = priceModel("thinker", { input: 1, output: 4, reasoning: 10 });
    // 100 × 1,000,000 + 100 × 4,000,000 + 200 × 10,000,000 pico-USD
    expect(pricing.cost({ inputTokens: 100, outputTokens: 300, reasoningTokens: 200 })).toBe(
      2_500_000,
    );
    // reasoning beyond the output is cut down to it
    expect(pricing.cost({ inputTokens: 100, outputTokens: 300, reasoningTokens: 5000 })).toBe(
      3_100_000,
    );
  });

  it("defaults cachedInput and cacheWrite to input, and cacheWrite1h to cacheWrite", () => {
    const plain = priceModel("plain", { input: 2, output: 8 });
    const usage = {
      inputTokens: 40,
      outputTokens: 0,
      cacheReadTokens: 10,
      cacheWriteTokens: { fiveMinutes: 10, oneHour: 10 },
    };
    expect(plain.cost(usage)).toBe(80_000); // 40 × 2,000,000 pico-USD
    const writes = priceModel("writes", { input: 2, output: 8, cacheWrite: 3 });
    expect(writes.cost(usage)).toBe((10 * 2 + 10 * 2 + 10 * 3 + 10 * 3) * 1000);
  });

  it("rounds up once, from the exact sum", () => {
    const pico = priceModel("one-pico", { input: 0.000001, output: 0.000001 });
    expect(pico.cost({ inputTokens: 500, outputTokens: 0 })).toBe(1); // 0.5 nano
    expect(pico.cost({ inputTokens: 1, outputTokens: 0 })).toBe(1);
    expect(pico.cost({ inputTokens: 1000, outputTokens: 0 })).toBe(1);
    expect(pico.cost({ inputTokens: 1001, outputTokens: 0 })).toBe(2);
    // 500 + 500 pico-USD is one nano-USD, not two halves rounded up apiece
    expect(pico.cost({ inputTokens: 500, outputTokens: 500 })).toBe(1);
    expect(pico.cost({ inputTokens: 0, outputTokens: 0 })).toBe(0);

    let total = 0;
    for (let request = 0; request < 1_000_000; request += 1) {
      total += pico.cost({ inputTokens: 500, outputTokens: 0 });
    }
    expect(total).toBe(1_000_000);
    expect(Number.isSafeInteger(total)).toBe(true);
  });

  it("stays exact where the products outgrow Number.MAX_SAFE_INTEGER", () => {
    const dear = priceModel("dear", { input: 1_000_000, output: 0.000001 });
    expect(dear.cost({ inputTokens: 1_000_000, outputTokens: 0 })).toBe(1e15);
    expect(dear.cost({ inputTokens: 1_000_001, outputTokens: 0 })).toBe(1_000_001_000_000_000);
    // 9,007,199 × 10^12 + 1 pico-USD: the last pico-USD rounds up to one more nano-USD
    expect(dear.cost({ inputTokens: 9_007_199, outputTokens: 1 })).toBe(9_007_199_000_000_001);
  });

  it("never goes negative on bad upstream numbers", () => {
    const pricing = builtIn("claude-sonnet-4-5");
    expect(pricing.cost({ inputTokens: -5, outputTokens: Number.NaN })).toBe(0);
    expect(
      pricing.cost({
        inputTokens: Number.POSITIVE_INFINITY,
        outputTokens: 10.9,
        reasoningTokens: -1,
      }),
    ).toBe(150_000); // 10 × 15,000,000 pico-USD
    // reads beyond the input are cut down to it: 100 reads, no uncached input, no writes
    expect(
      pricing.cost({
        inputTokens: 100,
        outputTokens: 0,
        cacheReadTokens: 500,
        cacheWriteTokens: { fiveMinutes: 50, oneHour: 50 },
      }),
    ).toBe(30_000);
    expect(pricing.cost({ inputTokens: 1.7, outputTokens: 0 })).toBe(3000);
    expect(pricing.cost(undefined as never)).toBe(0);
  });

  it("is a non-negative whole number for any usage (property)", () => {
    const pricing = builtIn("claude-sonnet-4-5");
    const tokens = fc.oneof(
      fc.integer({ min: -10, max: 2_000_000 }),
      fc.double({ min: -1e9, max: 1e9 }),
      fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
    );
    fc.assert(
      fc.property(tokens, tokens, tokens, tokens, tokens, tokens, (a, b, c, d, e, f) => {
        const cost = pricing.cost({
          inputTokens: a,
          outputTokens: b,
          cacheReadTokens: c,
          cacheWriteTokens: { fiveMinutes: d, oneHour: e },
          reasoningTokens: f,
        });
        expect(Number.isSafeInteger(cost) && cost >= 0).toBe(true);
      }),
    );
  });
});

describe("maxCost", () => {
  it("prices all input at the highest input-side rate of the tier the input picks", () => {
    // 250,000 × 12,000,000 (1-hour cache writes) + 1,000 × 22,500,000 pico-USD
    expect(builtIn("claude-sonnet-4-5").maxCost(250_000, 1000)).toBe(3_022_500_000);
    expect(builtIn("gpt-4o-mini").maxCost(1000, 200)).toBe(150_000 + 120_000);
  });

  it("takes the tier a prompt a quarter larger would pick: estimates fall short", () => {
    // 170,000 × 1.25 is past 200,000: the tier's 1-hour write rate, 12 USD per million.
    expect(builtIn("claude-sonnet-4-5").maxCost(170_000, 0)).toBe(2_040_000_000);
    // 150,000 × 1.25 is not: the base 1-hour write rate, 6.
    expect(builtIn("claude-sonnet-4-5").maxCost(150_000, 0)).toBe(900_000_000);
  });

  it("stops at Number.MAX_SAFE_INTEGER, an amount counters hold exactly", () => {
    const pricing = builtIn("gpt-4o-mini");
    expect(pricing.maxCost(1, 1e15)).toBe(Number.MAX_SAFE_INTEGER);
    expect(pricing.cost({ inputTokens: 1e15, outputTokens: 1e15 })).toBe(Number.MAX_SAFE_INTEGER);
  });

  it("prices all output at the higher of output and reasoning", () => {
    expect(priceModel("thinker", { input: 1, output: 4, reasoning: 10 }).maxCost(100, 300)).toBe(
      3_100_000,
    );
    expect(priceModel("cheap-thinker", { input: 1, output: 4, reasoning: 2 }).maxCost(0, 1)).toBe(
      4000,
    );
  });

  it("bounds the cost of any request with those token counts (property)", () => {
    const models = ["gpt-4o-mini", "gemini-2.5-pro", "claude-sonnet-4-5", "gpt-5.4"];
    fc.assert(
      fc.property(
        fc.constantFrom(...models),
        fc.integer({ min: 0, max: 1_000_000 }),
        fc.integer({ min: 0, max: 200_000 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (model, input, output, readShare, writeShare, longShare, reasoningShare) => {
          const pricing = builtIn(model);
          const written = Math.floor(input * writeShare);
          const usage = {
            inputTokens: input,
            outputTokens: output,
            cacheReadTokens: Math.floor(input * readShare),
            cacheWriteTokens: {
              fiveMinutes: written - Math.floor(written * longShare),
              oneHour: Math.floor(written * longShare),
            },
            reasoningTokens: Math.floor(output * reasoningShare),
          };
          expect(pricing.cost(usage)).toBeLessThanOrEqual(pricing.maxCost(input, output));
        },
      ),
    );
  });
});

describe("priceModel", () => {
  const refused = (price: unknown) => () => priceModel("m-1", price as never);

  it("refuses rates that are not 0 to 1,000,000 USD per million tokens with 6 decimals", () => {
    expect(refused({ input: -1, output: 1 })).toThrow(/"m-1": input .* not -1/);
    expect(refused({ input: Number.NaN, output: 1 })).toThrow(/"m-1": input/);
    expect(refused({ input: 1, output: Number.POSITIVE_INFINITY })).toThrow(/"m-1": output/);
    expect(refused({ input: 1_000_000.000001, output: 1 })).toThrow(/"m-1": input/);
    expect(refused({ input: "3", output: 1 })).toThrow(/"m-1": input .* not "3"/);
    expect(refused({ input: 1, output: 1, cachedInput: 0.0000001 })).toThrow(
      /"m-1": cachedInput has more than 6 decimals/,
    );
    expect(refused({ input: 1 })).toThrow(/"m-1": output .* not undefined/);
    expect(refused({ input: 1, output: 1, cached_input: 0.5 })).toThrow(
      /"m-1": unknown field cached_input/,
    );
    expect(refused(null)).toThrow(/"m-1" must be an object/);
    expect(() => priceModel("", { input: 1, output: 1 })).toThrow(TypeError);
    for (const thrower of [refused({ input: -1, output: 1 }), refused({ input: 1 })]) {
      expect(thrower).toThrow(TypeError);
    }
  });

  it("accepts float noise and the ends of the range", () => {
    const noisy = priceModel("noisy", { input: 0.1 + 0.2, output: 1_000_000 });
    expect(noisy.cost({ inputTokens: 1000, outputTokens: 0 })).toBe(300_000);
    expect(noisy.cost({ inputTokens: 0, outputTokens: 1 })).toBe(1_000_000_000);
    expect(
      priceModel("free", { input: 0, output: 0 }).cost({ inputTokens: 9, outputTokens: 9 }),
    ).toBe(0);
    expect(() => priceModel("fine", { input: 0.000001, output: 123456.654321 })).not.toThrow();
  });

  it("refuses tiers that are not distinct positive whole numbers of tokens", () => {
    expect(refused({ input: 1, output: 1, tiers: [{ aboveInputTokens: 0 }] })).toThrow(
      /"m-1": tiers\[0\]\.aboveInputTokens must be a positive whole number, not 0/,
    );
    expect(refused({ input: 1, output: 1, tiers: [{ aboveInputTokens: 1.5 }] })).toThrow(
      /tiers\[0\]\.aboveInputTokens/,
    );
    expect(
      refused({ input: 1, output: 1, tiers: [{ aboveInputTokens: 5 }, { aboveInputTokens: 5 }] }),
    ).toThrow(/"m-1": tiers\[1\]\.aboveInputTokens 5 is in another tier too/);
    expect(refused({ input: 1, output: 1, tiers: [{ aboveInputTokens: 5, input: -2 }] })).toThrow(
      /"m-1": tiers\[0\]\.input/,
    );
    expect(refused({ input: 1, output: 1, tiers: { aboveInputTokens: 5 } })).toThrow(
      /tiers must be an array/,
    );
  });

  it("keeps a frozen copy of the price", () => {
    const price = { input: 1, output: 2, tiers: [{ aboveInputTokens: 10, input: 2 }] };
    const pricing = priceModel("copy", price);
    price.input = 100;
    expect(pricing.price.input).toBe(1);
    expect(Object.isFrozen(pricing.price)).toBe(true);
    expect(Object.isFrozen(pricing.price.tiers?.[0])).toBe(true);
    expect(pricing.name).toBe("copy");
  });
});
