import { randomUUID } from "node:crypto";
import { AigwError } from "../errors.js";
import { isObject, type JsonObject as Json } from "../json-object.js";
import { DEFAULT_RETRY } from "../retry.js";
import type { SecretScrubber } from "../secrets.js";
import type { TokenUsage } from "../types.js";
import { createInvalidResponseError, createUpstreamError } from "../upstream-errors.js";
import { chatUsage } from "../usage.js";
import { encodeToolCallId } from "./tool-call-id.js";

/**
 * Gemini `generateContent` responses and `streamGenerateContent?alt=sse` events -> OpenAI chat
 * completion and chunks. Sources: Gemini's API reference
 * (https://ai.google.dev/api/generate-content#v1beta.GenerateContentResponse, FinishReason,
 * UsageMetadata, PromptFeedback) and OpenAI's chat completion and chunk object references.
 */

const count = (value: unknown): number =>
  typeof value === "number" && Number.isFinite(value) && value > 0 ? value : 0;

const filtered = new Set([
  "SAFETY",
  "RECITATION",
  "LANGUAGE",
  "BLOCKLIST",
  "PROHIBITED_CONTENT",
  "SPII",
  "IMAGE_SAFETY",
  "IMAGE_PROHIBITED_CONTENT",
  "IMAGE_RECITATION",
  "IMAGE_OTHER",
  "NO_IMAGE",
]);
// Reasons for which Gemini stopped on a fault of its own output: with nothing produced, the
// answer is a failure (one a retry may get past), never an empty success.
const faults = new Set([
  "MALFORMED_FUNCTION_CALL",
  "UNEXPECTED_TOOL_CALL",
  "TOO_MANY_TOOL_CALLS",
  "MISSING_THOUGHT_SIGNATURE",
]);

/**
 * Gemini `finishReason` -> OpenAI `finish_reason`: MAX_TOKENS -> length; SAFETY, RECITATION,
 * LANGUAGE, BLOCKLIST, PROHIBITED_CONTENT, SPII and the IMAGE_ ones -> content_filter;
 * anything else (STOP, OTHER, ...) -> tool_calls when the candidate called a function (Gemini
 * says STOP then), else stop.
 */
export function finishReason(reason: unknown, calledFunction: boolean): string {
  if (reason === "MAX_TOKENS") return "length";
  if (typeof reason === "string" && filtered.has(reason)) return "content_filter";
  return calledFunction ? "tool_calls" : "stop";
}

/**
 * A candidate that stopped on a fault of its own output (MALFORMED_FUNCTION_CALL and the like)
 * having produced nothing: a retryable 502.
 */
function emptyFault(reason: unknown, produced: boolean): AigwError | undefined {
  if (produced || typeof reason !== "string" || !faults.has(reason)) return undefined;
  return new AigwError(`The upstream produced no answer (Gemini finishReason ${reason}).`, {
    status: 502,
    type: "upstream_error",
    code: "upstream_error",
    isRetryable: true,
  });
}

/**
 * Gemini `usageMetadata` -> the neutral shape. Input: `promptTokenCount` (cached content
 * included) plus `toolUsePromptTokenCount`; output: `candidatesTokenCount` plus
 * `thoughtsTokenCount`, which Gemini bills as output but counts apart (reasoning).
 */
export function usageOfGemini(metadata: Json): TokenUsage {
  const inputTokens = count(metadata.promptTokenCount) + count(metadata.toolUsePromptTokenCount);
  const reasoning = count(metadata.thoughtsTokenCount);
  const outputTokens = count(metadata.candidatesTokenCount) + reasoning;
  return {
    inputTokens,
    outputTokens,
    totalTokens: count(metadata.totalTokenCount) || inputTokens + outputTokens,
    cacheReadTokens: count(metadata.cachedContentTokenCount),
    reasoningTokens: reasoning,
  };
}

/**
 * A prompt Gemini refused to answer (no candidates, `promptFeedback.blockReason`): a 400
 * `content_filter`, as OpenAI's own content filter answers a prompt it blocks, so that it is
 * never taken for an empty success nor billed as one.
 */
export function promptBlocked(response: Json): AigwError | undefined {
  const feedback = isObject(response.promptFeedback) ? response.promptFeedback : undefined;
  const candidates = Array.isArray(response.candidates) ? response.candidates : [];
  if (!feedback || candidates.length > 0 || typeof feedback.blockReason !== "string") {
    return undefined;
  }
  const reason = /^[A-Z_]{1,64}$/.test(feedback.blockReason) ? feedback.blockReason : "OTHER";
  return new AigwError(`The upstream blocked the prompt (Gemini blockReason ${reason}).`, {
    status: 400,
    type: "invalid_request_error",
    code: "content_filter",
  });
}

/** A Gemini error object, from an error event or body, as the client's error. */
export function geminiError(error: unknown, secrets: SecretScrubber): AigwError {
  const fields = isObject(error) ? error : {};
  const status =
    typeof fields.code === "number" && fields.code >= 400 && fields.code < 600 ? fields.code : 500;
  const relayed = {
    message: fields.message,
    ...(typeof fields.status === "string" ? { code: fields.status.toLowerCase() } : {}),
  };
  return createUpstreamError(status, {}, JSON.stringify({ error: relayed }), {
    secrets,
    retryableStatusCodes: DEFAULT_RETRY.retryableStatusCodes,
  });
}

interface CandidateParts {
  content: string;
  reasoning: string;
  calls: Json[];
}

/** A candidate's parts: its text, its thoughts (parts marked `thought`) and its function calls. */
function readParts(candidate: Json): CandidateParts {
  const content = isObject(candidate.content) ? candidate.content : {};
  const parts = Array.isArray(content.parts) ? content.parts.filter(isObject) : [];
  const read: CandidateParts = { content: "", reasoning: "", calls: [] };
  for (const part of parts) {
    if (typeof part.text === "string") {
      if (part.thought === true) read.reasoning += part.text;
      else read.content += part.text;
    }
    if (isObject(part.functionCall)) {
      const call = part.functionCall;
      read.calls.push({
        id: encodeToolCallId(
          typeof call.id === "string" && call.id !== "" ? call.id : undefined,
          typeof part.thoughtSignature === "string" ? part.thoughtSignature : undefined,
        ),
        type: "function",
        function: {
          name: typeof call.name === "string" ? call.name : "",
          arguments: JSON.stringify(isObject(call.args) ? call.args : {}),
        },
      });
    }
  }
  return read;
}

const candidatesOf = (response: Json): Json[] =>
  Array.isArray(response.candidates) ? response.candidates.filter(isObject) : [];

/** `chatcmpl-<responseId>`, or a made one. */
function completionId(response: Json): string {
  return typeof response.responseId === "string"
    ? `chatcmpl-${response.responseId}`
    : `chatcmpl-${randomUUID()}`;
}

/**
 * A `generateContent` response -> a chat completion: one choice per candidate, text joined
 * into `content`, thoughts into `reasoning_content`, function calls into `tool_calls` with
 * ids from `encodeToolCallId` (Gemini's own id, else a made one; never the function's name).
 *
 * @throws AigwError 400 `content_filter` for a blocked prompt; 502 for an answer without
 *   candidates, or one that stopped on a fault of its own having produced nothing.
 */
export function geminiToChat(response: Json, model: unknown, created: number): Json {
  const blocked = promptBlocked(response);
  if (blocked) throw blocked;
  const candidates = candidatesOf(response);
  if (candidates.length === 0) {
    throw createInvalidResponseError("The upstream's answer has no candidates", undefined);
  }
  const choices = candidates.map((candidate, position) => {
    const { content, reasoning, calls } = readParts(candidate);
    const fault = emptyFault(candidate.finishReason, content !== "" || calls.length > 0);
    if (fault) throw fault;
    return {
      index: typeof candidate.index === "number" ? candidate.index : position,
      message: {
        role: "assistant",
        content: content === "" && calls.length > 0 ? null : content,
        refusal: null,
        ...(calls.length > 0 ? { tool_calls: calls } : {}),
        ...(reasoning === "" ? {} : { reasoning_content: reasoning }),
      },
      logprobs: null,
      finish_reason: finishReason(candidate.finishReason, calls.length > 0),
    };
  });
  const usage = isObject(response.usageMetadata)
    ? usageOfGemini(response.usageMetadata)
    : undefined;
  return {
    id: completionId(response),
    object: "chat.completion",
    created,
    model: typeof response.modelVersion === "string" ? response.modelVersion : model,
    choices,
    ...(usage ? { usage: chatUsage(usage) } : {}),
  };
}

/**
 * Gemini stream events -> OpenAI chunks, one stream at a time. Each event is a whole
 * response; each function call in it arrives whole and gets the next tool-call index of its
 * candidate, so calls in separate events never share one. The usage of the last event that
 * has one is the stream's. Gemini has no end marker: the stream is `done` once every
 * candidate finished, and `end()` gives the usage chunk (when asked for).
 */
export class GeminiStreamTranslator {
  usage: TokenUsage | undefined;
  private id: string | undefined;
  private readonly started = new Set<number>();
  private readonly finished = new Set<number>();
  /** Candidates that sent text, thoughts or calls. */
  private readonly produced = new Set<number>();
  private readonly toolCalls = new Map<number, number>();

  constructor(
    private model: unknown,
    private readonly created: number,
    private readonly secrets: SecretScrubber,
    private readonly includeUsage: boolean,
    /** How many candidates were asked for (`n`): the stream is done once each finished. */
    private readonly candidates = 1,
  ) {}

  get done(): boolean {
    return this.finished.size >= Math.max(this.candidates, this.started.size);
  }

  /**
   * The chunks one event makes.
   * @throws AigwError for an error event, and 400 `content_filter` for a blocked prompt.
   */
  push(data: unknown): Json[] {
    if (!isObject(data)) return [];
    if (data.error !== undefined) throw geminiError(data.error, this.secrets);
    const blocked = promptBlocked(data);
    if (blocked) throw blocked;
    if (this.id === undefined) {
      this.id = completionId(data);
      if (typeof data.modelVersion === "string") this.model = data.modelVersion;
    }
    if (isObject(data.usageMetadata)) this.usage = usageOfGemini(data.usageMetadata);
    const chunks: Json[] = [];
    candidatesOf(data).forEach((candidate, position) => {
      const index = typeof candidate.index === "number" ? candidate.index : position;
      if (this.finished.has(index)) return;
      const { content, reasoning, calls } = readParts(candidate);
      const delta: Json = {};
      if (!this.started.has(index)) {
        this.started.add(index);
        delta.role = "assistant";
      }
      if (reasoning !== "") delta.reasoning_content = reasoning;
      if (content !== "") delta.content = content;
      if (calls.length > 0) {
        const first = this.toolCalls.get(index) ?? 0;
        this.toolCalls.set(index, first + calls.length);
        delta.tool_calls = calls.map((call, offset) => ({ index: first + offset, ...call }));
      }
      let finish: string | null = null;
      if (candidate.finishReason !== undefined && candidate.finishReason !== null) {
        const produced =
          this.produced.has(index) || Object.keys(delta).some((key) => key !== "role");
        const fault = emptyFault(candidate.finishReason, produced);
        if (fault) throw fault;
        this.finished.add(index);
        finish = finishReason(candidate.finishReason, this.toolCalls.has(index));
      }
      if (Object.keys(delta).some((key) => key !== "role")) this.produced.add(index);
      if (Object.keys(delta).length === 0 && finish === null) return;
      chunks.push(this.chunk([{ index, delta, logprobs: null, finish_reason: finish }]));
    });
    return chunks;
  }

  /** The usage chunk, when the client asked for one and the upstream reported usage. */
  end(): Json[] {
    if (!this.includeUsage || !this.usage) return [];
    return [{ ...this.chunk([]), usage: chatUsage(this.usage) }];
  }

  private chunk(choices: Json[]): Json {
    return {
      id: this.id,
      object: "chat.completion.chunk",
      created: this.created,
      model: this.model,
      choices,
    };
  }
}
