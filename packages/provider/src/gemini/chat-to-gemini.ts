import { isObject, type JsonObject as Json } from "../json-object.js";
import { parseDataUrl, quoted, refuse, unsupported } from "../translation.js";
import { decodeToolCallId } from "./tool-call-id.js";

/**
 * OpenAI chat completions request -> Gemini `generateContent` request.
 * Sources: OpenAI's "Create chat completion" reference and Gemini's API reference
 * (https://ai.google.dev/api/generate-content, https://ai.google.dev/api/caching#Content,
 * https://ai.google.dev/gemini-api/docs/function-calling, .../thinking); what is refused,
 * dropped or defaulted is listed in @aigw/provider's README.
 */

export interface ChatToGeminiOptions {
  /** Leave out what Gemini cannot honour (`logprobs`) instead of refusing. Default false. */
  dropUnsupported?: boolean;
  /** Told the name of each top-level field that has no Gemini counterpart and was left out. */
  onDroppedField?: (name: string) => void;
}

/** `thinkingConfig.thinkingBudget` for each `reasoning_effort`; "none" turns thinking off. */
export const geminiThinkingBudgets: Readonly<Record<string, number>> = {
  none: 0,
  minimal: 512,
  low: 1024,
  medium: 8192,
  high: 24_576,
};

// Fields the translation reads, and those that only shape delivery to the client.
const translatedFields = new Set([
  "model",
  "messages",
  "max_tokens",
  "max_completion_tokens",
  "temperature",
  "top_p",
  "top_k",
  "seed",
  "stop",
  "n",
  "presence_penalty",
  "frequency_penalty",
  "tools",
  "tool_choice",
  "response_format",
  "reasoning_effort",
  "logprobs",
  "top_logprobs",
  "stream",
]);
const deliveryFields = new Set(["stream_options"]);

// The schema keys Gemini's Schema object takes (an OpenAPI subset); others make it refuse the
// request ("Unknown name additionalProperties", "$schema", "strict", ...).
const schemaKeys = new Set([
  "type",
  "format",
  "title",
  "description",
  "nullable",
  "enum",
  "items",
  "minItems",
  "maxItems",
  "properties",
  "required",
  "minProperties",
  "maxProperties",
  "minLength",
  "maxLength",
  "pattern",
  "minimum",
  "maximum",
  "anyOf",
  "propertyOrdering",
  "default",
  "example",
]);

/**
 * A JSON schema as Gemini's Schema: only the keys it takes, at every depth; a list of types
 * with "null" as the type and `nullable`; an object with no properties without `properties`
 * (Gemini refuses an empty one).
 */
export function geminiSchema(schema: unknown): unknown {
  if (!isObject(schema)) return schema;
  const cleaned: Json = {};
  for (const [key, value] of Object.entries(schema)) {
    if (!schemaKeys.has(key)) continue;
    if (key === "properties" && isObject(value)) {
      const properties = Object.entries(value);
      if (properties.length === 0) continue;
      cleaned.properties = Object.fromEntries(
        properties.map(([name, property]) => [name, geminiSchema(property)]),
      );
    } else if (key === "items") cleaned.items = geminiSchema(value);
    else if (key === "anyOf" && Array.isArray(value)) cleaned.anyOf = value.map(geminiSchema);
    else cleaned[key] = value;
  }
  if (Array.isArray(schema.type)) {
    const types = schema.type.filter((type) => type !== "null");
    cleaned.type = types[0] ?? "null";
    if (types.length < schema.type.length) cleaned.nullable = true;
  }
  return cleaned;
}

// Media types by file extension, for URLs sent as `fileData` (which needs one).
const mediaTypes: Readonly<Record<string, string>> = {
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  webp: "image/webp",
  gif: "image/gif",
  heic: "image/heic",
  pdf: "application/pdf",
  mp3: "audio/mp3",
  wav: "audio/wav",
  mp4: "video/mp4",
  txt: "text/plain",
};

function mediaPart(url: unknown, param: string): Json {
  if (typeof url !== "string") refuse("An image or file needs a URL or data URL.", param);
  if (url.startsWith("data:")) {
    const parsed = parseDataUrl(url);
    if (!parsed) refuse("A data URL must be base64: data:<media type>;base64,<data>.", param);
    return { inlineData: { mimeType: parsed.mediaType, data: parsed.data } };
  }
  if (!/^(https?|gs):\/\//i.test(url)) refuse("A URL must be http(s), gs:// or a data URL.", param);
  const extension = /\.([a-z0-9]+)(?:$|[?#])/i.exec(url)?.[1]?.toLowerCase() ?? "";
  const mimeType = mediaTypes[extension];
  if (!mimeType) {
    unsupported(
      "Gemini needs a URL's media type: end it in a known extension or send a data URL.",
      param,
    );
  }
  return { fileData: { mimeType, fileUri: url } };
}

function contentPart(part: unknown, param: string): Json | undefined {
  if (!isObject(part)) refuse("A content part must be an object.", param);
  switch (part.type) {
    case "text":
      if (typeof part.text !== "string") refuse("A text part needs its text.", `${param}.text`);
      // Gemini refuses a whole request over one empty text part.
      return part.text === "" ? undefined : { text: part.text };
    case "image_url": {
      const image = part.image_url;
      return mediaPart(isObject(image) ? image.url : image, `${param}.image_url.url`);
    }
    case "file": {
      const file = isObject(part.file) ? part.file : {};
      if (file.file_id !== undefined) {
        unsupported("Gemini cannot read OpenAI file ids; send file_data.", `${param}.file.file_id`);
      }
      return mediaPart(file.file_data ?? file.file_url, `${param}.file.file_data`);
    }
    case "input_audio": {
      const audio = isObject(part.input_audio) ? part.input_audio : {};
      if (typeof audio.data !== "string") refuse("Audio needs its data.", `${param}.input_audio`);
      return {
        inlineData: { mimeType: `audio/${String(audio.format ?? "wav")}`, data: audio.data },
      };
    }
    default:
      return unsupported(
        `Content parts of type ${quoted(part.type)} cannot be sent to Gemini.`,
        `${param}.type`,
      );
  }
}

function contentParts(content: unknown, param: string): Json[] {
  if (content === undefined || content === null) return [];
  if (typeof content === "string") return content === "" ? [] : [{ text: content }];
  if (!Array.isArray(content)) refuse("content must be a string or an array of parts.", param);
  const parts: Json[] = [];
  content.forEach((part, index) => {
    const translated = contentPart(part, `${param}[${index}]`);
    if (translated) parts.push(translated);
  });
  return parts;
}

function functionCallPart(call: unknown, param: string): Json {
  if (!isObject(call) || !isObject(call.function) || typeof call.id !== "string") {
    return refuse("A tool call needs an id and a function.", param);
  }
  const { name, arguments: text } = call.function;
  if (typeof name !== "string" || name === "")
    refuse("A tool call needs a name.", `${param}.function.name`);
  let args: unknown = {};
  if (typeof text === "string" && text.trim() !== "") {
    try {
      args = JSON.parse(text);
    } catch {
      refuse("A tool call's arguments must be JSON.", `${param}.function.arguments`);
    }
  }
  if (!isObject(args))
    refuse("A tool call's arguments must be a JSON object.", `${param}.function.arguments`);
  const { id, thoughtSignature } = decodeToolCallId(call.id);
  return {
    functionCall: { name, args, ...(id === undefined ? {} : { id }) },
    ...(thoughtSignature === undefined ? {} : { thoughtSignature }),
  };
}

/** A tool message's content as Gemini's `response` object: its JSON object, or `{content}`. */
function functionResponse(content: unknown, param: string): Json {
  const text =
    typeof content === "string"
      ? content
      : contentParts(content, param)
          .map((part) => (typeof part.text === "string" ? part.text : ""))
          .join("");
  try {
    const parsed: unknown = JSON.parse(text);
    if (isObject(parsed)) return parsed;
  } catch {
    // Not JSON: sent as text.
  }
  return { content: text };
}

interface Turn {
  role: "user" | "model";
  parts: Json[];
}

/** Adds parts as `role`, to the last turn when it is that role's (Gemini wants turns to alternate). */
function addParts(turns: Turn[], role: Turn["role"], parts: Json[]) {
  if (parts.length === 0) return;
  const last = turns.at(-1);
  if (last?.role === role) for (const part of parts) last.parts.push(part);
  else turns.push({ role, parts });
}

function translateMessages(messages: unknown) {
  if (!Array.isArray(messages)) return refuse("messages must be an array.", "messages");
  const system: Json[] = [];
  const turns: Turn[] = [];
  /** Each tool call's name by its id, for the result that answers it. */
  const calledNames = new Map<string, string>();
  messages.forEach((message, index) => {
    const param = `messages[${index}]`;
    if (!isObject(message)) refuse("A message must be an object.", param);
    switch (message.role) {
      case "system":
      case "developer":
        for (const part of contentParts(message.content, `${param}.content`)) {
          if (part.text) system.push(part);
        }
        break;
      case "user":
        addParts(turns, "user", contentParts(message.content, `${param}.content`));
        break;
      case "assistant": {
        const calls = Array.isArray(message.tool_calls) ? message.tool_calls : [];
        const callParts = calls.map((call, callIndex) => {
          const part = functionCallPart(call, `${param}.tool_calls[${callIndex}]`);
          calledNames.set((call as Json).id as string, (part.functionCall as Json).name as string);
          return part;
        });
        addParts(turns, "model", [
          ...contentParts(message.content, `${param}.content`),
          ...callParts,
        ]);
        break;
      }
      case "tool": {
        if (typeof message.tool_call_id !== "string") {
          refuse("A tool message needs its tool_call_id.", `${param}.tool_call_id`);
        }
        const name = calledNames.get(message.tool_call_id);
        const response = functionResponse(message.content, `${param}.content`);
        if (name === undefined) {
          // Gemini needs the name of the function answered; without its call, it is text.
          const text =
            typeof response.content === "string" ? response.content : JSON.stringify(response);
          addParts(turns, "user", [{ text: `Tool result (${message.tool_call_id}): ${text}` }]);
          break;
        }
        const { id } = decodeToolCallId(message.tool_call_id);
        addParts(turns, "user", [
          { functionResponse: { name, response, ...(id === undefined ? {} : { id }) } },
        ]);
        break;
      }
      default:
        unsupported(
          `Messages of role ${quoted(message.role)} cannot be sent to Gemini.`,
          `${param}.role`,
        );
    }
  });
  if (turns.length === 0)
    refuse("messages must hold at least one user or assistant turn with content.", "messages");
  return { system, turns };
}

function translateTools(tools: unknown): Json[] {
  if (!Array.isArray(tools)) return refuse("tools must be an array.", "tools");
  const declarations = tools.map((tool, index) => {
    const param = `tools[${index}]`;
    if (!isObject(tool) || tool.type !== "function" || !isObject(tool.function)) {
      return unsupported("Only function tools can be sent to Gemini.", `${param}.type`);
    }
    const { name, description, parameters } = tool.function;
    const schema = isObject(parameters) ? geminiSchema(parameters) : undefined;
    const hasProperties = isObject(schema) && isObject(schema.properties);
    return {
      name,
      ...(typeof description === "string" ? { description } : {}),
      // A function without parameters leaves them out: Gemini refuses an empty object schema.
      ...(hasProperties ? { parameters: schema } : {}),
    };
  });
  return declarations.length > 0 ? [{ functionDeclarations: declarations }] : [];
}

function translateToolChoice(choice: unknown): Json | undefined {
  if (choice === undefined || choice === null) return undefined;
  const modes: Record<string, string> = { auto: "AUTO", none: "NONE", required: "ANY" };
  if (typeof choice === "string" && modes[choice]) {
    return { functionCallingConfig: { mode: modes[choice] } };
  }
  if (isObject(choice) && isObject(choice.function) && typeof choice.function.name === "string") {
    return {
      functionCallingConfig: { mode: "ANY", allowedFunctionNames: [choice.function.name] },
    };
  }
  return refuse("tool_choice must be auto, none, required or a named function.", "tool_choice");
}

function responseFormat(format: unknown): Json {
  if (!isObject(format) || format.type === "text") return {};
  if (format.type === "json_object") return { responseMimeType: "application/json" };
  if (format.type === "json_schema" && isObject(format.json_schema)) {
    return {
      responseMimeType: "application/json",
      responseSchema: geminiSchema(format.json_schema.schema),
    };
  }
  return refuse("response_format must be text, json_object or json_schema.", "response_format");
}

/**
 * Translates an OpenAI chat completions body into a Gemini `generateContent` body. System
 * and developer messages become `systemInstruction` (left out when empty); assistant turns
 * become `model` turns; consecutive turns of one role are merged and empty text dropped; a
 * tool result becomes a `functionResponse` named after the call with its `tool_call_id`
 * (a result with no such call becomes text). Tool call ids made by `encodeToolCallId` give
 * back Gemini's own call id and `thoughtSignature`.
 *
 * @throws AigwError 400 `invalid_request_error`, with `param`, for what cannot be translated
 *   (code `unsupported_parameter` for what Gemini cannot honour).
 */
export function chatToGemini(body: Json, options: ChatToGeminiOptions = {}): Json {
  const { system, turns } = translateMessages(body.messages);
  if (body.logprobs === true || body.top_logprobs != null) {
    if (!options.dropUnsupported) {
      unsupported("Gemini's log probabilities are not translated.", "logprobs");
    }
    options.onDroppedField?.("logprobs");
  }
  const stop = typeof body.stop === "string" ? [body.stop] : body.stop;
  const budget =
    typeof body.reasoning_effort === "string"
      ? geminiThinkingBudgets[body.reasoning_effort]
      : undefined;
  const generationConfig: Json = {
    ...(body.temperature == null ? {} : { temperature: body.temperature }),
    ...(body.top_p == null ? {} : { topP: body.top_p }),
    ...(body.top_k == null ? {} : { topK: body.top_k }),
    ...(body.seed == null ? {} : { seed: body.seed }),
    ...(Array.isArray(stop) && stop.length > 0 ? { stopSequences: stop } : {}),
    ...(body.n == null ? {} : { candidateCount: body.n }),
    ...(body.presence_penalty == null ? {} : { presencePenalty: body.presence_penalty }),
    ...(body.frequency_penalty == null ? {} : { frequencyPenalty: body.frequency_penalty }),
    ...((body.max_completion_tokens ?? body.max_tokens) == null
      ? {}
      : { maxOutputTokens: body.max_completion_tokens ?? body.max_tokens }),
    ...responseFormat(body.response_format),
    ...(budget === undefined
      ? {}
      : { thinkingConfig: { thinkingBudget: budget, includeThoughts: budget > 0 } }),
  };
  const tools = body.tools == null ? [] : translateTools(body.tools);
  const toolConfig = translateToolChoice(body.tool_choice);
  for (const name of Object.keys(body)) {
    if (!translatedFields.has(name) && !deliveryFields.has(name)) options.onDroppedField?.(name);
  }
  return {
    contents: turns,
    ...(system.length > 0 ? { systemInstruction: { parts: system } } : {}),
    ...(tools.length > 0 ? { tools } : {}),
    ...(toolConfig ? { toolConfig } : {}),
    ...(Object.keys(generationConfig).length > 0 ? { generationConfig } : {}),
  };
}
