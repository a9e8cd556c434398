import { createHash } from "node:crypto";
import { isObject, type JsonObject as Json } from "../json-object.js";
import { lookup, quoted, refuse, unsupported } from "../translation.js";

/** OpenAI's longest function name; Anthropic allows longer ones. */
const maxToolNameLength = 64;

/**
 * A tool name OpenAI accepts: a longer one becomes its first 55 characters, "_" and 8 hex
 * digits of its SHA-256, so two long names never meet.
 */
export function openAIToolName(name: string): string {
  if (name.length <= maxToolNameLength) return name;
  const digest = createHash("sha256").update(name).digest("hex").slice(0, 8);
  return `${name.slice(0, 55)}_${digest}`;
}

function blocksOf(content: unknown, param: string): Json[] {
  if (typeof content === "string") return [{ type: "text", text: content }];
  if (!Array.isArray(content))
    return refuse("content must be a string or a list of blocks.", param);
  return content.map((block, index) => {
    if (!isObject(block)) refuse("A content block must be an object.", `${param}.${index}`);
    return block;
  });
}

/** An image or document source as an OpenAI URL: a data URL for base64, the URL itself. */
function sourceURL(source: unknown, param: string): string {
  if (!isObject(source)) return refuse("A source is required.", `${param}.source`);
  if (source.type === "base64" && typeof source.data === "string") {
    return `data:${String(source.media_type)};base64,${source.data}`;
  }
  if (source.type === "url" && typeof source.url === "string") return source.url;
  return refuse("Only base64 and url sources can be sent on.", `${param}.source.type`);
}

/** A user block as an OpenAI content part. */
function userPart(block: Json, param: string): Json {
  switch (block.type) {
    case "text":
      return { type: "text", text: block.text };
    case "image":
      return { type: "image_url", image_url: { url: sourceURL(block.source, param) } };
    case "document":
      if (isObject(block.source) && block.source.type === "text") {
        return { type: "text", text: block.source.data };
      }
      return { type: "file", file: { file_data: sourceURL(block.source, param) } };
    default:
      return refuse(`Blocks of type ${quoted(block.type)} cannot be sent on.`, param);
  }
}

/**
 * A tool result's content as OpenAI's, which takes text only: its text joined, and its other
 * blocks (images, documents) as parts for the user message that follows.
 */
function toolResultContent(content: unknown, param: string, media: Json[]): string {
  if (content === undefined) return "";
  if (typeof content === "string") return content;
  const texts: string[] = [];
  blocksOf(content, param).forEach((block, index) => {
    if (block.type === "text" && typeof block.text === "string") texts.push(block.text);
    else media.push(userPart(block, `${param}.${index}`));
  });
  return texts.join("\n");
}

/** A schema that also takes null: how OpenAI's strict mode spells an optional property. */
function nullable(schema: unknown): unknown {
  if (!isObject(schema)) return schema;
  if (typeof schema.type === "string") {
    return schema.type === "null" ? schema : { ...schema, type: [schema.type, "null"] };
  }
  if (Array.isArray(schema.type)) {
    return schema.type.includes("null") ? schema : { ...schema, type: [...schema.type, "null"] };
  }
  if (Array.isArray(schema.anyOf)) return { ...schema, anyOf: [...schema.anyOf, { type: "null" }] };
  return schema;
}

const schemaMaps = new Set(["properties", "$defs", "definitions", "patternProperties"]);
const schemaLists = new Set(["anyOf", "oneOf", "allOf", "prefixItems"]);
const schemaValues = new Set(["items", "not", "additionalProperties", "contains"]);

/**
 * A JSON schema as OpenAI's strict mode wants it: every object closed
 * (`additionalProperties: false` unless set) and every property required, those that were
 * optional taking null instead, at every depth. Only subschemas are rewritten: values such as
 * `const`, `enum` and `default` stay as they are.
 */
function strictSchema(schema: unknown): unknown {
  if (!isObject(schema)) return schema;
  const strict: Json = {};
  for (const [key, value] of Object.entries(schema)) {
    if (schemaMaps.has(key) && isObject(value)) {
      strict[key] = Object.fromEntries(
        Object.entries(value).map(([name, subschema]) => [name, strictSchema(subschema)]),
      );
    } else if (schemaLists.has(key) && Array.isArray(value)) {
      strict[key] = value.map(strictSchema);
    } else if (schemaValues.has(key)) strict[key] = strictSchema(value);
    else strict[key] = value;
  }
  if (schema.type === "object" || isObject(schema.properties)) {
    strict.additionalProperties ??= false;
    if (isObject(strict.properties)) {
      const required = new Set(Array.isArray(schema.required) ? schema.required : []);
      const properties = strict.properties;
      for (const name of Object.keys(properties)) {
        if (!required.has(name)) properties[name] = nullable(properties[name]);
      }
      strict.required = Object.keys(properties);
    }
  }
  return strict;
}

/** Anthropic's `output_format` or `output_config.format` as OpenAI's `response_format`. */
function responseFormat(body: Json): Json | undefined {
  const config = isObject(body.output_config) ? body.output_config : {};
  const format = isObject(config.format) ? config.format : body.output_format;
  if (!isObject(format) || format.type !== "json_schema") return undefined;
  return {
    type: "json_schema",
    json_schema: { name: "structured_output", schema: strictSchema(format.schema), strict: true },
  };
}

// Anthropic's efforts as OpenAI's; "max", beyond OpenAI's, is its highest.
const efforts: Readonly<Record<string, string>> = {
  low: "low",
  medium: "medium",
  high: "high",
  max: "high",
};

/**
 * Anthropic's thinking settings as OpenAI's `reasoning_effort`: `output_config.effort` when
 * given (low, medium, high; max as high); an enabled budget of 4,096 tokens or more "high",
 * of 2,048 "medium", less "low", none given "medium"; adaptive thinking "medium".
 */
function reasoningEffort(body: Json): string | undefined {
  const config = isObject(body.output_config) ? body.output_config : {};
  const effort = lookup(efforts, config.effort);
  if (effort) return effort;
  if (!isObject(body.thinking)) return undefined;
  if (body.thinking.type === "adaptive") return "medium";
  if (body.thinking.type !== "enabled") return undefined;
  const budget = body.thinking.budget_tokens;
  if (typeof budget !== "number") return "medium";
  return budget >= 4096 ? "high" : budget >= 2048 ? "medium" : "low";
}

/** OpenAI's `user` takes at most 64 characters; a longer id goes as its SHA-256, the same each time. */
function openAIUser(userId: string): string {
  return userId.length <= 64 ? userId : createHash("sha256").update(userId).digest("hex");
}

/** What translating an answer back needs to know of its request. */
export interface TranslatedMessagesRequest {
  /** The OpenAI chat completions request. */
  body: Json;
  /** Each shortened tool name -> the client's own. */
  toolNames: Map<string, string>;
  /** The client's `stop_sequences`, to name the one an upstream says it matched. */
  stopSequences: readonly string[];
}

/**
 * An Anthropic Messages request as an OpenAI chat completions request. Tool results become
 * tool messages placed before the user's own text of the same turn; tool names over OpenAI's
 * 64 characters are shortened (`openAIToolName`). Anthropic's server tools (`web_search_*`,
 * `code_execution_*`, ...) have no OpenAI counterpart: they are refused, or left out when
 * `dropUnsupported`.
 *
 * @throws AigwError 400 `invalid_request_error`, with `param`, for what cannot be translated
 *   (code `unsupported_parameter` for a server tool).
 */
export function messagesRequestToChat(
  body: Json,
  options: { dropUnsupported?: boolean | undefined } = {},
): TranslatedMessagesRequest {
  const toolNames = new Map<string, string>();
  const named = (name: unknown) => {
    if (typeof name !== "string") return name;
    const short = openAIToolName(name);
    if (short !== name) toolNames.set(short, name);
    return short;
  };
  const messages: Json[] = [];
  if (body.system !== undefined) {
    const system = blocksOf(body.system, "system")
      .filter((block) => block.type === "text")
      .map((block) => block.text)
      .join("\n");
    if (system !== "") messages.push({ role: "system", content: system });
  }
  if (!Array.isArray(body.messages)) refuse("messages must be a list.", "messages");
  /** The calls of the last assistant turn not yet answered: only those may get a tool message. */
  let openCalls = new Set<unknown>();
  body.messages.forEach((message: unknown, turn: number) => {
    const param = `messages.${turn}`;
    if (!isObject(message)) refuse("A message must be an object.", param);
    const blocks = blocksOf(message.content, `${param}.content`);
    if (message.role === "assistant") {
      let text = "";
      const calls: Json[] = [];
      for (const block of blocks) {
        if (block.type === "text" && typeof block.text === "string") text += block.text;
        if (block.type === "tool_use") {
          calls.push({
            id: block.id,
            type: "function",
            function: { name: named(block.name), arguments: JSON.stringify(block.input ?? {}) },
          });
        }
      }
      // A turn of thinking alone has nothing OpenAI takes.
      if (text === "" && calls.length === 0) return;
      const assistant: Json = { role: "assistant", content: text === "" ? null : text };
      if (calls.length > 0) assistant.tool_calls = calls;
      messages.push(assistant);
      openCalls = new Set(calls.map((call) => call.id));
      return;
    }
    const own: Json[] = [];
    const media: Json[] = [];
    blocks.forEach((block, index) => {
      const at = `${param}.content.${index}`;
      if (block.type === "tool_result") {
        const content = toolResultContent(block.content, `${at}.content`, media);
        if (!openCalls.delete(block.tool_use_id)) {
          // OpenAI refuses a tool message that answers no call of the turn before: as text.
          own.push({
            type: "text",
            text: `Tool result (${String(block.tool_use_id)}): ${content}`,
          });
          return;
        }
        // OpenAI wants a call's result right after the assistant turn that made it.
        messages.push({ role: "tool", tool_call_id: block.tool_use_id, content });
        return;
      }
      own.push(userPart(block, at));
    });
    openCalls = new Set();
    // What tools returned besides text (a screenshot) follows their results, as the user's.
    const parts = media.concat(own);
    if (parts.length === 0) return;
    const only = parts.length === 1 && parts[0]?.type === "text" ? parts[0].text : undefined;
    messages.push({ role: "user", content: only ?? parts });
  });

  // OpenAI's reasoning models refuse max_tokens; max_completion_tokens is its name for all.
  const chat: Json = { model: body.model, messages, max_completion_tokens: body.max_tokens };
  if (body.stream === true) {
    chat.stream = true;
    chat.stream_options = { include_usage: true };
  }
  for (const field of ["temperature", "top_p"] as const) {
    if (body[field] !== undefined) chat[field] = body[field];
  }
  const stopSequences = Array.isArray(body.stop_sequences)
    ? body.stop_sequences.filter((sequence): sequence is string => typeof sequence === "string")
    : [];
  if (stopSequences.length > 0) chat.stop = stopSequences;
  if (isObject(body.metadata) && typeof body.metadata.user_id === "string") {
    chat.user = openAIUser(body.metadata.user_id);
  }
  if (Array.isArray(body.tools)) {
    const functions = body.tools.filter((tool, index): tool is Json => {
      if (!isObject(tool)) return false;
      if (tool.type === undefined || tool.type === "custom") return true;
      if (options.dropUnsupported) return false;
      return unsupported(
        `Anthropic's server tool ${quoted(tool.type)} has no counterpart on this upstream.`,
        `tools.${index}`,
      );
    });
    if (functions.length > 0)
      chat.tools = functions.map((tool) => ({
        type: "function",
        function: {
          name: named(tool.name),
          ...(typeof tool.description === "string" ? { description: tool.description } : {}),
          parameters: isObject(tool.input_schema) ? tool.input_schema : { type: "object" },
        },
      }));
  }
  // A choice among tools that were all left out (server tools) has nothing to choose from.
  if (isObject(body.tool_choice) && Array.isArray(chat.tools)) {
    const choice = body.tool_choice;
    const sent = new Set(chat.tools.map((tool) => (tool as { function: Json }).function.name));
    if (choice.type === "any") chat.tool_choice = "required";
    else if (choice.type === "auto" || choice.type === "none") chat.tool_choice = choice.type;
    else if (choice.type === "tool" && sent.has(named(choice.name))) {
      chat.tool_choice = { type: "function", function: { name: named(choice.name) } };
    }
    if (choice.disable_parallel_tool_use === true) chat.parallel_tool_calls = false;
  }
  const effort = reasoningEffort(body);
  if (effort !== undefined) chat.reasoning_effort = effort;
  const format = responseFormat(body);
  if (format) chat.response_format = format;
  return { body: chat, toolNames, stopSequences };
}
