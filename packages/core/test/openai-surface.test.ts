import { createEcho, createOpenAICompatible } from "@aigw/provider";
import {
  getFreePort,
  type MockUpstream,
  readChatStream,
  startMockUpstream,
  waitFor,
} from "@aigw/testing";
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type RunningGateway, startGateway } from "./start-gateway.js";

let upstream: MockUpstream;
let running: RunningGateway;
const upstreamKey = "sk-upstream-secret-123";

beforeAll(async () => {
  upstream = await startMockUpstream({ apiKey: upstreamKey });
  running = await startGateway({
    providers: {
      mock: createOpenAICompatible({ baseURL: upstream.baseURL, apiKey: upstreamKey }),
      echo: createEcho(),
    },
    models: {
      "gpt-4o-mini": { provider: "mock" },
      fast: { provider: "mock", model: "gpt-4o-mini" },
      "gpt-*": { provider: "mock" },
      "mock/*": { provider: "mock" },
      echo: { provider: "echo" },
    },
    maxBodyBytes: 1024 * 1024,
  });
});

afterAll(async () => {
  await running?.close();
  await upstream?.close();
});

afterEach(() => upstream.reset());

describe("chat completions through the gateway", () => {
  it("answers a chat completion from the upstream, with the gateway's headers", async () => {
    const { data, response } = await running.client.chat.completions
      .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hello there" }] })
      .withResponse();
    expect(data.choices[0]?.message.content).toBe("mock: hello there");
    expect(data.usage?.total_tokens).toBeGreaterThan(0);
    expect(response.headers.get("x-aigw-provider")).toBe("mock");
    expect(response.headers.get("x-aigw-attempts")).toBe("1");
    expect(response.headers.get("x-upstream-request-id")).toMatch(/^req_mock_/);
    expect(response.headers.get("x-request-id")).toBeTruthy();
  });

  it("forwards unknown fields untouched and rewrites only an alias's model", async () => {
    const body = {
      model: "fast",
      messages: [{ role: "user", content: [{ type: "text", text: "parts" }] }],
      tools: [{ type: "function", function: { name: "lookup", parameters: { type: "object" } } }],
      response_format: { type: "json_object" },
      seed: 42,
      some_vendor_field: { nested: [1, 2, 3] },
    };
    await running.client.chat.completions.create(body as never);
    const received = upstream.requests[0]?.body as Record<string, unknown>;
    expect(received).toEqual({ ...body, model: "gpt-4o-mini" });
  });

  it("sends the client's JSON byte for byte when nothing changes it", async () => {
    // JSON.parse would round this seed and drop the spacing: the upstream sees neither loss.
    const text =
      '{ "model": "gpt-4o-mini", "seed": 12345678901234567890,\n "messages": [{"role": "user", "content": "exact"}] }';
    const response = await fetch(`${running.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: text,
    });
    expect(response.status).toBe(200);
    expect(upstream.requests[0]?.rawBody).toBe(text);
    // A body the gateway changes (an alias's model, a stream's usage option) is edited in
    // place: the seed reaches the upstream as written.
    await fetch(`${running.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: text.replace("gpt-4o-mini", "fast"),
    });
    const aliased = upstream.requests[1]?.rawBody ?? "";
    expect(aliased).toContain('"seed": 12345678901234567890');
    expect(JSON.parse(aliased).model).toBe("gpt-4o-mini");
    const streamed = await fetch(`${running.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: text.replace("gpt-4o-mini", "fast").replace('"seed"', '"stream": true, "seed"'),
    });
    await streamed.text();
    const sent = upstream.requests[2]?.rawBody ?? "";
    expect(sent).toContain('"seed": 12345678901234567890');
    expect(JSON.parse(sent)).toMatchObject({
      model: "gpt-4o-mini",
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  it("routes wildcards, and strips a provider prefix", async () => {
    await running.client.chat.completions.create({
      model: "gpt-5-nano",
      messages: [{ role: "user", content: "a" }],
    });
    await running.client.chat.completions.create({
      model: "mock/llama-3",
      messages: [{ role: "user", content: "b" }],
    });
    expect(upstream.requests.map((request) => (request.body as { model: string }).model)).toEqual([
      "gpt-5-nano",
      "llama-3",
    ]);
  });

  it("sends the upstream only allowed headers and its own key", async () => {
    await fetch(`${running.url}/v1/chat/completions`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: "Bearer sk-client-key",
        "x-api-key": "client-x-api-key",
        cookie: "session=1",
        "openai-beta": "assistants=v2",
        "accept-encoding": "gzip",
        "x-custom": "nope",
      },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "h" }] }),
    });
    const headers = upstream.requests[0]?.headers ?? {};
    expect(headers.authorization).toBe(`Bearer ${upstreamKey}`);
    expect(headers["x-api-key"]).toBeUndefined();
    expect(headers.cookie).toBeUndefined();
    expect(headers["x-custom"]).toBeUndefined();
    expect(headers["accept-encoding"]).not.toBe("gzip");
    expect(headers["openai-beta"]).toBe("assistants=v2");
  });

  it("streams events as they come: the first arrives while the upstream holds the rest", async () => {
    const gate = upstream.holdStream();
    const stream = await running.client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "one two three" }],
      stream: true,
    });
    const iterator = stream[Symbol.asyncIterator]();
    const first = await iterator.next();
    expect(first.value?.choices[0]?.delta.role).toBe("assistant");
    await gate.reached;
    expect(upstream.requests[0]?.finished).toBe(false);
    gate.release();
    let text = "";
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      text += next.value.choices[0]?.delta.content ?? "";
    }
    expect(text).toBe("mock: one two three");
  });

  it("serves the echo model with no upstream, streamed and not", async () => {
    const completion = await running.client.chat.completions.create({
      model: "echo",
      messages: [{ role: "user", content: "say this back" }],
    });
    expect(completion.choices[0]?.message.content).toBe("say this back");
    const stream = await running.client.chat.completions.create({
      model: "echo",
      messages: [{ role: "user", content: "and this" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const { text, usage } = await readChatStream(stream);
    expect(text).toBe("and this");
    expect(usage).toBeTruthy();
  });

  it("lists configured models and aliases, and the upstream's models behind wildcards", async () => {
    const models = await running.client.models.list();
    const ids = models.data.map((model) => model.id).sort();
    expect(ids).toEqual([
      "echo",
      "fast",
      "gpt-3.5-turbo-instruct",
      "gpt-4o",
      "gpt-4o-mini",
      "mock/dall-e-3",
      "mock/gpt-3.5-turbo-instruct",
      "mock/gpt-4o",
      "mock/gpt-4o-mini",
      "mock/text-embedding-3-small",
    ]);
  });

  it("answers /health", async () => {
    const response = await fetch(`${running.url}/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "ok" });
  });
});

describe("the rest of the OpenAI surface, through the SDK", () => {
  it("legacy completions, JSON and streamed", async () => {
    const completion = await running.client.completions.create({
      model: "gpt-3.5-turbo-instruct",
      prompt: "hi",
    });
    expect(completion.choices[0]?.text).toBe("mock: hi");
    const stream = await running.client.completions.create({
      model: "gpt-3.5-turbo-instruct",
      prompt: "two words",
      stream: true,
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? "";
    expect(text).toBe("mock: two words");
  });

  it("embeddings as floats and as base64", async () => {
    const floats = await running.client.embeddings.create({
      model: "gpt-embed",
      input: ["a", "b"],
      encoding_format: "float",
    });
    expect(floats.data).toHaveLength(2);
    expect(floats.data[0]?.embedding).toHaveLength(8);
    const base64 = await fetch(`${running.url}/v1/embeddings`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-embed", input: "a", encoding_format: "base64" }),
    });
    const body = (await base64.json()) as { data: { embedding: string }[] };
    expect(typeof body.data[0]?.embedding).toBe("string");
    // The SDK asks for base64 by default and decodes it: the same numbers either way.
    const decoded = await running.client.embeddings.create({
      model: "gpt-embed",
      input: ["a", "b"],
    });
    expect(decoded.data[0]?.embedding).toEqual(floats.data[0]?.embedding);
  });

  it("responses, JSON and streamed", async () => {
    const response = await running.client.responses.create({
      model: "gpt-4o-mini",
      input: "hello",
    });
    expect(response.output_text).toBe("mock: hello");
    const stream = await running.client.responses.create({
      model: "gpt-4o-mini",
      input: "hello stream",
      stream: true,
    });
    const types = new Set<string>();
    let text = "";
    for await (const event of stream) {
      types.add(event.type);
      if (event.type === "response.output_text.delta") text += event.delta;
    }
    expect(text).toBe("mock: hello stream");
    expect(types.has("response.completed")).toBe(true);
  });

  it("image generations", async () => {
    const images = await running.client.images.generate({ model: "gpt-image-1", prompt: "a cat" });
    expect(images.data?.[0]?.url).toContain("image.png");
  });
});

describe("errors in OpenAI's shape", () => {
  async function post(path: string, body: string) {
    const response = await fetch(`${running.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    return {
      status: response.status,
      body: (await response.json()) as { error: Record<string, unknown> },
    };
  }

  it("400 for a body that is not JSON", async () => {
    const { status, body } = await post("/v1/chat/completions", "{not json");
    expect(status).toBe(400);
    expect(body.error.type).toBe("invalid_request_error");
    expect(body.error).toHaveProperty("param");
    expect(body.error).toHaveProperty("code");
  });

  it("400 naming the missing field, raised by the SDK as BadRequestError", async () => {
    const missingModel = await post("/v1/chat/completions", JSON.stringify({ messages: [] }));
    expect(missingModel.status).toBe(400);
    expect(missingModel.body.error.param).toBe("model");
    const missingMessages = await post("/v1/chat/completions", JSON.stringify({ model: "echo" }));
    expect(missingMessages.body.error.param).toBe("messages");
    await expect(
      running.client.chat.completions.create({ model: "echo", messages: "nope" as never }),
    ).rejects.toBeInstanceOf(OpenAI.BadRequestError);
  });

  it("404 model_not_found for an unknown model, raised by the SDK as NotFoundError", async () => {
    const error = await running.client.chat.completions
      .create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect((error as InstanceType<typeof OpenAI.NotFoundError>).code).toBe("model_not_found");
    expect(upstream.requests).toHaveLength(0);
  });

  it("404 for an unknown path, 405 for a wrong method", async () => {
    const unknown = await post("/v1/nothing-here", "{}");
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.type).toBe("invalid_request_error");
    const wrongMethod = await fetch(`${running.url}/v1/chat/completions`);
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get("allow")).toBe("POST");
    expect(((await wrongMethod.json()) as { error: { type: string } }).error.type).toBe(
      "invalid_request_error",
    );
  });

  it("413 request_too_large for a body over the limit, and the connection survives", async () => {
    const big = JSON.stringify({
      model: "echo",
      messages: [{ role: "user", content: "x".repeat(2 * 1024 * 1024) }],
    });
    const { status, body } = await post("/v1/chat/completions", big);
    expect(status).toBe(413);
    expect(body.error.code).toBe("request_too_large");
    const after = await fetch(`${running.url}/health`);
    expect(after.status).toBe(200);
  });

  it("502 when the upstream refuses the connection", async () => {
    const closedPort = await getFreePort();
    const refused = await startGateway({
      providers: {
        down: createOpenAICompatible({
          baseURL: `http://127.0.0.1:${closedPort}/v1`,
          retry: { maxRetries: 0 },
        }),
      },
      models: { down: { provider: "down" } },
    });
    try {
      const error = await refused.client.chat.completions
        .create({ model: "down", messages: [{ role: "user", content: "x" }] })
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(OpenAI.APIError);
      expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
      expect((error as InstanceType<typeof OpenAI.APIError>).type).toBe("upstream_error");
    } finally {
      await refused.close();
    }
  });

  it("502 upstream_auth_error when the upstream rejects the gateway's key, without echoing it", async () => {
    const wrongKey = await startGateway({
      providers: {
        mock: createOpenAICompatible({ baseURL: upstream.baseURL, apiKey: "sk-wrong-key-999" }),
      },
      models: { m: { provider: "mock" } },
    });
    try {
      const response = await fetch(`${wrongKey.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "x" }] }),
      });
      const text = await response.text();
      expect(response.status).toBe(502);
      expect(JSON.parse(text).error.code).toBe("upstream_auth_error");
      expect(text).not.toContain("sk-wrong-key-999");
    } finally {
      await wrongKey.close();
    }
  });

  it("a client abort mid-stream closes the upstream request", async () => {
    upstream.enqueue({ kind: "delayEvents", delayMs: 300 });
    const controller = new AbortController();
    const stream = await running.client.chat.completions.create(
      {
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "many words to stream slowly here" }],
        stream: true,
      },
      { signal: controller.signal },
    );
    for await (const _chunk of stream) {
      controller.abort();
      break;
    }
    await waitFor(() => upstream.requests[0]?.clientClosed, { timeoutMs: 2000 });
  });
});
