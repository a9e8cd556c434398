import { createSseEvent, type SseEvent, type TokenUsage } from "@aigw/provider";

/** The endpoints whose streams are assembled into, and replayed from, one JSON answer. */
export type StreamedEndpoint = "chat/completions" | "completions";

type JsonObject = Record<string, unknown>;

const encoder = new TextEncoder();
/** Top-level fields of a chunk that are not the answer's: the chunk's own kind and padding. */
const chunkOnlyFields = new Set(["object", "choices", "usage", "obfuscation"]);
/** Fields of a delta that name or type something: replaced, never joined. */
const identityFields = new Set(["role", "id", "type", "name", "index", "expires_at"]);

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Merges one piece of a stream into what came before: lists are joined (tool calls by their
 * `index`), objects are merged the same way, text is joined when `joinText` is set (a delta's
 * content, reasoning, arguments) except for names and ids, and everything else is replaced by
 * its latest value that is neither null nor empty. Fields the gateway does not know follow the
 * same rules, so nothing a stream carried is lost.
 */
function mergeInto(target: JsonObject, piece: JsonObject, joinText: boolean): void {
  for (const [name, value] of Object.entries(piece)) {
    const current = target[name];
    if (value === null || value === undefined || value === "") {
      if (current === undefined || (value === "" && current === null)) target[name] = value ?? null;
      continue;
    }
    if (name === "tool_calls" && Array.isArray(value)) {
      const calls = Array.isArray(current) ? (current as unknown[]) : [];
      for (const call of value) {
        if (!isObject(call)) continue;
        const { index, ...rest } = call;
        const at = typeof index === "number" ? index : calls.length;
        const existing = calls[at];
        if (isObject(existing)) mergeInto(existing, rest, joinText);
        else calls[at] = structuredClone(rest);
      }
      target[name] = calls;
    } else if (
      typeof value === "string" &&
      typeof current === "string" &&
      joinText &&
      !identityFields.has(name)
    ) {
      target[name] = current + value;
    } else if (Array.isArray(value) && Array.isArray(current)) {
      current.push(...value);
    } else if (isObject(value)) {
      if (isObject(current)) mergeInto(current, value, joinText);
      else target[name] = structuredClone(value);
    } else {
      target[name] = Array.isArray(value) ? [...value] : value;
    }
  }
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
 * Merges a chat or completions stream into a `chat.completion` / `text_completion` body: each
 * choice's deltas merged into its message (text joined, tool calls merged by index, every other
 * field kept, reasoning and unknown ones included), its logprobs joined, its last finish reason;
 * the top-level fields of the first chunk that had them, and the usage chunk's usage.
 * It gathers at most `maxLength` characters of events, however long the stream runs.
 */
export function createStreamAssembler(
  endpoint: StreamedEndpoint,
  maxLength: number,
): StreamAssembler {
  const top: JsonObject = {};
  const choices = new Map<number, JsonObject>();
  let usage: unknown;
  let failed = false;
  let overflowed = false;
  let size = 0;

  function addChoice(part: JsonObject) {
    const index = typeof part.index === "number" ? part.index : 0;
    let choice = choices.get(index);
    if (!choice) {
      choice =
        endpoint === "completions"
          ? { text: "", index, logprobs: null, finish_reason: null }
          : {
              index,
              message: { role: "assistant", content: null, refusal: null },
              logprobs: null,
              finish_reason: null,
            };
      choices.set(index, choice);
    }
    const { delta, index: _index, text, ...rest } = part;
    if (endpoint === "chat/completions" && isObject(delta)) {
      mergeInto(choice.message as JsonObject, delta, true);
    }
    if (endpoint === "completions" && typeof text === "string") choice.text += text;
    mergeInto(choice, rest, false);
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
      for (const [name, value] of Object.entries(chunk)) {
        if (!chunkOnlyFields.has(name) && top[name] == null) top[name] = value;
      }
      if (isObject(chunk.usage)) usage = chunk.usage;
      if (Array.isArray(chunk.choices)) {
        for (const part of chunk.choices) if (isObject(part)) addChoice(part);
      }
    },
    finish(reported) {
      if (failed || overflowed) return undefined;
      const body: JsonObject = {
        id: top.id,
        object: endpoint === "completions" ? "text_completion" : "chat.completion",
        ...top,
        choices: [...choices.values()].sort(
          (left, right) => (left.index as number) - (right.index as number),
        ),
      };
      const finalUsage = usage ?? usageObject(reported);
      if (finalUsage !== undefined) body.usage = finalUsage;
      return encoder.encode(JSON.stringify(body));
    },
  };
}

/**
 * A stored answer as a stream, per choice: one chunk with the whole message as its delta and
 * the choice's logprobs and other fields, a chunk per tool call, and one with the finish
 * reason; then the usage chunk when the client asked for it, then `[DONE]`. Every field the
 * answer carries is sent, so merging the replay gives the answer back.
 */
export function replayEvents(
  endpoint: StreamedEndpoint,
  answer: JsonObject,
  includeUsage: boolean,
): SseEvent[] {
  const base: JsonObject = {};
  for (const [name, value] of Object.entries(answer)) {
    if (!chunkOnlyFields.has(name)) base[name] = value;
  }
  base.object = endpoint === "completions" ? "text_completion" : "chat.completion.chunk";
  const chunk = (choice: JsonObject) => createSseEvent({ ...base, choices: [choice] });
  const events: SseEvent[] = [];
  const choices = Array.isArray(answer.choices) ? answer.choices.filter(isObject) : [];
  for (const choice of choices) {
    const { index, message, finish_reason: finishReason, ...fields } = choice;
    if (endpoint === "completions") {
      events.push(chunk({ index, ...fields, finish_reason: null }));
      events.push(chunk({ index, text: "", logprobs: null, finish_reason: finishReason ?? null }));
      continue;
    }
    const { tool_calls: toolCalls, ...said } = isObject(message) ? message : {};
    events.push(chunk({ index, delta: said, ...fields, finish_reason: null }));
    if (Array.isArray(toolCalls)) {
      toolCalls.forEach((call: unknown, callIndex) => {
        if (!isObject(call)) return;
        events.push(
          chunk({
            index,
            delta: { tool_calls: [{ index: callIndex, ...call }] },
            logprobs: null,
            finish_reason: null,
          }),
        );
      });
    }
    events.push(chunk({ index, delta: {}, logprobs: null, finish_reason: finishReason ?? null }));
  }
  if (includeUsage && answer.usage !== undefined) {
    events.push(createSseEvent({ ...base, choices: [], usage: answer.usage }));
  }
  events.push(createSseEvent("[DONE]"));
  return events;
}
