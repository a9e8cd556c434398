import { createSseEvent, isObject, type JsonObject, type SseEvent } from "@aigw/provider";
import type { TextPiece } from "./protocol.js";

/** Sees one piece of text where it lies; a string returned replaces it there. */
export type Visit = (piece: TextPiece) => string | undefined;

/** The objects of a list (anything else: none). */
export function objects(value: unknown): JsonObject[] {
  return Array.isArray(value) ? value.filter(isObject) : [];
}

/**
 * The string at `owner[field]`, when it is not empty, as a piece of `role` and `kind` (of the
 * function `name`, for tool calls); a string `visit` gives back replaces it.
 */
export function visitField(
  visit: Visit,
  owner: JsonObject,
  field: string,
  role: TextPiece["role"],
  kind: TextPiece["kind"],
  name?: unknown,
) {
  const text = owner[field];
  if (typeof text !== "string" || text === "") return;
  const piece: TextPiece = { role, kind, text };
  if (typeof name === "string") piece.name = name;
  const edited = visit(piece);
  if (edited !== undefined) owner[field] = edited;
}

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
