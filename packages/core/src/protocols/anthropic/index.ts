import {
  AigwError,
  ChatToMessagesStream,
  chatAnswerToMessage,
  createSseEvent,
  type Endpoint,
  estimatePromptTokens,
  isObject,
  type JsonObject,
  messagesRequestToChat,
  type SseEvent,
  usageOfMessage,
} from "@aigw/provider";
import type { Protocol } from "../protocol.js";
import { validateRequest } from "./request-schema.js";
import { messagesRecording } from "./stream-recording.js";
import {
  answerText,
  editAnswerText,
  editEventText,
  editRequestText,
  eventText,
  requestText,
} from "./text-view.js";
import { streamWithholder, withholdAnswer } from "./withhold.js";

/** An answer's JSON. @throws AigwError 502 `invalid_response` for one that is not JSON. */
function parsed(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch {
    throw new AigwError("The answer is not JSON.", {
      status: 502,
      type: "upstream_error",
      code: "invalid_response",
    });
  }
}

/** A rough count of a Messages body's input: system prompt, messages and tools. */
function estimatedInput(body: JsonObject): number {
  return estimatePromptTokens([body.system ?? "", body.messages ?? [], body.tools ?? []]);
}

// Anthropic's error types by HTTP status (its API reference); others are api_error.
const errorTypes = new Map<number, string>([
  [400, "invalid_request_error"],
  [401, "authentication_error"],
  [402, "billing_error"],
  [403, "permission_error"],
  [404, "not_found_error"],
  [408, "timeout_error"],
  [413, "request_too_large"],
  [429, "rate_limit_error"],
  [503, "overloaded_error"],
  [504, "timeout_error"],
  [529, "overloaded_error"],
]);
const anthropicTypes = new Set([...errorTypes.values(), "api_error"]);

/**
 * Anthropic's error object: an upstream's own type when it is one of Anthropic's; otherwise,
 * and for the broad invalid_request_error OpenAI's vocabulary shares, the type of the status.
 */
function errorObject(error: AigwError): JsonObject {
  const status = error.upstreamStatus ?? error.status;
  const type =
    anthropicTypes.has(error.type) && error.type !== "invalid_request_error"
      ? error.type
      : (errorTypes.get(status) ??
        errorTypes.get(error.status) ??
        (error.type === "invalid_request_error" && status < 500
          ? "invalid_request_error"
          : "api_error"));
  return { type: "error", error: { type, message: error.message } };
}

/**
 * Anthropic's Messages API (`POST /v1/messages`), as the Anthropic SDKs and Claude Code speak
 * it. Requests go as they are to targets that speak it, and translated to OpenAI chat
 * completions for the others; errors are in Anthropic's envelope.
 */
export const anthropicProtocol: Protocol = {
  name: "anthropic",
  endpoints: new Map<string, Endpoint>([
    ["/v1/messages", "messages"],
    ["/v1/messages/count_tokens", "messages/count_tokens"],
  ]),
  canonical: false,
  // Anthropic's own keep-alive; its SDKs skip it wherever it comes.
  keepAliveEvent: createSseEvent({ type: "ping" }, "ping"),
  validate: validateRequest,
  // Counting tokens spends none.
  promptTokens: (endpoint, body) => (endpoint === "messages" ? estimatedInput(body) : 0),
  outputCap: (endpoint, body) => {
    if (endpoint !== "messages") return 0;
    return Number.isSafeInteger(body.max_tokens) ? (body.max_tokens as number) : undefined;
  },
  deliveryFields: new Set(["stream", "metadata"]),
  cachedEndpoints: new Set<Endpoint>(["messages"]),
  readUsage(answer) {
    const message = parsed(answer);
    return isObject(message) && isObject(message.usage) ? usageOfMessage(message.usage) : undefined;
  },
  streamRecording: (endpoint) => (endpoint === "messages" ? messagesRecording : undefined),
  toCanonical(endpoint, body, options) {
    const translated = messagesRequestToChat(body, options);
    if (endpoint === "messages/count_tokens") {
      // Answered by a provider that counts tokens, already as Anthropic's `{input_tokens}`.
      return {
        endpoint,
        body: translated.body,
        answer: (bytes) => bytes,
        stream: () => {
          throw new TypeError("count_tokens does not stream");
        },
      };
    }
    if (endpoint !== "messages") return undefined;
    return {
      endpoint: "chat/completions",
      body: translated.body,
      answer(bytes) {
        const answer = parsed(bytes);
        return Buffer.from(
          JSON.stringify(chatAnswerToMessage(isObject(answer) ? answer : {}, translated)),
        );
      },
      stream: () => new ChatToMessagesStream(translated),
    };
  },
  localAnswer(endpoint, body) {
    if (endpoint !== "messages/count_tokens") return undefined;
    const answer = { input_tokens: estimatedInput(body), estimated: true };
    return Buffer.from(JSON.stringify(answer));
  },
  requestText,
  answerText,
  eventText,
  editRequestText,
  editAnswerText,
  editEventText,
  withholdAnswer,
  streamWithholder,
  errorBody: (error) => JSON.stringify(errorObject(error)),
  streamErrorEvent: (_endpoint, error): SseEvent => createSseEvent(errorObject(error), "error"),
};
