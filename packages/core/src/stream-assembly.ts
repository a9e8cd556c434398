import { createSseEvent, type SseEvent, type TokenUsage } from "@aigw/provider";

/** The endpoints whose streams are assembled into, and replayed from, one JSON answer. */
export type StreamedEndpoint = "chat/completions" | "completions";

type JsonObject = Record<string, unknown>;

interface ToolCall {
  id?: unknown;
  type: unknown;
  function: { name: string; arguments: string };
}

interface Choice {
  index: number;
  role: unknown;
  content: string | null;
  refusal: string | null;
  toolCalls: ToolCall[];
  logprobs: { content: unknown[] } | null;
  finishReason: unknown;
}

const encoder = new TextEncoder();
const topLevelFields = ["id", "created", "model", "system_fingerprint", "service_tier"];

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function appended(text: string | null, part: unknown): string | null {
  return typeof part === "string" ? (text ?? "") + part : text;
}

function usageObject(usage: TokenUsage | undefined): JsonObject | undefined {
  if (!usage || usage.estimated) return undefined;
  return {
    prompt_tokens: usage.inputTokens,
    completion_tokens: usage.outputTokens,
    total_tokens: usage.totalTokens,
  };
}

export interface StreamAssembler {
  add(event: SseEvent): void;
  /** The stream went past `maxLength`: what it held is dropped and nothing more is kept. */
  readonly overflowed: boolean;
  /**
   * The complete answer as the non-streamed endpoint would have sent it, or undefined when the
   * stream carried an error or overflowed. `usage` stands in for a usage chunk the client did
   * not see.
   */
  finish(usage: TokenUsage | undefined): Uint8Array | undefined;
}

/**
 * Merges a chat or completions stream into a `chat.completion` / `text_completion` body: text
 * concatenated, tool calls merged by index, the last finish reason, the usage chunk's usage.
 * It gathers at most `maxLength` characters of events, however long the stream runs.
 */
export function createStreamAssembler(
  endpoint: StreamedEndpoint,
  maxLength: number,
): StreamAssembler {
  const top: JsonObject = {};
  const choices = new Map<number, Choice>();
  let usage: unknown;
  let failed = false;
  let overflowed = false;
  let size = 0;

  function choiceAt(index: number): Choice {
    let choice = choices.get(index);
    if (!choice) {
      choice = {
        index,
        role: "assistant",
        content: null,
        refusal: null,
        toolCalls: [],
        logprobs: null,
        finishReason: null,
      };
      choices.set(index, choice);
    }
    return choice;
  }

  function addToolCalls(choice: Choice, deltas: unknown) {
    if (!Array.isArray(deltas)) return;
    for (const delta of deltas) {
      if (!isObject(delta)) continue;
      const index = typeof delta.index === "number" ? delta.index : choice.toolCalls.length;
      let call = choice.toolCalls[index];
      if (!call) {
        call = { type: "function", function: { name: "", arguments: "" } };
        choice.toolCalls[index] = call;
      }
      if (delta.id !== undefined) call.id = delta.id;
      if (delta.type !== undefined) call.type = delta.type;
      const fn = isObject(delta.function) ? delta.function : {};
      if (typeof fn.name === "string") call.function.name += fn.name;
      if (typeof fn.arguments === "string") call.function.arguments += fn.arguments;
    }
  }

  function addChoice(part: JsonObject) {
    const choice = choiceAt(typeof part.index === "number" ? part.index : 0);
    if (part.finish_reason !== null && part.finish_reason !== undefined) {
      choice.finishReason = part.finish_reason;
    }
    if (isObject(part.logprobs) && Array.isArray(part.logprobs.content)) {
      choice.logprobs ??= { content: [] };
      choice.logprobs.content.push(...part.logprobs.content);
    }
    if (endpoint === "completions") {
      choice.content = appended(choice.content, part.text);
      return;
    }
    const delta = isObject(part.delta) ? part.delta : {};
    if (typeof delta.role === "string") choice.role = delta.role;
    choice.content = appended(choice.content, delta.content);
    choice.refusal = appended(choice.refusal, delta.refusal);
    addToolCalls(choice, delta.tool_calls);
  }

  function chatChoice(choice: Choice): JsonObject {
    const message: JsonObject = {
      role: choice.role,
      content: choice.content,
      refusal: choice.refusal,
    };
    if (choice.toolCalls.length > 0) message.tool_calls = choice.toolCalls.filter(Boolean);
    return {
      index: choice.index,
      message,
      logprobs: choice.logprobs,
      finish_reason: choice.finishReason,
    };
  }

  function textChoice(choice: Choice): JsonObject {
    return {
      text: choice.content ?? "",
      index: choice.index,
      logprobs: choice.logprobs,
      finish_reason: choice.finishReason,
    };
  }

  return {
    get overflowed() {
      return overflowed;
    },
    add(event) {
      if (overflowed || event.data === "[DONE]" || event.data === "") return;
      size += event.raw.length;
      if (size > maxLength) {
        overflowed = true;
        choices.clear();
        return;
      }
      let chunk: unknown;
      try {
        chunk = event.json();
      } catch {
        chunk = undefined;
      }
      if (!isObject(chunk) || chunk.error !== undefined) {
        failed = true;
        return;
      }
      for (const field of topLevelFields) {
        if (chunk[field] !== undefined && top[field] === undefined) top[field] = chunk[field];
      }
      if (isObject(chunk.usage)) usage = chunk.usage;
      if (Array.isArray(chunk.choices)) {
        for (const part of chunk.choices) if (isObject(part)) addChoice(part);
      }
    },
    finish(reported) {
      if (failed || overflowed) return undefined;
      const ordered = [...choices.values()].sort((left, right) => left.index - right.index);
      const body: JsonObject = {
        id: top.id,
        object: endpoint === "completions" ? "text_completion" : "chat.completion",
        ...top,
        choices: ordered.map(endpoint === "completions" ? textChoice : chatChoice),
      };
      const finalUsage = usage ?? usageObject(reported);
      if (finalUsage !== undefined) body.usage = finalUsage;
      return encoder.encode(JSON.stringify(body));
    },
  };
}

/**
 * A stored answer as a stream, per choice: a role chunk, its content, its tool calls and its
 * finish reason; then the usage chunk when the client asked for it, then `[DONE]`.
 */
export function replayEvents(
  endpoint: StreamedEndpoint,
  answer: JsonObject,
  includeUsage: boolean,
): SseEvent[] {
  const base: JsonObject = {
    object: endpoint === "completions" ? "text_completion" : "chat.completion.chunk",
  };
  for (const field of topLevelFields) {
    if (answer[field] !== undefined) base[field] = answer[field];
  }
  const chunk = (choice: JsonObject) => createSseEvent({ ...base, choices: [choice] });
  const events: SseEvent[] = [];
  const choices = Array.isArray(answer.choices) ? answer.choices.filter(isObject) : [];
  for (const choice of choices) {
    const { index } = choice;
    if (endpoint === "completions") {
      events.push(chunk({ text: choice.text, index, logprobs: null, finish_reason: null }));
      events.push(
        chunk({ text: "", index, logprobs: null, finish_reason: choice.finish_reason ?? null }),
      );
      continue;
    }
    const message = isObject(choice.message) ? choice.message : {};
    const delta = (fields: JsonObject, finishReason: unknown = null) =>
      chunk({ index, delta: fields, logprobs: null, finish_reason: finishReason });
    const text = typeof message.content === "string" ? message.content : null;
    events.push(
      delta({
        role: message.role ?? "assistant",
        content: text === null ? null : "",
        refusal: null,
      }),
    );
    if (text) events.push(delta({ content: text }));
    if (typeof message.refusal === "string") events.push(delta({ refusal: message.refusal }));
    const toolCalls = Array.isArray(message.tool_calls) ? message.tool_calls : [];
    toolCalls.forEach((call: unknown, callIndex) => {
      if (isObject(call)) events.push(delta({ tool_calls: [{ index: callIndex, ...call }] }));
    });
    events.push(delta({}, choice.finish_reason ?? null));
  }
  if (includeUsage && answer.usage !== undefined) {
    events.push(createSseEvent({ ...base, choices: [], usage: answer.usage }));
  }
  events.push(createSseEvent("[DONE]"));
  return events;
}
