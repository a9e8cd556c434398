export {
  ChatToMessagesStream,
  chatAnswerToMessage,
} from "./anthropic/chat-to-messages-answer.js";
export {
  messagesRequestToChat,
  openAIToolName,
  type TranslatedMessagesRequest,
} from "./anthropic/messages-request-to-chat.js";
export { usageOfMessage } from "./anthropic/messages-to-chat.js";
export { type AnthropicOptions, createAnthropic } from "./anthropic/provider.js";
export { type AzureOpenAIOptions, createAzureOpenAI } from "./azure.js";
export { Cancellation, type CancelSignal, onAbort } from "./cancellation.js";
export { contentCodings, decodeBody } from "./content-encoding.js";
export { createEcho } from "./echo.js";
export { AigwError, type AigwErrorOptions, type ErrorBody } from "./errors.js";
export { createGemini, type GeminiOptions } from "./gemini/provider.js";
export type { PoolOptions, TransportOptions } from "./http-provider.js";
export { isObject, type JsonObject } from "./json-object.js";
export { impreciseNumbers, jsonText, setJsonFields } from "./json-text.js";
export { createOpenAICompatible, type OpenAICompatibleOptions } from "./openai-compatible.js";
export {
  backoffDelay,
  DEFAULT_RETRY,
  firstHeader,
  parseRetryAfter,
  type ResolvedRetryOptions,
  type RetryOptions,
  resolveRetryOptions,
  retryDelay,
  sleep,
  type WithRetryOptions,
  withRetry,
} from "./retry.js";
export { createSecretScrubber, type SecretScrubber } from "./secrets.js";
export {
  createSseComment,
  createSseEvent,
  isComment,
  keepAliveEvent,
  type ParseSseOptions,
  parseSse,
} from "./sse.js";
export type {
  Endpoint,
  EventIterator,
  Provider,
  ProviderJsonResponse,
  ProviderRequest,
  ProviderResponse,
  ProviderStream,
  ProviderStreamResponse,
  SendOptions,
  SseEvent,
  TokenUsage,
} from "./types.js";
export {
  createStreamInterruptedError,
  createUpstreamError,
  isPlainRequestId,
  type RelayedErrorFields,
  redactSecrets,
  relayedErrorFields,
  type UpstreamErrorContext,
} from "./upstream-errors.js";
export {
  estimatePromptTokens,
  estimateTokens,
  MEDIA_TOKENS,
  readUsage,
  usageFromObject,
  wantsStreamUsage,
} from "./usage.js";
