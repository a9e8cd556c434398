import { builtInPrices } from "./built-in-prices.js";
import { priceModel } from "./price-model.js";
import type { ModelPrice, ModelPricing, PriceTable, PriceTableOptions } from "./types.js";

/** How many model names a table remembers the answer for (names come from clients). */
const memoLimit = 1000;
/** Longer names are looked up every time rather than remembered. */
const memoNameLimit = 256;

/** `-2024-08-06`, `-20250929` or `@20250929` at the end of a name. */
const dateSuffix = /(?:-20\d{2}-\d{2}-\d{2}|[-@]20\d{6})$/;

interface Entry {
  name: string;
  price: ModelPrice;
  pricing?: ModelPricing;
}

/**
 * A price table: the built-in prices (unless `builtIn` is false) and yours, which replace
 * built-in entries of the same name, compared in lower case. Throws a TypeError for an invalid
 * price (see `priceModel`) or a name given twice.
 */
export function createPriceTable(options: PriceTableOptions = {}): PriceTable {
  const entries = new Map<string, Entry>();
  if (options.builtIn !== false) {
    for (const [name, price] of Object.entries(builtInPrices)) {
      entries.set(name.toLowerCase(), { name, price });
    }
  }
  if (options.prices !== undefined) {
    if (typeof options.prices !== "object" || options.prices === null) {
      throw new TypeError("prices must be an object of model names to prices");
    }
    const own = new Set<string>();
    for (const [name, price] of Object.entries(options.prices)) {
      const key = name.toLowerCase();
      if (own.has(key)) {
        throw new TypeError(
          `prices name ${JSON.stringify(key)} twice (names are compared in lower case)`,
        );
      }
      own.add(key);
      entries.set(key, { name, price, pricing: priceModel(name, price) });
    }
  }

  const find = (key: string): ModelPricing | undefined => {
    const entry = entries.get(key);
    if (!entry) return undefined;
    entry.pricing ??= priceModel(entry.name, entry.price);
    return entry.pricing;
  };

  const search = (model: string): ModelPricing | undefined => {
    const lower = model.toLowerCase();
    const bare = lower.slice(lower.lastIndexOf("/") + 1);
    return (
      find(lower) ??
      find(bare) ??
      find(lower.replace(dateSuffix, "")) ??
      find(bare.replace(dateSuffix, ""))
    );
  };

  const memo = new Map<string, ModelPricing | null>();
  return {
    lookup(model: string): ModelPricing | undefined {
      if (typeof model !== "string") return undefined;
      const known = memo.get(model);
      if (known !== undefined) return known ?? undefined;
      const pricing = search(model);
      if (model.length <= memoNameLimit) {
        if (memo.size >= memoLimit) {
          const oldest = memo.keys().next();
          if (!oldest.done) memo.delete(oldest.value);
        }
        memo.set(model, pricing ?? null);
      }
      return pricing;
    },
  };
}
