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
  /** Prepares one attempt. `stream`: the client asked for a stream. */
  encode(request: ProviderRequest, stream: boolean): EncodedRequest;
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
  /** The stream reached its end marker (or the format has none): its end is not a cut. */
  readonly complete: boolean;
  /** What the upstream reported so far. */
  readonly usage: TokenUsage | undefined;
}
