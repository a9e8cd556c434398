export { builtInPriceSource, builtInPrices } from "./built-in-prices.js";
export { formatUsd, nanoToUsd, usdToNano } from "./money.js";
export { priceModel } from "./price-model.js";
export { createPriceTable } from "./price-table.js";
export type {
  ModelPrice,
  ModelPricing,
  PriceTable,
  PriceTableOptions,
  PriceTier,
  TokenRates,
  TokenUsage,
} from "./types.js";
