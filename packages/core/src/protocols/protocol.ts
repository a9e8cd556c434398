import type { AigwError, Endpoint, SseEvent, TokenUsage } from "@aigw/provider";

/**
 * A wire format clients speak to the gateway: OpenAI's API today, Anthropic's Messages API
 * next. What is specific to one lives behind this interface, and the request loop knows
 * protocols only through it; a new protocol is a new folder here, listed in `gateway.ts`.
 *
 * OpenAI's chat completions are the canonical shape: every provider accepts them, and a
 * request whose protocol a target does not speak natively (`Provider.protocols`) reaches it
 * in that shape.
 */
export interface Protocol {
  /** What providers, logs and hooks call it ("openai"). */
  readonly name: string;
  /** The endpoints it serves, by request path ("/v1/chat/completions"). */
  readonly endpoints: ReadonlyMap<string, Endpoint>;
  /**
   * Whether its requests are the canonical shape (OpenAI's), which every provider accepts.
   * A request of another protocol goes as it is to targets that speak that protocol, and
   * through `toCanonical` to the others.
   */
  readonly canonical: boolean;
  /**
   * Checks a request body against the endpoint's schema (required fields, types, ranges,
   * roles, tool choices, media URLs) and gives the requested model. The check never changes
   * the body: unknown fields and part types pass as they are.
   * @throws AigwError 400 `invalid_request_error` naming the field at fault (its JSON path).
   */
  validate(endpoint: Endpoint, body: Record<string, unknown>): string;
  /**
   * A rough count of the request's prompt tokens, for limits reserved before it runs: text as
   * bytes / 4, each image or document a fixed number (`MEDIA_TOKENS` of @aigw/provider).
   */
  promptTokens(endpoint: Endpoint, body: Record<string, unknown>): number;
  /** The most output tokens the request allows: its own cap, 0 when it makes none, else undefined. */
  outputCap(endpoint: Endpoint, body: Record<string, unknown>): number | undefined;
  /** Top-level body fields that change only how an answer is delivered; cache keys leave them out. */
  readonly deliveryFields: ReadonlySet<string>;
  /** The endpoints whose answers may be cached. */
  readonly cachedEndpoints: ReadonlySet<Endpoint>;
  /** The usage a JSON answer reports. @throws AigwError for an answer that is not JSON. */
  readUsage(answer: Uint8Array): TokenUsage | undefined;
  /** How a stream of `endpoint` is kept as one answer and played back; undefined: it is not. */
  streamRecording(endpoint: Endpoint): StreamRecording | undefined;
  /** The text of a request, in the order written. */
  requestText(endpoint: Endpoint, body: Record<string, unknown>): TextPiece[];
  /** The text of a JSON answer. */
  answerText(endpoint: Endpoint, answer: unknown): TextPiece[];
  /** The text one stream event adds. */
  eventText(endpoint: Endpoint, event: SseEvent): TextPiece[];
  /** Edits a request body's text in place: `edit` sees the pieces `requestText` gives, in order. */
  editRequestText(endpoint: Endpoint, body: Record<string, unknown>, edit: TextEdit): void;
  /** Edits a parsed JSON answer's text in place: `edit` sees the pieces `answerText` gives. */
  editAnswerText(endpoint: Endpoint, answer: Record<string, unknown>, edit: TextEdit): void;
  /** `event` with its text edited (the pieces `eventText` gives); the same event when unchanged. */
  editEventText(endpoint: Endpoint, event: SseEvent, edit: TextEdit): SseEvent;
  /**
   * Rewrites a parsed JSON answer, in place, as one whose output a content filter withheld:
   * no content, ended as the protocol's providers end such answers (OpenAI `finish_reason:
   * "content_filter"`, Anthropic `stop_reason: "refusal"`).
   */
  withholdAnswer(endpoint: Endpoint, answer: Record<string, unknown>): void;
  /** A fresh withholder for one stream of `endpoint`. */
  streamWithholder(endpoint: Endpoint): StreamWithholder;
  /**
   * For a protocol that is not canonical: a request as the canonical shape, for a target that
   * does not speak the protocol, with what turns its answers back; undefined when the endpoint
   * has no canonical form.
   * @throws AigwError 400 for a request that cannot be translated.
   */
  toCanonical?(
    endpoint: Endpoint,
    body: Record<string, unknown>,
    options: CanonicalOptions,
  ): CanonicalRequest | undefined;
  /**
   * An answer the gateway gives itself when a target does not speak the protocol, for an
   * endpoint that needs no upstream (Anthropic's count_tokens: a local estimate, unless the
   * target's provider `countsTokens`); undefined when it has none.
   */
  localAnswer?(endpoint: Endpoint, body: Record<string, unknown>): Uint8Array | undefined;
  /** What a stream gets during long silences, so proxies in front do not cut it. */
  readonly keepAliveEvent: SseEvent;
  /** An error as the protocol's JSON error body. */
  errorBody(error: AigwError): string;
  /** An error after a stream started, as the protocol's frame; nothing follows it. */
  streamErrorEvent(endpoint: Endpoint, error: AigwError): SseEvent;
}

/** How a request is brought to the canonical shape for one target. */
export interface CanonicalOptions {
  /** Leave out what has no canonical counterpart instead of refusing (the target's `dropUnsupportedParams`). */
  dropUnsupported: boolean;
}

/** A request in the canonical shape, and how its answers go back to the client's protocol. */
export interface CanonicalRequest {
  endpoint: Endpoint;
  body: Record<string, unknown>;
  /** A JSON answer in the client's protocol. */
  answer(body: Uint8Array): Uint8Array;
  /** A fresh translator for one stream: its events for each upstream chunk, then its end. */
  stream(): { push(chunk: unknown): SseEvent[]; end(): SseEvent[] };
}

/**
 * One piece of text of a request or an answer, whatever the protocol: what guardrails and the
 * audit log read.
 */
export interface TextPiece {
  /** Who it is from: system and developer instructions are "system"; tool results "tool". */
  role: "system" | "user" | "assistant" | "tool";
  /**
   * "text" (a refusal included); "reasoning" (a model's thinking or its summary); "tool_call"
   * (the arguments of a call, `name` naming the function); "tool_result" (what a call gave).
   */
  kind: "text" | "reasoning" | "tool_call" | "tool_result";
  text: string;
  /** The function a tool call names. */
  name?: string;
}

/** Sees a piece of text where it lies; a string returned replaces it there. */
export type TextEdit = (piece: TextPiece) => string | undefined;

/** Ends a stream whose output a content filter withheld, keeping the protocol's frame. */
export interface StreamWithholder {
  /**
   * Whether `event` closes a part of the answer (a choice, a content block, an output item,
   * the answer itself): no text that came before it can join text after it.
   */
  closes(event: SseEvent): boolean;
  /** Sees each event that goes out unchanged, before any withholding. */
  pass(event: SseEvent): void;
  /**
   * An event after the output was withheld (held ones included): what still goes out, the
   * answer's end rewritten as withheld, or null for output.
   */
  withhold(event: SseEvent): SseEvent | null;
}

/** A stream gathered into one answer, and played back from it, for the response cache. */
export interface StreamRecording {
  /** A fresh assembler for one stream, which gathers at most `maxLength` characters of events. */
  assemble(maxLength: number): StreamAssembler;
  /** A stored answer as the stream's events, for a client that sent `request`. */
  replay(answer: Uint8Array, request: Record<string, unknown>): SseEvent[];
}

export interface StreamAssembler {
  add(event: SseEvent): void;
  /** The stream went past its `maxLength`: what it held is dropped and nothing more is kept. */
  readonly overflowed: boolean;
  /**
   * The complete answer as the non-streamed endpoint would have sent it, or undefined when the
   * stream carried an error or overflowed. `usage` stands in for a usage report the client did
   * not see.
   */
  finish(usage: TokenUsage | undefined): Uint8Array | undefined;
}
