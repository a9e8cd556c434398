import { isObject } from "./json-object.js";
import type { TokenUsage } from "./types.js";
import { createInvalidResponseError } from "./upstream-errors.js";

/** Bodies above this size are never parsed whole, not even to estimate usage. */
export const LARGE_BODY_BYTES = 1024 * 1024;
// `usage` comes last in every OpenAI response shape; how far from the end it is looked for.
const USAGE_SEARCH_BYTES = 64 * 1024;

const textDecoder = new TextDecoder();
const usageKey = Buffer.from('"usage"');

/** A rough count for when the upstream reports none: one token per four bytes of UTF-8. */
export function estimateTokens(text: string | Uint8Array): number {
  const bytes = typeof text === "string" ? Buffer.byteLength(text) : text.byteLength;
  return Math.ceil(bytes / 4);
}

/**
 * What one image, and one document, file or audio clip, counts for in `estimatePromptTokens`:
 * about what providers bill for an image near a megapixel, and for a few pages of a PDF.
 */
export const MEDIA_TOKENS = { image: 1_600, document: 3_000 } as const;

const imageParts = new Set(["image_url", "input_image", "image"]);
const documentParts = new Set(["file", "input_file", "document", "input_audio"]);

/**
 * A rough count of a prompt's tokens (`messages`, `input`, `prompt` or a Messages body): its
 * JSON text as `estimateTokens` counts it, except that each image part counts
 * `MEDIA_TOKENS.image` and each file, document or audio part `MEDIA_TOKENS.document`, whatever
 * the size of its base64 data. Parts are told by their `type` (OpenAI chat and Responses,
 * Anthropic Messages).
 */
export function estimatePromptTokens(prompt: unknown): number {
  if (typeof prompt === "string") return estimateTokens(prompt);
  let media = 0;
  const text = JSON.stringify(prompt, (_key, value: unknown) => {
    if (typeof value !== "object" || value === null) return value;
    const type = (value as { type?: unknown }).type;
    if (typeof type !== "string") return value;
    if (imageParts.has(type)) media += MEDIA_TOKENS.image;
    else if (documentParts.has(type)) media += MEDIA_TOKENS.document;
    else return value;
    return undefined;
  });
  return estimateTokens(text ?? "") + media;
}

function count(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

/**
 * Reads a usage object: `prompt_tokens`/`completion_tokens` (chat, completions,
 * embeddings) or `input_tokens`/`output_tokens` (responses, images).
 */
export function usageFromObject(usage: unknown): TokenUsage | undefined {
  if (typeof usage !== "object" || usage === null) return undefined;
  const fields = usage as Record<string, unknown>;
  const inputTokens = count(fields.prompt_tokens) ?? count(fields.input_tokens);
  const outputTokens = count(fields.completion_tokens) ?? count(fields.output_tokens);
  if (inputTokens === undefined && outputTokens === undefined) return undefined;
  const input = inputTokens ?? 0;
  const output = outputTokens ?? 0;
  const read: TokenUsage = {
    inputTokens: input,
    outputTokens: output,
    totalTokens: count(fields.total_tokens) ?? input + output,
  };
  // Chat and completions name the details after prompt and completion; Responses after input
  // and output.
  const cacheRead = count(
    detail(fields.prompt_tokens_details ?? fields.input_tokens_details, "cached_tokens"),
  );
  const reasoning = count(
    detail(fields.completion_tokens_details ?? fields.output_tokens_details, "reasoning_tokens"),
  );
  if (cacheRead !== undefined) read.cacheReadTokens = cacheRead;
  if (reasoning !== undefined) read.reasoningTokens = reasoning;
  return read;
}

function detail(details: unknown, name: string): unknown {
  return typeof details === "object" && details !== null
    ? (details as Record<string, unknown>)[name]
    : undefined;
}

/** Text the model produced, from a chat, completions or responses body. */
function outputTextOf(value: unknown): string {
  if (typeof value !== "object" || value === null) return "";
  const body = value as {
    choices?: { message?: { content?: unknown }; text?: unknown }[];
    output?: { content?: { text?: unknown }[] }[];
  };
  let text = "";
  const append = (part: unknown) => {
    if (typeof part === "string") text += part;
  };
  if (Array.isArray(body.choices)) {
    for (const choice of body.choices) {
      append(choice?.message?.content);
      append(choice?.text);
    }
  }
  if (Array.isArray(body.output)) {
    for (const item of body.output) {
      if (Array.isArray(item?.content)) for (const part of item.content) append(part?.text);
    }
  }
  return text;
}

/**
 * The neutral shape -> OpenAI's chat `usage`, with `completion_tokens_details.reasoning_tokens`
 * when reasoning was counted apart (cache writes have no OpenAI field).
 */
export function chatUsage(usage: TokenUsage): Record<string, unknown> {
  return {
    prompt_tokens: usage.inputTokens,
    completion_tokens: usage.outputTokens,
    total_tokens: usage.totalTokens,
    prompt_tokens_details: { cached_tokens: usage.cacheReadTokens ?? 0 },
    ...(usage.reasoningTokens === undefined
      ? {}
      : { completion_tokens_details: { reasoning_tokens: usage.reasoningTokens } }),
  };
}

export function estimateUsage(request: string | Uint8Array, outputTokens: number): TokenUsage {
  const inputTokens = estimateTokens(request);
  return { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens, estimated: true };
}

function isWhitespace(code: number): boolean {
  return code === 32 || code === 10 || code === 13 || code === 9;
}

function firstNonWhitespace(body: Uint8Array): number | undefined {
  for (let index = 0; index < body.length; index++) {
    if (!isWhitespace(body[index] as number)) return body[index];
  }
  return undefined;
}

function lastNonWhitespace(body: Uint8Array): number | undefined {
  for (let index = body.length - 1; index >= 0; index--) {
    if (!isWhitespace(body[index] as number)) return body[index];
  }
  return undefined;
}

/** The end (exclusive) of the JSON object starting at `start`, strings and escapes skipped. */
function objectEnd(bytes: Uint8Array, start: number): number | undefined {
  let depth = 0;
  let inString = false;
  // Bytes of multi-byte UTF-8 characters are all >= 0x80, so they never look like these.
  for (let index = start; index < bytes.length; index++) {
    const byte = bytes[index];
    if (inString) {
      if (byte === 92 /* backslash */) index++;
      else if (byte === 34 /* " */) inString = false;
    } else if (byte === 34) {
      inString = true;
    } else if (byte === 123 /* { */) {
      depth++;
    } else if (byte === 125 /* } */) {
      depth--;
      if (depth === 0) return index + 1;
    }
  }
  return undefined;
}

function skipWhitespace(bytes: Uint8Array, index: number): number {
  while (index < bytes.length && isWhitespace(bytes[index] as number)) index++;
  return index;
}

/** Finds the last `"usage": {...}` near the end of a body and parses only that. */
function readTailUsage(body: Uint8Array): unknown {
  const from = Math.max(0, body.length - USAGE_SEARCH_BYTES);
  const tail = Buffer.from(body.buffer, body.byteOffset + from, body.length - from);
  const key = tail.lastIndexOf(usageKey);
  if (key === -1) return undefined;
  const colon = skipWhitespace(tail, key + usageKey.length);
  if (tail[colon] !== 58 /* : */) return undefined;
  const start = skipWhitespace(tail, colon + 1);
  if (tail[start] !== 123) return undefined;
  const end = objectEnd(tail, start);
  return end === undefined ? undefined : JSON.parse(tail.toString("utf8", start, end));
}

export interface ReadUsageOptions {
  /** The request's JSON, text or bytes; when given, a body without usage yields an estimate. */
  requestBody?: string | Uint8Array | undefined;
  upstreamRequestId?: string | undefined;
}

/**
 * Reads the token usage of a JSON response without parsing the whole body: `usage` comes
 * last in every OpenAI response shape, so only that object is parsed. A body that does not
 * look like one JSON object (cut, or not JSON) throws a 502 `invalid_upstream_response`
 * AigwError. A small body without usage is parsed whole, to estimate from its text.
 */
export function readUsage(
  body: Uint8Array,
  options: ReadUsageOptions = {},
): TokenUsage | undefined {
  const { requestBody, upstreamRequestId } = options;
  let usage: unknown;
  let outputText = "";
  try {
    // 123 and 125 are "{" and "}": a cut or non-JSON body is caught without a parse.
    if (firstNonWhitespace(body) !== 123 || lastNonWhitespace(body) !== 125) {
      throw new SyntaxError("the body does not start with { and end with }");
    }
    usage = readTailUsage(body);
    if (usage === undefined && requestBody !== undefined && body.length <= LARGE_BODY_BYTES) {
      outputText = outputTextOf(JSON.parse(textDecoder.decode(body)));
    }
  } catch (error) {
    // The parser's message is left out: it quotes the body.
    throw createInvalidResponseError(
      "The upstream answered with malformed JSON",
      upstreamRequestId,
      error,
    );
  }
  const reported = usageFromObject(usage);
  if (reported !== undefined || requestBody === undefined) return reported;
  return estimateUsage(requestBody, estimateTokens(outputText));
}

/** Whether a streamed request asked for the usage chunk (`stream_options.include_usage`). */
export function wantsStreamUsage(body: Record<string, unknown> | undefined): boolean {
  const options = body?.stream_options;
  return isObject(options) && options.include_usage === true;
}
