import { createAnthropic, createOpenAICompatible } from "@aigw/provider";
import {
  type AnthropicMock,
  type MockUpstream,
  startAnthropicMock,
  startMockUpstream,
} from "@aigw/testing";
import Anthropic from "@anthropic-ai/sdk";
import fc from "fast-check";
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { anthropicProtocol } from "../src/protocols/anthropic/index.js";
import { openAIProtocol } from "../src/protocols/openai/index.js";
import { type RunningGateway, startGateway } from "./start-gateway.js";

// Requests are checked per endpoint against loose schemas: a wrong field is a 400 in the
// client's protocol naming its path, and nothing reaches the upstream; everything the schemas
// do not name passes, and the body goes on as the client wrote it.

let openai: MockUpstream;
let anthropic: AnthropicMock;
let running: RunningGateway;

beforeAll(async () => {
  openai = await startMockUpstream();
  anthropic = await startAnthropicMock();
  running = await startGateway({
    providers: {
      openai: createOpenAICompatible({ baseURL: openai.baseURL, retry: { maxRetries: 0 } }),
      anthropic: createAnthropic({
        apiKey: "sk-ant-upstream",
        baseURL: `${anthropic.url}/v1`,
        retry: { maxRetries: 0 },
      }),
    },
    models: {
      "gpt-*": { provider: "openai" },
      "claude-*": { provider: "anthropic" },
      // Messages requests translated for an OpenAI-compatible target.
      translated: { provider: "openai", model: "gpt-4o-mini" },
    },
  });
});
afterEach(() => {
  openai.reset();
  anthropic.reset();
});
afterAll(async () => {
  await running?.close();
  await openai?.close();
  await anthropic?.close();
});

/** An error in OpenAI's shape, or in Anthropic's (`type: "error"`, no param or code). */
interface ErrorAnswer {
  type?: string;
  error: { message: string; type: string; param?: string | null; code?: string | null };
}

async function post(path: string, body: unknown) {
  const response = await fetch(`${running.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, text, json: JSON.parse(text) as ErrorAnswer };
}

const chat = (extra: Record<string, unknown>) => ({
  model: "gpt-4o-mini",
  messages: [{ role: "user", content: "Hello" }],
  ...extra,
});
const userSays = (...content: unknown[]) => [
  { role: "system", content: "Be brief." },
  { role: "assistant", content: "Hi." },
  { role: "user", content },
];

describe("OpenAI endpoints: a 400 naming the field's path, and nothing sent upstream", () => {
  it.each([
    [
      "model missing",
      "/v1/chat/completions",
      { messages: [] },
      "model",
      "missing_required_parameter",
    ],
    ["model empty", "/v1/chat/completions", chat({ model: "" }), "model", "invalid_value"],
    [
      "model too long",
      "/v1/embeddings",
      { model: "m".repeat(257), input: "x" },
      "model",
      "invalid_value",
    ],
    [
      "messages missing",
      "/v1/chat/completions",
      { model: "gpt-4o-mini" },
      "messages",
      "missing_required_parameter",
    ],
    [
      "messages not an array",
      "/v1/chat/completions",
      chat({ messages: "Hello" }),
      "messages",
      "invalid_type",
    ],
    [
      "an unknown role",
      "/v1/chat/completions",
      chat({ messages: [{ role: "robot", content: "x" }] }),
      "messages[0].role",
      "invalid_value",
    ],
    [
      "a message without role",
      "/v1/chat/completions",
      chat({ messages: [{ content: "x" }] }),
      "messages[0].role",
      "missing_required_parameter",
    ],
    [
      "content a number",
      "/v1/chat/completions",
      chat({ messages: [{ role: "user", content: 5 }] }),
      "messages[0].content",
      "invalid_type",
    ],
    [
      "a user message without content",
      "/v1/chat/completions",
      chat({ messages: [{ role: "user" }] }),
      "messages[0].content",
      "missing_required_parameter",
    ],
    [
      "a content part that is no object",
      "/v1/chat/completions",
      chat({ messages: [{ role: "user", content: ["x"] }] }),
      "messages[0].content[0]",
      "invalid_type",
    ],
    [
      "a content part without type",
      "/v1/chat/completions",
      chat({ messages: [{ role: "user", content: [{ text: "x" }] }] }),
      "messages[0].content[0].type",
      "missing_required_parameter",
    ],
    [
      "a text part without text",
      "/v1/chat/completions",
      chat({ messages: [{ role: "user", content: [{ type: "text" }] }] }),
      "messages[0].content[0].text",
      "missing_required_parameter",
    ],
    [
      "an ftp image URL",
      "/v1/chat/completions",
      chat({
        messages: userSays({ type: "image_url", image_url: { url: "ftp://example.com/cat.png" } }),
      }),
      "messages[2].content[0].image_url.url",
      "invalid_value",
    ],
    [
      "a file image URL",
      "/v1/chat/completions",
      chat({
        messages: userSays(
          { type: "text", text: "see" },
          { type: "image_url", image_url: "file:///etc/passwd" },
        ),
      }),
      "messages[2].content[1].image_url",
      "invalid_value",
    ],
    [
      "an image part without image_url",
      "/v1/chat/completions",
      chat({ messages: userSays({ type: "image_url" }) }),
      "messages[2].content[0].image_url",
      "missing_required_parameter",
    ],
    [
      "a tool message without tool_call_id",
      "/v1/chat/completions",
      chat({ messages: [{ role: "tool", content: "42" }] }),
      "messages[0].tool_call_id",
      "missing_required_parameter",
    ],
    [
      "temperature above 2",
      "/v1/chat/completions",
      chat({ temperature: 2.5 }),
      "temperature",
      "invalid_value",
    ],
    [
      "temperature below 0",
      "/v1/completions",
      { model: "gpt-4o-mini", prompt: "x", temperature: -0.1 },
      "temperature",
      "invalid_value",
    ],
    [
      "temperature a string",
      "/v1/chat/completions",
      chat({ temperature: "0.5" }),
      "temperature",
      "invalid_type",
    ],
    [
      "top_p above 1",
      "/v1/responses",
      { model: "gpt-4o-mini", input: "x", top_p: 1.5 },
      "top_p",
      "invalid_value",
    ],
    ["n of 0", "/v1/chat/completions", chat({ n: 0 }), "n", "invalid_value"],
    ["n not whole", "/v1/chat/completions", chat({ n: 1.5 }), "n", "invalid_value"],
    [
      "max_tokens of 0",
      "/v1/chat/completions",
      chat({ max_tokens: 0 }),
      "max_tokens",
      "invalid_value",
    ],
    [
      "max_completion_tokens of -1",
      "/v1/chat/completions",
      chat({ max_completion_tokens: -1 }),
      "max_completion_tokens",
      "invalid_value",
    ],
    [
      "max_output_tokens not whole",
      "/v1/responses",
      { model: "gpt-4o-mini", input: "x", max_output_tokens: 10.5 },
      "max_output_tokens",
      "invalid_value",
    ],
    [
      "presence_penalty above 2",
      "/v1/chat/completions",
      chat({ presence_penalty: 2.5 }),
      "presence_penalty",
      "invalid_value",
    ],
    [
      "frequency_penalty below -2",
      "/v1/completions",
      { model: "gpt-4o-mini", prompt: "x", frequency_penalty: -3 },
      "frequency_penalty",
      "invalid_value",
    ],
    [
      "tools not an array",
      "/v1/chat/completions",
      chat({ tools: { type: "function" } }),
      "tools",
      "invalid_type",
    ],
    [
      "a function tool without a name",
      "/v1/chat/completions",
      chat({ tools: [{ type: "function", function: {} }] }),
      "tools[0].function.name",
      "missing_required_parameter",
    ],
    [
      "tool_choice naming no tool",
      "/v1/chat/completions",
      chat({ tool_choice: { type: "function", function: { name: "get_weather" } } }),
      "tool_choice.function.name",
      "invalid_value",
    ],
    [
      "tool_choice naming another tool",
      "/v1/chat/completions",
      chat({
        tools: [{ type: "function", function: { name: "get_time" } }],
        tool_choice: { type: "function", function: { name: "get_weather" } },
      }),
      "tool_choice.function.name",
      "invalid_value",
    ],
    [
      "stream not a boolean",
      "/v1/chat/completions",
      chat({ stream: "yes" }),
      "stream",
      "invalid_type",
    ],
    [
      "input missing",
      "/v1/embeddings",
      { model: "gpt-4o-mini" },
      "input",
      "missing_required_parameter",
    ],
    [
      "input an object",
      "/v1/embeddings",
      { model: "gpt-4o-mini", input: { text: "x" } },
      "input",
      "invalid_type",
    ],
    [
      "input mixing strings and numbers",
      "/v1/embeddings",
      { model: "gpt-4o-mini", input: ["a", 1] },
      "input[1]",
      "invalid_type",
    ],
    [
      "input token arrays holding a string",
      "/v1/embeddings",
      {
        model: "gpt-4o-mini",
        input: [
          [1, 2],
          [3, "x"],
        ],
      },
      "input[1][1]",
      "invalid_type",
    ],
    [
      "prompt missing",
      "/v1/completions",
      { model: "gpt-4o-mini" },
      "prompt",
      "missing_required_parameter",
    ],
    [
      "prompt null",
      "/v1/completions",
      { model: "gpt-4o-mini", prompt: null },
      "prompt",
      "invalid_type",
    ],
    [
      "an empty image prompt",
      "/v1/images/generations",
      { model: "gpt-4o-mini", prompt: "" },
      "prompt",
      "invalid_value",
    ],
    [
      "images n of 0",
      "/v1/images/generations",
      { model: "gpt-4o-mini", prompt: "a cat", n: 0 },
      "n",
      "invalid_value",
    ],
    [
      "responses input a number",
      "/v1/responses",
      { model: "gpt-4o-mini", input: 5 },
      "input",
      "invalid_type",
    ],
  ] as const)("%s", async (_case, path, body, param, code) => {
    const { status, json } = await post(path, body);
    expect(status).toBe(400);
    expect(json.error).toMatchObject({ type: "invalid_request_error", param, code });
    expect(json.error.message).toContain(`'${param}'`);
    expect(openai.requests).toHaveLength(0);
  });

  it("says what was expected and what came", async () => {
    const { json } = await post("/v1/chat/completions", chat({ temperature: 3 }));
    expect(json.error.message).toBe("Invalid 'temperature': expected a number from 0 to 2, got 3.");
    const role = await post("/v1/chat/completions", chat({ messages: [{ role: "robot" }] }));
    expect(role.json.error.message).toBe(
      "Invalid 'messages[0].role': expected one of 'system', 'developer', 'user', 'assistant', 'tool', 'function', got \"robot\".",
    );
    const missing = await post("/v1/embeddings", { model: "gpt-4o-mini" });
    expect(missing.json.error.message).toBe("Missing required parameter: 'input'.");
  });

  it("echoes at most 100 characters of what the client sent", async () => {
    const role = "r".repeat(100_000);
    const { status, json } = await post("/v1/chat/completions", chat({ messages: [{ role }] }));
    expect(status).toBe(400);
    expect(json.error.message.length).toBeLessThan(300);
    const url = `ftp://${"x".repeat(50_000)}`;
    const image = await post(
      "/v1/chat/completions",
      chat({ messages: userSays({ type: "image_url", image_url: { url } }) }),
    );
    expect(image.json.error.param).toBe("messages[2].content[0].image_url.url");
    expect(image.json.error.message.length).toBeLessThan(300);
  });

  it.each([
    [
      "developer and tool messages, an assistant without content",
      {
        messages: [
          { role: "developer", content: "Be brief." },
          { role: "user", content: "Weather?" },
          {
            role: "assistant",
            content: null,
            tool_calls: [{ id: "c1", type: "function", function: { name: "w", arguments: "{}" } }],
          },
          { role: "tool", tool_call_id: "c1", content: "sunny" },
        ],
      },
    ],
    // A result whose call was trimmed from the history is the upstream's to judge.
    [
      "a tool message after no call",
      { messages: [{ role: "tool", tool_call_id: "c9", content: "sunny" }] },
    ],
    [
      "http, https and data: image URLs, and a URL given as a string",
      {
        messages: userSays(
          { type: "image_url", image_url: { url: "https://example.com/cat.png", detail: "low" } },
          { type: "image_url", image_url: { url: "HTTP://example.com/cat.png" } },
          { type: "image_url", image_url: "data:image/png;base64,iVBORw0KGgo=" },
        ),
      },
    ],
    [
      "parts of types the gateway does not know",
      {
        messages: userSays(
          { type: "input_audio", input_audio: { data: "UklGRg==", format: "wav" } },
          { type: "future_part", anything: [1, { deep: true }] },
        ),
      },
    ],
    [
      "null for optional fields",
      { temperature: null, top_p: null, n: null, max_tokens: null, tools: null, tool_choice: null },
    ],
    [
      "the ends of each range",
      { temperature: 2, top_p: 0, n: 1, max_tokens: 1, presence_penalty: -2, frequency_penalty: 2 },
    ],
    // How large a cap may be is the upstream's to say.
    ["a max_tokens past 2^53", { max_tokens: 2 ** 60 }],
    [
      "a tool_choice naming a tool that is there, and string tool_choices",
      {
        tools: [
          { type: "function", function: { name: "get_weather" } },
          { type: "custom", custom: { name: "x" } },
        ],
        tool_choice: { type: "function", function: { name: "get_weather" } },
      },
    ],
    [
      "tool_choice: required",
      { tools: [{ type: "function", function: { name: "f" } }], tool_choice: "required" },
    ],
    [
      "a tool_choice of a type the gateway does not know",
      { tool_choice: { type: "allowed_tools", mode: "auto" } },
    ],
  ])("passes %s", async (_case, extra) => {
    const { status, text } = await post("/v1/chat/completions", chat(extra));
    expect(status, text).toBe(200);
    expect(openai.requests).toHaveLength(1);
  });

  it.each([
    ["/v1/embeddings", { model: "gpt-4o-mini", input: "one" }],
    ["/v1/embeddings", { model: "gpt-4o-mini", input: ["one", "two"] }],
    ["/v1/embeddings", { model: "gpt-4o-mini", input: [1, 2, 3] }],
    ["/v1/embeddings", { model: "gpt-4o-mini", input: [[1, 2], [3]] }],
    ["/v1/completions", { model: "gpt-4o-mini", prompt: [[1, 2], [3]], n: 2 }],
    ["/v1/responses", { model: "gpt-4o-mini" }],
    ["/v1/responses", { model: "gpt-4o-mini", input: [{ role: "user", content: "x" }] }],
    ["/v1/images/generations", { model: "gpt-4o-mini", prompt: "a cat", n: 2 }],
  ])("passes %s %j", async (path, body) => {
    const { status, text } = await post(path, body);
    expect(status, text).toBe(200);
  });

  it("answers the openai SDK with the error's param and code", async () => {
    const client = new OpenAI({ baseURL: `${running.url}/v1`, apiKey: "sk-client", maxRetries: 0 });
    const failure = await client.chat.completions
      .create({
        model: "gpt-4o-mini",
        messages: [
          { role: "user", content: [{ type: "image_url", image_url: { url: "gopher://x" } }] },
        ],
      })
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(OpenAI.BadRequestError);
    const { status, param, code, type } = failure as InstanceType<typeof OpenAI.BadRequestError>;
    expect({ status, param, code, type }).toEqual({
      status: 400,
      param: "messages[0].content[0].image_url.url",
      code: "invalid_value",
      type: "invalid_request_error",
    });
    const answer = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "Hello" }],
      temperature: 2,
      // @ts-expect-error a vendor's field the SDK does not know
      top_k: 40,
    });
    expect(answer.choices[0]?.message.role).toBe("assistant");
    expect(openai.requests[0]?.body).toMatchObject({ top_k: 40 });
  });
});

describe("Anthropic's Messages API: a 400 in Anthropic's envelope, starting with the path", () => {
  const message = (extra: Record<string, unknown>) => ({
    model: "claude-sonnet-4-5",
    max_tokens: 64,
    messages: [{ role: "user", content: "Hello" }],
    ...extra,
  });
  const askedFor = (...content: unknown[]) => [
    { role: "user", content: "Look." },
    { role: "assistant", content: "Where?" },
    { role: "user", content },
  ];

  it.each([
    ["model missing", "/v1/messages", { max_tokens: 1, messages: [] }, "model: Field required"],
    [
      "max_tokens missing",
      "/v1/messages",
      { model: "claude-sonnet-4-5", messages: [{ role: "user", content: "Hello" }] },
      "max_tokens: Field required",
    ],
    [
      "max_tokens of 0",
      "/v1/messages",
      message({ max_tokens: 0 }),
      "max_tokens: Input should be an integer of at least 1",
    ],
    [
      "messages not a list",
      "/v1/messages",
      message({ messages: "Hello" }),
      "messages: Input should be an array",
    ],
    [
      "no messages",
      "/v1/messages",
      message({ messages: [] }),
      "messages: Input should be a non-empty array",
    ],
    [
      "an unknown role",
      "/v1/messages",
      message({ messages: [{ role: "robot", content: "x" }] }),
      "messages.0.role: Input should be one of 'user', 'assistant', 'system'",
    ],
    [
      "content a number",
      "/v1/messages",
      message({ messages: [{ role: "user", content: 5 }] }),
      "messages.0.content: Input should be a string or an array of content blocks",
    ],
    [
      "a block without type",
      "/v1/messages",
      message({ messages: [{ role: "user", content: [{ text: "x" }] }] }),
      "messages.0.content.0.type: Field required",
    ],
    [
      "a block of a type that is no string",
      "/v1/messages",
      message({ messages: [{ role: "user", content: [{ type: 7 }] }] }),
      "messages.0.content.0.type: Input should be a string",
    ],
    [
      "an ftp image URL",
      "/v1/messages",
      message({
        messages: askedFor({
          type: "image",
          source: { type: "url", url: "ftp://example.com/cat.png" },
        }),
      }),
      "messages.2.content.0.source.url: Input should be an http(s) or data: URL",
    ],
    [
      "a javascript: image URL in a tool result",
      "/v1/messages",
      message({
        messages: askedFor({
          type: "tool_result",
          tool_use_id: "t1",
          content: [{ type: "image", source: { type: "url", url: "javascript:alert(1)" } }],
        }),
      }),
      "messages.2.content.0.content.0.source.url: Input should be an http(s) or data: URL",
    ],
    [
      "temperature above 1",
      "/v1/messages",
      message({ temperature: 1.5 }),
      "temperature: Input should be a number from 0 to 1",
    ],
    [
      "top_p below 0",
      "/v1/messages",
      message({ top_p: -0.5 }),
      "top_p: Input should be a number from 0 to 1",
    ],
    [
      "tool_choice naming no tool",
      "/v1/messages",
      message({
        tools: [{ name: "get_time", input_schema: { type: "object" } }],
        tool_choice: { type: "tool", name: "get_weather" },
      }),
      "tool_choice.name: Input should be the name of a tool in 'tools'",
    ],
    [
      "stream not a boolean",
      "/v1/messages",
      message({ stream: 1 }),
      "stream: Input should be a boolean",
    ],
    [
      "count_tokens without messages",
      "/v1/messages/count_tokens",
      { model: "claude-sonnet-4-5" },
      "messages: Field required",
    ],
  ])("%s", async (_case, path, body, text) => {
    const { status, json } = await post(path, body);
    expect(status).toBe(400);
    expect(json).toEqual({
      type: "error",
      error: { type: "invalid_request_error", message: text },
    });
    expect(anthropic.requests).toHaveLength(0);
  });

  it.each([
    // Claude Code sends system messages between the others.
    [
      "a system message among the messages, and an assistant first",
      {
        messages: [
          { role: "assistant", content: "Hi." },
          { role: "user", content: "Hello" },
          { role: "system", content: "Available agents: none" },
        ],
      },
    ],
    [
      "base64, file and https sources, blocks of unknown types, extras",
      {
        messages: askedFor(
          {
            type: "image",
            source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" },
          },
          { type: "image", source: { type: "url", url: "https://example.com/cat.png" } },
          { type: "document", source: { type: "file", file_id: "file_1" } },
          { type: "future_block", whatever: { x: 1 } },
        ),
        thinking: { type: "enabled", budget_tokens: 1024 },
        top_k: 5,
      },
    ],
    [
      "a tool_choice naming a tool that is there",
      {
        tools: [
          { name: "get_weather", input_schema: { type: "object" } },
          { type: "web_search_20250305", name: "web_search" },
        ],
        tool_choice: { type: "tool", name: "get_weather" },
      },
    ],
  ])("passes %s", async (_case, extra) => {
    const { status, text } = await post("/v1/messages", message(extra));
    expect(status, text).toBe(200);
    expect(anthropic.requests).toHaveLength(1);
  });

  it("counts tokens of a body without max_tokens or messages", async () => {
    const { status } = await post("/v1/messages/count_tokens", {
      model: "claude-sonnet-4-5",
      messages: [],
    });
    expect(status).toBe(200);
  });

  it("answers the Anthropic SDK with the path in its error", async () => {
    const client = new Anthropic({ baseURL: running.url, apiKey: "sk-client", maxRetries: 0 });
    const failure = await client.messages
      .create({
        model: "claude-sonnet-4-5",
        max_tokens: 64,
        messages: [
          {
            role: "user",
            content: [{ type: "image", source: { type: "url", url: "ftp://example.com/x.png" } }],
          },
        ],
      })
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(Anthropic.BadRequestError);
    const { status, error } = failure as InstanceType<typeof Anthropic.BadRequestError>;
    expect(status).toBe(400);
    expect(error).toMatchObject({
      type: "error",
      error: {
        type: "invalid_request_error",
        message: expect.stringMatching(/^messages\.0\.content\.0\.source\.url: /),
      },
    });
    const answer = await client.messages.create({
      model: "claude-sonnet-4-5",
      max_tokens: 64,
      messages: [{ role: "user", content: "Hello" }],
    });
    expect(answer.type).toBe("message");
  });
});

describe("loose schemas: the body goes on as the client wrote it", () => {
  const extras =
    '"top_k":40,"guided_json":{"type":"object"},"extra_body":{"seed":12345678901234567890},' +
    '"vendor_id":12345678901234567890,"thinking":{"type":"enabled","budget_tokens":1024}';

  it("passes extras, unknown parts and numbers past 2^53 to an OpenAI upstream byte for byte", async () => {
    const text =
      '{"model":"gpt-4o-mini","messages":[{"role":"user","content":[' +
      '{"type":"text","text":"Hi \\u00e9"},' +
      '{"type":"input_audio","input_audio":{"data":"UklGRg==","format":"wav"}},' +
      '{"type":"future_part","n":1.0e0}]}],' +
      `${extras},"__proto__":{"polluted":true}}`;
    const { status } = await post("/v1/chat/completions", text);
    expect(status).toBe(200);
    expect(openai.requests[0]?.rawBody).toBe(text);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("passes extras, unknown blocks and numbers past 2^53 to an Anthropic upstream byte for byte", async () => {
    const text =
      '{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":[' +
      '{"type":"text","text":"Hi"},{"type":"future_block","x":[1,2]}]}],' +
      `${extras}}`;
    const { status } = await post("/v1/messages", text);
    expect(status).toBe(200);
    expect(anthropic.requests[0]?.rawBody).toBe(text);
  });

  it("does not walk unknown fields: a 10,000-deep array there is the body parser's 400", async () => {
    const deep = `${"[".repeat(10_000)}${"]".repeat(10_000)}`;
    const { status, json } = await post(
      "/v1/chat/completions",
      `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}],"extra":${deep}}`,
    );
    expect(status).toBe(400);
    expect(json.error.code).toBe("too_deeply_nested");
    // Called directly, with no body parser before it, validation does not descend either.
    let nested: unknown = [];
    for (let level = 0; level < 10_000; level++) nested = [nested];
    const body = {
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "x" }],
      extra: nested,
    };
    expect(openAIProtocol.validate("chat/completions", body)).toBe("gpt-4o-mini");
    const inContent = { ...body, messages: [{ role: "user", content: [nested] }] };
    expect(() => openAIProtocol.validate("chat/completions", inContent)).toThrow(
      "Invalid 'messages[0].content[0]': expected an object with a string 'type', got an array.",
    );
    const anthropicBody = {
      model: "claude-sonnet-4-5",
      max_tokens: 1,
      messages: [{ role: "user", content: [{ type: "tool_result", content: nested }] }],
      metadata: nested,
    };
    expect(() => anthropicProtocol.validate("messages", anthropicBody)).toThrow(
      /^messages\.0\.content\.0\.content\.0: /,
    );
  });

  it("checks 100,000 messages in one pass and names only the first bad one", async () => {
    const messages = Array.from({ length: 100_000 }, () => ({ role: "user", content: "hi" }));
    const ok = await post("/v1/chat/completions", { model: "gpt-4o-mini", messages });
    expect(ok.status).toBe(200);
    const bad = messages.map(() => ({ role: "robot", content: 5 }));
    const started = performance.now();
    expect(() =>
      openAIProtocol.validate("chat/completions", { model: "gpt-4o-mini", messages: bad }),
    ).toThrow("'messages[0].role'");
    expect(() =>
      anthropicProtocol.validate("messages", { model: "c", max_tokens: 1, messages: bad }),
    ).toThrow(/^messages\.0\.role: /);
    // Every message bad costs no more than every message good (a few ms each; generous).
    expect(performance.now() - started).toBeLessThan(2_000);
    const lastBad = [...messages.slice(1), { role: "user", content: [{ type: "text" }] }];
    const { status, json } = await post("/v1/chat/completions", {
      model: "gpt-4o-mini",
      messages: lastBad,
    });
    expect(status).toBe(400);
    expect(json.error.param).toBe("messages[99999].content[0].text");
  });
});

describe("fuzzing: never a 5xx, and a 4xx never reaches the upstream", () => {
  const runs = Number(process.env.AIGW_FUZZ_RUNS ?? 2_000);
  const seed = Number(process.env.AIGW_FUZZ_SEED ?? 20_261_201);

  /** The usual values mostly, now and then something else (by default any JSON value). */
  const mostly = <T>(usual: fc.Arbitrary<T>, unusual: fc.Arbitrary<unknown> = fc.jsonValue()) =>
    fc.oneof({ weight: 15, arbitrary: usual }, { weight: 1, arbitrary: unusual });
  const oddNumbers = fc.constantFrom(-1, -0.5, 2.5, 0, 2 ** 53 + 2, 2 ** 64, 1e308, "1");
  const between = (min: number, max: number) =>
    mostly(fc.double({ min, max, noNaN: true }), oddNumbers);
  const count = (max: number) => mostly(fc.integer({ min: 1, max }), oddNumbers);
  const text = fc.string({ maxLength: 20 });
  const url = mostly(
    fc.constantFrom("https://example.com/a.png", "http://x", "data:image/png;base64,AA=="),
    fc.oneof(
      fc.constantFrom("ftp://x", "file:///etc/passwd", "javascript:alert(1)", "https://", ""),
      fc.webUrl(),
      text,
    ),
  );
  const names = fc.constantFrom("get_weather", "get_time", "search");
  /** Fields a body may carry that no schema names, vendors' among them. */
  const extras = {
    top_k: fc.jsonValue(),
    guided_json: fc.jsonValue(),
    extra_body: fc.jsonValue(),
    metadata: fc.jsonValue(),
  };
  const model = (name: string) => mostly(fc.constant(name), fc.oneof(fc.jsonValue(), text));

  const openAIPart = mostly(
    fc.oneof(
      fc.record({ type: fc.constant("text"), text: mostly(text) }),
      fc.record({
        type: fc.constant("image_url"),
        image_url: mostly(fc.oneof(fc.record({ url, detail: text }), url)),
      }),
      fc.record({ type: fc.constantFrom("input_audio", "future_part"), data: fc.jsonValue() }),
    ),
  );
  const openAIContent = mostly(fc.oneof(text, fc.array(openAIPart, { maxLength: 3 })));
  const chatMessage = mostly(
    fc.oneof(
      fc.record({
        role: mostly(fc.constantFrom("system", "developer", "user"), text),
        content: openAIContent,
      }),
      fc.record(
        {
          role: fc.constant("assistant"),
          content: fc.oneof(openAIContent, fc.constant(null)),
          tool_calls: mostly(fc.array(fc.record({ id: text, type: fc.constant("function") }))),
        },
        { requiredKeys: ["role"] },
      ),
      fc.record(
        { role: fc.constant("tool"), content: openAIContent, tool_call_id: mostly(text) },
        { requiredKeys: ["role", "content"] },
      ),
    ),
  );
  const chatBody = fc.record(
    {
      model: model("gpt-4o-mini"),
      messages: mostly(fc.array(chatMessage, { maxLength: 4 })),
      temperature: between(0, 2),
      top_p: between(0, 1),
      n: count(3),
      max_tokens: count(4096),
      max_completion_tokens: count(4096),
      presence_penalty: between(-2, 2),
      frequency_penalty: between(-2, 2),
      stream: mostly(fc.boolean()),
      tools: mostly(
        fc.array(
          mostly(
            fc.record({
              type: fc.constant("function"),
              function: mostly(fc.record({ name: names })),
            }),
          ),
          { maxLength: 3 },
        ),
      ),
      tool_choice: mostly(
        fc.oneof(
          fc.constantFrom("auto", "none", "required"),
          fc.record({
            type: fc.constant("function"),
            function: mostly(fc.record({ name: names })),
          }),
        ),
      ),
      ...extras,
    },
    { requiredKeys: ["model", "messages"] },
  );

  const tokens = fc.oneof(
    text,
    fc.array(text, { maxLength: 3 }),
    fc.array(mostly(fc.nat(100_000)), { maxLength: 4 }),
    fc.array(fc.array(mostly(fc.nat(100_000)), { maxLength: 3 }), { maxLength: 3 }),
  );
  const embeddingsBody = fc.record(
    { model: model("gpt-4o-mini"), input: mostly(tokens), ...extras },
    { requiredKeys: ["model", "input"] },
  );

  const source = mostly(
    fc.oneof(
      fc.record({ type: fc.constant("url"), url }),
      fc.record({ type: fc.constant("base64"), media_type: fc.constant("image/png"), data: text }),
    ),
  );
  const anthropicBlock = mostly(
    fc.oneof(
      fc.record({ type: fc.constant("text"), text: mostly(text) }),
      fc.record({ type: fc.constantFrom("image", "document"), source }),
      fc.record({
        type: fc.constant("tool_result"),
        tool_use_id: fc.constantFrom("t1", "t2"),
        content: mostly(
          fc.oneof(
            text,
            fc.array(fc.record({ type: fc.constant("image"), source }), { maxLength: 2 }),
          ),
        ),
      }),
      fc.record({ type: fc.constantFrom("thinking", "future_block"), thinking: text }),
    ),
  );
  const messagesBody = fc.record(
    {
      model: model("translated"),
      max_tokens: count(4096),
      messages: mostly(
        fc.array(
          mostly(
            fc.record({
              role: mostly(fc.constantFrom("user", "assistant", "system"), text),
              content: mostly(fc.oneof(text, fc.array(anthropicBlock, { maxLength: 3 }))),
            }),
          ),
          { minLength: 1, maxLength: 4 },
        ),
      ),
      system: mostly(fc.oneof(text, fc.array(fc.record({ type: fc.constant("text"), text })))),
      temperature: between(0, 1),
      top_p: between(0, 1),
      stream: mostly(fc.boolean()),
      tools: mostly(
        fc.array(fc.record({ name: names, input_schema: fc.constant({ type: "object" }) }), {
          maxLength: 2,
        }),
      ),
      tool_choice: mostly(
        fc.oneof(
          fc.record({ type: fc.constantFrom("auto", "any", "none") }),
          fc.record({ type: fc.constant("tool"), name: names }),
        ),
      ),
      thinking: fc.jsonValue(),
      ...extras,
    },
    { requiredKeys: ["model", "max_tokens", "messages"] },
  );
  /**
   * Near the schema mostly, with a few fields of any name added; any object or any value (not
   * an object: a 400) sometimes.
   */
  const bodies = (near: fc.Arbitrary<Record<string, unknown>>) =>
    fc.oneof(
      {
        weight: 8,
        arbitrary: fc
          .tuple(near, fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue(), { maxKeys: 2 }))
          .map(([body, more]) => ({ ...more, ...body })),
      },
      { weight: 1, arbitrary: fc.object() },
      { weight: 1, arbitrary: fc.anything() },
    );

  it.each([
    ["/v1/chat/completions", bodies(chatBody)],
    ["/v1/embeddings", bodies(embeddingsBody)],
    // To the OpenAI-compatible mock, translated: it takes any body, where the Anthropic mock
    // refuses some the gateway rightly passes (an empty text block).
    ["/v1/messages", bodies(messagesBody)],
  ] as const)(
    `%s: ${runs} bodies`,
    async (path, arbitrary) => {
      const refused = new Set<string>();
      const statuses = new Map<number, number>();
      await fc.assert(
        fc.asyncProperty(arbitrary, async (body) => {
          const response = await fetch(`${running.url}${path}`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify(body) ?? "",
          });
          const answer = await response.text();
          statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
          expect(response.status, answer.slice(0, 500)).toBeLessThan(500);
          if (response.status >= 400) {
            refused.add(response.headers.get("x-request-id") ?? "");
            const error = JSON.parse(answer) as ErrorAnswer;
            if (path === "/v1/messages") expect(error.type).toBe("error");
            expect(typeof error.error.message).toBe("string");
          }
        }),
        { numRuns: runs, seed, endOnFailure: true },
      );
      expect(refused.has("")).toBe(false);
      const reached = openai.requests.map((request) => request.headers["x-request-id"]);
      expect(reached.filter((id) => id !== undefined && refused.has(id))).toEqual([]);
      // Both kinds of answer, in numbers: the bodies were neither all refused nor all passed.
      expect(statuses.get(200) ?? 0).toBeGreaterThan(runs / 20);
      expect(statuses.get(400) ?? 0).toBeGreaterThan(runs / 20);
    },
    60_000,
  );
});
