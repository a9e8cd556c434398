import { createHash, type Hash } from "node:crypto";
import type { SseEvent } from "@aigw/provider";
import type { Exchange } from "./exchange.js";
import { sha256 } from "./finished.js";

/** Bytes (characters for text) of a stream's request kept for onFinish hooks while it runs. */
const maxKeptRequest = 16 * 1024;
/** Characters of a stream's answer kept whole for onFinish hooks; past them it is hashed. */
const maxKeptChars = 65_536;

/**
 * When a stream starts, for onFinish hooks that read the bodies: a request body longer than
 * 16 Ki bytes (characters for text) is hashed and let go (an open stream holds no more of it),
 * a shorter one is left for the hooks to hash, off this thread if they can; the answer is kept
 * as it goes out.
 */
export function keepStreamBodies(exchange: Exchange): void {
  const body = exchange.requestBody;
  if (
    body !== undefined &&
    (typeof body === "string" ? body.length : body.byteLength) > maxKeptRequest
  ) {
    exchange.requestSha256 = sha256(body);
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

/** Events whose data is joined into one string, which no longer holds on to the parser's text. */
const eventsPerRun = 64;

/**
 * A stream's answer as onFinish hooks get it: the data of each event an SSE client dispatches,
 * each followed by a newline. Kept whole below 64 Ki characters; a longer answer is hashed in
 * runs of that size as it goes, and only its sha256 is kept.
 */
export class StreamBody {
  private digest: Hash | undefined;
  /** Data of earlier events, joined `eventsPerRun` at a time. */
  private runs: string[] = [];
  /**
   * Data of the latest events: slices of the parser's text, which they keep alive until they
   * are joined into a run, so a hostile upstream cannot pin its chunks through them.
   */
  private recent: string[] = [];
  private chars = 0;

  add(event: SseEvent): void {
    if (!dispatched(event)) return;
    this.recent.push(event.data);
    this.chars += event.data.length + 1;
    if (this.chars >= maxKeptChars) {
      this.digest ??= createHash("sha256");
      this.digest.update(this.take());
    } else if (this.recent.length === eventsPerRun) {
      this.runs.push(this.recent.join("\n"));
      this.recent = [];
    }
  }

  /**
   * The answer's text when it stayed below 64 Ki characters, or else its hex sha256; neither
   * when the client was sent no event with data.
   */
  result(): { text?: string; sha256?: string } {
    if (this.digest) return { sha256: this.digest.update(this.take()).digest("hex") };
    return this.runs.length === 0 && this.recent.length === 0 ? {} : { text: this.take() };
  }

  private take(): string {
    const parts = this.runs;
    parts.push(...this.recent);
    // Joined with an empty last element for the last newline: one flat string, where adding
    // it would make a pair for the hash or the log to flatten.
    parts.push("");
    const text = parts.length === 1 ? "" : parts.join("\n");
    this.runs = [];
    this.recent = [];
    this.chars = 0;
    return text;
  }
}
