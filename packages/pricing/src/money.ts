/**
 * An amount of nano-USD (1e-9 USD) as an exact decimal number of USD: `123456` →
 * `"0.000123456"`, `1500000000` → `"1.5"`, `0` → `"0"`. Throws a TypeError unless the amount
 * is a safe integer.
 */
export function formatUsd(nanoUsd: number): string {
  if (!Number.isSafeInteger(nanoUsd)) {
    throw new TypeError(`formatUsd takes a whole number of nano-USD, not ${String(nanoUsd)}`);
  }
  const digits = String(Math.abs(nanoUsd)).padStart(10, "0");
  const fraction = digits.slice(-9).replace(/0+$/, "");
  const sign = nanoUsd < 0 ? "-" : "";
  return `${sign}${digits.slice(0, -9)}${fraction ? `.${fraction}` : ""}`;
}

/**
 * An amount of nano-USD as a number of USD, for display and JSON (`123456` → `0.000123456`):
 * the double nearest the exact decimal, never summed again.
 */
export function nanoToUsd(nanoUsd: number): number {
  return nanoUsd / 1e9;
}

const decimal = /^(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/;

/**
 * An amount of USD in nano-USD (1e-9 USD), exactly: the number's shortest decimal form (the one
 * JavaScript prints) may have at most 9 decimals. Throws a TypeError for negative or non-finite
 * amounts, more decimals, or more than `Number.MAX_SAFE_INTEGER` nano-USD.
 */
export function usdToNano(usd: number): number {
  if (typeof usd !== "number" || !Number.isFinite(usd) || usd < 0) {
    throw new TypeError(`usdToNano takes a finite amount of USD of 0 or more, not ${String(usd)}`);
  }
  const match = decimal.exec(String(usd));
  if (!match) throw new TypeError(`usdToNano cannot read ${String(usd)}`);
  const [, whole = "", fraction = "", exponent = "0"] = match;
  // usd = digits × 10^power
  let digits = `${whole}${fraction}`.replace(/^0+(?=\d)/, "");
  let power = Number(exponent) - fraction.length;
  while (digits.length > 1 && digits.endsWith("0")) {
    digits = digits.slice(0, -1);
    power += 1;
  }
  if (digits !== "0" && power < -9) {
    throw new TypeError(`usdToNano takes at most 9 decimals, not ${String(usd)}`);
  }
  const nano = digits === "0" ? 0n : BigInt(digits) * 10n ** BigInt(power + 9);
  if (nano > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new TypeError(
      `usdToNano: ${String(usd)} USD is more than Number.MAX_SAFE_INTEGER nano-USD`,
    );
  }
  return Number(nano);
}
