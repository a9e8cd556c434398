/** USD per million tokens, as providers publish them: at most 6 decimals, from 0 to 1,000,000. */
export interface TokenRates {
  /** Uncached input tokens. */
  input: number;
  /** Output tokens, reasoning included unless `reasoning` is set. */
  output: number;
  /** Input read from the prompt cache. Default: `input`. */
  cachedInput?: number;
  /** Input written to the prompt cache (Anthropic's 5-minute writes). Default: `input`. */
  cacheWrite?: number;
  /** Input written to the prompt cache for 1 hour (Anthropic). Default: `cacheWrite`. */
  cacheWrite1h?: number;
  /** Reasoning tokens, when priced apart from the rest of the output. Default: `output`. */
  reasoning?: number;
}

/**
 * Rates for long prompts: a request whose `inputTokens` is above `aboveInputTokens` is priced
 * wholly at the tier's rates; a rate the tier leaves out is the model's own. Of several tiers,
 * the one with the highest `aboveInputTokens` below the request's input wins.
 */
export interface PriceTier extends Partial<TokenRates> {
  /** A positive whole number of input tokens. */
  aboveInputTokens: number;
}

/** A model's price: base rates, and optional tiers for long prompts. */
export interface ModelPrice extends TokenRates {
  tiers?: PriceTier[];
}

/** A request's token usage (the shape of `@aigw/provider`'s `TokenUsage`). */
export interface TokenUsage {
  /** All prompt tokens, those read from or written to the prompt cache included. */
  inputTokens: number;
  /** All completion tokens, reasoning included. */
  outputTokens: number;
  /** Of `inputTokens`, read from the prompt cache. */
  cacheReadTokens?: number;
  /** Of `inputTokens`, written to the prompt cache, by how long the entry lives. */
  cacheWriteTokens?: { fiveMinutes: number; oneHour: number };
  /** Of `outputTokens`, spent on reasoning. */
  reasoningTokens?: number;
}

/** One model's price, ready to cost requests. */
export interface ModelPricing {
  /** The price table's entry that matched (or the name given to `priceModel`). */
  readonly name: string;
  /** The price, validated (a frozen copy). */
  readonly price: ModelPrice;
  /**
   * What a request cost, in nano-USD (1e-9 USD): a whole number, rounded up once from the exact
   * sum. Token counts that are negative or not finite count as 0, fractions are dropped, and
   * parts larger than what holds them (cache reads beyond `inputTokens`, reasoning beyond
   * `outputTokens`) are cut down to it, so the cost is never negative. At most
   * `Number.MAX_SAFE_INTEGER` (about 9 million USD).
   */
  cost(usage: TokenUsage): number;
  /**
   * An upper bound of a request's cost in nano-USD, to reserve before the answer is known: the
   * tier a prompt a quarter larger than `inputTokens` would pick (an estimate may fall short),
   * all input at the highest input-side rate (uncached, cache read or cache write: Anthropic's
   * 1-hour writes cost twice the input) and all output at the higher of `output` and
   * `reasoning`. A bound as long as the token counts given are; at most
   * `Number.MAX_SAFE_INTEGER`.
   */
  maxCost(inputTokens: number, outputTokens: number): number;
}

/** Model names to prices. */
export interface PriceTable {
  /**
   * The price of a model, or `undefined` when the table has none. Names are compared in lower
   * case, with a provider prefix (`openai/`, `models/`) and a date suffix (`-2024-08-06`,
   * `-20250929`, `@20250929`) tried off when the whole name is not found.
   */
  lookup(model: string): ModelPricing | undefined;
}

export interface PriceTableOptions {
  /** Prices of your own, USD per million tokens; they replace built-in ones of the same name. */
  prices?: Record<string, ModelPrice>;
  /** Include the built-in prices. Default: true. */
  builtIn?: boolean;
}
