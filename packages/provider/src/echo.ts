import { randomUUID } from "node:crypto";
import type { CancelSignal } from "./cancellation.js";
import { AigwError } from "./errors.js";
import { resolveRetryOptions } from "./retry.js";
import { createSseEvent } from "./sse.js";
import type {
  Provider,
  ProviderRequest,
  ProviderResponse,
  ProviderStream,
  SendOptions,
  SseEvent,
  TokenUsage,
} from "./types.js";
import { estimateTokens, wantsStreamUsage } from "./usage.js";

const JSON_HEADERS = { "content-type": "application/json" };

function messageText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .filter((part): part is { type: "text"; text: string } => {
      return part?.type === "text" && typeof part.text === "string";
    })
    .map((part) => part.text)
    .join("\n");
}

function jsonResponse(value: unknown): ProviderResponse {
  return {
    kind: "json",
    status: 200,
    headers: { ...JSON_HEADERS },
    body: Buffer.from(JSON.stringify(value)),
  };
}

function echoChatCompletion(request: ProviderRequest, signal: CancelSignal | undefined) {
  const body = request.body ?? {};
  const { messages } = body;
  if (!Array.isArray(messages)) {
    throw new AigwError("messages must be an array", {
      status: 400,
      type: "invalid_request_error",
      param: "messages",
    });
  }
  const lastUser = messages.findLast((message) => message?.role === "user");
  const reply = messageText(lastUser?.content);
  const inputTokens = estimateTokens(
    messages.map((message) => messageText(message?.content)).join(""),
  );
  const outputTokens = estimateTokens(reply);
  const usage: TokenUsage = {
    inputTokens,
    outputTokens,
    totalTokens: inputTokens + outputTokens,
  };
  const usageBody = {
    prompt_tokens: usage.inputTokens,
    completion_tokens: usage.outputTokens,
    total_tokens: usage.totalTokens,
  };
  const id = `chatcmpl-echo-${randomUUID()}`;
  const created = Math.floor(Date.now() / 1000);
  const model = typeof body.model === "string" ? body.model : "echo";

  if (body.stream !== true) {
    const response = jsonResponse({
      id,
      object: "chat.completion",
      created,
      model,
      choices: [
        {
          index: 0,
          message: { role: "assistant", content: reply, refusal: null },
          logprobs: null,
          finish_reason: "stop",
        },
      ],
      usage: usageBody,
    });
    return { ...response, usage };
  }

  const includeUsage = wantsStreamUsage(body);
  const chunk = (choices: unknown[], extra: object = {}) =>
    createSseEvent({ id, object: "chat.completion.chunk", created, model, choices, ...extra });
  const delta = (content: object, finishReason: string | null = null) => ({
    index: 0,
    delta: content,
    logprobs: null,
    finish_reason: finishReason,
  });
  let streamUsage: TokenUsage | undefined;

  // Each event is built when the reader asks for it: a long reply never sits in memory as
  // events, however slowly the client reads.
  async function* events(): AsyncGenerator<SseEvent> {
    signal?.throwIfAborted();
    yield chunk([delta({ role: "assistant", content: "" })]);
    // A word with the white space before it; white space at the very end on its own.
    const words = /\s*\S+|\s+/g;
    for (let word = words.exec(reply); word !== null; word = words.exec(reply)) {
      signal?.throwIfAborted();
      yield chunk([delta({ content: word[0] })]);
    }
    signal?.throwIfAborted();
    yield chunk([delta({}, "stop")]);
    if (includeUsage) yield chunk([], { usage: usageBody });
    yield createSseEvent("[DONE]");
    streamUsage = usage;
  }

  const stream: ProviderStream = {
    get usage() {
      return streamUsage;
    },
    [Symbol.asyncIterator]: events,
  };
  return {
    kind: "stream" as const,
    status: 200,
    headers: { "content-type": "text/event-stream" },
    events: stream,
  };
}

/**
 * A provider that needs no network: chat completions answer with the last user message,
 * as JSON or as a stream. For trying a gateway out, and for tests.
 */
export function createEcho(): Provider {
  return {
    kind: "echo",
    protocols: ["openai"],
    retry: resolveRetryOptions(),
    timeout: 600_000,
    deadline: 600_000,
    async send(request: ProviderRequest, options: SendOptions = {}): Promise<ProviderResponse> {
      options.signal?.throwIfAborted();
      if (request.endpoint === "chat/completions") {
        return echoChatCompletion(request, options.signal);
      }
      if (request.endpoint === "models") {
        return jsonResponse({
          object: "list",
          data: [{ id: "echo", object: "model", created: 0, owned_by: "aigw" }],
        });
      }
      throw new AigwError(`The echo provider does not serve /${request.endpoint}`, {
        status: 404,
        type: "invalid_request_error",
        code: "unsupported_endpoint",
      });
    },
    async close() {},
  };
}
