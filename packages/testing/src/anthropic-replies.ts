// Deterministic Anthropic Messages replies, request checks and error envelopes: the same request
// (and script) always yields the same message, events and token counts.

type JsonObject = Record<string, unknown>;

/** A content block of an assistant message, as the Messages API returns it. */
export type AnthropicContentBlock =
  | { type: "text"; text: string }
  | { type: "tool_use"; id: string; name: string; input: JsonObject }
  | { type: "thinking"; thinking: string; signature: string }
  | { type: "redacted_thinking"; data: string };

/**
 * Token counts of a reply. `input_tokens` excludes cache reads and writes, as Anthropic counts;
 * `cache_creation` splits the writes by cache lifetime.
 */
export interface AnthropicUsage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
  cache_creation?: { ephemeral_5m_input_tokens: number; ephemeral_1h_input_tokens: number };
}

/**
 * What a scripted reply says. Defaults: `stopReason` "tool_use" when a block is a tool_use, else
 * "end_turn"; `stopSequence` null; `usage` fields not given keep the computed ones (input: about
 * a quarter of the JSON length of `messages`; output: about a quarter of the JSON length of
 * `content`; cache fields 0).
 */
export interface AnthropicScript {
  content: AnthropicContentBlock[];
  stopReason?: string;
  stopSequence?: string | null;
  usage?: Partial<AnthropicUsage>;
}

/** A Messages API response body. */
export interface AnthropicMessage {
  id: string;
  type: "message";
  role: "assistant";
  model: unknown;
  content: AnthropicContentBlock[];
  stop_reason: string;
  stop_sequence: string | null;
  usage: AnthropicUsage;
}

/** Anthropic's error envelope: `{"type":"error","error":{"type","message"},"request_id"?}`. */
export interface AnthropicErrorBody {
  type: "error";
  error: { type: string; message: string };
  request_id?: string;
}

const ERROR_TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  403: "permission_error",
  404: "not_found_error",
  413: "request_too_large",
  429: "rate_limit_error",
  500: "api_error",
  529: "overloaded_error",
};

const ERROR_MESSAGES: Record<number, string> = {
  401: "invalid x-api-key",
  403: "Your API key does not have permission to use the specified resource.",
  404: "The requested resource could not be found.",
  413: "Request exceeds the maximum allowed number of bytes.",
  429: "Number of requests has exceeded your rate limit.",
  500: "Internal server error",
  529: "Overloaded",
};

/** The envelope of an error, with `request_id` when one is given. */
export function anthropicErrorBody(
  type: string,
  message: string,
  requestId?: string,
): AnthropicErrorBody {
  return requestId === undefined
    ? { type: "error", error: { type, message } }
    : { type: "error", error: { type, message }, request_id: requestId };
}

/** Anthropic's error type for a status (529 overloaded_error, 429 rate_limit_error...); default api_error. */
export function anthropicErrorType(status: number): string {
  return ERROR_TYPES[status] ?? (status < 500 ? "invalid_request_error" : "api_error");
}

/** The status Anthropic answers with for an error type; 500 for types it does not know. */
export function statusForErrorType(type: string): number {
  const entry = Object.entries(ERROR_TYPES).find(([, errorType]) => errorType === type);
  return entry ? Number(entry[0]) : 500;
}

/** The envelope Anthropic sends with a status. */
export function anthropicErrorForStatus(status: number, requestId?: string): AnthropicErrorBody {
  const message = ERROR_MESSAGES[status] ?? `Mock upstream error (status ${status}).`;
  return anthropicErrorBody(anthropicErrorType(status), message, requestId);
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function blocksOf(content: unknown): JsonObject[] {
  return Array.isArray(content) ? content.filter(isObject) : [];
}

function emptyTextIn(blocks: JsonObject[], path: string): string | undefined {
  for (const [index, block] of blocks.entries()) {
    if (block.type === "text" && block.text === "") {
      return `${path}.${index}.text: text content blocks must be non-empty`;
    }
    if (block.type === "tool_result") {
      const nested = emptyTextIn(blocksOf(block.content), `${path}.${index}.content`);
      if (nested) return nested;
    }
  }
  return undefined;
}

function messageError(messages: unknown[]): string | undefined {
  const toolUseId = /^[a-zA-Z0-9_-]+$/;
  let previous: JsonObject | undefined;
  for (const [messageIndex, message] of messages.entries()) {
    const path = `messages.${messageIndex}.content`;
    const blocks = isObject(message) ? blocksOf(message.content) : [];
    const empty = emptyTextIn(blocks, path);
    if (empty) return empty;
    const answerable = new Set(
      previous?.role === "assistant"
        ? blocksOf(previous.content)
            .filter((block) => block.type === "tool_use")
            .map((block) => block.id)
        : [],
    );
    const answered = new Set<unknown>();
    for (const [index, block] of blocks.entries()) {
      if (
        block.type === "tool_use" &&
        (typeof block.id !== "string" || !toolUseId.test(block.id))
      ) {
        return `${path}.${index}.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'`;
      }
      if (block.type !== "tool_result") continue;
      const id = block.tool_use_id;
      if (!answerable.has(id)) {
        return `${path}.${index}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${String(id)}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`;
      }
      if (answered.has(id)) {
        return `${path}.${index}: each tool_use must have a single result. Found multiple \`tool_result\` blocks with id: ${String(id)}`;
      }
      answered.add(id);
    }
    previous = isObject(message) ? message : undefined;
  }
  return undefined;
}

/**
 * Why the Messages API would refuse this body with a 400 invalid_request_error, or undefined
 * when it would accept it. Checks: a JSON object with `model`, `max_tokens` (a number) and
 * `messages` (an array); `temperature` within 0..1; no empty text block (in `system`,
 * messages and tool results); tool_use ids matching `^[a-zA-Z0-9_-]+$`; every tool_result
 * answering a tool_use of the immediately preceding assistant message, once.
 */
export function findRequestError(body: unknown): string | undefined {
  if (!isObject(body)) return "The request body must be a JSON object.";
  if (typeof body.model !== "string") return "model: Field required";
  if (body.max_tokens === undefined) return "max_tokens: Field required";
  if (typeof body.max_tokens !== "number") return "max_tokens: Input should be a valid integer";
  if (body.messages === undefined) return "messages: Field required";
  if (!Array.isArray(body.messages)) return "messages: Input should be a valid list";
  const { temperature } = body;
  if (typeof temperature === "number" && temperature > 1) {
    return "temperature: Input should be less than or equal to 1";
  }
  if (typeof temperature === "number" && temperature < 0) {
    return "temperature: Input should be greater than or equal to 0";
  }
  return emptyTextIn(blocksOf(body.system), "system") ?? messageError(body.messages);
}

function estimateTokens(value: unknown): number {
  return Math.ceil((JSON.stringify(value) ?? "").length / 4);
}

/** Words keep their whitespace (leading whitespace is a piece of its own), so joining gives the text back. */
function splitWords(text: string): string[] {
  return text.match(/^\s+|\S+\s*/g) ?? [];
}

function splitEvery(text: string, size: number): string[] {
  const pieces: string[] = [];
  for (let start = 0; start < text.length; start += size)
    pieces.push(text.slice(start, start + size));
  return pieces;
}

function lastUserText(messages: unknown): string {
  if (!Array.isArray(messages)) return "";
  const lastUser = messages.findLast((message) => isObject(message) && message.role === "user");
  const content = isObject(lastUser) ? lastUser.content : undefined;
  if (typeof content === "string") return content;
  return blocksOf(content)
    .filter((block) => block.type === "text" && typeof block.text === "string")
    .map((block) => block.text)
    .join(" ");
}

/**
 * The reply to a valid request: `script`'s content, or one text block "mock: <last user text>"
 * whose output_tokens is its word count. `id` is `msg_mock<requestNumber>`, `model` the request's.
 */
export function createAnthropicMessage(
  request: JsonObject,
  script: AnthropicScript | undefined,
  requestNumber: number,
): AnthropicMessage {
  const defaultText = `mock: ${lastUserText(request.messages)}`;
  const content = script?.content ?? [{ type: "text", text: defaultText }];
  const usage: AnthropicUsage = {
    input_tokens: estimateTokens(request.messages),
    output_tokens: script ? estimateTokens(content) : splitWords(defaultText).length,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
    ...script?.usage,
  };
  const hasToolUse = content.some((block) => block.type === "tool_use");
  return {
    id: `msg_mock${requestNumber}`,
    type: "message",
    role: "assistant",
    model: request.model,
    content,
    stop_reason: script?.stopReason ?? (hasToolUse ? "tool_use" : "end_turn"),
    stop_sequence: script?.stopSequence ?? null,
    usage,
  };
}

/** One SSE frame with its `event:` line; `type` leads the data, as Anthropic sends it. */
export function anthropicEvent(type: string, data: JsonObject = {}): string {
  return `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
}

function blockEvents(block: AnthropicContentBlock, index: number): string[] {
  const start = (contentBlock: JsonObject) =>
    anthropicEvent("content_block_start", { index, content_block: contentBlock });
  const delta = (deltaBody: JsonObject) =>
    anthropicEvent("content_block_delta", { index, delta: deltaBody });
  const stop = anthropicEvent("content_block_stop", { index });
  switch (block.type) {
    case "text":
      return [
        start({ type: "text", text: "" }),
        ...splitWords(block.text).map((text) => delta({ type: "text_delta", text })),
        stop,
      ];
    case "thinking":
      return [
        start({ type: "thinking", thinking: "" }),
        ...splitWords(block.thinking).map((thinking) =>
          delta({ type: "thinking_delta", thinking }),
        ),
        delta({ type: "signature_delta", signature: block.signature }),
        stop,
      ];
    case "tool_use": {
      const input = JSON.stringify(block.input);
      const pieces = input === "{}" ? [] : splitEvery(input, 10);
      return [
        start({ type: "tool_use", id: block.id, name: block.name, input: {} }),
        ...pieces.map((partial_json) => delta({ type: "input_json_delta", partial_json })),
        stop,
      ];
    }
    case "redacted_thinking":
      return [start(block), stop];
  }
}

/**
 * The SSE frames of `message` streamed: message_start (empty content, usage with output_tokens
 * at most 1), ping, per block content_block_start / deltas (text and thinking word by word,
 * tool input JSON in 10-character pieces, none for `{}`) / content_block_stop, message_delta
 * (stop_reason, stop_sequence, cumulative output_tokens), message_stop.
 */
export function createAnthropicEvents(message: AnthropicMessage): string[] {
  const { content, stop_reason, stop_sequence, usage, ...head } = message;
  return [
    anthropicEvent("message_start", {
      message: {
        ...head,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { ...usage, output_tokens: Math.min(1, usage.output_tokens) },
      },
    }),
    anthropicEvent("ping"),
    ...content.flatMap(blockEvents),
    anthropicEvent("message_delta", {
      delta: { stop_reason, stop_sequence },
      usage: { output_tokens: usage.output_tokens },
    }),
    anthropicEvent("message_stop"),
  ];
}
