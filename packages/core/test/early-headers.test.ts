import { createOpenAICompatible } from "@aigw/provider";
import { type MockUpstream, readChatStream, startMockUpstream } from "@aigw/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type RunningGateway, startGateway } from "./start-gateway.js";

let upstream: MockUpstream;
let running: RunningGateway;

beforeAll(async () => {
  upstream = await startMockUpstream();
  running = await startGateway({
    providers: {
      mock: createOpenAICompatible({
        baseURL: upstream.baseURL,
        retry: { initialBackoff: 50, maxBackoff: 200 },
      }),
    },
    models: { "gpt-*": { provider: "mock" } },
    keepAliveIntervalMs: 500,
    firstEventWaitMs: 300,
  });
});
afterAll(async () => {
  await running?.close();
  await upstream?.close();
});
afterEach(() => upstream.reset());

const chat = {
  model: "gpt-x",
  stream: true,
  messages: [{ role: "user", content: "think first" }],
};

/** Sends a streamed chat and reads its raw text, noting when the headers and each part came. */
async function rawStream() {
  const started = performance.now();
  const response = await fetch(`${running.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(chat),
  });
  const headersAfterMs = performance.now() - started;
  const parts: { text: string; atMs: number }[] = [];
  const decoder = new TextDecoder();
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    parts.push({ text: decoder.decode(chunk), atMs: performance.now() - started });
  }
  const text = parts.map((part) => part.text).join("");
  return { response, headersAfterMs, parts, text };
}

/** The text of a raw chat stream's content deltas. */
function contentOf(text: string): string {
  return text
    .split("\n\n")
    .filter((block) => block.startsWith("data: {"))
    .map((block) => JSON.parse(block.slice(6)).choices[0]?.delta?.content ?? "")
    .join("");
}

describe("a model that thinks before its first token", () => {
  it("gets its 200 and keep-alive comments while it thinks, then the whole answer", async () => {
    upstream.enqueue({ kind: "slowFirstEvent", delayMs: 2_600 });
    const { response, headersAfterMs, parts, text } = await rawStream();
    expect(response.status).toBe(200);
    expect(headersAfterMs).toBeLessThan(2_000);
    const firstData = parts.findIndex((part) => part.text.includes("data:"));
    const beforeData = parts
      .slice(0, firstData)
      .map((part) => part.text)
      .join("");
    expect(beforeData.match(/: keep-alive/g)?.length ?? 0).toBeGreaterThanOrEqual(3);
    expect(contentOf(text)).toBe("mock: think first");
    expect(text.trimEnd().endsWith("data: [DONE]")).toBe(true);
  });

  it("turns the upstream's comments into keep-alives, never into data", async () => {
    upstream.enqueue({ kind: "slowFirstEvent", delayMs: 1_200, commentEveryMs: 200 });
    const { text } = await rawStream();
    expect(text).not.toContain("PROCESSING");
    expect(text).toContain(": keep-alive");
    upstream.enqueue({ kind: "slowFirstEvent", delayMs: 1_200, commentEveryMs: 200 });
    const stream = await running.client.chat.completions.create({
      model: "gpt-x",
      messages: [{ role: "user", content: "through the sdk" }],
      stream: true,
    });
    const { text: sdkText } = await readChatStream(stream);
    expect(sdkText).toBe("mock: through the sdk");
  });

  it("retries a stream that fails inside the wait, unseen by the client", async () => {
    upstream.enqueue({ kind: "cutStream", afterEvents: 0 });
    const { response, text } = await rawStream();
    expect(response.status).toBe(200);
    expect(response.headers.get("x-aigw-attempts")).toBe("2");
    expect(text).not.toContain("error");
    expect(text.trimEnd().endsWith("data: [DONE]")).toBe(true);
    expect(upstream.requests).toHaveLength(2);
  });

  it("ends a stream that fails after its headers went out with an error event, without retrying", async () => {
    upstream.enqueue({ kind: "slowFirstEvent", delayMs: 1_000, thenCut: true });
    const { response, text } = await rawStream();
    expect(response.status).toBe(200);
    expect(text).toContain(": keep-alive");
    const events = text.split("\n\n").filter((block) => block.startsWith("data:"));
    expect(events).toHaveLength(1);
    expect(JSON.parse((events[0] as string).slice(6)).error.code).toBe("stream_interrupted");
    expect(text).not.toContain("[DONE]");
    expect(upstream.requests).toHaveLength(1);
  });
});
