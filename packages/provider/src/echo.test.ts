import { describe, expect, it } from "vitest";
import { createEcho } from "./echo.js";
import { AigwError } from "./errors.js";
import type { ProviderResponse, SseEvent } from "./types.js";

const echo = createEcho();
const json = (response: ProviderResponse) => {
  if (response.kind !== "json") throw new Error("expected JSON");
  return JSON.parse(Buffer.from(response.body).toString("utf8"));
};

const messages = [
  { role: "system", content: "be brief" },
  { role: "user", content: "first" },
  { role: "assistant", content: "ok" },
  {
    role: "user",
    content: [
      { type: "text", text: "hello there" },
      { type: "image_url", image_url: { url: "https://example.invalid/a.png" } },
    ],
  },
];

describe("createEcho", () => {
  it("answers a chat completion with the last user message", async () => {
    const response = await echo.send({
      endpoint: "chat/completions",
      body: { model: "echo", messages },
    });
    expect(response.kind).toBe("json");
    const body = json(response);
    expect(body.choices[0].message).toMatchObject({ role: "assistant", content: "hello there" });
    // 26 characters of messages, 11 of reply: a token per four characters.
    expect(body.usage).toEqual({ prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 });
    expect(response.kind === "json" && response.usage).toEqual({
      inputTokens: 7,
      outputTokens: 3,
      totalTokens: 10,
    });
  });

  it("streams a word per chunk and usage only when asked", async () => {
    for (const includeUsage of [false, true]) {
      const response = await echo.send({
        endpoint: "chat/completions",
        body: {
          model: "echo",
          messages: [{ role: "user", content: "one two three" }],
          stream: true,
          stream_options: { include_usage: includeUsage },
        },
      });
      if (response.kind !== "stream") throw new Error("expected a stream");
      const events: SseEvent[] = [];
      for await (const event of response.events) events.push(event);
      const chunks = events.slice(0, -1).map((event) => event.json()) as {
        choices: { delta: { content?: string; role?: string }; finish_reason: string | null }[];
        usage?: unknown;
      }[];
      expect(events.at(-1)?.raw).toBe("data: [DONE]\n\n");
      expect(chunks[0]?.choices[0]?.delta.role).toBe("assistant");
      const text = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? "").join("");
      expect(text).toBe("one two three");
      expect(chunks.filter((chunk) => chunk.choices[0]?.delta.content)).toHaveLength(3);
      expect(chunks.some((chunk) => chunk.choices[0]?.finish_reason === "stop")).toBe(true);
      expect(chunks.some((chunk) => chunk.usage !== undefined)).toBe(includeUsage);
      expect(response.events.usage).toEqual({ inputTokens: 4, outputTokens: 4, totalTokens: 8 });
    }
  });

  it("lists the echo model", async () => {
    const body = json(await echo.send({ endpoint: "models" }));
    expect(body.data.map((model: { id: string }) => model.id)).toEqual(["echo"]);
  });

  it("refuses other endpoints with a 404", async () => {
    const sending = echo.send({ endpoint: "embeddings", body: { input: "x" } });
    await expect(sending).rejects.toBeInstanceOf(AigwError);
    await expect(sending).rejects.toMatchObject({ status: 404, type: "invalid_request_error" });
  });

  it("honours the abort signal", async () => {
    const reason = new Error("client left");
    await expect(
      echo.send(
        { endpoint: "chat/completions", body: { messages } },
        { signal: AbortSignal.abort(reason) },
      ),
    ).rejects.toBe(reason);

    const controller = new AbortController();
    const response = await echo.send(
      { endpoint: "chat/completions", body: { messages, stream: true } },
      { signal: controller.signal },
    );
    if (response.kind !== "stream") throw new Error("expected a stream");
    const iterator = response.events[Symbol.asyncIterator]();
    await iterator.next();
    controller.abort(reason);
    await expect(iterator.next()).rejects.toBe(reason);
  });
});
