import type { SecretScrubber } from "./secrets.js";
import type { ProviderRequest, SseEvent, TokenUsage } from "./types.js";

/**
 * How an upstream's wire format is written and read. The HTTP transport (pool, timeouts,
 * headers, errors, event parsing) is the same for every format; a format decides what is sent
 * for a request and what of the answer reaches the client: OpenAI's as it came, Anthropic's
 * translated.
 */
export interface WireFormat {
  /** The client protocols this format is: see `Provider.protocols`. */
  readonly protocols: readonly string[];
  /** See `Provider.countsTokens`. */
  readonly countsTokens?: boolean;
  /** Prepares one attempt. `stream`: the client asked for a stream. */
  encode(request: ProviderRequest, stream: boolean): EncodedRequest;
  /**
   * The HTTP status an error answer stands for, when the upstream's own says less (Gemini
   * answers a bad API key with 400). Absent: the status as it came.
   */
  errorStatus?(status: number, text: string): number;
}

export interface AnswerContext {
  /** The provider's credentials, kept out of everything relayed. */
  secrets: SecretScrubber;
  upstreamRequestId: string | undefined;
}

export interface EncodedRequest {
  /** The JSON sent upstream. */
  body: string | Uint8Array;
  /**
   * Whether an error answer (its status and text) refused something the format added on its
   * own: the request is then sent once more, as the client sent it. Absent: never.
   */
  refusedAddition?(status: number, text: string): boolean;
  /** A successful JSON answer: the bytes the client gets, and the usage it reports. */
  readAnswer(
    bytes: Buffer,
    context: AnswerContext,
  ): { body: Uint8Array; usage: TokenUsage | undefined };
  /** A reader for the stream this request starts. */
  readStream(context: AnswerContext): StreamReader;
}

/** Reads one stream's events, one at a time, as they arrive. */
export interface StreamReader {
  /**
   * Queues what goes on to the client for one upstream event (keep-alive comments are passed
   * on before this is asked). Throws an AigwError for an event that reports a failure.
   */
  accept(event: SseEvent, queue: SseEvent[]): void;
  /** The stream reached its end marker (or its last event): its end is not a cut. */
  readonly complete: boolean;
  /**
   * Queues what ends the stream once the upstream's body ended `complete` (a format whose
   * upstream has no end marker writes its own there). Absent: nothing.
   */
  finish?(queue: SseEvent[]): void;
  /** What the upstream reported so far. */
  readonly usage: TokenUsage | undefined;
}
