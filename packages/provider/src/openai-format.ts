import { isObject } from "./json-object.js";
import { appendJsonMembers, jsonText, setJsonFields } from "./json-text.js";
import { type SecretScrubber, screenBody } from "./secrets.js";
import { createSseEvent } from "./sse.js";
import type { Endpoint, ProviderRequest, SseEvent, TokenUsage } from "./types.js";
import { relayedErrorFields } from "./upstream-errors.js";
import { readUsage, usageFromObject } from "./usage.js";
import type { EncodedRequest, StreamReader, WireFormat } from "./wire-format.js";

const RESPONSES_FINAL_EVENTS = new Set([
  "response.completed",
  "response.incomplete",
  "response.failed",
  "error",
]);
// For servers that leave out `event:` lines. Quotes inside strings are escaped, so this
// only matches the event's own `type`.
const RESPONSES_FINAL_TYPE = /"type":\s*"(?:response\.(?:completed|incomplete|failed)|error)"/;

/**
 * What of an upstream event may go on: error events rebuilt from checked fields, verbatim
 * copies of the provider's credentials redacted from any other event, the rest as it came.
 * Only an event whose text holds "rror" or a JSON escape can decode to an error, so only
 * those are parsed here.
 */
function screenEvent(event: SseEvent, secrets: SecretScrubber): SseEvent {
  const { raw } = event;
  if (raw.includes("rror") || raw.includes("\\u")) {
    const scrubbed = scrubErrorEvent(event, secrets);
    if (scrubbed !== event) return scrubbed;
  }
  return secrets.copiedIn(raw) ? createSseEvent(secrets.redact(event.data), event.event) : event;
}

function errorObject(fields: ReturnType<typeof relayedErrorFields>, fallback: string) {
  return {
    message: fields.message ?? fallback,
    type: fields.type ?? "upstream_error",
    param: fields.param ?? null,
    code: fields.code ?? null,
  };
}

const unreadableError = createSseEvent({
  error: {
    message: "The upstream sent an error the gateway could not read",
    type: "upstream_error",
    param: null,
    code: "invalid_upstream_response",
  },
});

/**
 * An event that reports an error, rebuilt from its relayed fields only (chat and completions'
 * `{"error": {...}}`, Responses' `error` event and `response.failed`); other events unchanged.
 * One that is not JSON is replaced by a generic error.
 */
function scrubErrorEvent(event: SseEvent, secrets: SecretScrubber): SseEvent {
  let chunk: unknown;
  try {
    chunk = event.json();
  } catch {
    return unreadableError;
  }
  if (!isObject(chunk)) return event;
  const fallback = "The upstream reported an error";
  if (isObject(chunk.error)) {
    return createSseEvent(
      { error: errorObject(relayedErrorFields(chunk.error, secrets), fallback) },
      event.event,
    );
  }
  if (chunk.type === "error") {
    const { message, param, code } = errorObject(relayedErrorFields(chunk, secrets), fallback);
    const sequence = chunk.sequence_number;
    return createSseEvent(
      {
        type: "error",
        code,
        message,
        param,
        ...(typeof sequence === "number" ? { sequence_number: sequence } : {}),
      },
      event.event,
    );
  }
  if (isObject(chunk.response) && isObject(chunk.response.error)) {
    const { message, code } = errorObject(
      relayedErrorFields(chunk.response.error, secrets),
      fallback,
    );
    return createSseEvent(
      { ...chunk, response: { ...chunk.response, error: { code, message } } },
      event.event,
    );
  }
  return event;
}

/**
 * Whether an event's JSON has a `"usage"` key holding an object (not `null`). It searches for
 * `usage"`, not `"usage"`: quotes are everywhere in JSON, and a search that starts from a
 * rarer character is about four times faster on every event, where most have no usage.
 */
function carriesUsage(raw: string): boolean {
  for (let found = raw.indexOf('usage"'); found !== -1; found = raw.indexOf('usage"', found + 6)) {
    if (raw.charCodeAt(found - 1) !== 34 /* '"' */) continue;
    let index = found + 6;
    while (raw.charCodeAt(index) === 32) index++;
    if (raw.charCodeAt(index) !== 58 /* ":" */) continue;
    index++;
    while (raw.charCodeAt(index) === 32) index++;
    if (raw.charCodeAt(index) === 123 /* "{" */) return true;
  }
  return false;
}

/** Whether an endpoint's streams end with a marker, so a missing one means a cut stream. */
function hasEndMarker(endpoint: Endpoint): boolean {
  return endpoint === "chat/completions" || endpoint === "completions" || endpoint === "responses";
}

function isEndMarker(endpoint: Endpoint, event: SseEvent): boolean {
  if (endpoint !== "responses") return event.data === "[DONE]";
  return event.event === undefined
    ? RESPONSES_FINAL_TYPE.test(event.raw)
    : RESPONSES_FINAL_EVENTS.has(event.event);
}

/** OpenAI's stream of one request: screened events, its end marker, and its usage chunk. */
class OpenAIStreamReader implements StreamReader {
  usage: TokenUsage | undefined;
  complete: boolean;

  constructor(
    private readonly endpoint: Endpoint,
    private readonly secrets: SecretScrubber,
    /** The usage-only chunk was asked for by the gateway, not by the client: hide it. */
    private readonly dropUsageChunk: boolean,
  ) {
    this.complete = !hasEndMarker(endpoint);
  }

  accept(parsed: SseEvent, queue: SseEvent[]): void {
    const event = screenEvent(parsed, this.secrets);
    if (!this.complete) this.complete = isEndMarker(this.endpoint, event);
    if (carriesUsage(event.raw)) {
      const usageChunk = event.json() as {
        usage?: unknown;
        response?: { usage?: unknown };
        choices?: unknown[];
      };
      this.usage = usageFromObject(usageChunk.usage ?? usageChunk.response?.usage) ?? this.usage;
      if (this.dropUsageChunk && usageChunk.choices?.length === 0) return;
    }
    queue.push(event);
  }
}

export interface OpenAIFormatOptions {
  /** Ask chat and completions streams for usage (hidden from the client). Default true. */
  includeStreamUsage?: boolean;
}

/**
 * OpenAI's HTTP API: requests go out as the client wrote them (with `stream_options` added to
 * learn a stream's usage), answers come back as they are, screened for credentials.
 */
export function createOpenAIFormat(options: OpenAIFormatOptions = {}): WireFormat {
  const includeStreamUsage = options.includeStreamUsage ?? true;
  /** The upstream refused `stream_options` when the gateway added it: it is not added again. */
  let streamUsageRefused = false;

  /** The fields the gateway adds to the body: stream usage, when the client did not ask. */
  function addedFields(request: ProviderRequest, stream: boolean) {
    const streamOptions = request.body?.stream_options as Record<string, unknown> | undefined;
    const injectUsage =
      stream &&
      includeStreamUsage &&
      !streamUsageRefused &&
      (request.endpoint === "chat/completions" || request.endpoint === "completions") &&
      streamOptions?.include_usage !== true;
    return injectUsage ? { stream_options: { ...streamOptions, include_usage: true } } : undefined;
  }

  /**
   * The JSON sent: the client's own text when nothing is added, that text with only the added
   * fields set (so numbers past 2^53 and key order survive), or, without the text, the body
   * serialised.
   */
  function requestText(
    request: ProviderRequest,
    added: Record<string, unknown> | undefined,
  ): string | Uint8Array {
    const body = request.body ?? {};
    const raw = request.rawBody;
    if (raw === undefined) return JSON.stringify(added ? { ...body, ...added } : body);
    if (!added) return raw;
    const edited = Object.keys(added).some((name) => Object.hasOwn(body, name))
      ? setJsonFields(jsonText(raw), added)
      : appendJsonMembers(raw, added);
    return edited ?? JSON.stringify({ ...body, ...added });
  }

  return {
    protocols: ["openai"],
    encode(request, stream): EncodedRequest {
      const added = addedFields(request, stream);
      const body = request.endpoint === "models" ? "" : requestText(request, added);
      return {
        body,
        refusedAddition(status, text) {
          // A server that refuses the field the gateway added: the client's own request, once
          // more, and never again to this upstream (usage is then estimated).
          if (!added || (status !== 400 && status !== 422) || !text.includes("stream_options")) {
            return false;
          }
          streamUsageRefused = true;
          return true;
        },
        readAnswer(bytes, { secrets, upstreamRequestId }) {
          const answer = screenBody(bytes, secrets);
          const requestBody = request.endpoint === "models" ? undefined : body;
          return { body: answer, usage: readUsage(answer, { requestBody, upstreamRequestId }) };
        },
        readStream: ({ secrets }) =>
          new OpenAIStreamReader(request.endpoint, secrets, added !== undefined),
      };
    },
  };
}
