import type { ModelPrice, ModelPricing, PriceTier, TokenRates, TokenUsage } from "./types.js";

const rateNames = [
  "input",
  "output",
  "cachedInput",
  "cacheWrite",
  "cacheWrite1h",
  "reasoning",
] as const satisfies readonly (keyof TokenRates)[];
type RateName = (typeof rateNames)[number];
const rateNameSet = new Set<string>(rateNames);

/** The highest rate accepted, USD per million tokens. */
const maxRate = 1_000_000;

/** Rates in whole pico-USD (1e-12 USD) per token, defaults resolved. */
interface PicoRates {
  input: number;
  output: number;
  cachedInput: number;
  cacheWrite: number;
  cacheWrite1h: number;
  /** Undefined when reasoning is priced as output. */
  reasoning: number | undefined;
  /** The highest input-side rate (uncached, cache read, cache writes), for upper bounds. */
  maxInput: number;
  /** The higher of output and reasoning, for upper bounds. */
  maxOutput: number;
}

type PicoInput = Partial<Record<RateName, number>>;

function describe(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

/** USD per million tokens → whole pico-USD per token, or a TypeError naming the field. */
function picoRate(model: string, field: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > maxRate) {
    throw new TypeError(
      `price of ${JSON.stringify(model)}: ${field} must be USD per million tokens from 0 to ${maxRate}, not ${describe(value)}`,
    );
  }
  const scaled = value * 1e6;
  const pico = Math.round(scaled);
  // The tolerance absorbs the noise of binary floating point (0.075 × 1e6 is not exactly 75000).
  if (Math.abs(scaled - pico) > Math.max(1e-9, scaled * 1e-12)) {
    throw new TypeError(
      `price of ${JSON.stringify(model)}: ${field} has more than 6 decimals (${value})`,
    );
  }
  return pico;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The rates an object sets, in pico-USD; unknown fields are refused (a typo would be free). */
function picoRates(
  model: string,
  where: string,
  source: Record<string, unknown>,
  allowed: ReadonlySet<string>,
): PicoInput {
  const rates: PicoInput = {};
  for (const [field, value] of Object.entries(source)) {
    if (!allowed.has(field)) {
      throw new TypeError(
        `price of ${JSON.stringify(model)}: unknown field ${where}${field} (known: ${[...allowed].join(", ")})`,
      );
    }
    if (value === undefined || !rateNameSet.has(field)) continue;
    rates[field as RateName] = picoRate(model, `${where}${field}`, value);
  }
  return rates;
}

function resolve(rates: PicoInput): PicoRates {
  const input = rates.input ?? 0;
  const output = rates.output ?? 0;
  const cachedInput = rates.cachedInput ?? input;
  const cacheWrite = rates.cacheWrite ?? input;
  const cacheWrite1h = rates.cacheWrite1h ?? cacheWrite;
  const reasoning = rates.reasoning;
  return {
    input,
    output,
    cachedInput,
    cacheWrite,
    cacheWrite1h,
    reasoning,
    maxInput: Math.max(input, cachedInput, cacheWrite, cacheWrite1h),
    maxOutput: Math.max(output, reasoning ?? output),
  };
}

const priceFields = new Set<string>([...rateNames, "tiers"]);
const tierFields = new Set<string>(["aboveInputTokens", ...rateNames]);

/** How far a prompt's estimate may fall short, for the tier an upper bound takes. */
const tierMargin = 1.25;

/** A token count as a whole number from 0 to Number.MAX_SAFE_INTEGER. */
function count(value: unknown): number {
  if (typeof value !== "number" || !(value > 0)) return 0;
  if (value === Number.POSITIVE_INFINITY) return 0;
  return Math.min(Math.floor(value), Number.MAX_SAFE_INTEGER);
}

/**
 * Σ tokens × pico-USD rate over the pairs, in nano-USD rounded up. Numbers while every product
 * and partial sum is a safe integer (then each is exact: rounding is monotonic, so a result at
 * or below 2^53 - 1 was not rounded), BigInt beyond.
 */
function nanoOf(pairs: number[]): number {
  let sum = 0;
  for (let index = 0; index < pairs.length; index += 2) {
    const product = (pairs[index] ?? 0) * (pairs[index + 1] ?? 0);
    sum += product;
    if (product > Number.MAX_SAFE_INTEGER || sum > Number.MAX_SAFE_INTEGER) {
      return bigNanoOf(pairs);
    }
  }
  const remainder = sum % 1000;
  return (sum - remainder) / 1000 + (remainder > 0 ? 1 : 0);
}

function bigNanoOf(pairs: number[]): number {
  let sum = 0n;
  for (let index = 0; index < pairs.length; index += 2) {
    sum += BigInt(pairs[index] ?? 0) * BigInt(pairs[index + 1] ?? 0);
  }
  // Exact up to Number.MAX_SAFE_INTEGER nano-USD (9 million USD), where it stops: amounts
  // counters and budgets can still hold exactly.
  const nano = (sum + 999n) / 1000n;
  return nano > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(nano);
}

/**
 * Validates a price (USD per million tokens) and returns what costs requests at it. Throws a
 * TypeError naming the model and the field for a rate that is not a finite number from 0 to
 * 1,000,000 with at most 6 decimals, an unknown field, or tiers whose `aboveInputTokens` are
 * not distinct positive whole numbers.
 */
export function priceModel(name: string, price: ModelPrice): ModelPricing {
  if (typeof name !== "string" || name === "") {
    throw new TypeError(`a price needs a model name, not ${describe(name)}`);
  }
  if (!isRecord(price)) {
    throw new TypeError(
      `price of ${JSON.stringify(name)} must be an object, not ${describe(price)}`,
    );
  }
  const base = picoRates(name, "", price, priceFields);
  for (const field of ["input", "output"] as const) {
    if (base[field] === undefined) picoRate(name, field, price[field]);
  }
  const baseRates = resolve(base);

  const tiers: { aboveInputTokens: number; rates: PicoRates }[] = [];
  const frozenTiers: PriceTier[] = [];
  if (price.tiers !== undefined) {
    if (!Array.isArray(price.tiers)) {
      throw new TypeError(
        `price of ${JSON.stringify(name)}: tiers must be an array, not ${describe(price.tiers)}`,
      );
    }
    for (const [index, tier] of price.tiers.entries()) {
      const where = `tiers[${index}].`;
      if (!isRecord(tier)) {
        throw new TypeError(
          `price of ${JSON.stringify(name)}: ${where.slice(0, -1)} must be an object, not ${describe(tier)}`,
        );
      }
      const above = tier.aboveInputTokens;
      if (!Number.isSafeInteger(above) || above <= 0) {
        throw new TypeError(
          `price of ${JSON.stringify(name)}: ${where}aboveInputTokens must be a positive whole number, not ${describe(above)}`,
        );
      }
      if (tiers.some((other) => other.aboveInputTokens === above)) {
        throw new TypeError(
          `price of ${JSON.stringify(name)}: ${where}aboveInputTokens ${above} is in another tier too`,
        );
      }
      const own = picoRates(name, where, tier, tierFields);
      tiers.push({ aboveInputTokens: above, rates: resolve({ ...base, ...own }) });
      frozenTiers.push(Object.freeze({ ...tier }));
    }
    // Highest threshold first: the first one below the request's input wins.
    tiers.sort((a, b) => b.aboveInputTokens - a.aboveInputTokens);
  }

  const frozen: ModelPrice = { ...price };
  if (price.tiers !== undefined) frozen.tiers = Object.freeze(frozenTiers) as PriceTier[];
  Object.freeze(frozen);

  const ratesFor = (inputTokens: number): PicoRates => {
    for (const tier of tiers) if (inputTokens > tier.aboveInputTokens) return tier.rates;
    return baseRates;
  };

  return {
    name,
    price: frozen,
    cost(usage: TokenUsage): number {
      const input = count(usage?.inputTokens);
      const output = count(usage?.outputTokens);
      const rates = ratesFor(input);
      let uncached = input;
      const read = Math.min(count(usage?.cacheReadTokens), uncached);
      uncached -= read;
      const fiveMinutes = Math.min(count(usage?.cacheWriteTokens?.fiveMinutes), uncached);
      uncached -= fiveMinutes;
      const oneHour = Math.min(count(usage?.cacheWriteTokens?.oneHour), uncached);
      uncached -= oneHour;
      const reasoning =
        rates.reasoning === undefined ? 0 : Math.min(count(usage?.reasoningTokens), output);
      return nanoOf([
        uncached,
        rates.input,
        read,
        rates.cachedInput,
        fiveMinutes,
        rates.cacheWrite,
        oneHour,
        rates.cacheWrite1h,
        output - reasoning,
        rates.output,
        reasoning,
        rates.reasoning ?? 0,
      ]);
    },
    maxCost(inputTokens: number, outputTokens: number): number {
      const input = count(inputTokens);
      const margined = ratesFor(Math.ceil(input * tierMargin));
      return nanoOf([input, margined.maxInput, count(outputTokens), margined.maxOutput]);
    },
  };
}
