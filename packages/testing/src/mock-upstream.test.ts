import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type MockUpstream, startMockUpstream } from "./mock-upstream.js";
import { readSse, type SseEvent } from "./sse.js";

// biome-ignore lint/suspicious/noExplicitAny: the assertions walk the returned JSON freely
async function readJson(response: Response): Promise<any> {
  return response.json();
}

let mock: MockUpstream;

beforeAll(async () => {
  mock = await startMockUpstream();
});
afterEach(() => mock.reset());
afterAll(() => mock.close());

function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${mock.baseURL}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

async function collect(response: Response): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  for await (const event of readSse(response)) events.push(event);
  return events;
}

const messages = [
  { role: "system", content: "be brief" },
  { role: "user", content: "hello there" },
];

describe("chat completions", () => {
  it("answers JSON with the last user message and deterministic usage", async () => {
    const response = await post("/chat/completions", { model: "gpt-4o-mini", messages });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/json");
    expect(response.headers.get("x-request-id")).toMatch(/^req_mock_\d+$/);
    const body = await readJson(response);
    expect(body).toMatchObject({
      object: "chat.completion",
      model: "gpt-4o-mini",
      choices: [
        {
          index: 0,
          message: { role: "assistant", content: "mock: hello there" },
          finish_reason: "stop",
        },
      ],
      usage: {
        prompt_tokens: Math.ceil(JSON.stringify(messages).length / 4),
        completion_tokens: 3,
        total_tokens: Math.ceil(JSON.stringify(messages).length / 4) + 3,
      },
    });
    expect(body.id).toMatch(/^chatcmpl-/);
  });

  it("reads text parts of array content", async () => {
    const response = await post("/chat/completions", {
      model: "m",
      messages: [{ role: "user", content: [{ type: "text", text: "from parts" }] }],
    });
    const body = await readJson(response);
    expect(body.choices[0].message.content).toBe("mock: from parts");
  });

  it("streams one chunk per word, then stop, usage and [DONE]", async () => {
    const response = await post("/chat/completions", {
      model: "gpt-4o-mini",
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    const events = await collect(response);
    expect(events.at(-1)).toEqual({ data: "[DONE]" });
    const chunks = events.slice(0, -1).map((event) => JSON.parse(event.data));
    expect(chunks[0].choices[0].delta).toEqual({ role: "assistant", content: "" });
    const deltas = chunks.slice(1, -2).map((chunk) => chunk.choices[0].delta.content);
    expect(deltas).toEqual(["mock: ", "hello ", "there"]);
    expect(chunks.at(-2).choices[0]).toMatchObject({ delta: {}, finish_reason: "stop" });
    expect(chunks.at(-1)).toMatchObject({
      object: "chat.completion.chunk",
      model: "gpt-4o-mini",
      choices: [],
      usage: { completion_tokens: 3 },
    });
  });

  it("sends no usage chunk unless asked", async () => {
    const events = await collect(await post("/chat/completions", { messages, stream: true }));
    expect(events).toHaveLength(6);
    expect(events.some((event) => event.data.includes('"usage"'))).toBe(false);
  });
});

describe("legacy completions", () => {
  it("answers JSON", async () => {
    const body = await readJson(
      await post("/completions", { model: "instruct", prompt: "say hi" }),
    );
    expect(body).toMatchObject({
      object: "text_completion",
      model: "instruct",
      choices: [{ text: "mock: say hi", finish_reason: "stop" }],
      usage: { completion_tokens: 3 },
    });
  });

  it("streams text chunks, usage and [DONE]", async () => {
    const events = await collect(
      await post("/completions", {
        prompt: "say hi",
        stream: true,
        stream_options: { include_usage: true },
      }),
    );
    expect(events.at(-1)?.data).toBe("[DONE]");
    const chunks = events.slice(0, -1).map((event) => JSON.parse(event.data));
    expect(chunks.map((chunk) => chunk.choices[0]?.text ?? "").join("")).toBe("mock: say hi");
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { completion_tokens: 3 } });
  });
});

describe("embeddings", () => {
  it("returns deterministic vectors of the asked dimensions", async () => {
    const request = { model: "text-embedding-3-small", input: ["a", "b"], dimensions: 4 };
    const first = await readJson(await post("/embeddings", request));
    const second = await readJson(await post("/embeddings", request));
    expect(first).toEqual(second);
    expect(first.data).toHaveLength(2);
    expect(first.data[0].embedding).toHaveLength(4);
    expect(first.data[0].embedding).not.toEqual(first.data[1].embedding);
    expect(first.usage).toEqual({ prompt_tokens: 3, total_tokens: 3 });
  });

  it("defaults to 8 dimensions and encodes base64 as little-endian float32", async () => {
    const floats = await readJson(await post("/embeddings", { input: "text" }));
    const encoded = await readJson(
      await post("/embeddings", { input: "text", encoding_format: "base64" }),
    );
    const bytes = Buffer.from(encoded.data[0].embedding, "base64");
    const decoded = Array.from({ length: bytes.length / 4 }, (_, index) =>
      bytes.readFloatLE(index * 4),
    );
    expect(decoded).toHaveLength(8);
    expect(decoded).toEqual(floats.data[0].embedding);
  });
});

describe("responses", () => {
  it("answers JSON", async () => {
    const body = await readJson(await post("/responses", { model: "gpt-4o", input: "hi you" }));
    expect(body).toMatchObject({
      object: "response",
      model: "gpt-4o",
      output: [
        {
          type: "message",
          role: "assistant",
          content: [{ type: "output_text", text: "mock: hi you" }],
        },
      ],
      usage: { output_tokens: 3 },
    });
    expect(body.usage.total_tokens).toBe(body.usage.input_tokens + 3);
  });

  it("streams named events without [DONE]", async () => {
    const events = await collect(
      await post("/responses", {
        input: [{ role: "user", content: [{ type: "input_text", text: "hi you" }] }],
        stream: true,
      }),
    );
    expect(events.map((event) => event.event)).toEqual([
      "response.created",
      "response.output_text.delta",
      "response.output_text.delta",
      "response.output_text.delta",
      "response.completed",
    ]);
    const deltas = events.slice(1, -1).map((event) => JSON.parse(event.data).delta);
    expect(deltas.join("")).toBe("mock: hi you");
    const completed = JSON.parse(events.at(-1)?.data ?? "");
    expect(completed.response.usage.output_tokens).toBe(3);
  });
});

describe("other endpoints", () => {
  it("generates images as URLs or base64", async () => {
    const byUrl = await readJson(await post("/images/generations", { prompt: "cat" }));
    expect(byUrl.data).toEqual([{ url: "https://example.invalid/image.png" }]);
    const byData = await readJson(
      await post("/images/generations", { prompt: "cat", response_format: "b64_json", n: 2 }),
    );
    expect(byData.data).toHaveLength(2);
    expect(typeof byData.data[0].b64_json).toBe("string");
  });

  it("lists models", async () => {
    const body = await readJson(await fetch(`${mock.baseURL}/models`));
    expect(body.object).toBe("list");
    expect(body.data[0]).toMatchObject({ object: "model", owned_by: "mock" });
  });

  it("answers unknown paths with a 404 OpenAI error", async () => {
    const response = await fetch(`${mock.baseURL}/nope`);
    expect(response.status).toBe(404);
    expect((await readJson(response)).error).toMatchObject({
      type: "invalid_request_error",
      param: null,
      code: "not_found",
    });
  });

  it("answers a bad JSON body with a 400 OpenAI error", async () => {
    const response = await fetch(`${mock.baseURL}/chat/completions`, {
      method: "POST",
      body: "{nope",
    });
    expect(response.status).toBe(400);
    expect((await readJson(response)).error.type).toBe("invalid_request_error");
    expect(mock.requests[0]).toMatchObject({ rawBody: "{nope", body: undefined });
  });
});

describe("recording", () => {
  it("records method, path with query, headers and body", async () => {
    await post("/chat/completions?trace=1", { messages }, { "x-custom": "yes" });
    await mock.waitForRequests(1);
    const [request] = mock.requests;
    expect(request).toMatchObject({
      method: "POST",
      path: "/v1/chat/completions?trace=1",
      body: { messages },
      clientClosed: false,
      finished: true,
    });
    expect(request?.headers["x-custom"]).toBe("yes");
    expect(request?.rawBody).toBe(JSON.stringify({ messages }));
  });

  it("numbers request ids", async () => {
    const first = (await fetch(`${mock.baseURL}/models`)).headers.get("x-request-id");
    const second = (await fetch(`${mock.baseURL}/models`)).headers.get("x-request-id");
    const number = (id: string | null) => Number(id?.replace("req_mock_", ""));
    expect(number(second)).toBe(number(first) + 1);
  });

  it("rejects waitForRequests after its timeout", async () => {
    await expect(mock.waitForRequests(1, 50)).rejects.toThrow(/expected 1 requests/);
  });
});

describe("api key", () => {
  let secured: MockUpstream;
  beforeAll(async () => {
    secured = await startMockUpstream({ apiKey: "sk-right" });
  });
  afterAll(() => secured.close());

  it("accepts a bearer token or an api-key header", async () => {
    const url = `${secured.baseURL}/models`;
    expect((await fetch(url, { headers: { authorization: "Bearer sk-right" } })).status).toBe(200);
    expect((await fetch(url, { headers: { "api-key": "sk-right" } })).status).toBe(200);
  });

  it("answers a wrong key with a 401 that echoes it", async () => {
    const response = await fetch(`${secured.baseURL}/models`, {
      headers: { authorization: "Bearer sk-wrong" },
    });
    expect(response.status).toBe(401);
    expect(await readJson(response)).toEqual({
      error: {
        message: "Incorrect API key provided: sk-wrong",
        type: "invalid_request_error",
        code: "invalid_api_key",
        param: null,
      },
    });
  });
});
