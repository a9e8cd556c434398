import type { Endpoint, SseEvent } from "@aigw/provider";
import { isObject, type JsonObject } from "@aigw/provider";
import type { TextEdit, TextPiece } from "../protocol.js";
import {
  collect,
  editedEvent,
  eventObject,
  objects,
  type Visit,
  visitField,
} from "../text-walk.js";

type Role = TextPiece["role"];

/** A tool call's input object, seen as its JSON text; an edit that is not JSON is not kept. */
function visitToolInput(visit: Visit, block: JsonObject) {
  const piece: TextPiece = {
    role: "assistant",
    kind: "tool_call",
    text: JSON.stringify(block.input ?? {}),
  };
  if (typeof block.name === "string") piece.name = block.name;
  const edited = visit(piece);
  if (edited === undefined || edited === piece.text) return;
  try {
    block.input = JSON.parse(edited);
  } catch {
    // An edit inside a JSON string keeps it JSON; anything else leaves the input as it was.
  }
}

/** A string at `owner[field]`, or content blocks: text, thinking, tool calls and tool results. */
function visitContent(visit: Visit, owner: JsonObject, field: string, role: Role) {
  if (typeof owner[field] === "string") return visitField(visit, owner, field, role, "text");
  for (const block of objects(owner[field])) {
    switch (block.type) {
      case "text":
        visitField(visit, block, "text", role, "text");
        break;
      case "thinking":
        visitField(visit, block, "thinking", role, "reasoning");
        break;
      case "tool_use":
      case "server_tool_use":
        visitToolInput(visit, block);
        break;
      case "tool_result":
        if (typeof block.content === "string") {
          visitField(visit, block, "content", "tool", "tool_result");
        }
        for (const part of objects(block.content)) {
          visitField(visit, part, "text", "tool", "tool_result");
        }
        break;
    }
  }
}

function visitRequest(body: JsonObject, visit: Visit) {
  visitContent(visit, body, "system", "system");
  for (const message of objects(body.messages)) {
    visitContent(visit, message, "content", message.role === "assistant" ? "assistant" : "user");
  }
}

// Stream deltas that carry text, and the field that holds it.
const deltas = new Map<unknown, [TextPiece["kind"], string]>([
  ["text_delta", ["text", "text"]],
  ["thinking_delta", ["reasoning", "thinking"]],
  ["input_json_delta", ["tool_call", "partial_json"]],
]);

function visitEvent(data: JsonObject, visit: Visit) {
  if (data.type !== "content_block_delta" || !isObject(data.delta)) return;
  const found = deltas.get(data.delta.type);
  if (found) visitField(visit, data.delta, found[1], "assistant", found[0]);
}

/** The text of a Messages request: its system prompt, then each message's, in order. */
export const requestText = (_endpoint: Endpoint, body: JsonObject): TextPiece[] =>
  collect((visit) => visitRequest(body, visit));

/** The text of a Messages answer. */
export const answerText = (_endpoint: Endpoint, answer: unknown): TextPiece[] =>
  isObject(answer) ? collect((visit) => visitContent(visit, answer, "content", "assistant")) : [];

/** The text one Messages stream event adds. */
export function eventText(_endpoint: Endpoint, event: SseEvent): TextPiece[] {
  const data = eventObject(event);
  return data ? collect((visit) => visitEvent(data, visit)) : [];
}

export const editRequestText = (_endpoint: Endpoint, body: JsonObject, edit: TextEdit): void =>
  visitRequest(body, edit);

export const editAnswerText = (_endpoint: Endpoint, answer: JsonObject, edit: TextEdit): void =>
  visitContent(edit, answer, "content", "assistant");

export const editEventText = (_endpoint: Endpoint, event: SseEvent, edit: TextEdit): SseEvent =>
  editedEvent(event, (data, visit) => visitEvent(data, visit), edit);
