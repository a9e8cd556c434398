// Deterministic OpenAI-shaped replies: the same request body always yields the same text,
// token counts and embeddings, so tests can assert exact values.

type JsonObject = Record<string, unknown>;

export type Reply =
  | { type: "json"; status: number; body: unknown }
  // `holdAt` is the index of the first final event (usage chunk, [DONE], response.completed),
  // where a holdStream() gate pauses the stream.
  | { type: "stream"; events: string[]; holdAt: number };

export interface ReplyContext {
  requestNumber: number;
  created: number;
}

type Route = (body: JsonObject, context: ReplyContext) => Reply;

const DONE_EVENT = "data: [DONE]\n\n";

// A 1x1 transparent PNG.
const PNG_BASE64 =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";

const MODEL_IDS = [
  "gpt-4o-mini",
  "gpt-4o",
  "gpt-3.5-turbo-instruct",
  "text-embedding-3-small",
  "dall-e-3",
];

export function errorBody(
  message: string,
  type: string,
  code: string | null,
): { error: { message: string; type: string; param: null; code: string | null } } {
  return { error: { message, type, param: null, code } };
}

export function errorForStatus(status: number): unknown {
  if (status === 401)
    return errorBody("Incorrect API key provided.", "invalid_request_error", "invalid_api_key");
  if (status === 404) return errorBody("Not found.", "invalid_request_error", "not_found");
  if (status === 429) {
    return errorBody("Rate limit reached for requests.", "requests", "rate_limit_exceeded");
  }
  if (status >= 500) {
    return errorBody(
      "The server had an error while processing your request.",
      "server_error",
      null,
    );
  }
  return errorBody(`Mock upstream error (status ${status}).`, "invalid_request_error", null);
}

function formatSse(data: unknown, event?: string): string {
  const line = `data: ${JSON.stringify(data)}\n\n`;
  return event === undefined ? line : `event: ${event}\n${line}`;
}

function estimateTokens(value: unknown): number {
  return Math.ceil((JSON.stringify(value) ?? "").length / 4);
}

/** Words keep their trailing whitespace, so joining them gives back the text. */
function splitWords(text: string): string[] {
  return text.match(/\S+\s*/g) ?? [];
}

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((part: unknown) =>
      typeof part === "object" && part !== null && "text" in part && typeof part.text === "string"
        ? part.text
        : undefined,
    )
    .filter((text) => text !== undefined)
    .join(" ");
}

function lastUserText(messages: unknown): string {
  if (typeof messages === "string") return messages;
  if (!Array.isArray(messages)) return "";
  const lastUser = messages.findLast(
    (message: unknown) =>
      typeof message === "object" &&
      message !== null &&
      "role" in message &&
      message.role === "user",
  ) as { content?: unknown } | undefined;
  return textOf(lastUser?.content);
}

function json(body: unknown, status = 200): Reply {
  return { type: "json", status, body };
}

function stream(events: string[], finalEvents: string[]): Reply {
  return { type: "stream", events: [...events, ...finalEvents], holdAt: events.length };
}

function includeUsage(body: JsonObject): boolean {
  const streamOptions = body.stream_options;
  return (
    typeof streamOptions === "object" &&
    streamOptions !== null &&
    "include_usage" in streamOptions &&
    streamOptions.include_usage === true
  );
}

function chatCompletion(body: JsonObject, { requestNumber, created }: ReplyContext): Reply {
  const messages = body.messages ?? [];
  const content = `mock: ${lastUserText(messages)}`;
  const words = splitWords(content);
  const promptTokens = estimateTokens(messages);
  const usage = {
    prompt_tokens: promptTokens,
    completion_tokens: words.length,
    total_tokens: promptTokens + words.length,
  };
  const id = `chatcmpl-mock${requestNumber}`;
  const model = body.model;
  if (body.stream !== true) {
    return json({
      id,
      object: "chat.completion",
      created,
      model,
      choices: [
        {
          index: 0,
          message: { role: "assistant", content, refusal: null },
          logprobs: null,
          finish_reason: "stop",
        },
      ],
      usage,
    });
  }
  const chunk = (choices: unknown[], extra: JsonObject = {}) =>
    formatSse({ id, object: "chat.completion.chunk", created, model, choices, ...extra });
  const choice = (delta: JsonObject, finishReason: string | null = null) => ({
    index: 0,
    delta,
    logprobs: null,
    finish_reason: finishReason,
  });
  return stream(
    [
      chunk([choice({ role: "assistant", content: "" })]),
      ...words.map((word) => chunk([choice({ content: word })])),
      chunk([choice({}, "stop")]),
    ],
    includeUsage(body) ? [chunk([], { usage }), DONE_EVENT] : [DONE_EVENT],
  );
}

function textCompletion(body: JsonObject, { requestNumber, created }: ReplyContext): Reply {
  const prompt = body.prompt ?? "";
  const text = `mock: ${Array.isArray(prompt) ? prompt.join(" ") : String(prompt)}`;
  const words = splitWords(text);
  const promptTokens = estimateTokens(prompt);
  const usage = {
    prompt_tokens: promptTokens,
    completion_tokens: words.length,
    total_tokens: promptTokens + words.length,
  };
  const id = `cmpl-mock${requestNumber}`;
  const model = body.model;
  const choice = (choiceText: string, finishReason: string | null) => ({
    text: choiceText,
    index: 0,
    logprobs: null,
    finish_reason: finishReason,
  });
  if (body.stream !== true) {
    return json({
      id,
      object: "text_completion",
      created,
      model,
      choices: [choice(text, "stop")],
      usage,
    });
  }
  const chunk = (choices: unknown[], extra: JsonObject = {}) =>
    formatSse({ id, object: "text_completion", created, model, choices, ...extra });
  return stream(
    [...words.map((word) => chunk([choice(word, null)])), chunk([choice("", "stop")])],
    includeUsage(body) ? [chunk([], { usage }), DONE_EVENT] : [DONE_EVENT],
  );
}

function hashString(text: string): number {
  // FNV-1a, 32 bits.
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

function embeddingInputs(input: unknown): unknown[] {
  if (!Array.isArray(input)) return input === undefined ? [] : [input];
  // A flat array of numbers is one tokenized input, not many inputs.
  return input.every((item) => typeof item === "number") ? [input] : input;
}

function embeddings(body: JsonObject): Reply {
  const dimensions =
    typeof body.dimensions === "number" && body.dimensions > 0 ? Math.floor(body.dimensions) : 8;
  const asBase64 = body.encoding_format === "base64";
  const data = embeddingInputs(body.input).map((input, index) => {
    const seed = hashString(JSON.stringify(input));
    const bytes = Buffer.alloc(dimensions * 4);
    for (let dimension = 0; dimension < dimensions; dimension++) {
      bytes.writeFloatLE(Math.sin(seed + dimension), dimension * 4);
    }
    const embedding = asBase64
      ? bytes.toString("base64")
      : Array.from({ length: dimensions }, (_, dimension) => bytes.readFloatLE(dimension * 4));
    return { object: "embedding", index, embedding };
  });
  const promptTokens = estimateTokens(body.input ?? "");
  return json({
    object: "list",
    data,
    model: body.model,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  });
}

function responses(body: JsonObject, { requestNumber, created }: ReplyContext): Reply {
  const text = `mock: ${lastUserText(body.input)}`;
  const words = splitWords(text);
  const inputTokens = estimateTokens(body.input ?? "");
  const id = `resp_mock${requestNumber}`;
  const itemId = `msg_mock${requestNumber}`;
  const completed = {
    id,
    object: "response",
    created_at: created,
    status: "completed",
    model: body.model,
    output: [
      {
        type: "message",
        id: itemId,
        status: "completed",
        role: "assistant",
        content: [{ type: "output_text", text, annotations: [] }],
      },
    ],
    usage: {
      input_tokens: inputTokens,
      output_tokens: words.length,
      total_tokens: inputTokens + words.length,
    },
  };
  if (body.stream !== true) return json(completed);
  const inProgress = { ...completed, status: "in_progress", output: [], usage: null };
  let sequenceNumber = 0;
  const event = (type: string, data: JsonObject) =>
    formatSse({ type, sequence_number: sequenceNumber++, ...data }, type);
  return stream(
    [
      event("response.created", { response: inProgress }),
      ...words.map((word) =>
        event("response.output_text.delta", {
          item_id: itemId,
          output_index: 0,
          content_index: 0,
          delta: word,
        }),
      ),
    ],
    [event("response.completed", { response: completed })],
  );
}

function imageGenerations(body: JsonObject, { created }: ReplyContext): Reply {
  const count = typeof body.n === "number" && body.n > 0 ? Math.floor(body.n) : 1;
  const image =
    body.response_format === "b64_json"
      ? { b64_json: PNG_BASE64 }
      : { url: "https://example.invalid/image.png" };
  return json({ created, data: Array.from({ length: count }, () => image) });
}

function models(_body: JsonObject, { created }: ReplyContext): Reply {
  return json({
    object: "list",
    data: MODEL_IDS.map((id) => ({ id, object: "model", created, owned_by: "mock" })),
  });
}

const routes: Record<string, Route> = {
  "POST /v1/chat/completions": chatCompletion,
  "POST /v1/completions": textCompletion,
  "POST /v1/embeddings": embeddings,
  "POST /v1/responses": responses,
  "POST /v1/images/generations": imageGenerations,
  "GET /v1/models": models,
};

/** Answers one request; `rawBody` is parsed here so a bad body gets the OpenAI-shaped 400. */
export function createReply(
  method: string,
  pathname: string,
  rawBody: string,
  context: ReplyContext,
): Reply {
  const route = routes[`${method} ${pathname}`];
  if (!route) {
    return json(
      errorBody(`Invalid URL (${method} ${pathname})`, "invalid_request_error", "not_found"),
      404,
    );
  }
  if (method === "GET") return route({}, context);
  let body: unknown;
  try {
    body = rawBody === "" ? {} : JSON.parse(rawBody);
  } catch {
    return json(
      errorBody(
        "We could not parse the JSON body of your request. The body must be valid JSON.",
        "invalid_request_error",
        null,
      ),
      400,
    );
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return json(
      errorBody("The request body must be a JSON object.", "invalid_request_error", null),
      400,
    );
  }
  return route(body as JsonObject, context);
}
