import type { Endpoint } from "@aigw/provider";
import { z } from "zod";
import {
  checkRequest,
  integerFrom,
  listOf,
  mediaUrl,
  modelName,
  numberBetween,
  type RequestErrorStyle,
  streamFlag,
  taggedObject,
} from "../request-check.js";

// What each OpenAI endpoint's body must satisfy. Loose: fields not named here, and content
// part, tool and tool_choice types not named here, pass as they are.

const textPart = z.looseObject({ type: z.literal("text"), text: z.string() });
const imageUrlPart = z.looseObject({
  type: z.literal("image_url"),
  // Some clients send the URL itself rather than `{ url, detail }`.
  image_url: z.union([mediaUrl, z.looseObject({ url: mediaUrl })], {
    error: "an object with a 'url'",
  }),
});
const content = z.union([z.string(), listOf(taggedObject("type", [textPart, imageUrlPart]))], {
  error: "a string or an array of content parts",
});

const chatMessage = z.discriminatedUnion("role", [
  z.looseObject({ role: z.literal("system"), content }),
  z.looseObject({ role: z.literal("developer"), content }),
  z.looseObject({ role: z.literal("user"), content }),
  z.looseObject({
    role: z.literal("assistant"),
    content: content.nullish(),
    tool_calls: listOf(z.looseObject({})).nullish(),
  }),
  // A tool result answers a call by its id. That the call is in an earlier assistant message
  // is left to the upstream: clients that trim history keep results whose call is gone.
  z.looseObject({ role: z.literal("tool"), content, tool_call_id: z.string() }),
  z.looseObject({ role: z.literal("function"), content: content.nullish() }),
]);

/** A function tool, `{type: "function", function: {name}}`, and a tool_choice naming one. */
const namedFunction = z.compile(
  z.looseObject({ type: z.literal("function"), function: z.looseObject({ name: z.string() }) }),
);

// validate, not safeParse: a failed safeParse builds an object with a getter, slow to make,
// and most requests have no tool_choice to fail on.
const functionName = (value: unknown) =>
  namedFunction.validate(value) ? value.function.name : undefined;

/** Whether a tool_choice naming a function names one of `tools` (true when it names none). */
function namesAFunctionTool(body: { tools?: unknown; tool_choice?: unknown }): boolean {
  const name = functionName(body.tool_choice);
  return (
    name === undefined ||
    (Array.isArray(body.tools) && body.tools.some((tool) => functionName(tool) === name))
  );
}

/** Sampling settings chat and text completions share. */
const sampling = {
  stream: streamFlag,
  temperature: numberBetween(0, 2).nullish(),
  top_p: numberBetween(0, 1).nullish(),
  n: integerFrom(1).nullish(),
  max_tokens: integerFrom(1).nullish(),
  presence_penalty: numberBetween(-2, 2).nullish(),
  frequency_penalty: numberBetween(-2, 2).nullish(),
};

/** A string, an array of strings, of token ids, or of token id arrays. */
const textOrTokens = z.union(
  [z.string(), listOf(z.string()), listOf(z.int()), listOf(listOf(z.int()))],
  { error: "a string, an array of strings, an array of integers or an array of integer arrays" },
);

const chatCompletions = z
  .looseObject({
    model: modelName,
    messages: listOf(chatMessage),
    ...sampling,
    max_completion_tokens: integerFrom(1).nullish(),
    tools: listOf(taggedObject("type", [namedFunction])).nullish(),
    tool_choice: z
      .union([z.string(), taggedObject("type", [namedFunction])], {
        error: "a string or an object with a string 'type'",
      })
      .nullish(),
  })
  .refine(namesAFunctionTool, {
    path: ["tool_choice", "function", "name"],
    error: "the name of a function in 'tools'",
  });

// Compiled: zod generates a parser for each, which a valid body (the common case) passes in a
// fraction of the interpreted parse's time; a body that fails it is parsed again to name the
// problem. Where code generation is forbidden, zod keeps the interpreted parse.
const requestSchemas: Partial<Record<Endpoint, z.ZodType>> = {
  "chat/completions": z.compile(chatCompletions),
  completions: z.compile(z.looseObject({ model: modelName, prompt: textOrTokens, ...sampling })),
  embeddings: z.compile(z.looseObject({ model: modelName, input: textOrTokens })),
  responses: z.compile(
    z.looseObject({
      model: modelName,
      input: z
        .union([z.string(), z.array(z.unknown())], { error: "a string or an array" })
        .optional(),
      stream: streamFlag,
      temperature: numberBetween(0, 2).nullish(),
      top_p: numberBetween(0, 1).nullish(),
      max_output_tokens: integerFrom(1).nullish(),
    }),
  ),
  "images/generations": z.compile(
    z.looseObject({
      model: modelName,
      prompt: z.string({ error: "a non-empty string" }).min(1, { error: "a non-empty string" }),
      n: integerFrom(1).nullish(),
      stream: streamFlag,
    }),
  ),
};
const modelOnly = z.compile(z.looseObject({ model: modelName, stream: streamFlag }));

/** OpenAI's words: `messages[2].content[0].image_url.url`, "Invalid 'temperature': expected ...". */
const openAIErrors: RequestErrorStyle = {
  path: (path) =>
    path
      .map((key, index) =>
        typeof key === "number" ? `[${key}]` : `${index === 0 ? "" : "."}${String(key)}`,
      )
      .join(""),
  missing: (path) => `Missing required parameter: '${path}'.`,
  invalid: (path, expected, received) =>
    `Invalid '${path}': expected ${expected}, got ${received}.`,
};

/**
 * Checks an OpenAI request body against its endpoint's schema and gives the requested model.
 * Checked: `model` (a non-empty string of at most 256 characters), each endpoint's required
 * fields and their types (`messages`; `prompt` and `input` a string, strings, token ids or
 * token id arrays; an image prompt a non-empty string), ranges (`temperature` 0..2, `top_p`
 * 0..1, `n` and the token caps integers >= 1, penalties -2..2), message roles, a tool
 * message's `tool_call_id`, image URLs (http(s) or `data:`), and that a `tool_choice` naming a
 * function names one in `tools`. Nothing else is looked at, and the body is not changed.
 * @throws AigwError 400 `invalid_request_error` whose `param` is the field's path
 * (`messages[2].content[0].image_url.url`) and `code` `missing_required_parameter`,
 * `invalid_type` or `invalid_value`.
 */
export function validateRequest(endpoint: Endpoint, body: Record<string, unknown>): string {
  checkRequest(requestSchemas[endpoint] ?? modelOnly, body, openAIErrors);
  return body.model as string;
}
