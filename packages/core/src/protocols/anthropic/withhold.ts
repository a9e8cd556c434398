import { createSseEvent, isObject, type JsonObject } from "@aigw/provider";
import type { StreamWithholder } from "../protocol.js";
import { eventObject } from "../text-walk.js";

/** A Messages answer whose content a content filter withheld: none, and `stop_reason: "refusal"`. */
export function withholdAnswer(_endpoint: unknown, answer: JsonObject): void {
  answer.content = [];
  answer.stop_reason = "refusal";
  answer.stop_sequence = null;
}

// Events after which no earlier text joins later text.
const closingTypes = new Set(["content_block_stop", "message_delta", "message_stop", "error"]);

// Events that go out as they are after a withholding.
const kept = new Set(["message_start", "message_stop", "ping", "error"]);

/**
 * After a withholding, a Messages stream keeps its frame: blocks already opened are closed,
 * no new block opens, and `message_delta` says `stop_reason: "refusal"`.
 */
export function streamWithholder(): StreamWithholder {
  const opened = new Set<unknown>();
  return {
    closes(event) {
      const type = eventObject(event)?.type;
      return typeof type === "string" && closingTypes.has(type);
    },
    pass(event) {
      const data = eventObject(event);
      if (data?.type === "content_block_start") opened.add(data.index);
      else if (data?.type === "content_block_stop") opened.delete(data.index);
    },
    withhold(event) {
      const data = eventObject(event);
      if (!data) return null;
      if (kept.has(data.type as string)) return event;
      if (data.type === "content_block_stop") return opened.delete(data.index) ? event : null;
      if (data.type !== "message_delta") return null;
      const delta = isObject(data.delta) ? data.delta : {};
      return createSseEvent(
        { ...data, delta: { ...delta, stop_reason: "refusal", stop_sequence: null } },
        event.event,
      );
    },
  };
}
