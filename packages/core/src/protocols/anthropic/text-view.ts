import type { Endpoint, SseEvent } from "@aigw/provider";
import { isObject, type JsonObject } from "@aigw/provider";
import type { TextPiece } from "../protocol.js";

type Role = TextPiece["role"];

function blocks(value: unknown): JsonObject[] {
  return Array.isArray(value) ? value.filter(isObject) : [];
}

function add(pieces: TextPiece[], role: Role, kind: TextPiece["kind"], text: unknown) {
  if (typeof text === "string" && text !== "") pieces.push({ role, kind, text });
}

/** A string, or content blocks: text, thinking, tool calls and tool results. */
function addContent(pieces: TextPiece[], role: Role, content: unknown) {
  if (typeof content === "string") return add(pieces, role, "text", content);
  for (const block of blocks(content)) {
    switch (block.type) {
      case "text":
        add(pieces, role, "text", block.text);
        break;
      case "thinking":
        add(pieces, role, "reasoning", block.thinking);
        break;
      case "tool_use":
      case "server_tool_use": {
        const piece: TextPiece = {
          role: "assistant",
          kind: "tool_call",
          text: JSON.stringify(block.input ?? {}),
        };
        if (typeof block.name === "string") piece.name = block.name;
        pieces.push(piece);
        break;
      }
      case "tool_result":
        if (typeof block.content === "string") add(pieces, "tool", "tool_result", block.content);
        for (const part of blocks(block.content)) add(pieces, "tool", "tool_result", part.text);
        break;
    }
  }
}

/** The text of a Messages request: its system prompt, then each message's, in order. */
export function requestText(_endpoint: Endpoint, body: JsonObject): TextPiece[] {
  const pieces: TextPiece[] = [];
  addContent(pieces, "system", body.system);
  for (const message of blocks(body.messages)) {
    addContent(pieces, message.role === "assistant" ? "assistant" : "user", message.content);
  }
  return pieces;
}

/** The text of a Messages answer. */
export function answerText(_endpoint: Endpoint, answer: unknown): TextPiece[] {
  const pieces: TextPiece[] = [];
  if (isObject(answer)) addContent(pieces, "assistant", answer.content);
  return pieces;
}

// Stream deltas that carry text, and the field that holds it.
const deltas = new Map<unknown, [TextPiece["kind"], string]>([
  ["text_delta", ["text", "text"]],
  ["thinking_delta", ["reasoning", "thinking"]],
  ["input_json_delta", ["tool_call", "partial_json"]],
]);

/** The text one Messages stream event adds. */
export function eventText(_endpoint: Endpoint, event: SseEvent): TextPiece[] {
  if (event.data === "") return [];
  let data: unknown;
  try {
    data = event.json();
  } catch {
    return [];
  }
  if (!isObject(data) || data.type !== "content_block_delta" || !isObject(data.delta)) return [];
  const found = deltas.get(data.delta.type);
  if (!found) return [];
  const [kind, field] = found;
  const text = data.delta[field];
  return typeof text === "string" && text !== "" ? [{ role: "assistant", kind, text }] : [];
}
