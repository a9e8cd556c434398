export {
  type AnthropicBehaviour,
  type AnthropicMock,
  type AnthropicMockOptions,
  anthropicModelList,
  startAnthropicMock,
} from "./anthropic-mock.js";
export {
  type AnthropicContentBlock,
  type AnthropicErrorBody,
  type AnthropicMessage,
  type AnthropicScript,
  type AnthropicUsage,
  anthropicErrorBody,
  anthropicErrorForStatus,
  anthropicErrorType,
} from "./anthropic-replies.js";
export { type ChatStreamChunk, readChatStream } from "./chat-stream.js";
export {
  type GeminiBehaviour,
  type GeminiError,
  type GeminiMock,
  type GeminiMockOptions,
  type GeminiPart,
  type GeminiScript,
  geminiErrorBody,
  geminiModelList,
  startGeminiMock,
} from "./gemini-mock.js";
export { collectLines } from "./lines.js";
export {
  type Behaviour,
  type Compression,
  type MockUpstream,
  type MockUpstreamOptions,
  type StreamGate,
  startMockUpstream,
} from "./mock-upstream.js";
export { type RawExchange, type RawPart, sendRaw } from "./raw-http.js";
export type { RecordedRequest } from "./recorded-request.js";
export { type RedisServer, startRedis } from "./redis.js";
export { closeServer, getFreePort, listen } from "./server.js";
export { readSse, type SseEvent } from "./sse.js";
export { type WaitForOptions, waitFor } from "./wait-for.js";
