import {
  type AigwError,
  createSseEvent,
  type Endpoint,
  estimatePromptTokens,
  keepAliveEvent,
  readUsage,
  type SseEvent,
} from "@aigw/provider";
import { maxModelLength } from "../../body.js";
import { invalidRequest } from "../../errors.js";
import type { Protocol } from "../protocol.js";
import { streamRecording } from "./stream-assembly.js";
import { answerText, eventText, requestText } from "./text-view.js";

type FieldCheck = (value: unknown) => boolean;

const isNonEmptyString: FieldCheck = (value) => typeof value === "string" && value.length > 0;
const isPresent: FieldCheck = (value) => value !== undefined && value !== null;

/** Fields each endpoint cannot go without; everything else passes through untouched. */
const requiredFields: Partial<
  Record<Endpoint, [field: string, check: FieldCheck, expected: string][]>
> = {
  "chat/completions": [["messages", Array.isArray, "an array of messages"]],
  completions: [["prompt", isPresent, "a string or an array"]],
  embeddings: [["input", isPresent, "a string or an array"]],
  responses: [],
  "images/generations": [["prompt", isNonEmptyString, "a non-empty string"]],
  models: [],
};

/** Checks what the gateway itself relies on, naming the field at fault. */
function validate(endpoint: Endpoint, body: Record<string, unknown>): string {
  const model = body.model;
  if (!isNonEmptyString(model)) {
    throw invalidRequest(
      model === undefined
        ? "Missing required parameter: 'model'."
        : "Invalid 'model': expected a non-empty string.",
      "model",
      model === undefined ? "missing_required_parameter" : "invalid_type",
    );
  }
  if ((model as string).length > maxModelLength) {
    throw invalidRequest(
      `Invalid 'model': longer than ${maxModelLength} characters.`,
      "model",
      "invalid_value",
    );
  }
  for (const [field, check, expected] of requiredFields[endpoint] ?? []) {
    const value = body[field];
    if (value === undefined) {
      throw invalidRequest(
        `Missing required parameter: '${field}'.`,
        field,
        "missing_required_parameter",
      );
    }
    if (!check(value)) {
      throw invalidRequest(`Invalid '${field}': expected ${expected}.`, field, "invalid_type");
    }
  }
  if (body.stream !== undefined && typeof body.stream !== "boolean") {
    throw invalidRequest("Invalid 'stream': expected a boolean.", "stream", "invalid_type");
  }
  return model as string;
}

/** An error after a stream started, in the inbound protocol's own form (no [DONE] after it). */
function streamErrorEvent(endpoint: Endpoint, error: AigwError): SseEvent {
  const { error: details } = error.toBody();
  if (endpoint === "responses") {
    return createSseEvent(
      { type: "error", code: details.code, message: details.message, param: details.param },
      "error",
    );
  }
  return createSseEvent({ error: details });
}

/** `max_completion_tokens`, `max_tokens` or `max_output_tokens`, when set; 0 for embeddings. */
function outputCap(endpoint: Endpoint, body: Record<string, unknown>): number | undefined {
  if (endpoint === "embeddings") return 0;
  const maxOutput = body.max_completion_tokens ?? body.max_tokens ?? body.max_output_tokens;
  return typeof maxOutput === "number" && Number.isInteger(maxOutput) && maxOutput >= 0
    ? maxOutput
    : undefined;
}

const chatRecording = streamRecording("chat/completions");
const completionsRecording = streamRecording("completions");

/** OpenAI's API: chat and text completions, embeddings, responses and image generation. */
export const openAIProtocol: Protocol = {
  name: "openai",
  endpoints: new Map<string, Endpoint>([
    ["/v1/chat/completions", "chat/completions"],
    ["/v1/completions", "completions"],
    ["/v1/embeddings", "embeddings"],
    ["/v1/responses", "responses"],
    ["/v1/images/generations", "images/generations"],
  ]),
  canonical: true,
  keepAliveEvent,
  validate,
  promptTokens: (_endpoint, body) =>
    estimatePromptTokens(body.messages ?? body.input ?? body.prompt ?? ""),
  outputCap,
  deliveryFields: new Set(["stream", "stream_options", "user"]),
  cachedEndpoints: new Set(["chat/completions", "completions", "embeddings"]),
  readUsage: (answer) => readUsage(answer),
  streamRecording(endpoint) {
    if (endpoint === "chat/completions") return chatRecording;
    return endpoint === "completions" ? completionsRecording : undefined;
  },
  requestText,
  answerText,
  eventText,
  errorBody: (error) => JSON.stringify(error.toBody()),
  streamErrorEvent,
};
