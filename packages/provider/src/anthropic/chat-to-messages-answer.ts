import { randomUUID } from "node:crypto";
import { AigwError } from "../errors.js";
import { isObject, type JsonObject as Json } from "../json-object.js";
import { createSseEvent } from "../sse.js";
import type { SseEvent } from "../types.js";
import type { TranslatedMessagesRequest } from "./messages-request-to-chat.js";

/** What an answer's translation reads of its request. */
type RequestFacts = Pick<TranslatedMessagesRequest, "toolNames" | "stopSequences">;

/**
 * OpenAI's finish_reason -> Anthropic's stop_reason and stop_sequence. OpenAI never says which
 * stop sequence matched; vLLM does, as the choice's `stop_reason`, and a "stop" with one of the
 * request's `stopSequences` there is a `stop_sequence`.
 */
export function stopReason(
  choice: { finish_reason?: unknown; stop_reason?: unknown },
  stopSequences: readonly string[] = [],
): { stop_reason: string; stop_sequence: string | null } {
  const matched = choice.stop_reason;
  if (
    choice.finish_reason === "stop" &&
    typeof matched === "string" &&
    stopSequences.includes(matched)
  ) {
    return { stop_reason: "stop_sequence", stop_sequence: matched };
  }
  return { stop_reason: finishStopReason(choice.finish_reason), stop_sequence: null };
}

function finishStopReason(finishReason: unknown): string {
  switch (finishReason) {
    case "length":
      return "max_tokens";
    case "tool_calls":
    case "function_call":
      return "tool_use";
    case "content_filter":
      return "refusal";
    default:
      return "end_turn";
  }
}

function count(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) ? value : 0;
}

/**
 * OpenAI's usage -> Anthropic's: `input_tokens` leaves out cached reads
 * (`prompt_tokens_details.cached_tokens`) and cache writes, which OpenAI does not report but
 * proxies in front of Anthropic do (`cache_creation_input_tokens` beside the counts, or
 * `prompt_tokens_details.cache_write_tokens`).
 */
export function messagesUsage(usage: unknown): Json {
  const fields = isObject(usage) ? usage : {};
  const details = isObject(fields.prompt_tokens_details) ? fields.prompt_tokens_details : {};
  const cacheRead = count(details.cached_tokens);
  const cacheWrite = count(fields.cache_creation_input_tokens) || count(details.cache_write_tokens);
  return {
    input_tokens: Math.max(0, count(fields.prompt_tokens) - cacheRead - cacheWrite),
    output_tokens: count(fields.completion_tokens),
    cache_creation_input_tokens: cacheWrite,
    cache_read_input_tokens: cacheRead,
  };
}

function parsedArguments(text: unknown): Json {
  if (typeof text !== "string" || text === "") return {};
  try {
    const parsed: unknown = JSON.parse(text);
    return isObject(parsed) ? parsed : { value: parsed };
  } catch {
    return { arguments: text };
  }
}

/**
 * An OpenAI chat completion as an Anthropic message: reasoning first (unsigned, as thinking),
 * then text (a refusal's as text, with stop_reason "refusal"), then tool calls, with
 * shortened tool names restored from `request.toolNames`.
 */
export function chatAnswerToMessage(answer: Json, request: RequestFacts): Json {
  const { toolNames } = request;
  const choice =
    Array.isArray(answer.choices) && isObject(answer.choices[0]) ? answer.choices[0] : {};
  const message = isObject(choice.message) ? choice.message : {};
  const content: Json[] = [];
  const reasoning = message.reasoning_content ?? message.reasoning;
  if (typeof reasoning === "string" && reasoning !== "") {
    content.push({ type: "thinking", thinking: reasoning, signature: "" });
  }
  if (typeof message.content === "string" && message.content !== "") {
    content.push({ type: "text", text: message.content });
  }
  const refused = typeof message.refusal === "string" && message.refusal !== "";
  if (refused) content.push({ type: "text", text: message.refusal });
  for (const call of Array.isArray(message.tool_calls) ? message.tool_calls.filter(isObject) : []) {
    const fn = isObject(call.function) ? call.function : {};
    const name = typeof fn.name === "string" ? (toolNames.get(fn.name) ?? fn.name) : "";
    const id = typeof call.id === "string" ? call.id : `toolu_${randomUUID().replaceAll("-", "")}`;
    content.push({ type: "tool_use", id, name, input: parsedArguments(fn.arguments) });
  }
  return {
    id: typeof answer.id === "string" ? `msg_${answer.id}` : `msg_${randomUUID()}`,
    type: "message",
    role: "assistant",
    model: answer.model,
    content,
    ...(refused
      ? { stop_reason: "refusal", stop_sequence: null }
      : stopReason(choice, request.stopSequences)),
    usage: messagesUsage(answer.usage),
  };
}

interface ToolCall {
  id: string;
  name: string;
  held: string;
  state: "waiting" | "open" | "done";
}

type OpenBlock = { kind: "text" | "thinking" } | { kind: "tool"; call: ToolCall };

/** Most tool calls one answer may make, and most argument characters held while they wait. */
const maxToolCalls = 256;
const maxHeldCharacters = 8 * 2 ** 20;

function streamFailure(message: string): AigwError {
  return new AigwError(message, { status: 502, type: "upstream_error", code: "stream_error" });
}

/**
 * OpenAI chat chunks -> Anthropic's stream events, one stream at a time. `message_start`
 * comes first, with empty content and usage; each text, reasoning or tool call gets a block of
 * its own, with contiguous indices and the delta that opened it; a later tool call's deltas
 * wait while an earlier call's block is open; no empty delta is sent; `message_delta`, with the
 * final usage, waits for the usage chunk, and `message_stop` ends the stream.
 */
export class ChatToMessagesStream {
  private started = false;
  private open: OpenBlock | undefined;
  private index = -1;
  private finish: Json = {};
  private refused = false;
  private usage: unknown;
  private finished = false;
  /** Every tool call, in the order they began; a waiting call's arguments are held. */
  private readonly calls: ToolCall[] = [];
  /** The call each OpenAI tool-call index names now (a new id at an index is a new call). */
  private readonly byIndex = new Map<unknown, ToolCall>();
  /** Characters of arguments held for waiting calls, for `maxHeldCharacters`. */
  private heldCharacters = 0;

  private readonly toolNames: ReadonlyMap<string, string>;

  constructor(private readonly request: RequestFacts) {
    this.toolNames = request.toolNames;
  }

  /**
   * The Anthropic events one chunk makes.
   * @throws AigwError 502 `stream_error` for an error chunk, and for a stream past its bounds.
   */
  push(chunk: unknown): SseEvent[] {
    const events: SseEvent[] = [];
    if (!isObject(chunk) || this.finished) return events;
    if (chunk.error !== undefined) {
      const error = isObject(chunk.error) ? chunk.error : {};
      const detail = typeof error.message === "string" ? `: ${error.message}` : "";
      throw streamFailure(`The upstream's stream failed${detail}`);
    }
    if (!this.started) {
      this.started = true;
      events.push(
        this.event("message_start", {
          type: "message_start",
          message: {
            id: typeof chunk.id === "string" ? `msg_${chunk.id}` : `msg_${randomUUID()}`,
            type: "message",
            role: "assistant",
            model: chunk.model,
            content: [],
            stop_reason: null,
            stop_sequence: null,
            usage: messagesUsage(undefined),
          },
        }),
      );
    }
    if (isObject(chunk.usage)) this.usage = chunk.usage;
    const choice =
      Array.isArray(chunk.choices) && isObject(chunk.choices[0]) ? chunk.choices[0] : undefined;
    const delta = isObject(choice?.delta) ? choice.delta : {};
    const reasoning = delta.reasoning_content ?? delta.reasoning;
    if (typeof reasoning === "string" && reasoning !== "") {
      this.text(events, "thinking", reasoning);
    }
    if (typeof delta.content === "string" && delta.content !== "") {
      this.text(events, "text", delta.content);
    }
    if (typeof delta.refusal === "string" && delta.refusal !== "") {
      this.refused = true;
      this.text(events, "text", delta.refusal);
    }
    for (const piece of Array.isArray(delta.tool_calls) ? delta.tool_calls.filter(isObject) : []) {
      this.tool(events, piece);
    }
    if (choice?.finish_reason !== undefined && choice.finish_reason !== null) {
      this.finish = choice;
      this.flushWaitingCalls(events);
    }
    return events;
  }

  /**
   * The stream's end (the upstream's `[DONE]` or its last chunk): the held message_delta, then
   * message_stop.
   * @throws AigwError 502 `stream_error` for a stream that ended before any chunk.
   */
  end(): SseEvent[] {
    if (this.finished) return [];
    if (!this.started) throw streamFailure("The upstream's stream ended without an answer.");
    this.finished = true;
    const events: SseEvent[] = [];
    this.flushWaitingCalls(events);
    const usage = messagesUsage(this.usage);
    events.push(
      this.event("message_delta", {
        type: "message_delta",
        delta: this.refused
          ? { stop_reason: "refusal", stop_sequence: null }
          : stopReason(this.finish, this.request.stopSequences),
        usage: {
          output_tokens: usage.output_tokens,
          input_tokens: usage.input_tokens,
          cache_creation_input_tokens: usage.cache_creation_input_tokens,
          cache_read_input_tokens: usage.cache_read_input_tokens,
        },
      }),
    );
    events.push(this.event("message_stop", { type: "message_stop" }));
    return events;
  }

  private event(name: string, data: Json): SseEvent {
    return createSseEvent(data, name);
  }

  private text(events: SseEvent[], kind: "text" | "thinking", text: string) {
    if (this.open?.kind !== kind) {
      this.closeBlock(events);
      this.startBlock(
        events,
        { kind },
        kind === "text"
          ? { type: "text", text: "" }
          : { type: "thinking", thinking: "", signature: "" },
      );
    }
    const delta =
      kind === "text" ? { type: "text_delta", text } : { type: "thinking_delta", thinking: text };
    events.push(
      this.event("content_block_delta", { type: "content_block_delta", index: this.index, delta }),
    );
  }

  private tool(events: SseEvent[], piece: Json) {
    const fn = isObject(piece.function) ? piece.function : {};
    let call = this.byIndex.get(piece.index ?? 0);
    // A new id at an index is a new call; an empty one, as some servers send, is not.
    if (!call || (typeof piece.id === "string" && piece.id !== "" && piece.id !== call.id)) {
      if (this.calls.length >= maxToolCalls) {
        throw streamFailure(`The upstream's answer has more than ${maxToolCalls} tool calls.`);
      }
      const name = typeof fn.name === "string" ? (this.toolNames.get(fn.name) ?? fn.name) : "";
      const id =
        typeof piece.id === "string" && piece.id !== ""
          ? piece.id
          : `toolu_${randomUUID().replaceAll("-", "")}`;
      call = { id, name, held: "", state: "waiting" };
      this.calls.push(call);
      this.byIndex.set(piece.index ?? 0, call);
    }
    const args = typeof fn.arguments === "string" ? fn.arguments : "";
    if (call.state === "open") {
      if (args !== "") this.argumentsDelta(events, args);
      return;
    }
    if (call.state === "done") {
      if (args === "") return;
      throw streamFailure("The upstream sent a tool call's arguments after its block had ended.");
    }
    this.heldCharacters += args.length;
    if (this.heldCharacters > maxHeldCharacters) {
      throw streamFailure("The upstream's interleaved tool calls held too much back.");
    }
    call.held += args;
    // A call waits while an earlier call's block is open, so its deltas never land in it.
    if (this.open?.kind !== "tool") {
      this.closeBlock(events);
      this.openCall(events, call);
    }
  }

  private openCall(events: SseEvent[], call: ToolCall) {
    call.state = "open";
    this.startBlock(
      events,
      { kind: "tool", call },
      { type: "tool_use", id: call.id, name: call.name, input: {} },
    );
    if (call.held !== "") this.argumentsDelta(events, call.held);
    this.heldCharacters -= call.held.length;
    call.held = "";
  }

  private argumentsDelta(events: SseEvent[], partial: string) {
    events.push(
      this.event("content_block_delta", {
        type: "content_block_delta",
        index: this.index,
        delta: { type: "input_json_delta", partial_json: partial },
      }),
    );
  }

  /** Each call that waited for an earlier block, in a block of its own. */
  private flushWaitingCalls(events: SseEvent[]) {
    for (const call of this.calls) {
      if (call.state !== "waiting") continue;
      this.closeBlock(events);
      this.openCall(events, call);
    }
    this.closeBlock(events);
  }

  private startBlock(events: SseEvent[], block: OpenBlock, contentBlock: Json) {
    this.index++;
    this.open = block;
    events.push(
      this.event("content_block_start", {
        type: "content_block_start",
        index: this.index,
        content_block: contentBlock,
      }),
    );
  }

  private closeBlock(events: SseEvent[]) {
    if (!this.open) return;
    if (this.open.kind === "tool") this.open.call.state = "done";
    events.push(
      this.event("content_block_stop", { type: "content_block_stop", index: this.index }),
    );
    this.open = undefined;
  }
}
