import { StringDecoder } from "node:string_decoder";
import type { SseEvent } from "./types.js";
import { createInvalidResponseError } from "./upstream-errors.js";

const unparsed = Symbol("unparsed");

class ServerSentEvent implements SseEvent {
  readonly raw: string;
  readonly event: string | undefined;
  readonly data: string;
  private parsed: unknown;

  constructor(raw: string, data: string, event: string | undefined, parsed: unknown = unparsed) {
    this.raw = raw;
    this.data = data;
    this.event = event;
    this.parsed = parsed;
  }

  json(): unknown {
    if (this.parsed === unparsed) this.parsed = JSON.parse(this.data);
    return this.parsed;
  }
}

/**
 * Builds one event. An object is serialized to JSON (and returned as is by `json()`); a
 * string with line breaks becomes several `data:` lines.
 */
export function createSseEvent(data: string | object, event?: string): SseEvent {
  const text = typeof data === "string" ? data : JSON.stringify(data);
  let raw = event === undefined ? "" : `event: ${event}\n`;
  for (const line of text.split("\n")) raw += `data: ${line}\n`;
  return new ServerSentEvent(`${raw}\n`, text, event, typeof data === "string" ? unparsed : data);
}

/**
 * An event of one `data:` line, `json`: the JSON text of `value` (it has no line breaks), which
 * `json()` hands back without parsing. For a caller that serialised `value` faster than
 * JSON.stringify would.
 */
export function createJsonSseEvent(value: object, json: string): SseEvent {
  return new ServerSentEvent(`data: ${json}\n\n`, json, undefined, value);
}

/**
 * The comment that keeps an idle stream's connection open: `: keep-alive`. Clients and SSE
 * parsers skip it; it carries no data.
 */
export const keepAliveEvent: SseEvent = new ServerSentEvent(": keep-alive\n\n", "", undefined);

/** A comment-only event (`: <line>` per line of `text`), which SSE clients skip. */
export function createSseComment(text: string): SseEvent {
  // Splitting on a string is several times faster than on a pattern; CR is rare.
  const lines = text.includes("\r") ? text.split(/\r\n|\r|\n/) : text.split("\n");
  let raw = "";
  for (const line of lines) raw += `: ${line}\n`;
  return new ServerSentEvent(`${raw}\n`, "", undefined);
}

/** Whether an event is a comment only (a keep-alive), not data. */
export function isComment(event: SseEvent): boolean {
  return event.raw.charCodeAt(0) === 58 /* ":" */ && event.data === "" && event.event === undefined;
}

/**
 * Reads the fields of one block of lines; a block with only comments is `keepAliveEvent` when
 * `comments` is set, else undefined.
 */
function parseBlock(raw: string, comments: boolean): SseEvent | undefined {
  let data: string | undefined;
  let event: string | undefined;
  let lineStart = 0;
  while (lineStart < raw.length) {
    let lineEnd = raw.indexOf("\n", lineStart);
    if (lineEnd === -1) lineEnd = raw.length;
    const nextLine = lineEnd + 1;
    if (lineEnd > lineStart && raw.charCodeAt(lineEnd - 1) === 13) lineEnd -= 1;
    if (lineEnd > lineStart && raw.charCodeAt(lineStart) !== 58 /* ":" comment */) {
      const colon = raw.indexOf(":", lineStart);
      const fieldEnd = colon === -1 || colon > lineEnd ? lineEnd : colon;
      let valueStart = fieldEnd === lineEnd ? lineEnd : fieldEnd + 1;
      if (raw.charCodeAt(valueStart) === 32 && valueStart < lineEnd) valueStart += 1;
      const field = raw.slice(lineStart, fieldEnd);
      if (field === "data") {
        const value = raw.slice(valueStart, lineEnd);
        data = data === undefined ? value : `${data}\n${value}`;
      } else if (field === "event") {
        event = raw.slice(valueStart, lineEnd);
      }
    }
    lineStart = nextLine;
  }
  if (data === undefined && event === undefined) return comments ? keepAliveEvent : undefined;
  return new ServerSentEvent(raw, data ?? "", event);
}

export interface ParseSseOptions {
  /**
   * Longest event accepted, in characters of decoded text: a longer one (or a line that never
   * ends) fails the stream with a 502 `invalid_upstream_response` instead of filling memory.
   * Default 268,435,456 (256 Mi).
   */
  maxEventLength?: number;
  /**
   * Hand on comment-only blocks (an upstream's `: PROCESSING` while it thinks) as
   * `keepAliveEvent`, never as the upstream wrote them. Default false: they are skipped.
   */
  comments?: boolean;
}

/** An incremental SSE parser: `push` takes the next chunk and returns the events it completed. */
export interface SseParser {
  push(chunk: Uint8Array | string): SseEvent[];
}

const noEvents: SseEvent[] = [];

/**
 * A parser for one stream: each event is returned as soon as the blank line that ends it has
 * arrived. Lines may end in "\n" or "\r\n". Throws when an event passes `maxEventLength`.
 */
export function createSseParser(options: ParseSseOptions = {}): SseParser {
  const maxEventLength = options.maxEventLength ?? 2 ** 28;
  const comments = options.comments ?? false;
  // Lighter than a TextDecoder, which holds an ICU converter (about 1 KB) per open stream.
  const decoder = new StringDecoder("utf8");
  let atStart = true;
  let buffer = "";
  // Where the pending event starts, and where the line being read starts.
  let eventStart = 0;
  let lineStart = 0;
  return {
    push(chunk) {
      // Only new text is searched, so a long line arriving in many chunks is scanned once.
      const searchFrom = buffer.length;
      let text = typeof chunk === "string" ? chunk : decoder.write(chunk);
      if (atStart && text !== "") {
        atStart = false;
        // A byte order mark at the start of a stream is not part of it (the SSE spec).
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      }
      buffer += text;
      let events = noEvents;
      let newline = buffer.indexOf("\n", searchFrom);
      while (newline !== -1) {
        const blank =
          newline === lineStart ||
          (newline === lineStart + 1 && buffer.charCodeAt(lineStart) === 13);
        lineStart = newline + 1;
        if (blank) {
          const event = parseBlock(buffer.slice(eventStart, lineStart), comments);
          eventStart = lineStart;
          if (event !== undefined) {
            if (events === noEvents) events = [];
            events.push(event);
          }
        }
        newline = buffer.indexOf("\n", lineStart);
      }
      if (eventStart > 0) {
        buffer = buffer.slice(eventStart);
        lineStart -= eventStart;
        eventStart = 0;
      }
      if (buffer.length > maxEventLength) {
        throw createInvalidResponseError(
          `The upstream sent an event longer than ${maxEventLength} characters`,
        );
      }
      return events;
    },
  };
}

/**
 * Parses a server-sent event stream incrementally: each event is yielded as soon as the
 * blank line that ends it has arrived. An unterminated block at the end of the stream is
 * dropped, as the SSE specification says.
 */
export async function* parseSse(
  body: AsyncIterable<Uint8Array | string>,
  options: ParseSseOptions = {},
): AsyncGenerator<SseEvent> {
  const parser = createSseParser(options);
  for await (const chunk of body) yield* parser.push(chunk);
}
