import { createMetrics } from "@aigw/metrics";
import { createEcho } from "@aigw/provider";
import { readSse } from "@aigw/testing";
import { describe, expect, it } from "vitest";
import { createGateway } from "../src/index.js";
import { startGateway } from "./start-gateway.js";

const chat = { model: "echo", messages: [{ role: "user", content: "via fetch" }] };

describe("gateway.fetch", () => {
  const gateway = createGateway({
    providers: { echo: createEcho() },
    models: { echo: { provider: "echo" } },
  });

  it("answers a Web Request with a Web Response", async () => {
    const response = await gateway.fetch(
      new Request("http://gateway.local/v1/chat/completions", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(chat),
      }),
    );
    expect(response.status).toBe(200);
    const body = (await response.json()) as { choices: { message: { content: string } }[] };
    expect(body.choices[0]?.message.content).toBe("via fetch");
  });

  it("streams SSE through a ReadableStream", async () => {
    const response = await gateway.fetch(
      new Request("http://gateway.local/v1/chat/completions", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ ...chat, stream: true }),
      }),
    );
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const data = [];
    for await (const event of readSse(response)) data.push(event.data);
    expect(data.at(-1)).toBe("[DONE]");
  });

  it("maps errors to OpenAI's shape", async () => {
    const response = await gateway.fetch(
      new Request("http://gateway.local/v1/models", { method: "DELETE" }),
    );
    expect(response.status).toBe(405);
  });
});

describe("CORS", () => {
  it("is off by default: no CORS headers", async () => {
    const running = await startGateway({ providers: { echo: createEcho() }, models: {} });
    try {
      const response = await fetch(`${running.url}/health`, {
        headers: { origin: "https://app.example" },
      });
      expect(response.headers.get("access-control-allow-origin")).toBeNull();
    } finally {
      await running.close();
    }
  });

  it("answers preflights with 204 and allows only configured origins", async () => {
    const running = await startGateway({
      providers: { echo: createEcho() },
      models: { echo: { provider: "echo" } },
      cors: { origins: ["https://app.example"], maxAge: 120 },
    });
    try {
      const preflight = await fetch(`${running.url}/v1/chat/completions`, {
        method: "OPTIONS",
        headers: {
          origin: "https://app.example",
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization, content-type",
        },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get("access-control-allow-origin")).toBe("https://app.example");
      expect(preflight.headers.get("access-control-allow-headers")).toBe(
        "authorization, content-type",
      );
      expect(preflight.headers.get("access-control-max-age")).toBe("120");

      const allowed = await fetch(`${running.url}/v1/chat/completions`, {
        method: "POST",
        headers: { origin: "https://app.example", "content-type": "application/json" },
        body: JSON.stringify(chat),
      });
      expect(allowed.headers.get("access-control-allow-origin")).toBe("https://app.example");
      expect(allowed.headers.get("access-control-expose-headers")).toContain("x-request-id");

      const other = await fetch(`${running.url}/v1/chat/completions`, {
        method: "POST",
        headers: { origin: "https://evil.example", "content-type": "application/json" },
        body: JSON.stringify(chat),
      });
      expect(other.headers.get("access-control-allow-origin")).toBeNull();
    } finally {
      await running.close();
    }
  });
});

describe("a stream nobody reads", () => {
  it("still finishes the request when closed before its first event was read", async () => {
    const metrics = createMetrics();
    const gateway = createGateway({
      providers: { echo: createEcho() },
      models: { echo: { provider: "echo" } },
      metrics,
    });
    const response = await gateway.handle({
      method: "POST",
      path: "/v1/chat/completions",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...chat, stream: true }),
    });
    const body = response.body as AsyncIterable<unknown>;
    await body[Symbol.asyncIterator]().return?.();
    const text = await metrics.expose();
    expect(text).toContain("aigw_active_requests 0");
    expect(text).toMatch(/aigw_requests_total\{[^}]*status="499"[^}]*\} 1/);
  });
});
