import { createAnthropic, createGemini } from "@aigw/provider";
import {
  type AnthropicMock,
  type GeminiMock,
  startAnthropicMock,
  startGeminiMock,
} from "@aigw/testing";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import type { ChatCompletionChunk } from "openai/resources/chat/completions";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type RunningGateway, startGateway } from "./start-gateway.js";

// Gemini upstreams through the gateway (A.7 and A.8 #17-19 of the translation reference),
// with the openai SDK and the Anthropic SDK as clients.
const GEMINI_KEY = "AIzaSy-gemini-upstream-key-0123456789abcd";
const ANTHROPIC_KEY = "sk-ant-upstream-0123456789abcdef0123456789";
let gemini: GeminiMock;
let anthropicMock: AnthropicMock;
let running: RunningGateway;
let client: OpenAI;
let anthropic: Anthropic;

beforeAll(async () => {
  gemini = await startGeminiMock({ apiKey: GEMINI_KEY });
  anthropicMock = await startAnthropicMock({ apiKey: ANTHROPIC_KEY });
  running = await startGateway({
    providers: {
      gemini: createGemini({ apiKey: GEMINI_KEY, baseURL: gemini.baseURL }),
      anthropic: createAnthropic({
        apiKey: ANTHROPIC_KEY,
        baseURL: `${anthropicMock.url}/v1`,
        retry: { maxRetries: 0 },
      }),
    },
    models: {
      "gemini-*": { provider: "gemini" },
      "text-embedding-004": { provider: "gemini" },
      claude: {
        provider: "anthropic",
        model: "claude-sonnet-4-5",
        fallbacks: ["flash"],
      },
      flash: { provider: "gemini", model: "gemini-2.5-flash" },
    },
  });
  client = running.client;
  anthropic = new Anthropic({ baseURL: running.url, apiKey: "sk-client", maxRetries: 0 });
});
afterEach(() => {
  gemini.reset();
  anthropicMock.reset();
});
afterAll(async () => {
  await running?.close();
  await gemini?.close();
  await anthropicMock?.close();
});

const model = "gemini-2.5-flash";
type Json = Record<string, unknown>;
const sent = (): Json => gemini.requests.at(-1)?.body as Json;
const weather = {
  type: "function" as const,
  function: {
    name: "get_weather",
    parameters: {
      $schema: "http://json-schema.org/draft-07/schema#",
      type: "object",
      properties: { city: { type: ["string", "null"] } },
      required: ["city"],
      additionalProperties: false,
    },
    strict: true,
  },
};

async function chunksOf(stream: AsyncIterable<ChatCompletionChunk>) {
  const chunks: ChatCompletionChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

describe("OpenAI clients to Gemini", () => {
  it("A.8 #19: sends the key only in x-goog-api-key, system text as systemInstruction, empty system left out", async () => {
    const completion = await client.chat.completions.create({
      model,
      messages: [
        { role: "system", content: "" },
        { role: "user", content: "Hello there" },
      ],
    });
    expect(completion.choices[0]?.message.content).toBe("gemini: Hello there");
    const request = gemini.requests[0];
    expect(request?.path).toBe(`/v1beta/models/${model}:generateContent`);
    expect(request?.headers["x-goog-api-key"]).toBe(GEMINI_KEY);
    expect(request?.path).not.toContain("key=");
    expect(sent()).not.toHaveProperty("systemInstruction");

    await client.chat.completions.create({
      model,
      messages: [
        { role: "system", content: "Be brief." },
        { role: "developer", content: [{ type: "text", text: "Answer in French." }] },
        { role: "user", content: "Hi" },
        {
          role: "user",
          content: [
            { type: "text", text: "" },
            { type: "text", text: "again" },
          ],
        },
        { role: "assistant", content: "Salut" },
        { role: "user", content: "Once more" },
      ],
    });
    expect(sent()).toMatchObject({
      systemInstruction: { parts: [{ text: "Be brief." }, { text: "Answer in French." }] },
      contents: [
        { role: "user", parts: [{ text: "Hi" }, { text: "again" }] },
        { role: "model", parts: [{ text: "Salut" }] },
        { role: "user", parts: [{ text: "Once more" }] },
      ],
    });
  });

  it("maps generation settings: max tokens, stop, temperature, top_p, seed, n, response_format, reasoning_effort", async () => {
    await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "List" }],
      max_completion_tokens: 99,
      stop: "END",
      temperature: 0.2,
      top_p: 0.9,
      seed: 7,
      n: 2,
      reasoning_effort: "low",
      response_format: {
        type: "json_schema",
        json_schema: {
          name: "list",
          strict: true,
          schema: {
            type: "object",
            properties: { items: { type: "array", items: { type: "string" } } },
            additionalProperties: false,
          },
        },
      },
    });
    expect(sent().generationConfig).toEqual({
      maxOutputTokens: 99,
      stopSequences: ["END"],
      temperature: 0.2,
      topP: 0.9,
      seed: 7,
      candidateCount: 2,
      responseMimeType: "application/json",
      responseSchema: {
        type: "object",
        properties: { items: { type: "array", items: { type: "string" } } },
      },
      thinkingConfig: { thinkingBudget: 1024, includeThoughts: true },
    });
  });

  it("sends data URL images as inlineData and URLs as fileData", async () => {
    await client.chat.completions.create({
      model,
      messages: [
        {
          role: "user",
          content: [
            { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
            { type: "image_url", image_url: { url: "https://example.com/cat.jpg" } },
            { type: "text", text: "What is this?" },
          ],
        },
      ],
    });
    expect((sent().contents as Json[])[0]).toEqual({
      role: "user",
      parts: [
        { inlineData: { mimeType: "image/png", data: "iVBORw0KGgo=" } },
        { fileData: { mimeType: "image/jpeg", fileUri: "https://example.com/cat.jpg" } },
        { text: "What is this?" },
      ],
    });
  });

  it("streams with alt=sse, the body's end ending the stream, usage with thoughts as completion tokens", async () => {
    gemini.enqueue({
      kind: "reply",
      parts: [{ text: "Thinking it over.", thought: true }, { text: "The answer is four." }],
      usageMetadata: {
        promptTokenCount: 12,
        cachedContentTokenCount: 5,
        candidatesTokenCount: 6,
        thoughtsTokenCount: 20,
        totalTokenCount: 38,
      },
    });
    const chunks = await chunksOf(
      await client.chat.completions.create({
        model,
        messages: [{ role: "user", content: "2+2?" }],
        stream: true,
        stream_options: { include_usage: true },
      }),
    );
    expect(gemini.requests[0]?.path).toBe(`/v1beta/models/${model}:streamGenerateContent?alt=sse`);
    const deltas = chunks.map((chunk) => chunk.choices[0]?.delta as Json | undefined);
    const content = deltas.map((delta) => delta?.content ?? "").join("");
    const reasoning = deltas.map((delta) => delta?.reasoning_content ?? "").join("");
    expect(content).toBe("The answer is four.");
    expect(reasoning).toBe("Thinking it over.");
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe("stop");
    expect(chunks.at(-1)?.usage).toEqual({
      prompt_tokens: 12,
      completion_tokens: 26,
      total_tokens: 38,
      prompt_tokens_details: { cached_tokens: 5 },
      completion_tokens_details: { reasoning_tokens: 20 },
    });
  });

  it("A.8 #17: parallel calls in separate events keep their own indices and ids, and their signatures come back", async () => {
    gemini.enqueue({
      kind: "reply",
      parts: [
        {
          functionCall: { name: "get_weather", args: { city: "Paris" }, id: "fc_1" },
          thoughtSignature: "c2lnbmF0dXJlLW9uZQ==",
        },
        { functionCall: { name: "get_weather", args: { city: "Oslo" }, id: "fc_2" } },
      ],
    });
    const stream = client.chat.completions.stream({
      model,
      messages: [{ role: "user", content: "Weather in Paris and Oslo?" }],
      tools: [weather],
      tool_choice: { type: "function", function: { name: "get_weather" } },
    });
    const final = await stream.finalChatCompletion();
    const message = final.choices[0]?.message;
    expect(final.choices[0]?.finish_reason).toBe("tool_calls");
    const calls = message?.tool_calls ?? [];
    expect(calls).toHaveLength(2);
    const [paris, oslo] = calls as { id: string; function: { name: string; arguments: string } }[];
    expect(JSON.parse(paris?.function.arguments ?? "")).toEqual({ city: "Paris" });
    expect(JSON.parse(oslo?.function.arguments ?? "")).toEqual({ city: "Oslo" });
    expect(paris?.id).not.toBe(oslo?.id);
    expect(oslo?.id).toBe("fc_2");
    const request = sent();
    expect(request.toolConfig).toEqual({
      functionCallingConfig: { mode: "ANY", allowedFunctionNames: ["get_weather"] },
    });
    expect(request.tools).toEqual([
      {
        functionDeclarations: [
          {
            name: "get_weather",
            parameters: {
              type: "object",
              properties: { city: { type: "string", nullable: true } },
              required: ["city"],
            },
          },
        ],
      },
    ]);

    // The next turn: each result named after its call, both in one content, ids and the
    // signature echoed.
    await client.chat.completions.create({
      model,
      tools: [weather],
      messages: [
        { role: "user", content: "Weather in Paris and Oslo?" },
        { role: "assistant", content: null, tool_calls: calls },
        { role: "tool", tool_call_id: paris?.id ?? "", content: '{"temp":21}' },
        { role: "tool", tool_call_id: oslo?.id ?? "", content: "Rain" },
      ],
    });
    expect(sent().contents).toEqual([
      { role: "user", parts: [{ text: "Weather in Paris and Oslo?" }] },
      {
        role: "model",
        parts: [
          {
            functionCall: { name: "get_weather", args: { city: "Paris" }, id: "fc_1" },
            thoughtSignature: "c2lnbmF0dXJlLW9uZQ==",
          },
          { functionCall: { name: "get_weather", args: { city: "Oslo" }, id: "fc_2" } },
        ],
      },
      {
        role: "user",
        parts: [
          { functionResponse: { name: "get_weather", response: { temp: 21 }, id: "fc_1" } },
          { functionResponse: { name: "get_weather", response: { content: "Rain" }, id: "fc_2" } },
        ],
      },
    ]);
  });

  it("A.8 #18: STOP after a function call is tool_calls; calls without Gemini ids get distinct ones", async () => {
    gemini.enqueue({
      kind: "reply",
      parts: [
        { functionCall: { name: "get_weather", args: { city: "Paris" } } },
        { functionCall: { name: "get_weather", args: { city: "Oslo" } } },
      ],
    });
    const completion = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "Weather?" }],
      tools: [weather],
    });
    expect(completion.choices[0]?.finish_reason).toBe("tool_calls");
    const ids = completion.choices[0]?.message.tool_calls?.map((call) => call.id) ?? [];
    expect(new Set(ids).size).toBe(2);
    expect(ids.join()).not.toContain("get_weather");
  });

  it("maps finish reasons: MAX_TOKENS to length, SAFETY and RECITATION to content_filter", async () => {
    for (const [reason, expected] of [
      ["MAX_TOKENS", "length"],
      ["SAFETY", "content_filter"],
      ["RECITATION", "content_filter"],
    ] as const) {
      gemini.enqueue({ kind: "reply", finishReason: reason });
      const completion = await client.chat.completions.create({
        model,
        messages: [{ role: "user", content: "x" }],
      });
      expect(completion.choices[0]?.finish_reason).toBe(expected);
    }
  });

  it("A.8 #18: a blocked prompt is a content_filter error, JSON and stream, never an empty success", async () => {
    gemini.enqueue({ kind: "block", blockReason: "PROHIBITED_CONTENT" });
    const json = await client.chat.completions
      .create({ model, messages: [{ role: "user", content: "x" }] })
      .catch((error: unknown) => error);
    expect(json).toBeInstanceOf(OpenAI.BadRequestError);
    expect((json as InstanceType<typeof OpenAI.BadRequestError>).code).toBe("content_filter");
    expect((json as Error).message).toContain("PROHIBITED_CONTENT");

    gemini.enqueue({ kind: "block" });
    const streamed = await client.chat.completions
      .create({ model, messages: [{ role: "user", content: "x" }], stream: true })
      .catch((error: unknown) => error);
    expect(streamed).toBeInstanceOf(OpenAI.BadRequestError);
    expect((streamed as InstanceType<typeof OpenAI.BadRequestError>).code).toBe("content_filter");
  });

  it("maps Gemini's errors: 400 relayed, RESOURCE_EXHAUSTED retried, a bad key the gateway's own", async () => {
    gemini.enqueue({ kind: "status", status: 400 });
    const refused = await client.chat.completions
      .create({ model, messages: [{ role: "user", content: "x" }] })
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
    expect((refused as Error).message).toContain("Mock error 400");

    gemini.enqueue({ kind: "status", status: 429, headers: { "retry-after": "0" } });
    const retried = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "again" }],
    });
    expect(retried.choices[0]?.message.content).toBe("gemini: again");
    expect(gemini.requests).toHaveLength(3);

    const badKey = await startGateway({
      providers: { gemini: createGemini({ apiKey: "wrong", baseURL: gemini.baseURL }) },
      models: { "gemini-*": { provider: "gemini" } },
    });
    try {
      const rejected = await badKey.client.chat.completions
        .create({ model, messages: [{ role: "user", content: "x" }] })
        .catch((error: unknown) => error);
      expect((rejected as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
      expect((rejected as InstanceType<typeof OpenAI.APIError>).code).toBe("upstream_auth_error");
    } finally {
      await badKey.close();
    }
  });

  it("fails a stream cut before Gemini finished, and one with an error event", async () => {
    gemini.enqueue({ kind: "cutStream", afterEvents: 1 });
    const cut = await chunksOf(
      await client.chat.completions.create({
        model,
        messages: [{ role: "user", content: "one two three" }],
        stream: true,
      }),
    ).catch((error: unknown) => error);
    expect(cut).toBeInstanceOf(Error);

    // A body that ends cleanly before Gemini said it finished is cut all the same.
    gemini.enqueue({
      kind: "events",
      events: [
        { candidates: [{ index: 0, content: { role: "model", parts: [{ text: "Half" }] } }] },
      ],
    });
    const unfinished: ChatCompletionChunk[] = [];
    const ended = await (async () => {
      const stream = await client.chat.completions.create({
        model,
        messages: [{ role: "user", content: "x" }],
        stream: true,
      });
      for await (const chunk of stream) unfinished.push(chunk);
    })().catch((error: unknown) => error);
    expect(unfinished.map((chunk) => chunk.choices[0]?.delta.content).join("")).toBe("Half");
    expect(unfinished.some((chunk) => chunk.choices[0]?.finish_reason)).toBe(false);
    expect((ended as InstanceType<typeof OpenAI.APIError>).error).toMatchObject({
      code: "stream_interrupted",
    });

    gemini.enqueue({ kind: "midStreamError", afterEvents: 2 });
    const failed = await chunksOf(
      await client.chat.completions.create({
        model,
        messages: [{ role: "user", content: "one two three" }],
        stream: true,
      }),
    ).catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(OpenAI.APIError);
  });

  it("embeds through batchEmbedContents, floats and base64 alike", async () => {
    const embedded = await client.embeddings.create({
      model: "text-embedding-004",
      input: ["one", "two"],
      dimensions: 3,
    });
    expect(gemini.requests[0]?.path).toBe("/v1beta/models/text-embedding-004:batchEmbedContents");
    expect(sent()).toEqual({
      requests: [
        {
          model: "models/text-embedding-004",
          content: { parts: [{ text: "one" }] },
          outputDimensionality: 3,
        },
        {
          model: "models/text-embedding-004",
          content: { parts: [{ text: "two" }] },
          outputDimensionality: 3,
        },
      ],
    });
    expect(embedded.data.map((item) => item.index)).toEqual([0, 1]);
    const expected = [1 / 2, 1 / 3, 1 / 4].map((value) => Math.fround(value));
    expect(embedded.data[0]?.embedding).toEqual(expected);
    const floats = await client.embeddings.create({
      model: "text-embedding-004",
      input: "one",
      dimensions: 3,
      encoding_format: "float",
    });
    expect(floats.data[0]?.embedding).toEqual([1 / 2, 1 / 3, 1 / 4]);
  });

  it("lists Gemini's own models under its wildcard route", async () => {
    const ids: string[] = [];
    for await (const listed of client.models.list()) ids.push(listed.id);
    expect(ids).toEqual(expect.arrayContaining(["gemini-2.5-flash", "gemini-2.5-pro"]));
    expect(gemini.requests.find((request) => request.method === "GET")?.path).toBe(
      "/v1beta/models?pageSize=1000",
    );
  });
});

describe("Anthropic clients to Gemini", () => {
  it("answers messages, streams and tool use in Anthropic's form", async () => {
    const message = await anthropic.messages.create({
      model,
      max_tokens: 64,
      system: "Be brief.",
      messages: [{ role: "user", content: "Hello" }],
    });
    expect(message.content).toEqual([{ type: "text", text: "gemini: Hello" }]);
    expect(sent()).toMatchObject({
      systemInstruction: { parts: [{ text: "Be brief." }] },
      generationConfig: { maxOutputTokens: 64 },
    });

    gemini.enqueue({
      kind: "reply",
      parts: [
        { text: "Checking." },
        { functionCall: { name: "get_weather", args: { city: "Paris" }, id: "fc_9" } },
      ],
    });
    const stream = anthropic.messages.stream({
      model,
      max_tokens: 64,
      tools: [
        {
          name: "get_weather",
          input_schema: { type: "object", properties: { city: { type: "string" } } },
        },
      ],
      messages: [{ role: "user", content: "Weather in Paris?" }],
    });
    const streamed = await stream.finalMessage();
    expect(streamed.stop_reason).toBe("tool_use");
    expect(streamed.content).toEqual([
      { type: "text", text: "Checking." },
      { type: "tool_use", id: "fc_9", name: "get_weather", input: { city: "Paris" } },
    ]);

    await anthropic.messages.create({
      model,
      max_tokens: 64,
      messages: [
        { role: "user", content: "Weather in Paris?" },
        { role: "assistant", content: streamed.content },
        {
          role: "user",
          content: [{ type: "tool_result", tool_use_id: "fc_9", content: "Sunny" }],
        },
      ],
    });
    expect((sent().contents as Json[])[2]).toEqual({
      role: "user",
      parts: [
        { functionResponse: { name: "get_weather", response: { content: "Sunny" }, id: "fc_9" } },
      ],
    });
  });

  it("sends images as inlineData and gives thoughts back as thinking blocks", async () => {
    gemini.enqueue({
      kind: "reply",
      parts: [{ text: "A cat, I think.", thought: true }, { text: "A cat." }],
    });
    const stream = anthropic.messages.stream({
      model,
      max_tokens: 64,
      thinking: { type: "enabled", budget_tokens: 2048 },
      messages: [
        {
          role: "user",
          content: [
            {
              type: "image",
              source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" },
            },
            { type: "text", text: "What is this?" },
          ],
        },
      ],
    });
    const message = await stream.finalMessage();
    expect(message.content).toEqual([
      { type: "thinking", thinking: "A cat, I think.", signature: "" },
      { type: "text", text: "A cat." },
    ]);
    expect(sent()).toMatchObject({
      contents: [
        {
          role: "user",
          parts: [
            { inlineData: { mimeType: "image/png", data: "iVBORw0KGgo=" } },
            { text: "What is this?" },
          ],
        },
      ],
      generationConfig: { thinkingConfig: { thinkingBudget: 8192, includeThoughts: true } },
    });
  });

  it("gives a blocked prompt, Gemini's errors and a cut stream in Anthropic's envelope", async () => {
    const hello = [{ role: "user" as const, content: "Hello" }];
    gemini.enqueue({ kind: "block" });
    const blocked = await anthropic.messages
      .create({ model, max_tokens: 64, messages: hello })
      .catch((error: unknown) => error);
    expect(blocked).toBeInstanceOf(Anthropic.BadRequestError);
    expect((blocked as InstanceType<typeof Anthropic.BadRequestError>).error).toMatchObject({
      type: "error",
      error: { type: "invalid_request_error" },
    });

    gemini.enqueue({ kind: "status", status: 404 });
    const missing = await anthropic.messages
      .create({ model, max_tokens: 64, messages: hello })
      .catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(Anthropic.NotFoundError);

    gemini.enqueue({ kind: "cutStream", afterEvents: 1 });
    const response = await fetch(`${running.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": "sk-client" },
      body: JSON.stringify({
        model,
        max_tokens: 64,
        stream: true,
        messages: [{ role: "user", content: "one two three" }],
      }),
    });
    const text = await response.text();
    expect(text).toContain("event: message_start");
    expect(text.trimEnd().split("\n\n").at(-1)).toContain("event: error");
    expect(text).not.toContain("message_stop");
  });

  it("counts tokens with Gemini's countTokens", async () => {
    const counted = await anthropic.messages.countTokens({
      model,
      messages: [{ role: "user", content: "Count these words, please." }],
    });
    expect(counted.input_tokens).toBeGreaterThan(0);
    expect(counted).not.toHaveProperty("estimated");
    expect(gemini.requests[0]?.path).toBe(`/v1beta/models/${model}:countTokens`);
    expect(sent()).toMatchObject({
      generateContentRequest: {
        model: `models/${model}`,
        contents: [{ role: "user", parts: [{ text: "Count these words, please." }] }],
      },
    });
  });

  it("answers in Anthropic's form from a Gemini fallback when the Anthropic target fails", async () => {
    anthropicMock.enqueue({ kind: "status", status: 529 });
    const message = await anthropic.messages.create({
      model: "claude",
      max_tokens: 64,
      messages: [{ role: "user", content: "Hello" }],
    });
    expect(message.type).toBe("message");
    expect(message.content).toEqual([{ type: "text", text: "gemini: Hello" }]);
    expect(gemini.requests[0]?.path).toBe("/v1beta/models/gemini-2.5-flash:generateContent");
    expect(anthropicMock.requests).toHaveLength(1);
    expect(gemini.requests).toHaveLength(1);
  });
});
