import { AigwError } from "../errors.js";
import { isObject, type JsonObject as Json } from "../json-object.js";
import { type SecretScrubber, screenBody } from "../secrets.js";
import { createJsonSseEvent, createSseEvent } from "../sse.js";
import { modelListRequest, parseAnswer, reportDroppedFieldsOnce } from "../translation.js";
import type { ProviderRequest, SseEvent, TokenUsage } from "../types.js";
import { createInvalidResponseError } from "../upstream-errors.js";
import { wantsStreamUsage } from "../usage.js";
import type { EncodedRequest, StreamReader, WireFormat } from "../wire-format.js";
import { type ChatToMessagesOptions, chatToMessages } from "./chat-to-messages.js";
import {
  MessagesStreamTranslator,
  messagesToChat,
  StreamUsage,
  streamErrorOf,
  usageOfMessage,
} from "./messages-to-chat.js";

const doneEvent = createSseEvent("[DONE]");
/** Chunks without content held back at a stream's start, at most. */
const maxHeldChunks = 16;

const nowInSeconds = () => Math.floor(Date.now() / 1000);

const isUnsigned = (block: unknown) =>
  isObject(block) && block.type === "thinking" && block.signature === "";

/**
 * A Messages body as Anthropic takes it: the client's own bytes, unless assistant turns hold
 * thinking blocks with an empty signature. A gateway makes those from another provider's
 * reasoning (see `chatAnswerToMessage`), and Anthropic refuses them, so they are left out, and
 * a turn of nothing else with them (Anthropic joins the turns around it). With thinking on,
 * Anthropic wants the last assistant turn to start with thinking when it calls tools: when
 * that turn's was left out, thinking is turned off for the request.
 */
function nativeBody(request: ProviderRequest): Uint8Array | string {
  const body = request.body ?? {};
  const messages = Array.isArray(body.messages) ? body.messages : [];
  const isAssistant = (message: unknown): message is Json & { content: unknown[] } =>
    isObject(message) && message.role === "assistant" && Array.isArray(message.content);
  if (!messages.some((message) => isAssistant(message) && message.content.some(isUnsigned))) {
    return request.rawBody ?? JSON.stringify(body);
  }
  const kept: unknown[] = [];
  let lastStripped = false;
  for (const message of messages) {
    if (!isAssistant(message)) {
      kept.push(message);
      continue;
    }
    const signed = message.content.filter((block) => !isUnsigned(block));
    lastStripped = signed.length < message.content.length;
    if (signed.length > 0) kept.push(lastStripped ? { ...message, content: signed } : message);
  }
  const last = kept.findLast(isAssistant);
  const callsTools = last?.content.some((block) => isObject(block) && block.type === "tool_use");
  const thinkingOn = isObject(body.thinking) && body.thinking.type !== "disabled";
  const { thinking: _thinking, ...withoutThinking } = body;
  const sent = thinkingOn && callsTools && lastStripped ? withoutThinking : body;
  return JSON.stringify({ ...sent, messages: kept });
}

function isContentBearing(chunk: Json): boolean {
  const choices = chunk.choices as { delta?: Json; finish_reason?: unknown }[];
  const choice = choices[0];
  if (!choice) return true;
  if (choice.finish_reason !== null && choice.finish_reason !== undefined) return true;
  const delta = choice.delta ?? {};
  return Object.entries(delta).some(
    ([name, value]) => name !== "role" && value !== "" && value !== undefined,
  );
}

/**
 * An Anthropic stream as OpenAI chunks, ending with `[DONE]` after `message_stop`. The role-only
 * chunk of `message_start` is held back until the first chunk that carries something, so that
 * an error before any content still counts as a failure before the first event (retried or
 * failed over) rather than a stream cut after its start.
 */
class AnthropicStreamReader implements StreamReader {
  private readonly translator: MessagesStreamTranslator;
  private held: Json[] = [];
  private started = false;

  constructor(
    private readonly secrets: SecretScrubber,
    includeUsage: boolean,
  ) {
    this.translator = new MessagesStreamTranslator(nowInSeconds(), secrets, includeUsage);
  }

  get complete(): boolean {
    return this.translator.done;
  }

  get usage(): TokenUsage | undefined {
    return this.translator.usage;
  }

  /** A chunk as an event, with verbatim copies of the provider's credentials redacted. */
  private event(chunk: Json): SseEvent {
    const json = this.translator.serialize(chunk);
    return this.secrets.copiedIn(json)
      ? createSseEvent(this.secrets.redact(json))
      : createJsonSseEvent(chunk, json);
  }

  accept(event: SseEvent, queue: SseEvent[]): void {
    if (event.data === "" || this.translator.done) return;
    for (const chunk of this.translator.push(event.event, event.json())) {
      if (!this.started) {
        this.held.push(chunk);
        // An upstream that never says anything would be held without end: a few are enough.
        if (!isContentBearing(chunk) && this.held.length < maxHeldChunks) continue;
        this.started = true;
        for (const held of this.held) queue.push(this.event(held));
        this.held = [];
        continue;
      }
      queue.push(this.event(chunk));
    }
    if (this.translator.done) queue.push(doneEvent);
  }
}

/**
 * A native Messages stream, passed on event by event as it came (verbatim copies of the
 * provider's credentials redacted), its usage read from message_start and message_delta. An
 * `error` event fails the stream, as in a translated one.
 */
class NativeStreamReader implements StreamReader {
  complete = false;
  private readonly counted = new StreamUsage();

  constructor(private readonly secrets: SecretScrubber) {}

  get usage(): TokenUsage | undefined {
    return this.counted.usage;
  }

  accept(event: SseEvent, queue: SseEvent[]): void {
    if (this.complete) return;
    const type = event.event ?? (isObject(event.json()) ? (event.json() as Json).type : undefined);
    if (type === "content_block_delta") this.counted.countDelta();
    else if (type === "message_start" || type === "message_delta" || type === "error") {
      const data = event.json();
      if (!isObject(data)) return;
      if (type === "error") {
        throw streamErrorOf(isObject(data.error) ? data.error : {}, this.secrets);
      }
      if (type === "message_start") {
        this.counted.add(isObject(data.message) ? data.message.usage : undefined, false);
      } else this.counted.add(data.usage, true);
    } else if (type === "message_stop") this.complete = true;
    queue.push(
      this.secrets.copiedIn(event.raw)
        ? createSseEvent(this.secrets.redact(event.data), event.event)
        : event,
    );
  }
}

/** Anthropic's model list -> OpenAI's (`created` from `created_at`). */
function modelList(list: Json): Json {
  const models = Array.isArray(list.data) ? list.data.filter(isObject) : [];
  return {
    object: "list",
    data: models.map((model) => {
      const created = Date.parse(String(model.created_at));
      return {
        id: model.id,
        object: "model",
        created: Number.isNaN(created) ? 0 : Math.floor(created / 1000),
        owned_by: "anthropic",
      };
    }),
  };
}

/**
 * Anthropic's Messages API. `messages` requests pass through as they came, both ways (native);
 * OpenAI chat completions requests are translated to Messages, each answer and stream event back
 * to OpenAI's shapes; `models` lists Anthropic's models as OpenAI's list. Other endpoints are a
 * 400 `unsupported_endpoint`.
 */
export function createAnthropicFormat(options: ChatToMessagesOptions): WireFormat {
  const translation: ChatToMessagesOptions = {
    ...options,
    onDroppedField: reportDroppedFieldsOnce(options.onDroppedField),
  };
  return {
    protocols: ["anthropic"],
    encode(request): EncodedRequest {
      if (request.endpoint === "models") return modelListRequest(modelList);
      if (request.endpoint === "messages" || request.endpoint === "messages/count_tokens") {
        const counting = request.endpoint === "messages/count_tokens";
        return {
          body: nativeBody(request),
          readAnswer(bytes, { secrets, upstreamRequestId }) {
            const message = parseAnswer(bytes, upstreamRequestId);
            const usage = isObject(message) && isObject(message.usage) ? message.usage : {};
            const body = screenBody(bytes, secrets);
            // Counting tokens uses none.
            return { body, usage: counting ? undefined : usageOfMessage(usage) };
          },
          readStream: ({ secrets }) => new NativeStreamReader(secrets),
        };
      }
      if (request.endpoint !== "chat/completions") {
        throw new AigwError(
          `Anthropic upstreams serve chat completions and messages only, not ${request.endpoint}`,
          { status: 400, type: "invalid_request_error", code: "unsupported_endpoint" },
        );
      }
      return {
        body: JSON.stringify(
          chatToMessages(request.body ?? {}, {
            ...translation,
            dropUnsupported: request.dropUnsupportedParams ?? translation.dropUnsupported,
          }),
        ),
        readAnswer(bytes, { secrets, upstreamRequestId }) {
          const message = parseAnswer(bytes, upstreamRequestId);
          if (!isObject(message) || !Array.isArray(message.content)) {
            throw createInvalidResponseError(
              "The upstream's answer is not an Anthropic message",
              upstreamRequestId,
            );
          }
          const chat = messagesToChat(message, nowInSeconds());
          return {
            body: screenBody(Buffer.from(JSON.stringify(chat)), secrets),
            usage: usageOfMessage(isObject(message.usage) ? message.usage : {}),
          };
        },
        readStream: ({ secrets }) =>
          new AnthropicStreamReader(secrets, wantsStreamUsage(request.body)),
      };
    },
  };
}
