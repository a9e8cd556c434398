import type { ServerResponse } from "node:http";
import { createMockServer, type ReceivedRequest } from "./mock-server.js";
import type { RecordedRequest } from "./recorded-request.js";

/** One part of a Gemini content: text (a thought when `thought`), or a function call. */
export type GeminiPart =
  | { text: string; thought?: boolean; thoughtSignature?: string }
  | {
      functionCall: { name: string; args?: Record<string, unknown>; id?: string };
      thoughtSignature?: string;
    };

/**
 * What a scripted reply says. Defaults: the text "gemini: <the last user text>", finishReason
 * "STOP", usage counted from the request and the reply.
 */
export interface GeminiScript {
  parts?: GeminiPart[];
  finishReason?: string;
  usageMetadata?: Record<string, number>;
}

/**
 * What the mock does with one request. A request Gemini would refuse (a bad key, a key in the
 * URL, empty text parts, a function response without a name, ...) is refused whatever the
 * behaviour, except `status`, which applies first.
 */
export type GeminiBehaviour =
  /** Answers with these parts (JSON, or streamed: a text part per word, each call whole, its own event). */
  | ({ kind: "reply" } & GeminiScript)
  /** Streams exactly these events (each a GenerateContentResponse); JSON gets the first. */
  | { kind: "events"; events: object[] }
  /** Answers HTTP 200 with no candidates and `promptFeedback.blockReason`. */
  | { kind: "block"; blockReason?: string }
  /** Answers `status` with Gemini's error envelope (or `body`, strings sent as they are). */
  | { kind: "status"; status: number; body?: unknown; headers?: Record<string, string> }
  /** Writes that many events of the default reply, then destroys the socket. */
  | { kind: "cutStream"; afterEvents: number }
  /** Writes that many events, then an error event (default 503 UNAVAILABLE), then ends. */
  | { kind: "midStreamError"; afterEvents: number; error?: GeminiError };

export interface GeminiError {
  code: number;
  message: string;
  status: string;
}

export interface GeminiMockOptions {
  /** When set, requests must carry `x-goog-api-key: <apiKey>`, else 400 API_KEY_INVALID. */
  apiKey?: string;
  host?: string;
  /** Applies to every request for which no behaviour was enqueued (benchmarks). */
  defaultBehaviour?: GeminiBehaviour;
  /** Keep each request in `requests` (default true); benchmarks turn it off. */
  recordRequests?: boolean;
}

/**
 * A running mock of Gemini's API under `/v1beta`: `models/{model}:generateContent`,
 * `:streamGenerateContent?alt=sse`, `:countTokens`, `:batchEmbedContents` and `GET models`.
 */
export interface GeminiMock {
  /** Base URL with `/v1beta`, as the Gemini provider's `baseURL` wants it. */
  baseURL: string;
  requests: RecordedRequest[];
  enqueue(...behaviours: GeminiBehaviour[]): void;
  waitForRequests(count: number, timeoutMs?: number): Promise<void>;
  reset(): void;
  openConnections(): number;
  close(): Promise<void>;
}

/** What `GET /v1beta/models` answers. */
export const geminiModelList = {
  models: [
    { name: "models/gemini-2.5-flash", displayName: "Gemini 2.5 Flash" },
    { name: "models/gemini-2.5-pro", displayName: "Gemini 2.5 Pro" },
    { name: "models/text-embedding-004", displayName: "Text Embedding 004" },
  ],
};

const statusNames: Record<number, string> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  429: "RESOURCE_EXHAUSTED",
  500: "INTERNAL",
  503: "UNAVAILABLE",
  504: "DEADLINE_EXCEEDED",
};

export function geminiErrorBody(code: number, message: string, details: object[] = []) {
  return { error: { code, message, status: statusNames[code] ?? "UNKNOWN", details } };
}

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** The first thing Gemini would refuse in a generateContent body, if any. */
function findRequestError(body: unknown): string | undefined {
  if (!isObject(body)) return "Invalid JSON payload.";
  if (!Array.isArray(body.contents) || body.contents.length === 0) {
    return "* GenerateContentRequest.contents: contents is not specified";
  }
  const contents = [...body.contents];
  if (body.systemInstruction !== undefined) contents.push(body.systemInstruction);
  for (const [index, content] of contents.entries()) {
    if (!isObject(content) || !Array.isArray(content.parts) || content.parts.length === 0) {
      return `* GenerateContentRequest.contents[${index}].parts: contents.parts must not be empty.`;
    }
    if (content.role !== undefined && content.role !== "user" && content.role !== "model") {
      return `Please use a valid role: user, model.`;
    }
    for (const part of content.parts) {
      if (!isObject(part) || Object.keys(part).length === 0) {
        return `* GenerateContentRequest.contents[${index}].parts: required oneof field 'data' must have one initialized field`;
      }
      if ("text" in part && part.text === "") {
        return `* GenerateContentRequest.contents[${index}].parts: text must not be empty`;
      }
      const response = part.functionResponse;
      if (isObject(response) && (typeof response.name !== "string" || response.name === "")) {
        return `* GenerateContentRequest.contents[${index}].parts.function_response.name: Name cannot be empty.`;
      }
    }
  }
  for (let index = 1; index < body.contents.length; index++) {
    const role = (body.contents[index] as Json).role;
    if (role !== undefined && role === (body.contents[index - 1] as Json).role) {
      return "Please ensure that multiturn requests alternate between user and model.";
    }
  }
  return undefined;
}

function lastUserText(body: Json): string {
  const contents = Array.isArray(body.contents) ? body.contents.filter(isObject) : [];
  for (const content of contents.reverse()) {
    if (content.role === "model") continue;
    const parts = Array.isArray(content.parts) ? content.parts.filter(isObject) : [];
    const text = parts.map((part) => (typeof part.text === "string" ? part.text : "")).join("");
    if (text !== "") return text;
  }
  return "";
}

const tokens = (text: string) => Math.max(1, Math.ceil(text.length / 4));

/** The reply's parts and usage: scripted, or the echo of the last user text. */
function reply(body: Json, script: GeminiScript | undefined) {
  const parts: GeminiPart[] = script?.parts ?? [{ text: `gemini: ${lastUserText(body)}` }];
  const output = parts
    .map((part) => ("text" in part ? part.text : JSON.stringify(part.functionCall)))
    .join("");
  const promptTokenCount = tokens(JSON.stringify(body.contents ?? []));
  const usageMetadata = script?.usageMetadata ?? {
    promptTokenCount,
    candidatesTokenCount: tokens(output),
    totalTokenCount: promptTokenCount + tokens(output),
  };
  return { parts, finishReason: script?.finishReason ?? "STOP", usageMetadata };
}

/** The default stream: a text part per word, each function call alone, usage and finish last. */
function streamEvents(model: string, number: number, replied: ReturnType<typeof reply>): Json[] {
  const pieces = replied.parts.flatMap((part): GeminiPart[] =>
    "text" in part
      ? (part.text.match(/\S+\s*|\s+/g) ?? []).map((text) => ({ ...part, text }))
      : [part],
  );
  const events = pieces.map((part) => ({
    candidates: [{ content: { role: "model", parts: [part] }, index: 0 }],
    modelVersion: model,
    responseId: `resp_mock_${number}`,
  }));
  const last = events.at(-1);
  const finish = { finishReason: replied.finishReason, index: 0 };
  if (last) Object.assign(last.candidates[0] as Json, finish);
  else
    events.push({
      candidates: [{ content: { role: "model", parts: [] }, ...finish }],
      modelVersion: model,
      responseId: `resp_mock_${number}`,
    });
  Object.assign(events.at(-1) as Json, { usageMetadata: replied.usageMetadata });
  return events;
}

/**
 * Starts a Gemini mock on a free port. Valid requests get a deterministic answer (see
 * `GeminiScript`); `streamGenerateContent` without `alt=sse` is refused (the provider must ask
 * for SSE), and so is a key in the URL.
 */
export async function startGeminiMock(options: GeminiMockOptions = {}): Promise<GeminiMock> {
  const behaviours: GeminiBehaviour[] = [];
  const mock = createMockServer("Gemini mock", options.recordRequests !== false);
  const { requests, write } = mock;

  function sendJson(response: ServerResponse, status: number, body: unknown) {
    response.writeHead(status, { "content-type": "application/json; charset=UTF-8" });
    response.end(JSON.stringify(body));
  }

  async function sendStream(
    response: ServerResponse,
    events: Json[],
    behaviour: GeminiBehaviour | undefined,
    destroy: () => void,
    record: RecordedRequest,
  ) {
    response.writeHead(200, { "content-type": "text/event-stream" });
    response.flushHeaders();
    const cut = behaviour?.kind === "cutStream" || behaviour?.kind === "midStreamError";
    const count = cut ? Math.min(behaviour.afterEvents, events.length) : events.length;
    for (let index = 0; index < count; index++) {
      if (response.destroyed) return;
      await write(response, `data: ${JSON.stringify(events[index])}\r\n\r\n`);
      record.eventsWritten += 1;
    }
    if (behaviour?.kind === "midStreamError") {
      const error = behaviour.error ?? {
        code: 503,
        message: "The model is overloaded.",
        status: "UNAVAILABLE",
      };
      await write(response, `data: ${JSON.stringify({ error })}\r\n\r\n`);
    }
    if (behaviour?.kind === "cutStream") destroy();
    else if (!response.destroyed) response.end();
  }

  async function handle(response: ServerResponse, { record, number, destroy }: ReceivedRequest) {
    const behaviour = behaviours.shift() ?? options.defaultBehaviour;
    if (behaviour?.kind === "status") {
      const body =
        behaviour.body ?? geminiErrorBody(behaviour.status, `Mock error ${behaviour.status}`);
      response.writeHead(behaviour.status, {
        "content-type": typeof body === "string" ? "text/plain" : "application/json",
        ...behaviour.headers,
      });
      response.end(typeof body === "string" ? body : JSON.stringify(body));
      return;
    }
    const url = new URL(record.path, "http://mock");
    if (url.searchParams.has("key")) {
      sendJson(
        response,
        400,
        geminiErrorBody(400, "The API key must not travel in the URL (mock rule)."),
      );
      return;
    }
    if (options.apiKey !== undefined && record.headers["x-goog-api-key"] !== options.apiKey) {
      sendJson(
        response,
        400,
        geminiErrorBody(400, "API key not valid. Please pass a valid API key.", [
          { "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "API_KEY_INVALID" },
        ]),
      );
      return;
    }
    if (record.method === "GET" && url.pathname === "/v1beta/models") {
      sendJson(response, 200, geminiModelList);
      return;
    }
    const match = /^\/v1beta\/models\/([^/:]+):([A-Za-z]+)$/.exec(url.pathname);
    if (record.method !== "POST" || !match) {
      sendJson(response, 404, geminiErrorBody(404, `${record.method} ${url.pathname} not found`));
      return;
    }
    const model = decodeURIComponent(match[1] as string);
    const method = match[2] as string;
    const body = isObject(record.body) ? record.body : {};
    if (method === "batchEmbedContents") {
      const embedded = Array.isArray(body.requests) ? body.requests.filter(isObject) : [];
      const embeddings = embedded.map((request, index) => {
        const size =
          typeof request.outputDimensionality === "number" ? request.outputDimensionality : 4;
        return { values: Array.from({ length: size }, (_, at) => (index + 1) / (at + 2)) };
      });
      sendJson(response, 200, { embeddings });
      return;
    }
    if (method === "countTokens") {
      const inner = isObject(body.generateContentRequest) ? body.generateContentRequest : body;
      const refusal = findRequestError(inner);
      if (refusal) sendJson(response, 400, geminiErrorBody(400, refusal));
      else sendJson(response, 200, { totalTokens: tokens(JSON.stringify(inner.contents ?? [])) });
      return;
    }
    const streaming = method === "streamGenerateContent";
    if (streaming && url.searchParams.get("alt") !== "sse") {
      sendJson(response, 400, geminiErrorBody(400, "This mock streams only with alt=sse."));
      return;
    }
    if (!streaming && method !== "generateContent") {
      sendJson(response, 404, geminiErrorBody(404, `Method ${method} not found`));
      return;
    }
    const refusal =
      record.body === undefined ? "Invalid JSON payload received." : findRequestError(body);
    if (refusal) {
      sendJson(response, 400, geminiErrorBody(400, refusal));
      return;
    }
    if (behaviour?.kind === "block") {
      const blocked = {
        promptFeedback: { blockReason: behaviour.blockReason ?? "SAFETY" },
        usageMetadata: { promptTokenCount: 8, totalTokenCount: 8 },
        modelVersion: model,
      };
      if (streaming) await sendStream(response, [blocked], undefined, destroy, record);
      else sendJson(response, 200, blocked);
      return;
    }
    const events =
      behaviour?.kind === "events"
        ? (behaviour.events as Json[])
        : streamEvents(
            model,
            number,
            reply(body, behaviour?.kind === "reply" ? behaviour : undefined),
          );
    if (streaming) {
      await sendStream(response, events, behaviour, destroy, record);
      return;
    }
    if (behaviour?.kind === "midStreamError") {
      const error = behaviour.error ?? {
        code: 503,
        message: "The model is overloaded.",
        status: "UNAVAILABLE",
      };
      sendJson(response, error.code, { error });
      return;
    }
    const replied = reply(body, behaviour?.kind === "reply" ? behaviour : undefined);
    const whole =
      behaviour?.kind === "events"
        ? events[0]
        : {
            candidates: [
              {
                content: { role: "model", parts: replied.parts },
                finishReason: replied.finishReason,
                index: 0,
              },
            ],
            usageMetadata: replied.usageMetadata,
            modelVersion: model,
            responseId: `resp_mock_${number}`,
          };
    if (behaviour?.kind === "cutStream") {
      const text = JSON.stringify(whole);
      response.writeHead(200, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(text),
      });
      await write(response, text.slice(0, text.length / 2));
      destroy();
      return;
    }
    sendJson(response, 200, whole);
  }

  const url = await mock.listen(options.host, handle);
  return {
    baseURL: `${url}/v1beta`,
    requests,
    enqueue(...queued) {
      behaviours.push(...queued);
    },
    waitForRequests: mock.waitForRequests,
    reset() {
      requests.length = 0;
      behaviours.length = 0;
    },
    openConnections: mock.openConnections,
    close: mock.close,
  };
}
