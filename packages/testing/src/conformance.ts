import { once } from "node:events";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { gzipSync } from "node:zlib";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { readChatStream } from "./chat-stream.js";
import { type MockUpstream, startMockUpstream } from "./mock-upstream.js";
import { readSse, type SseEvent } from "./sse.js";
import { waitFor } from "./wait-for.js";

/** The parts of an aigw `Gateway` the suite needs (this package cannot depend on core). */
export interface ConformanceGateway {
  readonly maxBodyBytes: number;
  close(): Promise<void>;
}

export interface ConformanceServer {
  /** The server's origin, without the prefix: "http://127.0.0.1:40123". */
  url: string;
  close(): Promise<void>;
}

export interface ConformanceOptions<G extends ConformanceGateway> {
  /** A gateway routing "gpt-*" to the OpenAI-compatible upstream at `baseURL`. */
  createGateway(baseURL: string, options: { maxBodyBytes?: number }): G;
  /** Serves `gateway` under `prefix` ("/ai", or "" for the root) on a real server. */
  start(gateway: G, options: { prefix: string }): Promise<ConformanceServer>;
  /**
   * A body parser runs before the gateway (express.json(), @koa/bodyparser): it answers
   * malformed JSON and bodies over its own limit itself, so only their status is checked.
   */
  parserInFront?: boolean;
}

interface ErrorBody {
  error: { message: string; type: string; param: unknown; code: unknown };
}

const model = "gpt-conformance";
const prefix = "/ai";

function chatBody(content: string, extra: Record<string, unknown> = {}) {
  return JSON.stringify({ model, messages: [{ role: "user", content }], ...extra });
}

async function expectOpenAIError(response: Response, status: number, check: boolean) {
  expect(response.status).toBe(status);
  const text = await response.text();
  if (!check) return undefined;
  expect(response.headers.get("content-type")).toMatch(/^application\/json/);
  const body = JSON.parse(text) as ErrorBody;
  expect(Object.keys(body.error).sort()).toEqual(["code", "message", "param", "type"]);
  return body.error;
}

/** Reads events into `events` until the body ends; resolves with the error if it fails. */
async function drain(response: Response, events: SseEvent[]): Promise<unknown> {
  try {
    for await (const event of readSse(response)) events.push(event);
    return undefined;
  } catch (error) {
    return error;
  }
}

/**
 * One suite for every way of serving the gateway (Node http, fetch, Express, Koa, Fastify),
 * against real servers, a mock upstream and the official openai and Anthropic SDKs (the
 * Anthropic Messages API translated to the OpenAI-compatible upstream).
 */
export function describeGatewayConformance<G extends ConformanceGateway>(
  name: string,
  options: ConformanceOptions<G>,
): void {
  const checkShape = !options.parserInFront;

  describe(`gateway conformance: ${name}`, () => {
    let upstream: MockUpstream;
    let gateway: G;
    let server: ConformanceServer;
    let base: string;
    let client: OpenAI;
    let anthropic: Anthropic;

    async function serve(maxBodyBytes: number | undefined, mountedAt: string) {
      const own = options.createGateway(upstream.baseURL, { maxBodyBytes });
      const running = await options.start(own, { prefix: mountedAt });
      return {
        base: `${running.url}${mountedAt}`,
        async close() {
          await running.close();
          await own.close();
        },
      };
    }

    beforeAll(async () => {
      upstream = await startMockUpstream();
      gateway = options.createGateway(upstream.baseURL, {});
      server = await options.start(gateway, { prefix });
      base = `${server.url}${prefix}`;
      client = new OpenAI({ baseURL: `${base}/v1`, apiKey: "sk-client", maxRetries: 0 });
      anthropic = new Anthropic({ baseURL: base, apiKey: "sk-client", maxRetries: 0 });
    });
    afterEach(() => upstream.reset());
    afterAll(async () => {
      await server?.close();
      await gateway?.close();
      await upstream?.close();
    });

    it("answers a chat completion through the openai SDK", async () => {
      const { data, response } = await client.chat.completions
        .create({ model, messages: [{ role: "user", content: "hello there" }] })
        .withResponse();
      expect(data.choices[0]?.message.content).toBe("mock: hello there");
      expect(response.headers.get("x-aigw-provider")).toBe("mock");
      expect(response.headers.get("x-request-id")).toBeTruthy();
      expect(upstream.requests[0]?.path).toBe("/v1/chat/completions");
    });

    it("streams a chat completion through the openai SDK", async () => {
      const stream = await client.chat.completions.create({
        model,
        messages: [{ role: "user", content: "one two three" }],
        stream: true,
        stream_options: { include_usage: true },
      });
      const { text, usage } = await readChatStream(stream);
      expect(text).toBe("mock: one two three");
      expect(usage).toMatchObject({ completion_tokens: 4 });
    });

    it("sends each event as it comes, while the upstream holds the last ones", async () => {
      const gate = upstream.holdStream();
      const response = await fetch(`${base}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: chatBody("one two", { stream: true }),
      });
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
      const events: SseEvent[] = [];
      const drained = drain(response, events);
      await gate.reached;
      // role, "mock: ", "one ", "two", stop: only [DONE] is held upstream.
      await waitFor(() => events.length === 5, { message: "events before the hold" });
      expect(events.map((event) => event.data)).not.toContain("[DONE]");
      gate.release();
      expect(await drained).toBeUndefined();
      expect(events.at(-1)?.data).toBe("[DONE]");
    });

    it("answers errors in OpenAI's shape", async () => {
      const unknownModel = await client.chat.completions
        .create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] })
        .catch((caught: unknown) => caught);
      expect(unknownModel).toBeInstanceOf(OpenAI.NotFoundError);
      expect((unknownModel as InstanceType<typeof OpenAI.NotFoundError>).code).toBe(
        "model_not_found",
      );

      upstream.enqueue({ kind: "status", status: 401 });
      const upstreamAuth = await client.chat.completions
        .create({ model, messages: [{ role: "user", content: "x" }] })
        .catch((caught: unknown) => caught);
      expect(upstreamAuth).toBeInstanceOf(OpenAI.APIError);
      expect((upstreamAuth as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
      expect((upstreamAuth as InstanceType<typeof OpenAI.APIError>).code).toBe(
        "upstream_auth_error",
      );

      const unknownPath = await fetch(`${base}/v1/no-such-endpoint`, { method: "POST" });
      expect((await expectOpenAIError(unknownPath, 404, true))?.type).toBe("invalid_request_error");
      const wrongMethod = await fetch(`${base}/v1/chat/completions`);
      expect(wrongMethod.headers.get("allow")).toBe("POST");
      await expectOpenAIError(wrongMethod, 405, true);

      const malformed = await fetch(`${base}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{not json",
      });
      const malformedError = await expectOpenAIError(malformed, 400, checkShape);
      if (checkShape) expect(malformedError?.code).toBe("invalid_json");
      expect(upstream.requests).toHaveLength(1);
    });

    it("answers the Anthropic SDK's messages, streams included, in Anthropic's form", async () => {
      const message = await anthropic.messages.create({
        model,
        max_tokens: 64,
        messages: [{ role: "user", content: "hello there" }],
      });
      expect(message).toMatchObject({
        type: "message",
        role: "assistant",
        content: [{ type: "text", text: "mock: hello there" }],
        stop_reason: "end_turn",
      });
      expect(upstream.requests[0]?.path).toBe("/v1/chat/completions");

      const stream = anthropic.messages.stream({
        model,
        max_tokens: 64,
        messages: [{ role: "user", content: "one two three" }],
      });
      const texts: string[] = [];
      stream.on("text", (text) => texts.push(text));
      const streamed = await stream.finalMessage();
      expect(texts.join("")).toBe("mock: one two three");
      expect(streamed.content).toEqual([{ type: "text", text: "mock: one two three" }]);
      expect(streamed.usage.output_tokens).toBeGreaterThan(0);
    });

    it("answers the Anthropic SDK's errors in Anthropic's envelope, as its error classes", async () => {
      const unknownModel = await anthropic.messages
        .create({
          model: "no-such-model",
          max_tokens: 8,
          messages: [{ role: "user", content: "x" }],
        })
        .catch((caught: unknown) => caught);
      expect(unknownModel).toBeInstanceOf(Anthropic.NotFoundError);
      expect((unknownModel as InstanceType<typeof Anthropic.NotFoundError>).error).toMatchObject({
        type: "error",
        error: { type: "not_found_error" },
      });

      upstream.enqueue({ kind: "status", status: 400 });
      const refused = await anthropic.messages
        .create({ model, max_tokens: 8, messages: [{ role: "user", content: "x" }] })
        .catch((caught: unknown) => caught);
      expect(refused).toBeInstanceOf(Anthropic.BadRequestError);
      expect((refused as InstanceType<typeof Anthropic.BadRequestError>).error).toMatchObject({
        type: "error",
        error: { type: "invalid_request_error" },
      });

      const malformed = await fetch(`${base}/v1/messages`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": "sk-client" },
        body: "{not json",
      });
      expect(malformed.status).toBe(400);
      const text = await malformed.text();
      if (checkShape) {
        expect(JSON.parse(text)).toMatchObject({
          type: "error",
          error: { type: "invalid_request_error" },
        });
      }
      expect(upstream.requests).toHaveLength(1);
    });

    it("cancels the upstream when the Anthropic SDK aborts a stream", async () => {
      const gate = upstream.holdStream();
      const stream = anthropic.messages.stream({
        model,
        max_tokens: 64,
        messages: [{ role: "user", content: "one two" }],
      });
      await gate.reached;
      for await (const _event of stream) {
        stream.abort();
        break;
      }
      await waitFor(() => upstream.requests[0]?.clientClosed, { message: "upstream closed" });
      gate.release();
    });

    it("cancels the upstream when the client aborts a stream", async () => {
      const gate = upstream.holdStream();
      const controller = new AbortController();
      const stream = await client.chat.completions.create(
        { model, messages: [{ role: "user", content: "one two" }], stream: true },
        { signal: controller.signal },
      );
      await gate.reached;
      for await (const _chunk of stream) {
        controller.abort();
        break;
      }
      await waitFor(() => upstream.requests[0]?.clientClosed, { message: "upstream closed" });
      gate.release();
    });

    it("cancels the upstream when the client leaves before the first byte", async () => {
      upstream.enqueue({ kind: "stall" });
      const controller = new AbortController();
      const pending = fetch(`${base}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: chatBody("never answered", { stream: true }),
        signal: controller.signal,
      }).catch((error: unknown) => error);
      await upstream.waitForRequests(1);
      controller.abort();
      expect(await pending).toBeInstanceOf(Error);
      await waitFor(() => upstream.requests[0]?.clientClosed, { message: "upstream closed" });
    });

    it("resolves paths under its prefix like the root, query strings included", async () => {
      const models = await fetch(`${base}/v1/models`);
      expect(models.status).toBe(200);
      expect(((await models.json()) as { object: string }).object).toBe("list");
      const withQuery = await fetch(`${base}/v1/chat/completions?trace=1`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: chatBody("queried"),
      });
      expect(withQuery.status).toBe(200);
      expect(upstream.requests.at(-1)?.body).toMatchObject({ model });

      const root = await serve(undefined, "");
      try {
        const response = await fetch(`${root.base}/v1/models`);
        expect(response.status).toBe(200);
        expect(((await response.json()) as { object: string }).object).toBe("list");
      } finally {
        await root.close();
      }
    });

    it("takes JSON only when sent as JSON: 415 for text, forms or no content type", async () => {
      for (const contentType of ["text/plain", "application/x-www-form-urlencoded", undefined]) {
        const response = await fetch(`${base}/v1/chat/completions`, {
          method: "POST",
          headers: contentType ? { "content-type": contentType } : {},
          body: new Blob([chatBody("sent as text")]),
        });
        const error = await expectOpenAIError(response, 415, true);
        expect(error?.code, contentType).toBe("unsupported_media_type");
      }
      expect(upstream.requests).toHaveLength(0);
      const response = await fetch(`${base}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json; charset=utf-8" },
        body: chatBody("sent as JSON"),
      });
      expect(response.status).toBe(200);
      const body = (await response.json()) as { choices: { message: { content: string } }[] };
      expect(body.choices[0]?.message.content).toBe("mock: sent as JSON");
    });

    it("takes a gzip body, decoded once whoever decodes it (the gateway or a parser in front)", async () => {
      const response = await fetch(`${base}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", "content-encoding": "gzip" },
        body: gzipSync(chatBody("zipped")),
      });
      expect(response.status).toBe(200);
      const body = (await response.json()) as { choices: { message: { content: string } }[] };
      expect(body.choices[0]?.message.content).toBe("mock: zipped");
    });

    it("accepts a 20 MB body through the openai SDK", async () => {
      const large = "x".repeat(20 * 2 ** 20);
      const completion = await client.chat.completions.create({
        model,
        messages: [
          { role: "system", content: large },
          { role: "user", content: "large" },
        ],
      });
      expect(completion.choices[0]?.message.content).toBe("mock: large");
      expect(upstream.requests[0]?.rawBody.length).toBeGreaterThan(20 * 2 ** 20);
    });

    it("answers 413 over the gateway's body limit, with or without a content-length", async () => {
      const small = await serve(2 ** 20, prefix);
      try {
        const body = new TextEncoder().encode(chatBody("y".repeat(2 * 2 ** 20)));
        const sized = await fetch(`${small.base}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
        });
        const sizedError = await expectOpenAIError(sized, 413, checkShape);
        if (checkShape) expect(sizedError?.code).toBe("request_too_large");

        const chunked = await fetch(`${small.base}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: new ReadableStream({
            start(controller) {
              controller.enqueue(body);
              controller.close();
            },
          }),
          duplex: "half",
        } as RequestInit);
        const chunkedError = await expectOpenAIError(chunked, 413, checkShape);
        if (checkShape) expect(chunkedError?.code).toBe("request_too_large");
        expect(upstream.requests).toHaveLength(0);
      } finally {
        await small.close();
      }
    });

    it("stops reading the upstream while the client does not read", async () => {
      // One small event per word: about 40 MB of events, more than every buffer on the way.
      const words = 250_000;
      const request = httpRequest(`${base}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
      });
      request.end(chatBody("a ".repeat(words), { stream: true }));
      const [response] = (await once(request, "response")) as [IncomingMessage];
      expect(response.statusCode).toBe(200);
      response.pause();

      let last = -1;
      let unchangedSince = Date.now();
      const stalledAt = await waitFor(
        () => {
          const written = upstream.requests[0]?.eventsWritten ?? 0;
          if (written !== last) {
            last = written;
            unchangedSince = Date.now();
          }
          return Date.now() - unchangedSince >= 500 ? written : 0;
        },
        { timeoutMs: 20_000, intervalMs: 50, message: "the upstream never stalled" },
      );
      expect(stalledAt).toBeLessThan(words / 2);
      expect(upstream.requests[0]?.finished).toBe(false);

      let tail = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        tail = (tail + chunk).slice(-64);
      });
      response.resume();
      await once(response, "end");
      expect(tail).toContain("data: [DONE]");
      await waitFor(() => upstream.requests[0]?.finished, { message: "upstream finished" });
    });
  });
}
