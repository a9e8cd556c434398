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

function roleOf(role: unknown): Role {
  if (role === "system" || role === "developer") return "system";
  if (role === "assistant") return "assistant";
  if (role === "tool" || role === "function") return "tool";
  return "user";
}

// Content part types that hold text, in chat completions and in Responses.
const textParts = new Set(["text", "input_text", "output_text", "refusal"]);

/** A string at `owner[field]`, or the text parts of a content list (images and files have none). */
function visitContent(
  visit: Visit,
  owner: JsonObject,
  field: string,
  role: Role,
  kind: TextPiece["kind"],
) {
  const content = owner[field];
  if (typeof content === "string") return visitField(visit, owner, field, role, kind);
  for (const part of objects(content)) {
    if (!textParts.has(part.type as string)) continue;
    visitField(visit, part, part.type === "refusal" ? "refusal" : "text", role, kind);
  }
}

function visitToolCall(visit: Visit, call: JsonObject) {
  const fn = isObject(call.function) ? call.function : call;
  visitField(visit, fn, "arguments", "assistant", "tool_call", fn.name);
}

/**
 * A chat message, or a delta of one: its content (a tool's as its result), reasoning
 * (`reasoning_content`, or `reasoning` as OpenRouter and vLLM name it), refusal and tool calls.
 */
function visitMessage(visit: Visit, message: JsonObject, defaultRole: Role) {
  const role = message.role === undefined ? defaultRole : roleOf(message.role);
  visitContent(
    visit,
    message,
    typeof message.reasoning_content === "string" ? "reasoning_content" : "reasoning",
    role,
    "reasoning",
  );
  visitContent(visit, message, "content", role, role === "tool" ? "tool_result" : "text");
  visitContent(visit, message, "refusal", role, "text");
  for (const call of objects(message.tool_calls)) visitToolCall(visit, call);
  if (isObject(message.function_call)) visitToolCall(visit, message.function_call);
}

/** Strings of a prompt or an input that is a string or a list (token arrays hold no text). */
function visitStrings(visit: Visit, owner: JsonObject, field: string) {
  const value = owner[field];
  if (!Array.isArray(value)) return visitField(visit, owner, field, "user", "text");
  for (let index = 0; index < value.length; index++) {
    const text = value[index];
    if (typeof text !== "string" || text === "") continue;
    const edited = visit({ role: "user", kind: "text", text });
    if (edited !== undefined) value[index] = edited;
  }
}

/** One item of a Responses `input` or `output` list. */
function visitResponsesItem(visit: Visit, item: JsonObject) {
  switch (item.type) {
    case "function_call":
    case "custom_tool_call":
      visitField(
        visit,
        item,
        item.arguments === undefined ? "input" : "arguments",
        "assistant",
        "tool_call",
        item.name,
      );
      return;
    case "function_call_output":
    case "custom_tool_call_output":
      visitContent(visit, item, "output", "tool", "tool_result");
      return;
    case "reasoning":
      for (const part of [...objects(item.summary), ...objects(item.content)]) {
        visitField(visit, part, "text", "assistant", "reasoning");
      }
      return;
    case undefined:
    case "message":
      visitContent(visit, item, "content", roleOf(item.role), "text");
  }
}

function visitRequest(endpoint: Endpoint, body: JsonObject, visit: Visit) {
  switch (endpoint) {
    case "chat/completions":
      for (const message of objects(body.messages)) visitMessage(visit, message, "user");
      break;
    case "responses":
      visitContent(visit, body, "instructions", "system", "text");
      if (typeof body.input === "string") visitStrings(visit, body, "input");
      for (const item of objects(body.input)) visitResponsesItem(visit, item);
      break;
    case "completions":
    case "images/generations":
      visitStrings(visit, body, "prompt");
      break;
    case "embeddings":
      visitStrings(visit, body, "input");
      break;
  }
}

function visitAnswer(endpoint: Endpoint, answer: JsonObject, visit: Visit) {
  if (endpoint === "responses") {
    for (const item of objects(answer.output)) visitResponsesItem(visit, item);
    return;
  }
  for (const choice of objects(answer.choices)) {
    if (isObject(choice.message)) visitMessage(visit, choice.message, "assistant");
    visitField(visit, choice, "text", "assistant", "text");
  }
}

// Responses stream events that carry text, and what they carry.
const responsesDeltas = new Map<unknown, TextPiece["kind"]>([
  ["response.output_text.delta", "text"],
  ["response.refusal.delta", "text"],
  ["response.reasoning_text.delta", "reasoning"],
  ["response.reasoning_summary_text.delta", "reasoning"],
  ["response.function_call_arguments.delta", "tool_call"],
  ["response.custom_tool_call_input.delta", "tool_call"],
]);

function visitEvent(endpoint: Endpoint, chunk: JsonObject, visit: Visit) {
  if (endpoint !== "responses") {
    for (const choice of objects(chunk.choices)) {
      if (isObject(choice.delta)) visitMessage(visit, choice.delta, "assistant");
      visitField(visit, choice, "text", "assistant", "text");
    }
    return;
  }
  const kind = responsesDeltas.get(chunk.type);
  if (kind) visitField(visit, chunk, "delta", "assistant", kind);
}

/** The text of a request: messages, prompts, inputs and instructions, in the order written. */
export const requestText = (endpoint: Endpoint, body: JsonObject): TextPiece[] =>
  collect((visit) => visitRequest(endpoint, body, visit));

/** The text of a JSON answer: each choice's message or text, or a response's output items. */
export const answerText = (endpoint: Endpoint, answer: unknown): TextPiece[] =>
  isObject(answer) ? collect((visit) => visitAnswer(endpoint, answer, visit)) : [];

/** The text one stream event adds: a chunk's deltas, or a Responses text delta. */
export function eventText(endpoint: Endpoint, event: SseEvent): TextPiece[] {
  const chunk = eventObject(event);
  return chunk ? collect((visit) => visitEvent(endpoint, chunk, visit)) : [];
}

export const editRequestText = (endpoint: Endpoint, body: JsonObject, edit: TextEdit): void =>
  visitRequest(endpoint, body, edit);

/** Log probabilities spell out the text they came with: edited text keeps none. */
function dropLogprobs(answer: JsonObject) {
  for (const choice of objects(answer.choices)) {
    if (choice.logprobs != null) choice.logprobs = null;
  }
}

/** `walk` over `data` with `edit`, and the log probabilities dropped when it changed text. */
function editWithLogprobs(data: JsonObject, walk: (visit: Visit) => void, edit: TextEdit) {
  let changed = false;
  walk((piece) => {
    const edited = edit(piece);
    if (edited !== undefined && edited !== piece.text) changed = true;
    return edited;
  });
  if (changed) dropLogprobs(data);
}

export const editAnswerText = (endpoint: Endpoint, answer: JsonObject, edit: TextEdit): void =>
  editWithLogprobs(answer, (visit) => visitAnswer(endpoint, answer, visit), edit);

export const editEventText = (endpoint: Endpoint, event: SseEvent, edit: TextEdit): SseEvent =>
  editedEvent(
    event,
    (data, visit) => editWithLogprobs(data, (inner) => visitEvent(endpoint, data, inner), visit),
    edit,
  );
