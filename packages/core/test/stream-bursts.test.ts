import { createServer, type Server, type ServerResponse } from "node:http";
import { createOpenAICompatible, createSseEvent } from "@aigw/provider";
import { closeServer, listen } from "@aigw/testing";
import { afterEach, describe, expect, it } from "vitest";
import { createGateway, type GatewayHooks } from "../src/index.js";
import { toNodeListener } from "../src/node.js";

// Events that reach the gateway in one socket read are handed on without a promise each
// (EventIterator.poll) and written at once: these tests make an upstream send a whole stream
// in one TCP write, as separate HTTP chunks, and check what the client gets.

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map(closeServer));
});

const chunk = (content: string) => ({
  id: "chatcmpl-burst",
  object: "chat.completion.chunk",
  created: 1,
  model: "gpt-burst",
  choices: [{ index: 0, delta: { content }, finish_reason: null }],
});

/** An upstream that writes `events` (each its own HTTP chunk) in one corked socket write. */
async function burstUpstream(events: string[]): Promise<string> {
  const server = createServer((request, response) => {
    request.resume();
    request.on("end", () => {
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.socket?.cork();
      for (const event of events) response.write(event);
      response.end();
      process.nextTick(() => response.socket?.uncork());
    });
  });
  servers.push(server);
  return `${(await listen(server)).url}/v1`;
}

/**
 * A gateway in front of `baseURL` (its routes priced, so streams end with a cost comment), its
 * server counting how many times each answer's body was handed to the socket.
 */
async function gatewayCountingWrites(
  baseURL: string,
  options: { hooks?: GatewayHooks[]; maxResponseBytes?: number } = {},
) {
  const gateway = createGateway({
    providers: {
      burst: createOpenAICompatible({
        baseURL,
        apiKey: "sk-upstream-key",
        maxResponseBytes: options.maxResponseBytes,
      }),
    },
    models: { "gpt-*": { provider: "burst", price: { input: 1, output: 2 } } },
    hooks: options.hooks,
  });
  const writes: number[] = [];
  const listener = toNodeListener(gateway);
  const server = createServer((request, response) => {
    const index = writes.push(0) - 1;
    const count = () => {
      writes[index] = (writes[index] ?? 0) + 1;
    };
    const write = response.write.bind(response) as ServerResponse["write"];
    response.write = ((...args: Parameters<ServerResponse["write"]>) => {
      count();
      return write(...args);
    }) as ServerResponse["write"];
    const end = response.end.bind(response) as ServerResponse["end"];
    response.end = ((...args: Parameters<ServerResponse["end"]>) => {
      if (args[0] !== undefined && typeof args[0] !== "function") count();
      return end(...args);
    }) as ServerResponse["end"];
    listener(request, response);
  });
  servers.push(server);
  const { url } = await listen(server);
  const stream = async () => {
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "gpt-burst",
        stream: true,
        messages: [{ role: "user", content: "hi" }],
      }),
    });
    const text = await response.text();
    const data = text
      .split("\n\n")
      .filter((block) => block.startsWith("data: "))
      .map((block) => block.slice("data: ".length));
    return { status: response.status, text, data };
  };
  return { stream, writes, close: () => gateway.close() };
}

const contents = Array.from({ length: 40 }, (_, index) => `word${index}`);
const sse = (value: object | string) =>
  `data: ${typeof value === "string" ? value : JSON.stringify(value)}\n\n`;
const usage = {
  ...chunk(""),
  choices: [],
  usage: { prompt_tokens: 3, completion_tokens: 40, total_tokens: 43 },
};

describe("a stream whose events arrive in one read", () => {
  it("reaches the client whole and in order, with its cost, in one write", async () => {
    const upstream = await burstUpstream([
      ...contents.map((content) => sse(chunk(content))),
      sse(usage),
      sse("[DONE]"),
    ]);
    const gateway = await gatewayCountingWrites(upstream);
    const { status, text, data } = await gateway.stream();
    expect(status).toBe(200);
    expect(data.slice(0, -1).map((json) => JSON.parse(json).choices[0].delta.content)).toEqual(
      contents,
    );
    // The usage chunk the gateway asked for is not the client's; [DONE] ends the stream, then
    // its cost: 3 input and 40 output tokens at 1 and 2 USD per million.
    expect(data.at(-1)).toBe("[DONE]");
    expect(text.endsWith("data: [DONE]\n\n: x-aigw-cost-usd: 0.000083\n\n")).toBe(true);
    expect(gateway.writes).toEqual([1]);
    await gateway.close();
  });

  it("passes onChunk hooks in order: dropped, split and replaced events", async () => {
    const upstream = await burstUpstream([
      ...["a", "drop", "b", "split", "c"].map((content) => sse(chunk(content))),
      sse("[DONE]"),
    ]);
    const hook: GatewayHooks = {
      onChunk(event) {
        if (event.data === "[DONE]") return event;
        const content = (event.json() as ReturnType<typeof chunk>).choices[0]?.delta.content;
        if (content === "drop") return null;
        if (content === "split") return [createSseEvent(chunk("s1")), createSseEvent(chunk("s2"))];
        return createSseEvent(chunk(`${content}!`));
      },
    };
    const gateway = await gatewayCountingWrites(upstream, { hooks: [hook] });
    const { data } = await gateway.stream();
    expect(data.slice(0, -1).map((text) => JSON.parse(text).choices[0].delta.content)).toEqual([
      "a!",
      "b!",
      "s1",
      "s2",
      "c!",
    ]);
    expect(data.at(-1)).toBe("[DONE]");
    await gateway.close();
  });

  it("sends the events before a bad one, then the error event", async () => {
    const upstream = await burstUpstream([
      ...["a", "b", "c"].map((content) => sse(chunk(content))),
      // An event longer than the provider takes (maxResponseBytes), its end still to come.
      `data: ${"x".repeat(5000)}`,
      "\n\n",
      sse(chunk("never")),
      sse("[DONE]"),
    ]);
    const gateway = await gatewayCountingWrites(upstream, { maxResponseBytes: 2000 });
    const { status, data } = await gateway.stream();
    expect(status).toBe(200);
    expect(data.slice(0, 3).map((text) => JSON.parse(text).choices[0].delta.content)).toEqual([
      "a",
      "b",
      "c",
    ]);
    expect(data).toHaveLength(4);
    expect(JSON.parse(data[3] as string).error).toMatchObject({
      code: "invalid_upstream_response",
    });
    await gateway.close();
  });
});
