import { createServer } from "node:http";
import { createRequire } from "node:module";
import { createGateway, type Gateway } from "@aigw/core";
import { createOpenAICompatible } from "@aigw/provider";
import { closeServer, listen } from "@aigw/testing";
import { describeGatewayConformance } from "@aigw/testing/conformance";
import express from "express";
import { describe, expect, it } from "vitest";
import { aigw } from "../src/index.js";

// Express 4, installed under an alias, to show the same middleware serves both majors.
const express4 = createRequire(import.meta.url)("express4") as typeof express;

function createMockGateway(baseURL: string, options: { maxBodyBytes?: number }) {
  return createGateway({
    providers: { mock: createOpenAICompatible({ baseURL }) },
    models: { "gpt-*": { provider: "mock" } },
    ...options,
  });
}

async function startApp(app: express.Express) {
  const server = createServer(app);
  const { url } = await listen(server);
  return { url, close: () => closeServer(server) };
}

function startExpress(framework: typeof express, parser: "json" | "text" | undefined) {
  return (gateway: Gateway, { prefix }: { prefix: string }) => {
    const app = framework();
    if (parser === "json") app.use(framework.json({ limit: gateway.maxBodyBytes }));
    if (parser === "text") app.use(framework.text({ limit: gateway.maxBodyBytes, type: "*/*" }));
    app.use(prefix || "/", aigw(gateway));
    return startApp(app);
  };
}

describeGatewayConformance("express 5", {
  createGateway: createMockGateway,
  start: startExpress(express, undefined),
});
describeGatewayConformance("express 5 behind express.json()", {
  createGateway: createMockGateway,
  start: startExpress(express, "json"),
  parserInFront: true,
});
describeGatewayConformance("express 5 behind express.text()", {
  createGateway: createMockGateway,
  start: startExpress(express, "text"),
  parserInFront: true,
});
describeGatewayConformance("express 4", {
  createGateway: createMockGateway,
  start: startExpress(express4, undefined),
});
describeGatewayConformance("express 4 behind express.json()", {
  createGateway: createMockGateway,
  start: startExpress(express4, "json"),
  parserInFront: true,
});

describe("express app", () => {
  it("keeps the app's own middleware and routes beside the gateway", async () => {
    const gateway = createMockGateway("http://127.0.0.1:9/v1", {});
    const app = express();
    app.use((_request, response, next) => {
      response.setHeader("x-app", "yes");
      next();
    });
    app.use(express.json());
    app.post("/echo", (request, response) => {
      response.json({ received: request.body });
    });
    app.use("/ai", aigw(gateway));
    const running = await startApp(app);
    try {
      const health = await fetch(`${running.url}/ai/health`);
      expect(health.status).toBe(200);
      expect(health.headers.get("x-app")).toBe("yes");
      const own = await fetch(`${running.url}/echo`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"a":1}',
      });
      expect(await own.json()).toEqual({ received: { a: 1 } });
      expect((await fetch(`${running.url}/elsewhere`)).headers.get("x-request-id")).toBeNull();
    } finally {
      await running.close();
      await gateway.close();
    }
  });

  it("keeps the gateway's limit when a parser in front allows more", async () => {
    const gateway = createMockGateway("http://127.0.0.1:9/v1", { maxBodyBytes: 2 ** 20 });
    const app = express();
    app.use(express.json({ limit: "64mb" }));
    app.use("/ai", aigw(gateway));
    const running = await startApp(app);
    try {
      const response = await fetch(`${running.url}/ai/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: "gpt-x",
          messages: [{ role: "user", content: "z".repeat(2 ** 21) }],
        }),
      });
      expect(response.status).toBe(413);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe(
        "request_too_large",
      );
    } finally {
      await running.close();
      await gateway.close();
    }
  });
});
