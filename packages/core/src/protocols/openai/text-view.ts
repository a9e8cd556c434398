import type { Endpoint, SseEvent } from "@aigw/provider";
import { isObject, type JsonObject } from "@aigw/provider";
import type { TextPiece } from "../protocol.js";

type Role = TextPiece["role"];

function objects(value: unknown): JsonObject[] {
  return Array.isArray(value) ? value.filter(isObject) : [];
}

function roleOf(role: unknown): Role {
  if (role === "system" || role === "developer") return "system";
  if (role === "assistant") return "assistant";
  if (role === "tool" || role === "function") return "tool";
  return "user";
}

// Content part types that hold text, in chat completions and in Responses.
const textParts = new Set(["text", "input_text", "output_text", "refusal"]);

/** Adds a string, or the text parts of a content list (images and files have none). */
function addContent(pieces: TextPiece[], role: Role, kind: TextPiece["kind"], content: unknown) {
  if (typeof content === "string") {
    if (content !== "") pieces.push({ role, kind, text: content });
    return;
  }
  for (const part of objects(content)) {
    if (!textParts.has(part.type as string)) continue;
    const text = part.type === "refusal" ? part.refusal : part.text;
    if (typeof text === "string" && text !== "") pieces.push({ role, kind, text });
  }
}

function addToolCall(pieces: TextPiece[], call: JsonObject) {
  const fn = isObject(call.function) ? call.function : call;
  if (typeof fn.arguments !== "string" || fn.arguments === "") return;
  const piece: TextPiece = { role: "assistant", kind: "tool_call", text: fn.arguments };
  if (typeof fn.name === "string") piece.name = fn.name;
  pieces.push(piece);
}

/**
 * A chat message, or a delta of one: its content (a tool's as its result), reasoning
 * (`reasoning_content`, or `reasoning` as OpenRouter and vLLM name it), refusal and tool calls.
 */
function addMessage(pieces: TextPiece[], message: JsonObject, defaultRole: Role) {
  const role = message.role === undefined ? defaultRole : roleOf(message.role);
  addContent(pieces, role, "reasoning", message.reasoning_content ?? message.reasoning);
  addContent(pieces, role, role === "tool" ? "tool_result" : "text", message.content);
  addContent(pieces, role, "text", message.refusal);
  for (const call of objects(message.tool_calls)) addToolCall(pieces, call);
  if (isObject(message.function_call)) addToolCall(pieces, message.function_call);
}

/** Strings of a prompt or an input that is a string or a list (token arrays hold no text). */
function addStrings(pieces: TextPiece[], value: unknown) {
  for (const text of Array.isArray(value) ? value : [value]) {
    if (typeof text === "string" && text !== "") pieces.push({ role: "user", kind: "text", text });
  }
}

/** One item of a Responses `input` or `output` list. */
function addResponsesItem(pieces: TextPiece[], item: JsonObject) {
  switch (item.type) {
    case "function_call":
    case "custom_tool_call":
      addToolCall(pieces, { name: item.name, arguments: item.arguments ?? item.input });
      return;
    case "function_call_output":
    case "custom_tool_call_output":
      addContent(pieces, "tool", "tool_result", item.output);
      return;
    case "reasoning":
      for (const part of [...objects(item.summary), ...objects(item.content)]) {
        addContent(pieces, "assistant", "reasoning", part.text);
      }
      return;
    case undefined:
    case "message":
      addContent(pieces, roleOf(item.role), "text", item.content);
  }
}

/** The text of a request: messages, prompts, inputs and instructions, in the order written. */
export function requestText(endpoint: Endpoint, body: JsonObject): TextPiece[] {
  const pieces: TextPiece[] = [];
  switch (endpoint) {
    case "chat/completions":
      for (const message of objects(body.messages)) addMessage(pieces, message, "user");
      break;
    case "responses":
      addContent(pieces, "system", "text", body.instructions);
      if (typeof body.input === "string") addStrings(pieces, body.input);
      for (const item of objects(body.input)) addResponsesItem(pieces, item);
      break;
    case "completions":
    case "images/generations":
      addStrings(pieces, body.prompt);
      break;
    case "embeddings":
      addStrings(pieces, body.input);
      break;
  }
  return pieces;
}

/** The text of a JSON answer: each choice's message or text, or a response's output items. */
export function answerText(endpoint: Endpoint, answer: unknown): TextPiece[] {
  const pieces: TextPiece[] = [];
  if (!isObject(answer)) return pieces;
  if (endpoint === "responses") {
    for (const item of objects(answer.output)) addResponsesItem(pieces, item);
    return pieces;
  }
  for (const choice of objects(answer.choices)) {
    if (isObject(choice.message)) addMessage(pieces, choice.message, "assistant");
    addContent(pieces, "assistant", "text", choice.text);
  }
  return pieces;
}

// Responses stream events that carry text, and what they carry.
const responsesDeltas = new Map<unknown, TextPiece["kind"]>([
  ["response.output_text.delta", "text"],
  ["response.refusal.delta", "text"],
  ["response.reasoning_text.delta", "reasoning"],
  ["response.reasoning_summary_text.delta", "reasoning"],
  ["response.function_call_arguments.delta", "tool_call"],
]);

/** The text one stream event adds: a chunk's deltas, or a Responses text delta. */
export function eventText(endpoint: Endpoint, event: SseEvent): TextPiece[] {
  if (event.data === "" || event.data === "[DONE]") return [];
  let chunk: unknown;
  try {
    chunk = event.json();
  } catch {
    return [];
  }
  if (!isObject(chunk)) return [];
  if (endpoint !== "responses") {
    const pieces: TextPiece[] = [];
    for (const choice of objects(chunk.choices)) {
      if (isObject(choice.delta)) addMessage(pieces, choice.delta, "assistant");
      addContent(pieces, "assistant", "text", choice.text);
    }
    return pieces;
  }
  const kind = responsesDeltas.get(chunk.type);
  if (!kind || typeof chunk.delta !== "string" || chunk.delta === "") return [];
  return [{ role: "assistant", kind, text: chunk.delta }];
}
