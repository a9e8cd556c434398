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

// What a Messages request must satisfy. Loose: fields, block types and source types not named
// here pass as they are. Anthropic no longer requires turns to alternate or to start with the
// user, so roles are checked one message at a time; Claude Code sends `system` messages
// between the others.

/** A media source: one of `type: "url"` must point at an http(s) or `data:` URL. */
const source = taggedObject("type", [z.looseObject({ type: z.literal("url"), url: mediaUrl })]);
const mediaBlocks = [
  z.looseObject({ type: z.literal("text"), text: z.string() }),
  z.looseObject({ type: z.literal("image"), source }),
  z.looseObject({ type: z.literal("document"), source }),
] as const;
const block = taggedObject("type", [
  ...mediaBlocks,
  z.looseObject({
    type: z.literal("tool_result"),
    content: z
      .union([z.string(), listOf(taggedObject("type", mediaBlocks))], {
        error: "a string or an array of content blocks",
      })
      .optional(),
  }),
]);
const blocks = z.union([z.string(), listOf(block)], {
  error: "a string or an array of content blocks",
});

const message = z.looseObject({ role: z.enum(["user", "assistant", "system"]), content: blocks });

/** A tool_choice naming a tool. */
const namedTool = z.compile(z.looseObject({ type: z.literal("tool"), name: z.string() }));

/** Whether a tool_choice naming a tool names one of `tools` (true when it names none). */
function namesATool(body: { tools?: unknown; tool_choice?: unknown }): boolean {
  const name = namedTool.validate(body.tool_choice) ? body.tool_choice.name : undefined;
  if (name === undefined) return true;
  return (
    Array.isArray(body.tools) &&
    body.tools.some((tool) => (tool as { name?: unknown } | null)?.name === name)
  );
}

const fields = {
  model: modelName,
  messages: listOf(message),
  system: blocks.nullish(),
  stream: streamFlag,
  temperature: numberBetween(0, 1).nullish(),
  top_p: numberBetween(0, 1).nullish(),
  // Server tools have a `type` and a `name` too; later kinds may have no name.
  tools: listOf(z.looseObject({ name: z.string().optional() })).nullish(),
  tool_choice: taggedObject("type", [namedTool]).nullish(),
};
const toolChoiceRule = {
  path: ["tool_choice", "name"],
  error: "the name of a tool in 'tools'",
};

// Compiled, as OpenAI's: a valid body passes zod's generated parser; a bad one is parsed again.
const messagesRequest = z.compile(
  z
    .looseObject({ ...fields, messages: fields.messages.min(1), max_tokens: integerFrom(1) })
    .refine(namesATool, toolChoiceRule),
);
// Counting tokens takes the same body without max_tokens.
const countTokensRequest = z.compile(z.looseObject(fields).refine(namesATool, toolChoiceRule));

/** Anthropic's words: "messages.2.content.0.source.url: Input should be ...", "max_tokens: Field required". */
const anthropicErrors: RequestErrorStyle = {
  path: (path) => path.map(String).join("."),
  missing: (path) => `${path}: Field required`,
  invalid: (path, expected) => `${path}: Input should be ${expected}`,
};

/**
 * Checks a Messages request body against its endpoint's schema and gives the requested model.
 * Checked: `model` (a non-empty string of at most 256 characters); `messages` (an array, not
 * empty on `/v1/messages`) of `user`, `assistant` and `system` messages whose content is a
 * string or an array of blocks with a string `type`; `max_tokens` on `/v1/messages` (an
 * integer >= 1);
 * `temperature` and `top_p` within 0..1; `system` and `tools` types; image and document URLs
 * (`source.type: "url"`: http(s) or `data:`, in tool results too); and that a tool_choice
 * naming a tool names one in `tools`. Nothing else is looked at, and the body is not changed.
 * @throws AigwError 400 `invalid_request_error` whose message starts with the field's path
 * (`messages.2.content.0.source.url: ...`), which is also its `param`.
 */
export function validateRequest(endpoint: Endpoint, body: Record<string, unknown>): string {
  const schema = endpoint === "messages" ? messagesRequest : countTokensRequest;
  checkRequest(schema, body, anthropicErrors);
  return body.model as string;
}
