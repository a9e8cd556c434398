import { contentCodings, decodeBody, firstHeader, jsonText } from "@aigw/provider";
import {
  invalidRequest,
  requestTimeout,
  requestTooLarge,
  shown,
  unsupportedMediaType,
} from "./errors.js";
import type { GatewayRequest, HeaderValue } from "./types.js";

/** How a request body is read: its size, and how long it may pause while it arrives. */
export interface BodyLimits {
  /** Largest body in bytes, counted after decoding a Content-Encoding. */
  maxBytes: number;
  /** Longest pause between two chunks of a streamed body, in milliseconds. */
  idleTimeoutMs: number;
}

/** The body as JSON, and its text as received when it can go upstream byte for byte. */
export interface ReceivedBody {
  body: Record<string, unknown>;
  json: Uint8Array | string | undefined;
}

/**
 * Arrays and objects nested deeper than this are refused with a 400: everything that walks a
 * body (cache key, token estimate, serialisation) then stays far from the stack's end.
 */
export const maxJsonDepth = 128;
/** Longest model name accepted, in characters. */
export const maxModelLength = 256;

const jsonMediaType = /^application\/(?:[\w.-]+\+)?json\s*(?:;|$)/i;

function tooLarge(size: number, limitBytes: number) {
  if (size > limitBytes) throw requestTooLarge(limitBytes);
}

/** The model APIs take JSON only: a form or text body is what a web page can send unasked. */
export function requireJsonContentType(headers: Record<string, HeaderValue>): void {
  const type = firstHeader(headers["content-type"]);
  if (type === undefined || !jsonMediaType.test(type.trim())) {
    throw unsupportedMediaType(
      "The request body must be JSON, sent with 'Content-Type: application/json'.",
    );
  }
}

/** The content codings to undo, last applied first; identity is none. */
function requestCodings(header: HeaderValue): readonly string[] {
  const codings = contentCodings(header);
  if ("unsupported" in codings) {
    throw unsupportedMediaType(
      `Content-Encoding '${shown(codings.unsupported, 40)}' is not supported; use gzip, deflate or br (at most two), or none.`,
      "unsupported_content_encoding",
    );
  }
  return codings;
}

async function decode(
  bytes: Uint8Array,
  codings: readonly string[],
  limitBytes: number,
): Promise<Uint8Array> {
  try {
    return await decodeBody(bytes, codings, limitBytes);
  } catch (error) {
    if ((error as { code?: unknown }).code === "ERR_BUFFER_TOO_LARGE") {
      throw requestTooLarge(limitBytes);
    }
    throw invalidRequest(
      `The request body is not valid ${codings.join(", ")} data.`,
      null,
      "invalid_content_encoding",
    );
  }
}

/**
 * Reads a streamed body up to `limitBytes`, failing with 413 as soon as it is exceeded and
 * with 408 when no chunk arrives for `idleTimeoutMs`.
 */
async function readStream(
  body: AsyncIterable<Uint8Array | string>,
  { maxBytes, idleTimeoutMs }: BodyLimits,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  const iterator = body[Symbol.asyncIterator]();
  let timer: NodeJS.Timeout | undefined;
  const idle = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(requestTimeout()), idleTimeoutMs);
  });
  idle.catch(() => {});
  try {
    for (;;) {
      const next = await Promise.race([iterator.next(), idle]);
      if (next.done) break;
      timer?.refresh();
      const buffer = Buffer.from(next.value);
      size += buffer.byteLength;
      tooLarge(size, maxBytes);
      chunks.push(buffer);
    }
  } catch (error) {
    iterator.return?.()?.catch(() => {});
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return Buffer.concat(chunks, size);
}

function parseObject(parsed: unknown): Record<string, unknown> {
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw invalidRequest("The request body must be a JSON object.", null, "invalid_json");
  }
  return parsed as Record<string, unknown>;
}

function parseText(text: string): Record<string, unknown> {
  try {
    return parseObject(JSON.parse(text));
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    if (text.trim() === "") {
      throw invalidRequest(
        "The request body is empty; expected a JSON object.",
        null,
        "invalid_json",
      );
    }
    // The parser's own message quotes the body: only the position is passed on.
    const position = /at position (\d+)/.exec(error.message)?.[1];
    throw invalidRequest(
      `The request body is not valid JSON${position ? ` (at position ${position})` : ""}.`,
      null,
      "invalid_json",
    );
  }
}

function startsWithBom(bytes: Uint8Array): boolean {
  return bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;
}

/**
 * Whether arrays and objects in a parsed body nest deeper than `max` (the body itself is level
 * 1). Walks without recursion; strings and numbers are never looked into, so a long prompt
 * costs nothing.
 */
function nestsDeeper(body: Record<string, unknown>, max: number): boolean {
  const pending: unknown[] = [body];
  const depths: number[] = [1];
  for (let node = pending.pop(); node !== undefined; node = pending.pop()) {
    const depth = depths.pop() as number;
    if (depth > max) return true;
    const children = Array.isArray(node) ? node : Object.values(node as object);
    for (const child of children) {
      if (typeof child === "object" && child !== null) {
        pending.push(child);
        depths.push(depth + 1);
      }
    }
  }
  return false;
}

/**
 * The path to the first array or object nested deeper than `max`, naming its first levels
 * ("metadata.a.b"), or undefined when there is none. Walks without recursion.
 */
function tooDeepPath(value: unknown, max: number): string | undefined {
  const pending: [node: unknown, depth: number, path: string][] = [[value, 1, ""]];
  const namedLevels = 4;
  for (let item = pending.pop(); item !== undefined; item = pending.pop()) {
    const [node, depth, path] = item;
    if (typeof node !== "object" || node === null) continue;
    if (depth > max) return path;
    const named = depth <= namedLevels;
    if (Array.isArray(node)) {
      for (let index = node.length - 1; index >= 0; index--) {
        pending.push([node[index], depth + 1, named ? `${path}[${index}]` : path]);
      }
    } else {
      for (const [key, child] of Object.entries(node).reverse()) {
        const childPath = named ? (path ? `${path}.${shown(key, 64)}` : shown(key, 64)) : path;
        pending.push([child, depth + 1, childPath]);
      }
    }
  }
  return undefined;
}

/** The body, or a 400 naming the first field nested deeper than `maxJsonDepth`. */
function checkDepth(body: Record<string, unknown>): Record<string, unknown> {
  if (!nestsDeeper(body, maxJsonDepth)) return body;
  const path = tooDeepPath(body, maxJsonDepth) ?? "";
  throw invalidRequest(
    `Invalid '${path}': arrays and objects may nest at most ${maxJsonDepth} levels deep.`,
    path,
    "too_deeply_nested",
  );
}

function received(raw: Uint8Array | string | undefined, limitBytes: number): ReceivedBody {
  if (raw === undefined) return { body: parseText(""), json: undefined };
  const isText = typeof raw === "string";
  tooLarge(isText ? Buffer.byteLength(raw) : raw.byteLength, limitBytes);
  const parsed = parseText(jsonText(raw));
  // Each level takes two characters at least: a short body cannot nest too deep.
  const body = raw.length > 2 * maxJsonDepth ? checkDepth(parsed) : parsed;
  return { body, json: isText || !startsWithBom(raw) ? raw : undefined };
}

/**
 * Parses the JSON body once; it must be an object. Bodies already in memory, not encoded,
 * are parsed synchronously (the common path); streamed or encoded ones are read and decoded
 * within the limits first.
 */
export function readJsonBody(
  request: GatewayRequest,
  limits: BodyLimits,
): ReceivedBody | Promise<ReceivedBody> {
  if (request.parsedBody !== undefined) {
    return { body: checkDepth(parseObject(request.parsedBody)), json: undefined };
  }
  tooLarge(Number(request.headers["content-length"]), limits.maxBytes);
  const codings = requestCodings(request.headers["content-encoding"]);
  const { body } = request;
  const inMemory = body === undefined || typeof body === "string" || body instanceof Uint8Array;
  if (inMemory && codings.length === 0) return received(body, limits.maxBytes);
  return (async () => {
    let raw = inMemory ? body : await readStream(body, limits);
    if (codings.length > 0 && raw !== undefined) {
      raw = await decode(
        typeof raw === "string" ? Buffer.from(raw) : raw,
        codings,
        limits.maxBytes,
      );
    }
    return received(raw, limits.maxBytes);
  })();
}
