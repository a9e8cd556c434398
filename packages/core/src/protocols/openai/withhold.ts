import {
  createSseEvent,
  type Endpoint,
  isObject,
  type JsonObject,
  type SseEvent,
} from "@aigw/provider";
import type { StreamWithholder } from "../protocol.js";
import { eventObject } from "../text-walk.js";

const incomplete = { reason: "content_filter" };

/**
 * A JSON answer whose output a content filter withheld, as OpenAI ends one: each choice with
 * no content and `finish_reason: "content_filter"`; a response `incomplete` with that reason.
 */
export function withholdAnswer(endpoint: Endpoint, answer: JsonObject): void {
  if (endpoint === "responses") {
    answer.output = [];
    answer.output_text = undefined;
    answer.status = "incomplete";
    answer.incomplete_details = incomplete;
    return;
  }
  if (!Array.isArray(answer.choices)) return;
  for (const choice of answer.choices.filter(isObject)) {
    if (isObject(choice.message)) choice.message = { role: "assistant", content: null };
    if (typeof choice.text === "string") choice.text = "";
    // Log probabilities spell the answer out token by token.
    if (choice.logprobs != null) choice.logprobs = null;
    choice.finish_reason = "content_filter";
  }
}

/** Chunks after a withholding: only each choice's end, as `content_filter`, and usage. */
function withheldChunk(chunk: JsonObject, event: SseEvent): SseEvent | null {
  const ended = Array.isArray(chunk.choices)
    ? chunk.choices.filter((choice) => isObject(choice) && choice.finish_reason != null)
    : [];
  if (ended.length === 0 && !isObject(chunk.usage)) return null;
  const choices = ended.map((choice) => {
    const { index, text } = choice as JsonObject;
    return typeof text === "string"
      ? { index, text: "", finish_reason: "content_filter" }
      : { index, delta: {}, finish_reason: "content_filter" };
  });
  return createSseEvent({ ...chunk, choices }, event.event);
}

// Responses stream events that still go out once the output is withheld.
const responsesKept = new Set(["response.created", "response.in_progress", "error"]);

/** Responses events after a withholding: its start, then its end as `incomplete`. */
function withheldResponsesEvent(data: JsonObject, event: SseEvent): SseEvent | null {
  if (responsesKept.has(data.type as string)) return event;
  if (data.type !== "response.completed" && data.type !== "response.incomplete") return null;
  const response = isObject(data.response) ? data.response : {};
  return createSseEvent(
    {
      ...data,
      type: "response.incomplete",
      response: { ...response, status: "incomplete", incomplete_details: incomplete, output: [] },
    },
    "response.incomplete",
  );
}

/** A chunk ending a choice or reporting usage; a Responses event ending an item or the response. */
function closes(endpoint: Endpoint, event: SseEvent): boolean {
  if (event.data === "[DONE]") return true;
  const data = eventObject(event);
  if (!data) return false;
  if (endpoint === "responses") {
    const type = typeof data.type === "string" ? data.type : "";
    return type.endsWith(".done") || responsesEnds.has(type);
  }
  if (isObject(data.usage) || isObject(data.error)) return true;
  return (
    Array.isArray(data.choices) &&
    data.choices.some((choice) => isObject(choice) && choice.finish_reason != null)
  );
}

const responsesEnds = new Set([
  "response.completed",
  "response.incomplete",
  "response.failed",
  "error",
]);

/** OpenAI streams need no memory of what went out before: each event says where it belongs. */
export function streamWithholder(endpoint: Endpoint): StreamWithholder {
  return {
    closes: (event) => closes(endpoint, event),
    pass() {},
    withhold(event) {
      if (event.data === "[DONE]") return event;
      const data = eventObject(event);
      if (!data) return null;
      return endpoint === "responses"
        ? withheldResponsesEvent(data, event)
        : withheldChunk(data, event);
    },
  };
}
