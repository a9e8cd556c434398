import { AigwError } from "../errors.js";
import { isObject, type JsonObject as Json } from "../json-object.js";
import type { SecretScrubber } from "../secrets.js";
import type { TokenUsage } from "../types.js";
import { relayedErrorFields } from "../upstream-errors.js";
import { chatUsage } from "../usage.js";

/**
 * Anthropic Messages response and stream events -> OpenAI chat completion and chunks.
 * Sources: Anthropic's Messages API and streaming references
 * (https://docs.anthropic.com/en/api/messages, https://docs.anthropic.com/en/docs/build-with-claude/streaming)
 * and OpenAI's chat completion object and chunk object references.
 */

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

// Anthropic error type -> what OpenAI clients get: status, type, code, and whether a retry may
// help. The same condition as an HTTP status (createUpstreamError) gets the same answer.
const errorTypes: Record<string, [status: number, type: string, code: string, retry: boolean]> = {
  invalid_request_error: [400, "invalid_request_error", "invalid_request_error", false],
  authentication_error: [502, "upstream_error", "upstream_auth_error", false],
  permission_error: [502, "upstream_error", "upstream_auth_error", false],
  billing_error: [502, "upstream_error", "upstream_billing_error", false],
  not_found_error: [404, "invalid_request_error", "not_found_error", false],
  request_too_large: [413, "invalid_request_error", "request_too_large", false],
  rate_limit_error: [429, "rate_limit_error", "rate_limit_exceeded", true],
  timeout_error: [504, "timeout", "timeout", true],
  overloaded_error: [503, "upstream_error", "upstream_overloaded", true],
};

/**
 * An Anthropic `error` event's error -> the AigwError OpenAI clients see, as DESIGN's error
 * table gives it for the same condition arriving as an HTTP status: invalid_request_error 400,
 * not_found_error 404, request_too_large 413, rate_limit_error 429, timeout_error 504,
 * overloaded_error 503 `upstream_overloaded` (retryable), the gateway's own credential or
 * billing errors 502, anything else 502 `upstream_error` (retryable). The message is relayed
 * with credentials redacted.
 */
export function streamErrorOf(error: Json, secrets: SecretScrubber): AigwError {
  const fields = relayedErrorFields(error, secrets);
  const [status, type, code, isRetryable] = errorTypes[fields.type ?? ""] ?? [
    502,
    "upstream_error",
    "upstream_error",
    true,
  ];
  return new AigwError(fields.message ?? "The upstream reported an error", {
    status,
    type,
    code,
    isRetryable,
  });
}

/**
 * What a Messages stream's events say of its usage: message_start's counts, then
 * message_delta's (output_tokens cumulative; some Anthropic-compatible upstreams report cache
 * counters only there, so both count). Until message_delta, the output is at least one token
 * per content delta seen, and the usage is marked estimated: a stream cut short is billed for
 * what it sent.
 */
export class StreamUsage {
  private readonly counters: Json = {};
  private started = false;
  private final = false;
  private deltas = 0;

  add(usage: unknown, final: boolean): void {
    if (isObject(usage)) {
      for (const [name, value] of Object.entries(usage)) {
        if (value !== null && value !== undefined) this.counters[name] = value;
      }
    }
    this.started = true;
    if (final) this.final = true;
  }

  countDelta(): void {
    this.deltas++;
  }

  get usage(): TokenUsage | undefined {
    if (!this.started) return undefined;
    const read = usageOfMessage(this.counters);
    if (this.final) return read;
    const outputTokens = Math.max(read.outputTokens, this.deltas);
    return { ...read, outputTokens, totalTokens: read.inputTokens + outputTokens, estimated: true };
  }
}

/**
 * Turns one Anthropic stream's events into OpenAI chat chunks, one instance per stream.
 * `push` takes an event's name and parsed data and gives the chunks it becomes (often none);
 * it throws the mapped AigwError for an `error` event. After `message_stop`, `done` is true and
 * later events are ignored; a stream that ends before it must be treated as cut.
 */
export class MessagesStreamTranslator {
  done = false;
  private id = "";
  private model = "";
  /** The JSON every chunk starts with, once `message_start` told the id and model. */
  private prefix: string | undefined;
  private readonly counted = new StreamUsage();
  /** OpenAI tool index by Anthropic block index, and the calls' state by tool index. */
  private readonly toolIndexByBlock = new Map<number, number>();
  private readonly calls: { input: unknown; streamed: boolean }[] = [];
  private readonly thinkingBlocks = new Map<number, Json>();
  /**
   * message_delta's finish chunk, held until message_stop: a stream that ends between the two
   * is cut, and its client must not have seen a finish_reason.
   */
  private finish: Json | undefined;

  /**
   * `created` in seconds; `secrets` are redacted from relayed error messages; `includeUsage`:
   * the client asked for the usage chunk (`stream_options.include_usage`), sent before the end.
   */
  constructor(
    private readonly created: number,
    private readonly secrets: SecretScrubber,
    private readonly includeUsage: boolean,
  ) {}

  /** What the stream reported so far; estimated until message_delta (see `StreamUsage`). */
  get usage(): TokenUsage | undefined {
    return this.counted.usage;
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
    if (this.done || !isObject(data)) return [];
    const type = event ?? data.type;
    const index = typeof data.index === "number" ? data.index : -1;
    switch (type) {
      case "message_start": {
        const message = isObject(data.message) ? data.message : {};
        this.id = typeof message.id === "string" ? message.id : "";
        this.model = typeof message.model === "string" ? message.model : "";
        this.prefix = undefined;
        this.counted.add(message.usage, false);
        return [this.chunk({ role: "assistant", content: "" })];
      }
      case "content_block_start":
        return this.blockStart(index, isObject(data.content_block) ? data.content_block : {});
      case "content_block_delta":
        this.counted.countDelta();
        return this.blockDelta(index, isObject(data.delta) ? data.delta : {});
      case "content_block_stop":
        return this.blockStop(index);
      case "message_delta": {
        this.counted.add(data.usage, true);
        const delta = isObject(data.delta) ? data.delta : {};
        this.finish = this.chunk({}, finishReason(delta.stop_reason));
        return [];
      }
      case "message_stop": {
        this.done = true;
        const { usage } = this;
        const last = this.finish ? [this.finish] : [];
        return usage && this.includeUsage
          ? [...last, { ...this.chunk({}), choices: [], usage: chatUsage(usage) }]
          : last;
      }
      case "error":
        throw streamErrorOf(isObject(data.error) ? data.error : {}, this.secrets);
      default:
        // ping, and event types added after this was written.
        return [];
    }
  }

  private blockStart(index: number, block: Json): Json[] {
    if (block.type === "tool_use") {
      // A new call every time, even for a block index seen before: calls never share an index.
      const toolIndex = this.calls.length;
      this.calls.push({ input: block.input, streamed: false });
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
        return typeof delta.text === "string" && delta.text !== ""
          ? [this.chunk({ content: delta.text })]
          : [];
      case "input_json_delta": {
        const toolIndex = this.toolIndexByBlock.get(index);
        const call = toolIndex === undefined ? undefined : this.calls[toolIndex];
        if (!call || typeof delta.partial_json !== "string" || delta.partial_json === "") return [];
        call.streamed = true;
        const arguments_ = { index: toolIndex, function: { arguments: delta.partial_json } };
        return [this.chunk({ tool_calls: [arguments_] })];
      }
      case "thinking_delta": {
        if (typeof delta.thinking !== "string") return [];
        const block = this.thinkingBlocks.get(index);
        if (block)
          block.thinking = `${typeof block.thinking === "string" ? block.thinking : ""}${delta.thinking}`;
        return delta.thinking === "" ? [] : [this.chunk({ reasoning_content: delta.thinking })];
      }
      case "signature_delta": {
        const block = this.thinkingBlocks.get(index);
        if (block && typeof delta.signature === "string") {
          block.signature = `${typeof block.signature === "string" ? block.signature : ""}${delta.signature}`;
        }
        return [];
      }
      default:
        return [];
    }
  }

  /**
   * A thinking block goes out whole once it ends (its signature comes last). A tool call whose
   * input came with its start and no deltas gets that input; one with neither gets "{}".
   */
  private blockStop(index: number): Json[] {
    const thinking = this.thinkingBlocks.get(index);
    if (thinking) {
      this.thinkingBlocks.delete(index);
      return [this.chunk({ thinking_blocks: [thinking] })];
    }
    const toolIndex = this.toolIndexByBlock.get(index);
    const call = toolIndex === undefined ? undefined : this.calls[toolIndex];
    if (toolIndex === undefined || !call || call.streamed) return [];
    this.toolIndexByBlock.delete(index);
    const hasInput = isObject(call.input) && Object.keys(call.input).length > 0;
    const text = hasInput ? JSON.stringify(call.input) : "{}";
    return [this.chunk({ tool_calls: [{ index: toolIndex, function: { arguments: text } }] })];
  }
}
