import { isObject, type JsonObject as Json } from "../json-object.js";
import {
  lookup,
  parseDataUrl,
  quoted,
  refuse,
  reportUntranslated,
  unsupported,
} from "../translation.js";
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

// Fields the translation reads.
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

// The formats Gemini takes, by type; others make it refuse the request.
const formats: Readonly<Record<string, readonly string[]>> = {
  string: ["enum", "date-time"],
  integer: ["int32", "int64"],
  number: ["float", "double"],
};
/** Most schema nodes one schema may grow to as its `$ref`s are written out in place. */
const maxSchemaNodes = 10_000;

/** `#/$defs/Name` or `#/definitions/Name` of `root`. */
function definition(root: Json, ref: string): unknown {
  const match = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(ref);
  if (!match) return undefined;
  const definitions = root[match[1] as string];
  const name = decodeURIComponent(match[2] as string)
    .replaceAll("~1", "/")
    .replaceAll("~0", "~");
  return isObject(definitions) && Object.hasOwn(definitions, name) ? definitions[name] : undefined;
}

/**
 * A JSON schema as Gemini's Schema: only the keys it takes, at every depth; `$ref`s to
 * `$defs` written out in place (a cycle ends as a plain object); `oneOf` as `anyOf`; a string
 * `const` as a one-value `enum`; an `enum` of other than strings, and formats Gemini does not
 * take, left out; a list of types with "null" as the type and `nullable`; an object with no
 * properties without `properties` (Gemini refuses an empty one).
 *
 * @throws AigwError 400 for a schema past 10,000 nodes once its `$ref`s are written out.
 */
export function geminiSchema(schema: unknown, param = "schema"): unknown {
  const root = isObject(schema) ? schema : {};
  let nodes = 0;
  const clean = (node: unknown, seen: readonly string[]): unknown => {
    if (++nodes > maxSchemaNodes) {
      refuse(
        `The schema grows past ${maxSchemaNodes} nodes once its $refs are written out.`,
        param,
      );
    }
    if (!isObject(node)) return node === true ? {} : node;
    if (typeof node.$ref === "string") {
      const target = seen.includes(node.$ref) ? undefined : definition(root, node.$ref);
      const { $ref: _ref, ...rest } = node;
      if (!isObject(target)) return { type: "object", ...(clean(rest, seen) as Json) };
      return clean({ ...target, ...rest }, [...seen, node.$ref]);
    }
    const cleaned: Json = {};
    for (const [key, value] of Object.entries(node)) {
      if (key === "properties" && isObject(value)) {
        const properties = Object.entries(value);
        if (properties.length === 0) continue;
        cleaned.properties = Object.fromEntries(
          properties.map(([name, property]) => [name, clean(property, seen)]),
        );
      } else if (key === "items") cleaned.items = clean(value, seen);
      else if ((key === "anyOf" || key === "oneOf") && Array.isArray(value)) {
        cleaned.anyOf = value.map((option) => clean(option, seen));
      } else if (key === "const" && typeof value === "string") {
        cleaned.type ??= "string";
        cleaned.enum = [value];
      } else if (key === "enum") {
        if (Array.isArray(value) && value.every((item) => typeof item === "string"))
          cleaned.enum = value;
      } else if (key === "format") {
        if (lookup(formats, node.type)?.includes(String(value))) cleaned.format = value;
      } else if (schemaKeys.has(key)) cleaned[key] = value;
    }
    if (Array.isArray(node.type)) {
      const types = node.type.filter((type) => type !== "null");
      cleaned.type = types[0] ?? "null";
      if (types.length < node.type.length) cleaned.nullable = true;
    }
    return cleaned;
  };
  return clean(schema, []);
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
  const mimeType = lookup(mediaTypes, extension);
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

/**
 * A tool message's content as Gemini's `response` object: its JSON object, or `{content}`
 * with its text; its images and files go to `media`, to follow the response as the user's.
 */
function functionResponse(content: unknown, param: string, media: Json[]): Json {
  let text = "";
  if (typeof content === "string") text = content;
  else {
    for (const part of contentParts(content, param)) {
      if (typeof part.text === "string") text += part.text;
      else media.push(part);
    }
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (isObject(parsed)) return parsed;
  } catch {
    // Not JSON: sent as text.
  }
  return { content: text };
}

/**
 * What Gemini 3 takes, per Google's thought-signature guide, for function calls it did not
 * make itself (another provider's, on a mixed route): it wants a signature on a turn's first
 * call, and has none to check.
 */
const foreignCallSignature = "skip_thought_signature_validator";

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
          if (typeof part.text !== "string") {
            unsupported("Gemini's system instruction takes text only.", `${param}.content`);
          }
          system.push(part);
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
        const first = callParts[0];
        if (first && !callParts.some((part) => part.thoughtSignature !== undefined)) {
          first.thoughtSignature = foreignCallSignature;
        }
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
        const media: Json[] = [];
        const response = functionResponse(message.content, `${param}.content`, media);
        if (name === undefined) {
          // Gemini needs the name of the function answered; without its call, it is text.
          const text =
            typeof response.content === "string" ? response.content : JSON.stringify(response);
          addParts(turns, "user", [
            { text: `Tool result (${message.tool_call_id}): ${text}` },
            ...media,
          ]);
          break;
        }
        const { id } = decodeToolCallId(message.tool_call_id);
        addParts(turns, "user", [
          { functionResponse: { name, response, ...(id === undefined ? {} : { id }) } },
          ...media,
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
    const schema = isObject(parameters)
      ? geminiSchema(parameters, `${param}.function.parameters`)
      : undefined;
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
  const mode = lookup(modes, choice);
  if (mode) {
    return { functionCallingConfig: { mode } };
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
      responseSchema: geminiSchema(format.json_schema.schema, "response_format.json_schema.schema"),
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
      ? lookup(geminiThinkingBudgets, body.reasoning_effort)
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
  reportUntranslated(body, translatedFields, options.onDroppedField);
  return {
    contents: turns,
    ...(system.length > 0 ? { systemInstruction: { parts: system } } : {}),
    ...(tools.length > 0 ? { tools } : {}),
    ...(toolConfig ? { toolConfig } : {}),
    ...(Object.keys(generationConfig).length > 0 ? { generationConfig } : {}),
  };
}
