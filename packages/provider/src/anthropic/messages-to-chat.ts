import { AigwError } from "../errors.js";
import type { SecretScrubber } from "../secrets.js";
import type { TokenUsage } from "../types.js";
import { relayedErrorFields } from "../upstream-errors.js";

/**
 * Anthropic Messages response and stream events -> OpenAI chat completion and chunks.
 * Sources: Anthropic's Messages API and streaming references
 * (https://docs.anthropic.com/en/api/messages, https://docs.anthropic.com/en/docs/build-with-claude/streaming)
 * and OpenAI's chat completion object and chunk object references.
 */

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const count = (value: unknown): number =>
  typeof value === "number" && Number.isFinite(value) && value > 0 ? value : 0;

/**
 * Anthropic `stop_reason` -> OpenAI `finish_reason`: end_turn, stop_sequence and pause_turn ->
 * stop; max_tokens and model_context_window_exceeded -> length; tool_use -> tool_calls;
 * refusal -> content_filter; anything else -> stop.
 */
export function finishReason(stopReason: unknown): string {
  switch (stopReason) {
    case "max_tokens":
    case "model_context_window_exceeded":
      return "length";
    case "tool_use":
      return "tool_calls";
    case "refusal":
      return "content_filter";
    default:
      return "stop";
  }
}

/**
 * Anthropic usage -> the neutral shape. Anthropic's `input_tokens` leaves out cache reads and
 * writes; here `inputTokens` counts all three. Writes without a `cache_creation` split count as
 * 5-minute ones (the default time to live).
 */
export function usageOfMessage(usage: Json): TokenUsage {
  const read = count(usage.cache_read_input_tokens);
  const written = count(usage.cache_creation_input_tokens);
  const split = isObject(usage.cache_creation) ? usage.cache_creation : undefined;
  const oneHour = count(split?.ephemeral_1h_input_tokens);
  const fiveMinutes = split ? count(split.ephemeral_5m_input_tokens) : written;
  const inputTokens = count(usage.input_tokens) + read + Math.max(written, fiveMinutes + oneHour);
  const outputTokens = count(usage.output_tokens);
  return {
    inputTokens,
    outputTokens,
    totalTokens: inputTokens + outputTokens,
    cacheReadTokens: read,
    cacheWriteTokens: { fiveMinutes, oneHour },
  };
}

/**
 * Adds a stream event's `usage` (message_start's or message_delta's) to `counters`, the stream's
 * so far, and reads them. Both count: some Anthropic-compatible upstreams report cache counters
 * only in message_delta, whose output_tokens are cumulative.
 */
export function mergeStreamUsage(counters: Json, usage: unknown): TokenUsage {
  if (isObject(usage)) {
    for (const [name, value] of Object.entries(usage)) {
      if (value !== null && value !== undefined) counters[name] = value;
    }
  }
  return usageOfMessage(counters);
}

/** The neutral shape -> OpenAI's chat `usage` (cache writes have no OpenAI field). */
export function chatUsage(usage: TokenUsage): Json {
  return {
    prompt_tokens: usage.inputTokens,
    completion_tokens: usage.outputTokens,
    total_tokens: usage.totalTokens,
    prompt_tokens_details: { cached_tokens: usage.cacheReadTokens ?? 0 },
  };
}

function toolCall(block: Json): Json {
  return {
    id: block.id,
    type: "function",
    function: { name: block.name, arguments: JSON.stringify(block.input ?? {}) },
  };
}

const isThinking = (block: Json) => block.type === "thinking" || block.type === "redacted_thinking";

/**
 * A Messages response -> a chat completion. Text blocks are joined into `content`; `tool_use`
 * blocks become `tool_calls`; thinking is joined into `reasoning_content` and every thinking and
 * redacted_thinking block is kept, in order and signed, in `thinking_blocks`, so a client can
 * send them back. `created` is in seconds.
 */
export function messagesToChat(message: Json, created: number): Json {
  const blocks = Array.isArray(message.content) ? message.content.filter(isObject) : [];
  const text = blocks.filter((block) => block.type === "text").map((block) => block.text);
  const calls = blocks.filter((block) => block.type === "tool_use");
  const thinking = blocks.filter(isThinking);
  const reasoning = thinking.filter((block) => block.type === "thinking");
  const usage = usageOfMessage(isObject(message.usage) ? message.usage : {});
  return {
    id: message.id,
    object: "chat.completion",
    created,
    model: message.model,
    choices: [
      {
        index: 0,
        message: {
          role: "assistant",
          content: text.length > 0 ? text.join("") : null,
          refusal: null,
          ...(calls.length > 0 ? { tool_calls: calls.map(toolCall) } : {}),
          ...(reasoning.length > 0
            ? { reasoning_content: reasoning.map((block) => block.thinking).join("") }
            : {}),
          ...(thinking.length > 0 ? { thinking_blocks: thinking } : {}),
        },
        logprobs: null,
        finish_reason: finishReason(message.stop_reason),
      },
    ],
    usage: chatUsage(usage),
  };
}

// Anthropic error type -> status for OpenAI clients, OpenAI error type, and whether a retry may help.
const errorTypes: Record<string, [status: number, type: string, isRetryable: boolean]> = {
  invalid_request_error: [400, "invalid_request_error", false],
  authentication_error: [502, "upstream_error", false],
  permission_error: [502, "upstream_error", false],
  not_found_error: [404, "invalid_request_error", false],
  request_too_large: [413, "invalid_request_error", false],
  rate_limit_error: [429, "rate_limit_error", true],
  overloaded_error: [503, "service_unavailable", true],
};

/**
 * An Anthropic `error` event's error -> the AigwError OpenAI clients see: invalid_request_error
 * 400, not_found_error 404, request_too_large 413, rate_limit_error 429, overloaded_error 503
 * (retryable), the upstream's own credential errors 502, anything else 502 `upstream_error`
 * (retryable). The message is relayed with credentials redacted.
 */
export function streamErrorOf(error: Json, secrets: SecretScrubber): AigwError {
  const fields = relayedErrorFields(error, secrets);
  const anthropicType = fields.type ?? "api_error";
  const [status, type, isRetryable] = errorTypes[anthropicType] ?? [502, "upstream_error", true];
  return new AigwError(fields.message ?? "The upstream reported an error", {
    status,
    type,
    code: anthropicType,
    isRetryable,
  });
}

/**
 * Turns one Anthropic stream's events into OpenAI chat chunks, one instance per stream.
 * `push` takes an event's name and parsed data and gives the chunks it becomes (often none);
 * it throws the mapped AigwError for an `error` event. After `message_stop`, `done` is true;
 * a stream that ends before it must be treated as cut.
 */
export class MessagesStreamTranslator {
  /** Known from `message_start`, completed by `message_delta`. */
  usage: TokenUsage | undefined;
  done = false;
  private id = "";
  private model = "";
  /** The JSON every chunk starts with, once `message_start` told the id and model. */
  private prefix: string | undefined;
  private readonly created: number;
  private rawUsage: Json = {};
  private readonly toolIndexByBlock = new Map<number, number>();
  private readonly toolArguments = new Map<number, boolean>();
  private readonly thinkingBlocks = new Map<number, Json>();

  private readonly secrets: SecretScrubber;

  /** `created` in seconds; `secrets` are redacted from relayed error messages. */
  constructor(created: number, secrets: SecretScrubber) {
    this.created = created;
    this.secrets = secrets;
  }

  private chunk(delta: Json, finish: string | null = null): Json {
    return {
      id: this.id,
      object: "chat.completion.chunk",
      created: this.created,
      model: this.model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    };
  }

  /**
   * A chunk of this stream as JSON, the same text as JSON.stringify's: what every chunk of a
   * stream shares is serialised once, each chunk's own delta then.
   */
  serialize(chunk: Json): string {
    const choice = (chunk.choices as Json[])[0];
    if (!choice) return JSON.stringify(chunk);
    this.prefix ??= `${JSON.stringify({ id: this.id, object: "chat.completion.chunk", created: this.created, model: this.model }).slice(0, -1)},"choices":[{"index":0,"delta":`;
    return `${this.prefix}${JSON.stringify(choice.delta)},"logprobs":null,"finish_reason":${JSON.stringify(choice.finish_reason)}}]}`;
  }

  push(event: string | undefined, data: unknown): Json[] {
    if (!isObject(data)) return [];
    const type = event ?? data.type;
    const index = typeof data.index === "number" ? data.index : -1;
    switch (type) {
      case "message_start": {
        const message = isObject(data.message) ? data.message : {};
        this.id = typeof message.id === "string" ? message.id : "";
        this.model = typeof message.model === "string" ? message.model : "";
        this.prefix = undefined;
        this.mergeUsage(message.usage);
        return [this.chunk({ role: "assistant", content: "" })];
      }
      case "content_block_start":
        return this.blockStart(index, isObject(data.content_block) ? data.content_block : {});
      case "content_block_delta":
        return this.blockDelta(index, isObject(data.delta) ? data.delta : {});
      case "content_block_stop":
        return this.blockStop(index);
      case "message_delta": {
        this.mergeUsage(data.usage);
        const delta = isObject(data.delta) ? data.delta : {};
        return [this.chunk({}, finishReason(delta.stop_reason))];
      }
      case "message_stop":
        this.done = true;
        return this.usage ? [{ ...this.chunk({}), choices: [], usage: chatUsage(this.usage) }] : [];
      case "error":
        throw streamErrorOf(isObject(data.error) ? data.error : {}, this.secrets);
      default:
        // ping, and event types added after this was written.
        return [];
    }
  }

  private mergeUsage(usage: unknown) {
    this.usage = mergeStreamUsage(this.rawUsage, usage);
  }

  private blockStart(index: number, block: Json): Json[] {
    if (block.type === "tool_use") {
      const toolIndex = this.toolIndexByBlock.size;
      this.toolIndexByBlock.set(index, toolIndex);
      const call = { index: toolIndex, id: block.id, type: "function" };
      return [
        this.chunk({ tool_calls: [{ ...call, function: { name: block.name, arguments: "" } }] }),
      ];
    }
    if (isThinking(block)) this.thinkingBlocks.set(index, { ...block });
    if (block.type === "text" && typeof block.text === "string" && block.text !== "") {
      return [this.chunk({ content: block.text })];
    }
    return [];
  }

  private blockDelta(index: number, delta: Json): Json[] {
    switch (delta.type) {
      case "text_delta":
        return delta.text ? [this.chunk({ content: delta.text })] : [];
      case "input_json_delta": {
        const toolIndex = this.toolIndexByBlock.get(index);
        if (toolIndex === undefined || !delta.partial_json) return [];
        this.toolArguments.set(toolIndex, true);
        const call = { index: toolIndex, function: { arguments: delta.partial_json } };
        return [this.chunk({ tool_calls: [call] })];
      }
      case "thinking_delta": {
        const block = this.thinkingBlocks.get(index);
        if (block) block.thinking = `${block.thinking ?? ""}${delta.thinking ?? ""}`;
        return delta.thinking ? [this.chunk({ reasoning_content: delta.thinking })] : [];
      }
      case "signature_delta": {
        const block = this.thinkingBlocks.get(index);
        if (block) block.signature = `${block.signature ?? ""}${delta.signature ?? ""}`;
        return [];
      }
      default:
        return [];
    }
  }

  /** A thinking block goes out whole once it ends (its signature comes last); a tool call without input gets "{}". */
  private blockStop(index: number): Json[] {
    const thinking = this.thinkingBlocks.get(index);
    if (thinking) {
      this.thinkingBlocks.delete(index);
      return [this.chunk({ thinking_blocks: [thinking] })];
    }
    const toolIndex = this.toolIndexByBlock.get(index);
    if (toolIndex !== undefined && !this.toolArguments.get(toolIndex)) {
      return [this.chunk({ tool_calls: [{ index: toolIndex, function: { arguments: "{}" } }] })];
    }
    return [];
  }
}
