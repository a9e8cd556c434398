import { AigwError } from "../errors.js";
import { isObject, type JsonObject as Json } from "../json-object.js";
import { type SecretScrubber, screenBody } from "../secrets.js";
import { createJsonSseEvent, createSseEvent } from "../sse.js";
import {
  modelListRequest,
  parseAnswer,
  reportDroppedFieldsOnce,
  unsupported,
} from "../translation.js";
import type { ProviderRequest, SseEvent, TokenUsage } from "../types.js";
import { createInvalidResponseError } from "../upstream-errors.js";
import { estimateTokens, wantsStreamUsage } from "../usage.js";
import type { EncodedRequest, StreamReader, WireFormat } from "../wire-format.js";
import { type ChatToGeminiOptions, chatToGemini } from "./chat-to-gemini.js";
import { GeminiStreamTranslator, geminiToChat, usageOfGemini } from "./gemini-to-chat.js";

const doneEvent = createSseEvent("[DONE]");
const nowInSeconds = () => Math.floor(Date.now() / 1000);

/** A model as Gemini's resource name: "gemini-2.5-flash" and "models/gemini-2.5-flash" alike. */
export function geminiModelName(model: unknown): string {
  const name = String(model ?? "").replace(/^models\//, "");
  return `models/${name}`;
}

/** An answer that must be a JSON object. */
function parseObject(bytes: Buffer, upstreamRequestId: string | undefined): Json {
  const parsed = parseAnswer(bytes, upstreamRequestId);
  if (!isObject(parsed)) {
    throw createInvalidResponseError(
      "The upstream's answer is not a JSON object",
      upstreamRequestId,
    );
  }
  return parsed;
}

/** A Gemini stream as OpenAI chunks; the body's end, once every candidate finished, ends it. */
class GeminiStreamReader implements StreamReader {
  private readonly translator: GeminiStreamTranslator;

  constructor(
    model: unknown,
    private readonly secrets: SecretScrubber,
    includeUsage: boolean,
    candidates: number,
  ) {
    this.translator = new GeminiStreamTranslator(
      model,
      nowInSeconds(),
      secrets,
      includeUsage,
      candidates,
    );
  }

  get complete(): boolean {
    return this.translator.done;
  }

  get usage(): TokenUsage | undefined {
    return this.translator.usage;
  }

  private event(chunk: Json): SseEvent {
    const json = JSON.stringify(chunk);
    return this.secrets.copiedIn(json)
      ? createSseEvent(this.secrets.redact(json))
      : createJsonSseEvent(chunk, json);
  }

  accept(event: SseEvent, queue: SseEvent[]): void {
    if (event.data === "") return;
    for (const chunk of this.translator.push(event.json())) queue.push(this.event(chunk));
  }

  finish(queue: SseEvent[]): void {
    for (const chunk of this.translator.end()) queue.push(this.event(chunk));
    queue.push(doneEvent);
  }
}

/**
 * Whether a 400 says the key is bad: Gemini's `google.rpc.ErrorInfo` detail with reason
 * API_KEY_INVALID (a message may quote the client's own values, so it is not read).
 */
function refusedKey(text: string): boolean {
  if (!text.includes("API_KEY_INVALID")) return false;
  try {
    const parsed: unknown = JSON.parse(text);
    const error = isObject(parsed) && isObject(parsed.error) ? parsed.error : {};
    const details = Array.isArray(error.details) ? error.details.filter(isObject) : [];
    return details.some(
      (detail) =>
        String(detail["@type"]).endsWith("google.rpc.ErrorInfo") &&
        detail.reason === "API_KEY_INVALID",
    );
  } catch {
    return false;
  }
}

/** Gemini's model list -> OpenAI's. */
function modelList(list: Json): Json {
  const models = Array.isArray(list.models) ? list.models.filter(isObject) : [];
  return {
    object: "list",
    data: models.map((model) => ({
      id: String(model.name ?? "").replace(/^models\//, ""),
      object: "model",
      created: 0,
      owned_by: "google",
    })),
  };
}

/** OpenAI's embeddings input as texts; token arrays have no Gemini counterpart. */
function embeddingTexts(input: unknown): string[] {
  const texts = typeof input === "string" ? [input] : input;
  if (
    !Array.isArray(texts) ||
    texts.length === 0 ||
    !texts.every((text) => typeof text === "string")
  ) {
    return unsupported("Gemini embeds text: input must be a string or a list of strings.", "input");
  }
  return texts;
}

/** A vector as OpenAI's base64 form: little-endian float32s. */
function base64Vector(values: number[]): string {
  const floats = Float32Array.from(values);
  return Buffer.from(floats.buffer, floats.byteOffset, floats.byteLength).toString("base64");
}

function embeddingsRequest(request: ProviderRequest): EncodedRequest {
  const body = request.body ?? {};
  const texts = embeddingTexts(body.input);
  const model = geminiModelName(body.model);
  const dimensions =
    typeof body.dimensions === "number" ? { outputDimensionality: body.dimensions } : {};
  return {
    body: JSON.stringify({
      requests: texts.map((text) => ({ model, content: { parts: [{ text }] }, ...dimensions })),
    }),
    readAnswer(bytes, { secrets, upstreamRequestId }) {
      const answer = parseObject(bytes, upstreamRequestId);
      const embeddings = Array.isArray(answer.embeddings) ? answer.embeddings : [];
      if (embeddings.length !== texts.length) {
        throw createInvalidResponseError(
          `The upstream gave ${embeddings.length} embeddings for ${texts.length} inputs`,
          upstreamRequestId,
        );
      }
      const base64 = body.encoding_format === "base64";
      const promptTokens = texts.reduce((sum, text) => sum + estimateTokens(text), 0);
      const list = {
        object: "list",
        data: embeddings.map((embedding, index) => {
          const values =
            isObject(embedding) && Array.isArray(embedding.values) ? embedding.values : [];
          return { object: "embedding", index, embedding: base64 ? base64Vector(values) : values };
        }),
        model: body.model,
        usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
      };
      return {
        body: screenBody(Buffer.from(JSON.stringify(list)), secrets),
        usage: {
          inputTokens: promptTokens,
          outputTokens: 0,
          totalTokens: promptTokens,
          estimated: true,
        },
      };
    },
    readStream: () => {
      throw new AigwError("Embeddings do not stream.", {
        status: 400,
        type: "invalid_request_error",
      });
    },
  };
}

/**
 * Google's Generative Language API (Gemini). OpenAI chat completions go to `generateContent`
 * (or `streamGenerateContent?alt=sse`) translated, answers and events back to OpenAI's shapes;
 * `embeddings` to `batchEmbedContents`; `models` lists Gemini's models as OpenAI's list;
 * Anthropic's `messages/count_tokens`, in its canonical (chat) shape, to `countTokens`,
 * answered as `{ "input_tokens": N }`. Other endpoints are a 400 `unsupported_endpoint`.
 */
export function createGeminiFormat(options: ChatToGeminiOptions): WireFormat {
  const translation: ChatToGeminiOptions = {
    ...options,
    onDroppedField: reportDroppedFieldsOnce(options.onDroppedField),
  };
  const translate = (request: ProviderRequest) =>
    chatToGemini(request.body ?? {}, {
      ...translation,
      dropUnsupported: request.dropUnsupportedParams ?? translation.dropUnsupported,
    });
  return {
    protocols: [],
    countsTokens: true,
    errorStatus: (status, text) => (status === 400 && refusedKey(text) ? 401 : status),
    encode(request): EncodedRequest {
      switch (request.endpoint) {
        case "models":
          return modelListRequest(modelList);
        case "embeddings":
          return embeddingsRequest(request);
        case "messages/count_tokens": {
          const { contents, systemInstruction, tools } = translate(request);
          const generateContentRequest = {
            model: geminiModelName(request.body?.model),
            contents,
            ...(systemInstruction ? { systemInstruction } : {}),
            ...(tools ? { tools } : {}),
          };
          return {
            body: JSON.stringify({ generateContentRequest }),
            readAnswer(bytes, { upstreamRequestId }) {
              const answer = parseObject(bytes, upstreamRequestId);
              const counted = {
                input_tokens: typeof answer.totalTokens === "number" ? answer.totalTokens : 0,
              };
              return { body: Buffer.from(JSON.stringify(counted)), usage: undefined };
            },
            readStream: () => {
              throw new AigwError("Counting tokens does not stream.", {
                status: 400,
                type: "invalid_request_error",
              });
            },
          };
        }
        case "chat/completions":
          break;
        default:
          throw new AigwError(
            `Gemini upstreams serve chat completions, embeddings and the model list, not ${request.endpoint}`,
            { status: 400, type: "invalid_request_error", code: "unsupported_endpoint" },
          );
      }
      const model = request.body?.model;
      return {
        body: JSON.stringify(translate(request)),
        readAnswer(bytes, { secrets, upstreamRequestId }) {
          const response = parseObject(bytes, upstreamRequestId);
          const chat = geminiToChat(response, model, nowInSeconds());
          return {
            body: screenBody(Buffer.from(JSON.stringify(chat)), secrets),
            usage: isObject(response.usageMetadata)
              ? usageOfGemini(response.usageMetadata)
              : undefined,
          };
        },
        readStream: ({ secrets }) =>
          new GeminiStreamReader(
            model,
            secrets,
            wantsStreamUsage(request.body),
            typeof request.body?.n === "number" ? request.body.n : 1,
          ),
      };
    },
  };
}
