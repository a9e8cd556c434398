import { createSseEvent, isObject, type JsonObject, type SseEvent } from "@aigw/provider";
import type { TextPiece } from "./protocol.js";

/** Sees one piece of text where it lies; a string returned replaces it there. */
export type Visit = (piece: TextPiece) => string | undefined;

/** The pieces a walk over a body visits, in order, changing nothing. */
export function collect(walk: (visit: Visit) => void): TextPiece[] {
  const pieces: TextPiece[] = [];
  walk((piece) => {
    pieces.push(piece);
    return undefined;
  });
  return pieces;
}

/** A stream event's data as a JSON object, or undefined (comments, `[DONE]`, non-JSON). */
export function eventObject(event: SseEvent): JsonObject | undefined {
  if (event.data === "" || event.data === "[DONE]") return undefined;
  try {
    const data = event.json();
    return isObject(data) ? data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `event` with the text `walk` visits in its data edited by `edit`; the same event when
 * nothing changed (its JSON is copied first: the parsed original may be shared).
 */
export function editedEvent(
  event: SseEvent,
  walk: (data: JsonObject, visit: Visit) => void,
  edit: Visit,
): SseEvent {
  const data = eventObject(event);
  if (!data) return event;
  const copy = structuredClone(data);
  let changed = false;
  walk(copy, (piece) => {
    const edited = edit(piece);
    if (edited !== undefined && edited !== piece.text) changed = true;
    return edited;
  });
  return changed ? createSseEvent(copy, event.event) : event;
}
