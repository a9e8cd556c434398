import { createHash, type Hash, hash } from "node:crypto";
import type { SseEvent } from "@aigw/provider";
import type { Exchange } from "./exchange.js";

/** Bytes (UTF-16 units for text) of a stream's request kept for onFinish hooks while it runs. */
const maxKeptRequest = 16 * 1024;
/** Characters of a stream's answer kept whole for onFinish hooks; past them it is hashed. */
const maxKeptChars = 65_536;

/**
 * When a stream starts, for onFinish hooks that read the bodies: a request body longer than
 * 16 KiB is hashed and let go (an open stream holds no more of it), a shorter one is left for
 * the hooks to hash, off this thread if they can; the answer is kept as it goes out.
 */
export function keepStreamBodies(exchange: Exchange): void {
  const body = exchange.requestBody;
  if (
    body !== undefined &&
    (typeof body === "string" ? body.length : body.byteLength) > maxKeptRequest
  ) {
    exchange.requestSha256 = hash("sha256", body, "hex");
    exchange.requestBody = undefined;
  }
  exchange.streamBody = new StreamBody();
}

/**
 * Whether an SSE client dispatches the event: it has a data field, if only an empty one
 * (comments and `event:`-only blocks have none). `raw` is read only for empty data, rarely.
 */
export const dispatched = (event: SseEvent) =>
  event.data !== "" || /^data(?::|\r?$)/m.test(event.raw);

/**
 * A stream's answer as onFinish hooks get it: the data of each event an SSE client dispatches,
 * each followed by a newline. Kept whole up to 64 Ki characters; a longer answer is hashed in
 * runs of that size as it goes, and only its sha256 is kept.
 */
export class StreamBody {
  private hash: Hash | undefined;
  private pending: string[] = [];
  private pendingChars = 0;

  add(event: SseEvent): void {
    if (!dispatched(event)) return;
    this.pending.push(event.data);
    this.pendingChars += event.data.length + 1;
    if (this.pendingChars < maxKeptChars) return;
    this.hash ??= createHash("sha256");
    this.hash.update(this.takePending());
  }

  /** The answer's text, when it stayed within 64 Ki characters, or else its hex sha256. */
  result(): { text?: string; sha256?: string } {
    const rest = this.takePending();
    return this.hash ? { sha256: this.hash.update(rest).digest("hex") } : { text: rest };
  }

  private takePending(): string {
    // Joined with an empty last element for the last newline: one flat string, where adding
    // it would make a pair for the hash or the log to flatten.
    this.pending.push("");
    const text = this.pending.length === 1 ? "" : this.pending.join("\n");
    this.pending = [];
    this.pendingChars = 0;
    return text;
  }
}
