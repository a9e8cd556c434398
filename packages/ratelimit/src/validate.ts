export function assertPositive(field: string, value: number, integer: boolean): void {
  const valid = integer ? Number.isSafeInteger(value) : Number.isFinite(value);
  if (!valid || value <= 0) {
    const kind = integer ? "a positive integer" : "a positive finite number";
    throw new TypeError(`${field} must be ${kind}, got ${String(value)}`);
  }
}

export function assertCost(field: string, value: number): void {
  if (!Number.isFinite(value) || value < 0) {
    throw new TypeError(`${field} must be a non-negative finite number, got ${String(value)}`);
  }
}

export function assertTokenCount(field: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new TypeError(`${field} must be a non-negative integer, got ${String(value)}`);
  }
}
