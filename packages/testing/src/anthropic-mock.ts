import type { ServerResponse } from "node:http";
import {
  type AnthropicErrorBody,
  type AnthropicScript,
  anthropicErrorBody,
  anthropicErrorForStatus,
  anthropicEvent,
  createAnthropicEvents,
  createAnthropicMessage,
  findRequestError,
  statusForErrorType,
} from "./anthropic-replies.js";
import { createMockServer, type ReceivedRequest } from "./mock-server.js";
import type { RecordedRequest } from "./recorded-request.js";

export interface AnthropicMockOptions {
  /**
   * When set, requests must carry `x-api-key: <apiKey>` and an `anthropic-version` header, else
   * they get a 401 authentication_error. Unset: no check.
   */
  apiKey?: string;
  /** Default "127.0.0.1". */
  host?: string;
  /** Applies to every request for which no behaviour was enqueued (benchmarks' slow streams). */
  defaultBehaviour?: AnthropicBehaviour;
  /** Keep each request in `requests` (default true); benchmarks turn it off, or memory grows. */
  recordRequests?: boolean;
}

/**
 * What the mock does with one request. Behaviours that take a `reply` stream (or send) that
 * scripted message instead of the default one. An "event" is one SSE frame, message_start and
 * ping included. A request the API would refuse (401, 400) is refused whatever the behaviour,
 * except `status` and a plain `stall`, which apply first.
 */
export type AnthropicBehaviour =
  /** Answers with this content, stop reason and usage (JSON or stream, as the request asks). */
  | ({ kind: "reply" } & AnthropicScript)
  /** Answers `status`; `body` defaults to Anthropic's envelope for it, strings are sent as is. */
  | { kind: "status"; status: number; headers?: Record<string, string>; body?: unknown }
  /**
   * Writes that many events, then an `event: error` frame (default overloaded_error
   * "Overloaded"), then ends the stream. A JSON request gets that error with its status (529).
   */
  | {
      kind: "midStreamError";
      afterEvents: number;
      error?: { type: string; message: string };
      reply?: AnthropicScript;
    }
  /** Writes that many events, then destroys the socket. A JSON reply is cut halfway. */
  | { kind: "cutStream"; afterEvents: number; reply?: AnthropicScript }
  /** Writes every event but message_stop and ends cleanly. A JSON reply ends cleanly halfway. */
  | { kind: "endWithoutStop"; reply?: AnthropicScript }
  /**
   * Never answers; with `afterEvents`, sends the 200 and that many events (a JSON reply: half
   * its body), then goes silent.
   */
  | { kind: "stall"; afterEvents?: number }
  /** Waits between events; a JSON reply waits between its headers and its body. */
  | { kind: "delayEvents"; delayMs: number; reply?: AnthropicScript };

/**
 * A running mock of the Anthropic Messages API (`POST /v1/messages`,
 * `POST /v1/messages/count_tokens`, `GET /v1/models`).
 */
export interface AnthropicMock {
  /** Root URL without `/v1`, as the Anthropic SDK's `baseURL` wants it. */
  url: string;
  /** Every request in arrival order (unless `recordRequests: false`). */
  requests: RecordedRequest[];
  /** Each behaviour applies to one following request, in order. */
  enqueue(...behaviours: AnthropicBehaviour[]): void;
  waitForRequests(count: number, timeoutMs?: number): Promise<void>;
  /** Forgets recorded requests and queued behaviours. */
  reset(): void;
  openConnections(): number;
  /** Destroys every socket, stalled ones included, and closes the server. */
  close(): Promise<void>;
}

const OVERLOADED = { type: "overloaded_error", message: "Overloaded" };

/** What `GET /v1/models` answers, in Anthropic's list shape. */
export const anthropicModelList = {
  data: [
    {
      type: "model",
      id: "claude-sonnet-4-5-20250929",
      display_name: "Claude Sonnet 4.5",
      created_at: "2025-09-29T00:00:00Z",
    },
    {
      type: "model",
      id: "claude-haiku-4-5-20251001",
      display_name: "Claude Haiku 4.5",
      created_at: "2025-10-01T00:00:00Z",
    },
  ],
  has_more: false,
  first_id: "claude-sonnet-4-5-20250929",
  last_id: "claude-haiku-4-5-20251001",
};

function authenticationError(headers: Record<string, string>, apiKey: string): string | undefined {
  const received = headers["x-api-key"];
  if (received === undefined) return "x-api-key header is required";
  if (received !== apiKey) return "invalid x-api-key";
  if (headers["anthropic-version"] === undefined) return "anthropic-version: header is required";
  return undefined;
}

/**
 * Starts an Anthropic Messages mock on a free port. Valid requests get a deterministic message
 * (see `createAnthropicMessage`), streamed as Anthropic's SSE events when `stream: true`; every
 * response carries `request-id: req_mock_<n>`.
 */
export async function startAnthropicMock(
  options: AnthropicMockOptions = {},
): Promise<AnthropicMock> {
  const behaviours: AnthropicBehaviour[] = [];
  const mock = createMockServer("Anthropic mock", options.recordRequests !== false);
  const { requests, sleep, write } = mock;

  function sendError(response: ServerResponse, status: number, body: AnthropicErrorBody): void {
    response.writeHead(status, { "content-type": "application/json" });
    response.end(JSON.stringify(body));
  }

  async function sendJson(
    response: ServerResponse,
    text: string,
    behaviour: AnthropicBehaviour | undefined,
    destroy: () => void,
  ): Promise<void> {
    const half = text.slice(0, Math.floor(text.length / 2));
    const sent = behaviour?.kind === "endWithoutStop" ? half : text;
    response.writeHead(200, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(sent),
    });
    if (behaviour?.kind === "delayEvents") {
      response.flushHeaders();
      await sleep(behaviour.delayMs);
    }
    if (behaviour?.kind === "cutStream" || behaviour?.kind === "stall") {
      await write(response, half);
      if (behaviour.kind === "cutStream") destroy();
      return;
    }
    if (!response.destroyed) response.end(sent);
  }

  async function sendStream(
    response: ServerResponse,
    events: string[],
    behaviour: AnthropicBehaviour | undefined,
    destroy: () => void,
    record: RecordedRequest,
  ): Promise<void> {
    response.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
    });
    response.flushHeaders();
    let eventCount = events.length;
    if (behaviour?.kind === "endWithoutStop") eventCount -= 1;
    if (
      behaviour?.kind === "cutStream" ||
      behaviour?.kind === "stall" ||
      behaviour?.kind === "midStreamError"
    ) {
      eventCount = Math.min(behaviour.afterEvents ?? 0, events.length);
    }
    for (let index = 0; index < eventCount; index++) {
      if (behaviour?.kind === "delayEvents" && index > 0) await sleep(behaviour.delayMs);
      if (response.destroyed) return;
      await write(response, events[index] as string);
      record.eventsWritten += 1;
    }
    if (behaviour?.kind === "midStreamError" && !response.destroyed) {
      await write(response, anthropicEvent("error", { error: behaviour.error ?? OVERLOADED }));
      record.eventsWritten += 1;
    }
    if (behaviour?.kind === "cutStream") destroy();
    else if (behaviour?.kind !== "stall" && !response.destroyed) response.end();
  }

  async function handle(
    response: ServerResponse,
    { record, number, destroy }: ReceivedRequest,
  ): Promise<void> {
    const requestId = `req_mock_${number}`;
    response.setHeader("request-id", requestId);

    const behaviour = behaviours.shift() ?? options.defaultBehaviour;
    if (behaviour?.kind === "stall" && behaviour.afterEvents === undefined) return;
    if (behaviour?.kind === "status") {
      const body = behaviour.body ?? anthropicErrorForStatus(behaviour.status, requestId);
      const isText = typeof body === "string";
      response.writeHead(behaviour.status, {
        "content-type": isText ? "text/plain; charset=utf-8" : "application/json",
        ...behaviour.headers,
      });
      response.end(isText ? body : JSON.stringify(body));
      return;
    }

    const unauthenticated =
      options.apiKey === undefined
        ? undefined
        : authenticationError(record.headers, options.apiKey);
    if (unauthenticated) {
      sendError(
        response,
        401,
        anthropicErrorBody("authentication_error", unauthenticated, requestId),
      );
      return;
    }
    const pathname = record.path.split("?")[0];
    if (record.method === "GET" && pathname === "/v1/models") {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify(anthropicModelList));
      return;
    }
    if (record.method === "POST" && pathname === "/v1/messages/count_tokens") {
      // A deterministic count: a token per four characters of the system prompt and messages.
      const counted = record.body as Record<string, unknown> | undefined;
      const text = JSON.stringify([counted?.system ?? "", counted?.messages ?? []]);
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ input_tokens: Math.ceil(text.length / 4) }));
      return;
    }
    if (record.method !== "POST" || pathname !== "/v1/messages") {
      const message = `${record.method} ${pathname} not found`;
      sendError(response, 404, anthropicErrorBody("not_found_error", message, requestId));
      return;
    }
    const refusal =
      record.body === undefined && record.rawBody !== ""
        ? "The request body is not valid JSON."
        : findRequestError(record.body);
    if (refusal) {
      sendError(response, 400, anthropicErrorBody("invalid_request_error", refusal, requestId));
      return;
    }

    const body = record.body as Record<string, unknown>;
    const stream = body.stream === true;
    if (behaviour?.kind === "midStreamError" && !stream) {
      const error = behaviour.error ?? OVERLOADED;
      const status = statusForErrorType(error.type);
      sendError(response, status, anthropicErrorBody(error.type, error.message, requestId));
      return;
    }
    const script =
      behaviour?.kind === "reply"
        ? behaviour
        : behaviour && "reply" in behaviour
          ? behaviour.reply
          : undefined;
    const message = createAnthropicMessage(body, script, number);
    if (stream)
      await sendStream(response, createAnthropicEvents(message), behaviour, destroy, record);
    else await sendJson(response, JSON.stringify(message), behaviour, destroy);
  }

  const url = await mock.listen(options.host, handle);

  return {
    url,
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
