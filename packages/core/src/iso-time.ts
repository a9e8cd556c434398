/** The furthest a Date reaches from the epoch, in ms either way. */
const maxTime = 8.64e15;
let cachedSecond = Number.NaN;
let cachedPrefix = "";

/**
 * `new Date(time).toISOString()` ("2026-12-01T10:00:00.123Z") for `time` in ms since the
 * epoch. The date part of the last second asked for is kept and the milliseconds added: most
 * requests that finish together started in the same second, and a full format costs about
 * twenty times as much.
 * @throws RangeError for a time a Date cannot hold, as toISOString does.
 */
export function isoTime(time: number): string {
  const milliseconds = Math.trunc(time);
  // Out of range (or NaN): toISOString throws.
  if (!(Math.abs(milliseconds) <= maxTime)) return new Date(time).toISOString();
  const second = Math.floor(milliseconds / 1000);
  if (second !== cachedSecond) {
    cachedPrefix = new Date(second * 1000).toISOString().slice(0, -4);
    cachedSecond = second;
  }
  const rest = milliseconds - second * 1000;
  return `${cachedPrefix}${rest < 10 ? "00" : rest < 100 ? "0" : ""}${rest}Z`;
}
