import type { Endpoint } from "@aigw/provider";
import { invalidRequest, requestTooLarge } from "./errors.js";
import type { GatewayRequest } from "./types.js";

function tooLarge(size: number, limitBytes: number) {
  if (size > limitBytes) throw requestTooLarge(limitBytes);
}

/** Reads a streamed body up to `limitBytes`, failing with 413 as soon as it is exceeded. */
async function readStream(
  body: AsyncIterable<Uint8Array | string>,
  limitBytes: number,
): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buffer = Buffer.from(chunk);
    size += buffer.byteLength;
    tooLarge(size, limitBytes);
    chunks.push(buffer);
  }
  return utf8Text(Buffer.concat(chunks, size));
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
    throw invalidRequest(
      `The request body is not valid JSON: ${error.message}`,
      null,
      "invalid_json",
    );
  }
}

function startsWithBom(bytes: Uint8Array): boolean {
  return bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;
}

/** UTF-8 text of a body, without a byte order mark (JSON.parse refuses one). */
function utf8Text(bytes: Uint8Array): string {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return buffer.toString("utf8", startsWithBom(buffer) ? 3 : 0);
}

/** The JSON the client sent, when it was read whole and can go upstream byte for byte. */
export function receivedJson(request: GatewayRequest): Uint8Array | string | undefined {
  const { body } = request;
  if (typeof body === "string") return body;
  return body instanceof Uint8Array && !startsWithBom(body) ? body : undefined;
}

/**
 * Parses the JSON body once; it must be an object. Bodies already in memory are parsed
 * synchronously (the common path); streamed ones are read up to the limit first.
 */
export function readJsonBody(
  request: GatewayRequest,
  limitBytes: number,
): Record<string, unknown> | Promise<Record<string, unknown>> {
  if (request.parsedBody !== undefined) return parseObject(request.parsedBody);
  tooLarge(Number(request.headers["content-length"]), limitBytes);
  const body = request.body;
  if (body === undefined) return parseText("");
  if (typeof body === "string") {
    tooLarge(Buffer.byteLength(body), limitBytes);
    return parseText(body);
  }
  if (body instanceof Uint8Array) {
    tooLarge(body.byteLength, limitBytes);
    return parseText(utf8Text(body));
  }
  return readStream(body, limitBytes).then(parseText);
}

type FieldCheck = (value: unknown) => boolean;

const isNonEmptyString: FieldCheck = (value) => typeof value === "string" && value.length > 0;
const isPresent: FieldCheck = (value) => value !== undefined && value !== null;

/** Fields each endpoint cannot go without; everything else passes through untouched. */
const requiredFields: Record<Endpoint, [field: string, check: FieldCheck, expected: string][]> = {
  "chat/completions": [["messages", Array.isArray, "an array of messages"]],
  completions: [["prompt", isPresent, "a string or an array"]],
  embeddings: [["input", isPresent, "a string or an array"]],
  responses: [],
  "images/generations": [["prompt", isNonEmptyString, "a non-empty string"]],
  models: [],
};

/** Checks what the gateway itself relies on, naming the field at fault. */
export function validateBody(endpoint: Endpoint, body: Record<string, unknown>): string {
  const model = body.model;
  if (!isNonEmptyString(model)) {
    throw invalidRequest(
      model === undefined
        ? "Missing required parameter: 'model'."
        : "Invalid 'model': expected a non-empty string.",
      "model",
      model === undefined ? "missing_required_parameter" : "invalid_type",
    );
  }
  for (const [field, check, expected] of requiredFields[endpoint]) {
    const value = body[field];
    if (value === undefined) {
      throw invalidRequest(
        `Missing required parameter: '${field}'.`,
        field,
        "missing_required_parameter",
      );
    }
    if (!check(value)) {
      throw invalidRequest(`Invalid '${field}': expected ${expected}.`, field, "invalid_type");
    }
  }
  if (body.stream !== undefined && typeof body.stream !== "boolean") {
    throw invalidRequest("Invalid 'stream': expected a boolean.", "stream", "invalid_type");
  }
  return model as string;
}
