import {
  createSseEvent,
  isObject,
  type JsonObject,
  type SseEvent,
  type TokenUsage,
  wantsStreamUsage,
} from "@aigw/provider";
import type { StreamAssembler, StreamRecording } from "../protocol.js";

/** The endpoints whose streams are assembled into, and replayed from, one JSON answer. */
export type StreamedEndpoint = "chat/completions" | "completions";

const encoder = new TextEncoder();
/** Top-level fields of a chunk that are not the answer's: the chunk's own kind and padding. */
const chunkOnlyFields = new Set(["object", "choices", "usage", "obfuscation"]);
/** Fields of a delta that name or type something: replaced, never joined. */
const identityFields = new Set(["role", "id", "type", "name", "index", "expires_at"]);

/** Each merged tool-call list's calls by the `index` their pieces name. */
const callIndexes = new WeakMap<JsonObject[], Map<unknown, JsonObject>>();

/** Sets a field as an own property: a `__proto__` key from an upstream's JSON stays data. */
function setField(target: JsonObject, name: string, value: unknown): void {
  if (name === "__proto__") {
    Object.defineProperty(target, name, {
      value,
      writable: true,
      enumerable: true,
      configurable: true,
    });
  } else {
    target[name] = value;
  }
}

/**
 * Merges streamed tool-call pieces into the calls so far: a piece joins the call with the same
 * `index` (kept on the call until the answer is finished), or starts a new one, a function
 * call unless it says otherwise.
 */
function mergeToolCalls(calls: JsonObject[], pieces: unknown[], joinText: boolean): void {
  let byIndex = callIndexes.get(calls);
  if (!byIndex) {
    byIndex = new Map();
    callIndexes.set(calls, byIndex);
  }
  for (const piece of pieces) {
    if (!isObject(piece)) continue;
    const existing = piece.index === undefined ? undefined : byIndex.get(piece.index);
    if (existing) {
      mergeInto(existing, piece, joinText);
    } else {
      const call: JsonObject = { type: "function", function: { name: "", arguments: "" } };
      mergeInto(call, piece, joinText);
      calls.push(call);
      if (piece.index !== undefined) byIndex.set(piece.index, call);
    }
  }
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
    const current = Object.hasOwn(target, name) ? target[name] : undefined;
    if (value === null || value === undefined || value === "") {
      if (current === undefined || (value === "" && current === null)) {
        setField(target, name, value ?? null);
      }
      continue;
    }
    if (name === "tool_calls" && Array.isArray(value)) {
      const calls = Array.isArray(current) ? (current as JsonObject[]) : [];
      mergeToolCalls(calls, value, joinText);
      setField(target, name, calls);
    } else if (
      typeof value === "string" &&
      typeof current === "string" &&
      joinText &&
      !identityFields.has(name)
    ) {
      setField(target, name, current + value);
    } else if (Array.isArray(value) && Array.isArray(current)) {
      for (const item of value) current.push(item);
    } else if (isObject(value)) {
      if (isObject(current)) mergeInto(current, value, joinText);
      else setField(target, name, structuredClone(value));
    } else {
      setField(target, name, Array.isArray(value) ? structuredClone(value) : value);
    }
  }
}

/** Tool calls lose the `index` that only placed their pieces. */
function withoutCallIndexes(choice: JsonObject): JsonObject {
  const message = choice.message;
  if (isObject(message) && Array.isArray(message.tool_calls)) {
    for (const call of message.tool_calls) if (isObject(call)) delete call.index;
  }
  return choice;
}

function usageObject(usage: TokenUsage | undefined): JsonObject | undefined {
  if (!usage || usage.estimated) return undefined;
  return {
    prompt_tokens: usage.inputTokens,
    completion_tokens: usage.outputTokens,
    total_tokens: usage.totalTokens,
  };
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
    const { index: _index, ...rest } = part;
    if (endpoint === "chat/completions") {
      const { delta, ...fields } = rest;
      if (isObject(delta)) mergeInto(choice.message as JsonObject, delta, true);
      mergeInto(choice, fields, false);
    } else {
      const { text, ...fields } = rest;
      if (typeof text === "string") choice.text += text;
      mergeInto(choice, fields, false);
    }
  }

  // A data property, not a getter: V8 builds an object literal with a getter through its
  // runtime, hundreds of ns a stream.
  const assembler: StreamAssembler & { overflowed: boolean } = {
    overflowed: false,
    add(event) {
      if (assembler.overflowed || event.data === "[DONE]" || event.data === "") return;
      size += event.raw.length;
      if (size > maxLength) {
        assembler.overflowed = true;
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
      // The latest value that is not empty: Azure's first chunk has an empty id and model.
      const answerFields: JsonObject = {};
      for (const [name, value] of Object.entries(chunk)) {
        if (!chunkOnlyFields.has(name)) setField(answerFields, name, value);
      }
      mergeInto(top, answerFields, false);
      if (isObject(chunk.usage)) usage = chunk.usage;
      if (Array.isArray(chunk.choices)) {
        for (const part of chunk.choices) if (isObject(part)) addChoice(part);
      }
    },
    finish(reported) {
      if (failed || assembler.overflowed) return undefined;
      const body: JsonObject = {
        id: top.id,
        object: endpoint === "completions" ? "text_completion" : "chat.completion",
        ...top,
        choices: [...choices.values()]
          .sort((left, right) => (left.index as number) - (right.index as number))
          .map(withoutCallIndexes),
      };
      const finalUsage = usage ?? usageObject(reported);
      if (finalUsage !== undefined) body.usage = finalUsage;
      return encoder.encode(JSON.stringify(body));
    },
  };
  return assembler;
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
    if (!chunkOnlyFields.has(name)) setField(base, name, value);
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

const decoder = new TextDecoder();

/** Chat and completions streams, kept as their JSON answer and replayed from it. */
export function streamRecording(endpoint: StreamedEndpoint): StreamRecording {
  return {
    assemble: (maxLength) => createStreamAssembler(endpoint, maxLength),
    replay: (answer, request) =>
      replayEvents(endpoint, JSON.parse(decoder.decode(answer)), wantsStreamUsage(request)),
  };
}
