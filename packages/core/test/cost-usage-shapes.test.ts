import { createAnthropic, createGemini, createOpenAICompatible } from "@aigw/provider";
import {
  type AnthropicMock,
  type GeminiMock,
  type MockUpstream,
  startAnthropicMock,
  startGeminiMock,
  startMockUpstream,
} from "@aigw/testing";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningGateway, startGateway } from "./start-gateway.js";

// Each provider reports usage its own way; the cost is computed from the one shape the gateway
// reads them into, at the built-in table's prices (USD per million tokens, in nano-USD per token):
// claude-sonnet-4-5 input 3 = 3,000, cache read 300, 5-minute write 3,750, 1-hour write 6,000,
// output 15,000; gpt-4o-mini input 150, cached 75, output 600; gemini-2.5-flash input 300,
// cached 30, output (thoughts included) 2,500.

const anthropicKey = "sk-ant-upstream-0123456789abcdef0123456789";
const geminiKey = "gemini-upstream-key-0123456789";
let anthropicMock: AnthropicMock;
let geminiMock: GeminiMock;
let openaiMock: MockUpstream;
let running: RunningGateway;

beforeAll(async () => {
  anthropicMock = await startAnthropicMock({ apiKey: anthropicKey });
  geminiMock = await startGeminiMock({ apiKey: geminiKey });
  openaiMock = await startMockUpstream();
  running = await startGateway({
    providers: {
      anthropic: createAnthropic({ apiKey: anthropicKey, baseURL: `${anthropicMock.url}/v1` }),
      gemini: createGemini({ apiKey: geminiKey, baseURL: geminiMock.baseURL }),
      openai: createOpenAICompatible({ baseURL: openaiMock.baseURL }),
    },
    models: {
      "claude-sonnet-4-5": { provider: "anthropic" },
      "gemini-2.5-flash": { provider: "gemini" },
      "gpt-4o-mini": { provider: "openai" },
    },
  });
});
afterAll(async () => {
  await running?.close();
  await anthropicMock?.close();
  await geminiMock?.close();
  await openaiMock?.close();
});

const hello = [{ role: "user" as const, content: "Hello" }];

describe("the cost of each provider's usage", () => {
  // Anthropic's input_tokens leave out cache reads and writes: 100 + 2,000 + 300 in all.
  const cachedReply = {
    kind: "reply" as const,
    content: [{ type: "text" as const, text: "Hi" }],
    usage: {
      input_tokens: 100,
      output_tokens: 50,
      cache_read_input_tokens: 2_000,
      cache_creation_input_tokens: 300,
      cache_creation: { ephemeral_5m_input_tokens: 100, ephemeral_1h_input_tokens: 200 },
    },
  };
  const cachedCost = "0.003225"; // 300,000 + 600,000 + 375,000 + 1,200,000 + 750,000

  it("Anthropic: cache reads and 5-minute and 1-hour writes, to an Anthropic client", async () => {
    const client = new Anthropic({ baseURL: running.url, apiKey: "sk-any", maxRetries: 0 });
    anthropicMock.enqueue(cachedReply);
    const { response } = await client.messages
      .create({ model: "claude-sonnet-4-5", max_tokens: 100, messages: hello })
      .withResponse();
    expect(response.headers.get("x-aigw-cost-usd")).toBe(cachedCost);

    anthropicMock.enqueue(cachedReply);
    const raw = await fetch(`${running.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": "sk-any" },
      body: JSON.stringify({
        model: "claude-sonnet-4-5",
        max_tokens: 100,
        messages: hello,
        stream: true,
      }),
    });
    const text = await raw.text();
    expect(text).toContain("event: message_stop");
    expect(text.endsWith(`: x-aigw-cost-usd: ${cachedCost}\n\n`)).toBe(true);

    anthropicMock.enqueue(cachedReply);
    const stream = client.messages.stream({
      model: "claude-sonnet-4-5",
      max_tokens: 100,
      messages: hello,
    });
    expect((await stream.finalMessage()).usage.cache_read_input_tokens).toBe(2_000);
  });

  it("Anthropic translated for an OpenAI client costs the same", async () => {
    anthropicMock.enqueue(cachedReply);
    const client = new OpenAI({ baseURL: `${running.url}/v1`, apiKey: "sk-any", maxRetries: 0 });
    const { data, response } = await client.chat.completions
      .create({ model: "claude-sonnet-4-5", messages: hello })
      .withResponse();
    expect(data.usage?.prompt_tokens).toBe(2_400);
    expect(response.headers.get("x-aigw-cost-usd")).toBe(cachedCost);
  });

  it("OpenAI: cached prompt tokens at the cached rate, reasoning within output", async () => {
    const chunk = (extra: object) => ({
      id: "chatcmpl-1",
      object: "chat.completion.chunk",
      created: 1,
      model: "gpt-4o-mini",
      ...extra,
    });
    openaiMock.enqueue({
      kind: "events",
      events: [
        chunk({ choices: [{ index: 0, delta: { content: "Hi" }, finish_reason: "stop" }] }),
        chunk({
          choices: [],
          usage: {
            prompt_tokens: 1_000,
            completion_tokens: 200,
            total_tokens: 1_200,
            prompt_tokens_details: { cached_tokens: 600 },
            completion_tokens_details: { reasoning_tokens: 150 },
          },
        }),
        "[DONE]",
      ],
    });
    const response = await fetch(`${running.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: hello, stream: true }),
    });
    // 400 × 150 + 600 × 75 + 200 × 600
    expect((await response.text()).endsWith(": x-aigw-cost-usd: 0.000225\n\n")).toBe(true);
  });

  it("Gemini: thoughts billed as output, cached content at the cached rate", async () => {
    geminiMock.enqueue({
      kind: "reply",
      parts: [{ text: "Hi" }],
      usageMetadata: {
        promptTokenCount: 1_000,
        cachedContentTokenCount: 200,
        candidatesTokenCount: 100,
        thoughtsTokenCount: 400,
        totalTokenCount: 1_500,
      },
    });
    const client = new OpenAI({ baseURL: `${running.url}/v1`, apiKey: "sk-any", maxRetries: 0 });
    const { data, response } = await client.chat.completions
      .create({ model: "gemini-2.5-flash", messages: hello })
      .withResponse();
    expect(data.usage?.completion_tokens_details?.reasoning_tokens).toBe(400);
    // 800 × 300 + 200 × 30 + 500 × 2,500
    expect(response.headers.get("x-aigw-cost-usd")).toBe("0.001496");
  });
});
