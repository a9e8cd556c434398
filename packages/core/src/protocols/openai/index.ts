import {
  type AigwError,
  createSseEvent,
  type Endpoint,
  estimatePromptTokens,
  keepAliveEvent,
  readUsage,
  type SseEvent,
} from "@aigw/provider";
import type { Protocol } from "../protocol.js";
import { validateRequest } from "./request-schemas.js";
import { streamRecording } from "./stream-assembly.js";
import {
  answerText,
  editAnswerText,
  editEventText,
  editRequestText,
  eventText,
  requestText,
} from "./text-view.js";
import { streamWithholder, withholdAnswer } from "./withhold.js";

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
  validate: validateRequest,
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
  editRequestText,
  editAnswerText,
  editEventText,
  withholdAnswer,
  streamWithholder,
  errorBody: (error) => JSON.stringify(error.toBody()),
  streamErrorEvent,
};
