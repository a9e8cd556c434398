import { createGunzip, gzipSync } from "node:zlib";
import { createGateway, type Gateway } from "@aigw/core";
import { createOpenAICompatible } from "@aigw/provider";
import { startMockUpstream } from "@aigw/testing";
import { describeGatewayConformance } from "@aigw/testing/conformance";
import Fastify, { type FastifyInstance } from "fastify";
import { describe, expect, it } from "vitest";
import { aigw } from "../src/index.js";

function createMockGateway(baseURL: string, options: { maxBodyBytes?: number }) {
  return createGateway({
    providers: { mock: createOpenAICompatible({ baseURL }) },
    models: { "gpt-*": { provider: "mock" } },
    ...options,
  });
}

async function startApp(app: FastifyInstance) {
  const url = await app.listen({ host: "127.0.0.1", port: 0 });
  return { url, close: () => app.close() };
}

describeGatewayConformance("fastify", {
  createGateway: createMockGateway,
  start: (gateway: Gateway, { prefix }) => {
    // A 413 answered before the body was read leaves a busy connection that app.close()
    // would otherwise wait for until Fastify's 72 s keep-alive timeout.
    const app = Fastify({ forceCloseConnections: true });
    app.register(aigw, { gateway, prefix });
    return startApp(app);
  },
});

describe("fastify app", () => {
  it("takes a body a preParsing hook already decompressed, without decoding it again", async () => {
    const upstream = await startMockUpstream();
    const gateway = createMockGateway(upstream.baseURL, {});
    const app = Fastify();
    // What request decompression plugins do: a new payload stream, the header left as it was.
    app.addHook("preParsing", async (request, _reply, payload) =>
      request.headers["content-encoding"] === "gzip" ? payload.pipe(createGunzip()) : payload,
    );
    app.register(aigw, { gateway, prefix: "/ai" });
    const running = await startApp(app);
    try {
      const response = await fetch(`${running.url}/ai/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", "content-encoding": "gzip" },
        body: gzipSync(
          JSON.stringify({ model: "gpt-x", messages: [{ role: "user", content: "unzipped" }] }),
        ),
      });
      expect(response.status).toBe(200);
      expect(upstream.requests[0]?.body).toMatchObject({ model: "gpt-x" });
    } finally {
      await running.close();
      await gateway.close();
      await upstream.close();
    }
  });

  it("respects encapsulation: the app's routes keep Fastify's parser and limit", async () => {
    const gateway = createMockGateway("http://127.0.0.1:9/v1", {});
    const app = Fastify({ bodyLimit: 1024 });
    app.addHook("onRequest", async (_request, reply) => {
      reply.header("x-app", "yes");
    });
    app.post("/echo", async (request) => ({ received: request.body }));
    app.register(aigw, { gateway, prefix: "/ai" });
    const running = await startApp(app);
    try {
      const health = await fetch(`${running.url}/ai/health`);
      expect(health.status).toBe(200);
      expect(health.headers.get("x-app")).toBe("yes");
      const post = (path: string, body: string) =>
        fetch(`${running.url}${path}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
        });
      expect(await (await post("/echo", '{"a":1}')).json()).toEqual({ received: { a: 1 } });
      expect((await post("/echo", JSON.stringify({ a: "x".repeat(2048) }))).status).toBe(413);
      // The gateway reads its own bodies: 2 kB is far below its limit, and bad JSON is its 400.
      const large = await post(
        "/ai/v1/chat/completions",
        JSON.stringify({
          model: "unknown",
          messages: [{ role: "user", content: "x".repeat(2048) }],
        }),
      );
      expect(large.status).toBe(404);
      const malformed = await post("/ai/v1/chat/completions", "{");
      expect(((await malformed.json()) as { error: { code: string } }).error.code).toBe(
        "invalid_json",
      );
      expect((await fetch(`${running.url}/ai`)).headers.get("x-request-id")).toBeTruthy();
    } finally {
      await running.close();
      await gateway.close();
    }
  });
});
