import { AigwError } from "./errors.js";
import { isObject } from "./json-object.js";
import { screenBody } from "./secrets.js";
import { createInvalidResponseError } from "./upstream-errors.js";
import type { EncodedRequest } from "./wire-format.js";

/**
 * What the translating formats (Anthropic, Gemini) share: their refusals, data URLs, and the
 * bounded report of the request fields they leave out.
 */

/** A request that cannot be translated: 400 `invalid_request_error` naming `param`. */
export function refuse(message: string, param: string): never {
  throw new AigwError(message, { status: 400, type: "invalid_request_error", param });
}

/**
 * A valid request that the upstream cannot honour: code `unsupported_parameter`, so that a
 * gateway may send it to another target of the route instead.
 */
export function unsupported(message: string, param: string): never {
  throw new AigwError(message, {
    status: 400,
    type: "invalid_request_error",
    code: "unsupported_parameter",
    param,
  });
}

/** `table[key]` for a key of the table's own: never an inherited one ("constructor"). */
export function lookup<T>(table: Readonly<Record<string, T>>, key: unknown): T | undefined {
  return typeof key === "string" && Object.hasOwn(table, key) ? table[key] : undefined;
}

/** A client's value as an error message names it: its JSON, cut to 64 characters. */
export function quoted(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 64 ? `${text.slice(0, 64)}…` : text;
}

/** `data:<media type>[;parameters];base64,<data>`; the parameters are ignored. */
export function parseDataUrl(url: string): { mediaType: string; data: string } | undefined {
  const match = /^data:([^;,]+)((?:;[^;,]*)*),(.*)$/s.exec(url);
  if (!match || !(match[2] ?? "").split(";").includes("base64")) return undefined;
  return { mediaType: (match[1] as string).toLowerCase(), data: match[3] as string };
}

/**
 * Tells `onDroppedField` each top-level field of `body` a translation did not read
 * (`translated`), `stream_options` aside: it only shapes delivery, which the provider handles.
 */
export function reportUntranslated(
  body: Record<string, unknown>,
  translated: ReadonlySet<string>,
  onDroppedField: ((name: string) => void) | undefined,
): void {
  if (!onDroppedField) return;
  for (const name of Object.keys(body)) {
    if (!translated.has(name) && name !== "stream_options") onDroppedField(name);
  }
}

/** Most distinct dropped field names told, and their longest length. */
const maxReportedFields = 100;
const maxReportedLength = 64;
/** How long the list of fields already told is kept once full, in milliseconds. */
const reportedFieldsResetMs = 600_000;

/**
 * `onDroppedField` told each distinct name once, cut to 64 characters. A client may send any
 * number of made-up fields: the first 100 are told; once the list is full, it starts again
 * after 10 minutes, so no client silences it for good.
 */
export function reportDroppedFieldsOnce(
  onDroppedField: ((name: string) => void) | undefined,
): (name: string) => void {
  const reported = new Set<string>();
  let filledAt = 0;
  return (field) => {
    const name = field.slice(0, maxReportedLength);
    if (reported.size >= maxReportedFields && Date.now() - filledAt >= reportedFieldsResetMs) {
      reported.clear();
    }
    if (reported.has(name) || reported.size >= maxReportedFields) return;
    reported.add(name);
    if (reported.size === maxReportedFields) filledAt = Date.now();
    onDroppedField?.(name);
  };
}

/**
 * An upstream's JSON answer, parsed.
 * @throws AigwError 502 `invalid_upstream_response` when it is not JSON.
 */
export function parseAnswer(bytes: Buffer, upstreamRequestId: string | undefined): unknown {
  try {
    return JSON.parse(bytes.toString("utf8"));
  } catch (error) {
    throw createInvalidResponseError(
      "The upstream answered with malformed JSON",
      upstreamRequestId,
      error,
    );
  }
}

/** A `models` request to an upstream whose list `toOpenAI` turns into OpenAI's. */
export function modelListRequest(
  toOpenAI: (list: Record<string, unknown>) => unknown,
): EncodedRequest {
  return {
    body: "",
    readAnswer(bytes, { secrets, upstreamRequestId }) {
      const answer = parseAnswer(bytes, upstreamRequestId);
      const list = toOpenAI(isObject(answer) ? answer : {});
      return { body: screenBody(Buffer.from(JSON.stringify(list)), secrets), usage: undefined };
    },
    readStream: () => {
      throw new AigwError("The model list does not stream.", {
        status: 400,
        type: "invalid_request_error",
      });
    },
  };
}
