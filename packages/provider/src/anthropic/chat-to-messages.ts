import { createHash } from "node:crypto";
import { isObject, type JsonObject as Json } from "../json-object.js";
import {
  lookup,
  parseDataUrl,
  quoted,
  refuse,
  reportUntranslated,
  unsupported,
} from "../translation.js";

/**
 * OpenAI chat completions request -> Anthropic Messages request.
 * Sources: OpenAI's "Create chat completion" reference and Anthropic's Messages API reference
 * (https://docs.anthropic.com/en/api/messages); what is refused, dropped or defaulted is listed
 * in @aigw/provider's README.
 */

export interface ChatToMessagesOptions {
  /** `max_tokens` sent when the request has neither it nor `max_completion_tokens` (required by Anthropic). */
  defaultMaxTokens: number;
  /**
   * Drop what Anthropic cannot honour (`n` above 1, `temperature` above 1, `logprobs`,
   * `top_logprobs`) instead of refusing the request. Default false: a 400 naming the parameter.
   */
  dropUnsupported?: boolean;
  /** Told the name of each top-level field that has no Anthropic counterpart and was left out. */
  onDroppedField?: (name: string) => void;
}

/** `thinking.budget_tokens` for each `reasoning_effort` (1,024 is Anthropic's minimum). */
export const thinkingBudgets: Readonly<Record<string, number>> = {
  minimal: 1024,
  low: 1024,
  medium: 2048,
  high: 4096,
};

// Fields the translation reads.
const translatedFields = new Set([
  "model",
  "messages",
  "max_tokens",
  "max_completion_tokens",
  "temperature",
  "top_p",
  "top_k",
  "stop",
  "stream",
  "user",
  "tools",
  "tool_choice",
  "parallel_tool_calls",
  "response_format",
  "reasoning_effort",
  "thinking",
  "n",
  "logprobs",
  "top_logprobs",
]);
const toolIdPattern = /^[a-zA-Z0-9_-]+$/;

/**
 * An id in Anthropic's alphabet (`^[a-zA-Z0-9_-]+$`). Valid ids are kept; others have their
 * other characters replaced and a digest of the original appended, so that a tool call and its
 * result, translated apart, still agree and two different ids never meet.
 */
export function anthropicToolId(id: string): string {
  if (toolIdPattern.test(id)) return id;
  const digest = createHash("sha256").update(id).digest("hex").slice(0, 8);
  return `${id.replace(/[^a-zA-Z0-9_-]/g, "_")}_${digest}`;
}

function cacheControlOf(source: Json): Json {
  return source.cache_control === undefined ? {} : { cache_control: source.cache_control };
}

function mediaBlock(url: unknown, param: string, extra: Json): Json {
  if (typeof url !== "string") refuse("An image or file needs a URL or data URL.", param);
  if (url.startsWith("data:")) {
    const parsed = parseDataUrl(url);
    if (!parsed) refuse("A data URL must be base64: data:<media type>;base64,<data>.", param);
    const { mediaType, data } = parsed;
    if (mediaType.startsWith("image/")) {
      return { type: "image", source: { type: "base64", media_type: mediaType, data }, ...extra };
    }
    if (mediaType === "application/pdf") {
      return {
        type: "document",
        source: { type: "base64", media_type: mediaType, data },
        ...extra,
      };
    }
    if (mediaType === "text/plain") {
      const text = Buffer.from(data, "base64").toString("utf8");
      return {
        type: "document",
        source: { type: "text", media_type: mediaType, data: text },
        ...extra,
      };
    }
    return unsupported(`Anthropic reads images, PDFs and plain text, not ${mediaType}.`, param);
  }
  if (!/^https?:\/\//i.test(url)) refuse("A URL must be http(s) or a data URL.", param);
  const type = /\.pdf(?:$|[?#])/i.test(url) ? "document" : "image";
  return { type, source: { type: "url", url }, ...extra };
}

function contentPart(part: unknown, param: string): Json | undefined {
  if (!isObject(part)) refuse("A content part must be an object.", param);
  const extra = cacheControlOf(part);
  switch (part.type) {
    case "text":
      if (typeof part.text !== "string") refuse("A text part needs its text.", `${param}.text`);
      return part.text === "" ? undefined : { type: "text", text: part.text, ...extra };
    case "image_url": {
      const image = part.image_url;
      return mediaBlock(isObject(image) ? image.url : image, `${param}.image_url.url`, extra);
    }
    case "file": {
      const file = isObject(part.file) ? part.file : {};
      if (file.file_id !== undefined) {
        unsupported(
          "Anthropic cannot read OpenAI file ids; send file_data.",
          `${param}.file.file_id`,
        );
      }
      return mediaBlock(file.file_data ?? file.file_url, `${param}.file.file_data`, extra);
    }
    default:
      return unsupported(
        `Content parts of type ${quoted(part.type)} cannot be sent to Anthropic.`,
        `${param}.type`,
      );
  }
}

/** A message's content as blocks; a message-level `cache_control` goes on its last block. */
function contentBlocks(message: Json, param: string): Json[] {
  const { content } = message;
  let blocks: Json[];
  if (content === undefined || content === null) blocks = [];
  else if (typeof content === "string") {
    blocks = content === "" ? [] : [{ type: "text", text: content }];
  } else if (Array.isArray(content)) {
    blocks = [];
    content.forEach((part, index) => {
      const block = contentPart(part, `${param}.content[${index}]`);
      if (block) blocks.push(block);
    });
  } else return refuse("content must be a string or an array of parts.", `${param}.content`);
  const last = blocks.at(-1);
  if (last && message.cache_control !== undefined) last.cache_control = message.cache_control;
  return blocks;
}

function toolUseBlock(call: unknown, param: string): Json {
  if (!isObject(call) || !isObject(call.function) || typeof call.id !== "string") {
    return refuse("A tool call needs an id and a function.", param);
  }
  const { name, arguments: text } = call.function;
  if (text != null && typeof text !== "string") {
    refuse("A tool call's arguments must be a JSON string.", `${param}.function.arguments`);
  }
  let input: unknown = {};
  if (typeof text === "string" && text.trim() !== "") {
    try {
      input = JSON.parse(text);
    } catch {
      refuse("A tool call's arguments must be JSON.", `${param}.function.arguments`);
    }
  }
  if (!isObject(input)) refuse("A tool call's arguments must be a JSON object.", param);
  return { type: "tool_use", id: anthropicToolId(call.id), name, input, ...cacheControlOf(call) };
}

function toolResultContent(message: Json, param: string): string | Json[] {
  const { content } = message;
  if (typeof content === "string") return content;
  return contentBlocks({ content }, param);
}

/**
 * An assistant's `thinking_blocks`, sent back first and unchanged: only signed `thinking` and
 * `redacted_thinking` blocks, which Anthropic checks against its signature.
 */
function thinkingBlocks(blocks: unknown, param: string): Json[] {
  if (blocks == null) return [];
  if (!Array.isArray(blocks)) return refuse("thinking_blocks must be an array.", param);
  return blocks.map((block, index) => {
    const valid =
      isObject(block) &&
      ((block.type === "thinking" &&
        typeof block.thinking === "string" &&
        typeof block.signature === "string") ||
        (block.type === "redacted_thinking" && typeof block.data === "string"));
    if (!valid) {
      refuse(
        "A thinking block must be a signed thinking or a redacted_thinking block.",
        `${param}[${index}]`,
      );
    }
    return block as Json;
  });
}

interface Turn {
  role: "user" | "assistant";
  content: Json[];
}

/**
 * A tool result answers a call of the assistant turn just before it, once; any other (no such
 * call, or answered already) becomes text, which Anthropic would otherwise refuse.
 */
function addToolResult(turns: Turn[], message: Json, param: string) {
  if (typeof message.tool_call_id !== "string") {
    refuse("A tool message needs its tool_call_id.", `${param}.tool_call_id`);
  }
  const id = anthropicToolId(message.tool_call_id);
  const content = toolResultContent(message, param);
  let last = turns.at(-1);
  const callTurn = last?.role === "user" ? turns.at(-2) : last;
  const called =
    callTurn?.role === "assistant" &&
    callTurn.content.some((block) => block.type === "tool_use" && block.id === id);
  const answered =
    last?.role === "user" &&
    last.content.some((block) => block.type === "tool_result" && block.tool_use_id === id);
  let block: Json;
  if (called && !answered) {
    block = { type: "tool_result", tool_use_id: id, content, ...cacheControlOf(message) };
  } else {
    const text =
      typeof content === "string"
        ? content
        : content.map((part) => (part.type === "text" ? part.text : "")).join("");
    if (text === "") return;
    block = { type: "text", text: `Tool result (${message.tool_call_id}): ${text}` };
  }
  if (last?.role !== "user") {
    last = { role: "user", content: [] };
    turns.push(last);
  }
  // Anthropic wants a turn's tool results before anything else in it.
  const results = last.content.findIndex((existing) => existing.type !== "tool_result");
  if (block.type === "tool_result" && results !== -1) last.content.splice(results, 0, block);
  else last.content.push(block);
}

function addTurn(turns: Turn[], role: Turn["role"], content: Json[]) {
  if (content.length === 0) return;
  const last = turns.at(-1);
  if (last?.role === role) for (const block of content) last.content.push(block);
  else turns.push({ role, content });
}

function translateMessages(messages: unknown) {
  if (!Array.isArray(messages)) return refuse("messages must be an array.", "messages");
  const system: Json[] = [];
  const turns: Turn[] = [];
  messages.forEach((message, index) => {
    const param = `messages[${index}]`;
    if (!isObject(message)) refuse("A message must be an object.", param);
    switch (message.role) {
      case "system":
      case "developer":
        for (const block of contentBlocks(message, param)) system.push(block);
        break;
      case "user":
        addTurn(turns, "user", contentBlocks(message, param));
        break;
      case "assistant": {
        const thinking = thinkingBlocks(message.thinking_blocks, `${param}.thinking_blocks`);
        const calls = Array.isArray(message.tool_calls) ? message.tool_calls : [];
        const toolUses = calls.map((call, callIndex) =>
          toolUseBlock(call, `${param}.tool_calls[${callIndex}]`),
        );
        addTurn(turns, "assistant", [...thinking, ...contentBlocks(message, param), ...toolUses]);
        break;
      }
      case "tool":
        addToolResult(turns, message, param);
        break;
      default:
        unsupported(
          `Messages of role ${quoted(message.role)} cannot be sent to Anthropic.`,
          `${param}.role`,
        );
    }
  });
  // Anthropic refuses an assistant prefill that ends in white space.
  const final = turns.at(-1);
  const finalBlock = final?.role === "assistant" ? final.content.at(-1) : undefined;
  if (finalBlock?.type === "text" && typeof finalBlock.text === "string") {
    finalBlock.text = finalBlock.text.trimEnd();
    if (finalBlock.text === "") final?.content.pop();
    if (final?.content.length === 0) turns.pop();
  }
  return { system, turns };
}

function translateTools(tools: unknown): Json[] {
  if (!Array.isArray(tools)) return refuse("tools must be an array.", "tools");
  return tools.map((tool, index) => {
    const param = `tools[${index}]`;
    if (!isObject(tool) || tool.type !== "function" || !isObject(tool.function)) {
      return unsupported("Only function tools can be sent to Anthropic.", `${param}.type`);
    }
    const { name, description, parameters } = tool.function;
    const schema = isObject(parameters) ? parameters : {};
    return {
      name,
      ...(description === undefined ? {} : { description }),
      input_schema: { type: "object", properties: {}, ...schema },
      ...cacheControlOf(tool),
    };
  });
}

function translateToolChoice(choice: unknown, parallel: unknown, tools: unknown): Json | undefined {
  let translated: Json | undefined;
  if (choice == null) translated = undefined;
  else if (choice === "auto") translated = { type: "auto" };
  else if (choice === "required") translated = { type: "any" };
  else if (choice === "none") translated = { type: "none" };
  else if (isObject(choice) && choice.type === "function" && isObject(choice.function)) {
    translated = { type: "tool", name: choice.function.name };
  } else {
    return refuse("tool_choice must be auto, required, none or a named function.", "tool_choice");
  }
  // Anthropic refuses a tool_choice without tools: parallel_tool_calls alone means nothing then.
  const hasTools = Array.isArray(tools) && tools.length > 0;
  if (parallel === false && hasTools && translated?.type !== "none") {
    return { ...(translated ?? { type: "auto" }), disable_parallel_tool_use: true };
  }
  return translated;
}

function translateStop(stop: unknown): string[] | undefined {
  if (stop === undefined || stop === null) return undefined;
  const sequences = typeof stop === "string" ? [stop] : stop;
  if (!Array.isArray(sequences) || !sequences.every((item) => typeof item === "string")) {
    return refuse("stop must be a string or an array of strings.", "stop");
  }
  if (sequences.some((sequence) => sequence.trim() === "")) {
    unsupported("Anthropic does not accept stop sequences that are only white space.", "stop");
  }
  return sequences;
}

function translateResponseFormat(format: unknown): Json | undefined {
  if (!isObject(format) || format.type === "text") return undefined;
  if (format.type === "json_schema" && isObject(format.json_schema)) {
    return { format: { type: "json_schema", schema: format.json_schema.schema } };
  }
  return unsupported(
    "Anthropic takes structured output as response_format json_schema only (not json_object).",
    "response_format",
  );
}

/** Anthropic refuses a `metadata.user_id` that looks like an email address or phone number. */
function usableUserId(user: unknown): user is string {
  return (
    typeof user === "string" &&
    user !== "" &&
    !user.includes("@") &&
    !/^\+?[\d\s().-]{7,}$/.test(user)
  );
}

/**
 * Translates an OpenAI chat completions body into an Anthropic Messages body. Parts that only
 * Anthropic knows (`cache_control` on messages, parts and tools, `thinking`, assistant
 * `thinking_blocks` sent back) are carried as they are.
 *
 * @throws AigwError 400 `invalid_request_error`, with `param`, for what cannot be translated.
 */
export function chatToMessages(body: Json, options: ChatToMessagesOptions): Json {
  const thinking = isObject(body.thinking)
    ? body.thinking
    : lookup(thinkingBudgets, body.reasoning_effort)
      ? { type: "enabled", budget_tokens: lookup(thinkingBudgets, body.reasoning_effort) }
      : undefined;
  const thinkingOn = thinking !== undefined && thinking.type !== "disabled";
  const choice = translateToolChoice(body.tool_choice, body.parallel_tool_calls, body.tools);
  // What Anthropic cannot honour: refused by name, or left out (and told) when the caller says.
  const honoured = (name: string, cannot: boolean, message: string): boolean => {
    if (!cannot) return true;
    if (!options.dropUnsupported) unsupported(message, name);
    options.onDroppedField?.(name);
    return false;
  };
  honoured(
    "n",
    typeof body.n === "number" && body.n > 1,
    "Anthropic returns one choice: n must be 1.",
  );
  honoured("logprobs", body.logprobs === true, "Anthropic does not return log probabilities.");
  honoured(
    "top_logprobs",
    body.top_logprobs != null,
    "Anthropic does not return log probabilities.",
  );
  const temperature =
    typeof body.temperature === "number" &&
    honoured("temperature", body.temperature > 1, "Anthropic takes a temperature from 0 to 1.") &&
    honoured(
      "temperature",
      thinkingOn && body.temperature !== 1,
      "Anthropic takes no temperature but 1 with thinking (reasoning_effort).",
    )
      ? body.temperature
      : undefined;
  const topK =
    body.top_k != null &&
    honoured("top_k", thinkingOn, "Anthropic takes no top_k with thinking (reasoning_effort).")
      ? body.top_k
      : undefined;
  const forced = choice?.type === "any" || choice?.type === "tool";
  const toolChoice =
    choice &&
    honoured(
      "tool_choice",
      thinkingOn && forced,
      "Anthropic cannot force a tool with thinking (reasoning_effort).",
    )
      ? choice
      : undefined;

  const { system, turns } = translateMessages(body.messages);
  const budget = typeof thinking?.budget_tokens === "number" ? thinking.budget_tokens : 0;
  const requested = body.max_completion_tokens ?? body.max_tokens;
  if (requested !== undefined && requested !== null) {
    const field = body.max_completion_tokens !== undefined ? "max_completion_tokens" : "max_tokens";
    if (!Number.isSafeInteger(requested) || (requested as number) < 1) {
      refuse(`${field} must be a whole number of at least 1.`, field);
    }
  }
  if (budget > 0 && typeof requested === "number" && requested <= budget) {
    refuse(`max_tokens must exceed the thinking budget of ${budget} tokens.`, "max_tokens");
  }
  const maxTokens = typeof requested === "number" ? requested : options.defaultMaxTokens + budget;
  const outputConfig = translateResponseFormat(body.response_format);
  const stopSequences = translateStop(body.stop);

  const translated: Json = {
    model: body.model,
    ...(system.length > 0 ? { system } : {}),
    messages: turns,
    max_tokens: maxTokens,
    ...(temperature === undefined ? {} : { temperature }),
    ...(body.top_p == null ? {} : { top_p: body.top_p }),
    ...(topK === undefined ? {} : { top_k: topK }),
    ...(stopSequences ? { stop_sequences: stopSequences } : {}),
    ...(body.stream === true ? { stream: true } : {}),
    ...(body.tools == null ? {} : { tools: translateTools(body.tools) }),
    ...(toolChoice ? { tool_choice: toolChoice } : {}),
    ...(thinking ? { thinking } : {}),
    ...(outputConfig ? { output_config: outputConfig } : {}),
    ...(usableUserId(body.user) ? { metadata: { user_id: body.user } } : {}),
  };
  reportUntranslated(body, translatedFields, options.onDroppedField);
  return translated;
}
