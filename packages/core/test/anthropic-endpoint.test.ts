import { createMemoryCache } from "@aigw/cache";
import { createAnthropic, createOpenAICompatible } from "@aigw/provider";
import {
  type AnthropicMock,
  type MockUpstream,
  startAnthropicMock,
  startMockUpstream,
} from "@aigw/testing";
import Anthropic from "@anthropic-ai/sdk";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { hashApiKey } from "../src/index.js";
import { type RunningGateway, startGateway } from "./start-gateway.js";

// The Anthropic Messages API on the gateway, with the official Anthropic SDK as the client.
const upstreamKey = "sk-ant-upstream-0123456789abcdef0123456789";
const clientKey = "aigw-anthropic-client-key";
let mock: AnthropicMock;
let openai: MockUpstream;
let running: RunningGateway;
let client: Anthropic;

beforeAll(async () => {
  mock = await startAnthropicMock({ apiKey: upstreamKey });
  openai = await startMockUpstream();
  running = await startGateway({
    providers: {
      anthropic: createAnthropic({
        apiKey: upstreamKey,
        baseURL: `${mock.url}/v1`,
        retry: { maxRetries: 0 },
      }),
      openai: createOpenAICompatible({ baseURL: openai.baseURL, retry: { maxRetries: 0 } }),
    },
    models: {
      "claude-*": { provider: "anthropic" },
      cached: { provider: "anthropic", model: "claude-sonnet-4-5", cache: true },
      "gpt-*": { provider: "openai" },
    },
    tenants: { team: { keyHashes: [hashApiKey(clientKey)] } },
    cache: { store: createMemoryCache(), enabled: false },
  });
  client = new Anthropic({ baseURL: running.url, apiKey: clientKey, maxRetries: 0 });
});
afterEach(() => {
  mock.reset();
  openai.reset();
});
afterAll(async () => {
  await running?.close();
  await mock?.close();
  await openai?.close();
});

const model = "claude-sonnet-4-5";
const hello = [{ role: "user" as const, content: "Hello" }];

describe("POST /v1/messages to an Anthropic upstream", () => {
  it("answers the SDK's messages.create as the upstream did, with the gateway's key kept home", async () => {
    const message = await client.messages.create({ model, max_tokens: 64, messages: hello });
    expect(message.type).toBe("message");
    expect(message.content[0]?.type).toBe("text");
    expect(message.usage.input_tokens).toBeGreaterThan(0);
    const sent = mock.requests[0];
    expect(sent?.path).toBe("/v1/messages");
    expect(sent?.headers["x-api-key"]).toBe(upstreamKey);
    expect(JSON.stringify(sent?.headers)).not.toContain(clientKey);
  });

  it("sends the client's body byte for byte: thinking with its signature, cache_control with its ttl, unknown fields", async () => {
    const body = `{"model":"${model}","max_tokens":64,"messages":[{"role":"user","content":[{"type":"text","text":"Hi","cache_control":{"type":"ephemeral","ttl":"1h"}}]},{"role":"assistant","content":[{"type":"thinking","thinking":"Let me see.","signature":"sig-1=="},{"type":"text","text":"Hello"}]},{"role":"user","content":"Again"}],"seed":9007199254740993,"future_field":{"x":1}}`;
    const response = await fetch(`${running.url}/v1/messages`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-api-key": clientKey,
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "extended-cache-ttl-2025-04-11",
      },
      body,
    });
    expect(response.status).toBe(200);
    await response.text();
    expect(mock.requests[0]?.rawBody).toBe(body);
    expect(mock.requests[0]?.headers["anthropic-beta"]).toBe("extended-cache-ttl-2025-04-11");
  });

  it("streams in Anthropic's events, which the SDK's stream helper assembles", async () => {
    const stream = client.messages.stream({ model, max_tokens: 64, messages: hello });
    const texts: string[] = [];
    stream.on("text", (text) => texts.push(text));
    const message = await stream.finalMessage();
    expect(message.stop_reason).toBe("end_turn");
    const text = message.content.find((block) => block.type === "text");
    expect(texts.join("")).toBe(text?.type === "text" ? text.text : "");
    expect(texts.length).toBeGreaterThan(1);
  });

  it("gives errors in Anthropic's envelope, which the SDK raises as its own classes", async () => {
    await expect(
      client.messages.create({ model: "nothing-routes-here", max_tokens: 8, messages: hello }),
    ).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    const anonymous = new Anthropic({ baseURL: running.url, apiKey: "wrong", maxRetries: 0 });
    await expect(
      anonymous.messages.create({ model, max_tokens: 8, messages: hello }),
    ).rejects.toBeInstanceOf(Anthropic.AuthenticationError);
    mock.enqueue({ kind: "status", status: 529 });
    const overloaded = await client.messages
      .create({ model, max_tokens: 8, messages: hello })
      .catch((error: unknown) => error);
    expect(overloaded).toBeInstanceOf(Anthropic.APIError);
    expect((overloaded as { error: { error: { type: string } } }).error.error.type).toBe(
      "overloaded_error",
    );
    const response = await fetch(`${running.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": clientKey },
      body: JSON.stringify({ model, messages: hello }),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      type: "error",
      error: { type: "invalid_request_error", message: "max_tokens: Field required" },
    });
  });

  it("ends a stream that fails midway with an error event, and nothing after it", async () => {
    mock.enqueue({ kind: "midStreamError", afterEvents: 4 });
    const response = await fetch(`${running.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": clientKey },
      body: JSON.stringify({ model, max_tokens: 64, stream: true, messages: hello }),
    });
    const text = await response.text();
    expect(text).toContain("event: error");
    expect(text.trimEnd().split("\n\n").at(-1)).toContain("event: error");
  });

  it("answers again from the response cache, and refuses a target that does not speak the protocol", async () => {
    const first = await client.messages.create({
      model: "cached",
      max_tokens: 64,
      messages: hello,
    });
    const again = await client.messages
      .create({ model: "cached", max_tokens: 64, messages: hello, metadata: { user_id: "u-2" } })
      .withResponse();
    expect(again.response.headers.get("x-aigw-cache")).toBe("HIT");
    expect(again.data).toEqual(first);
    expect(mock.requests.length).toBe(1);

    const refused = await client.messages
      .create({ model: "gpt-4o-mini", max_tokens: 8, messages: hello })
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(Anthropic.BadRequestError);
    expect(openai.requests.length).toBe(0);
  });
});
