import { createServer } from "node:http";
import { createGateway, type Gateway } from "@aigw/core";
import { createOpenAICompatible } from "@aigw/provider";
import { closeServer, listen } from "@aigw/testing";
import { describeGatewayConformance } from "@aigw/testing/conformance";
import { bodyParser } from "@koa/bodyparser";
import Koa from "koa";
import { describe, expect, it } from "vitest";
import { aigw } from "../src/index.js";

function createMockGateway(baseURL: string, options: { maxBodyBytes?: number }) {
  return createGateway({
    providers: { mock: createOpenAICompatible({ baseURL }) },
    models: { "gpt-*": { provider: "mock" } },
    ...options,
  });
}

async function startApp(app: Koa) {
  const server = createServer(app.callback());
  const { url } = await listen(server);
  return { url, close: () => closeServer(server) };
}

function startKoa(parser: boolean) {
  return (gateway: Gateway, { prefix }: { prefix: string }) => {
    const app = new Koa();
    app.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code !== "ERR_STREAM_PREMATURE_CLOSE") app.onerror(error);
    });
    if (parser) app.use(bodyParser({ jsonLimit: gateway.maxBodyBytes }));
    app.use(aigw(gateway, { prefix }));
    return startApp(app);
  };
}

describeGatewayConformance("koa", { createGateway: createMockGateway, start: startKoa(false) });
describeGatewayConformance("koa behind @koa/bodyparser", {
  createGateway: createMockGateway,
  start: startKoa(true),
  parserInFront: true,
});

describe("koa app", () => {
  it("keeps the app's own middleware and passes other paths on", async () => {
    const gateway = createMockGateway("http://127.0.0.1:9/v1", {});
    const app = new Koa();
    app.use(async (context, next) => {
      await next();
      context.set("x-app", "yes");
    });
    app.use(aigw(gateway, { prefix: "/ai/" }));
    app.use((context) => {
      context.body = { own: context.path };
    });
    const running = await startApp(app);
    try {
      const health = await fetch(`${running.url}/ai/health`);
      expect(health.status).toBe(200);
      expect(health.headers.get("x-app")).toBe("yes");
      expect(await (await fetch(`${running.url}/aiother`)).json()).toEqual({ own: "/aiother" });
      expect(await (await fetch(`${running.url}/`)).json()).toEqual({ own: "/" });
    } finally {
      await running.close();
      await gateway.close();
    }
  });
});
