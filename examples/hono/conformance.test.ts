import { createGateway, type Gateway } from "@aigw/core";
import { createOpenAICompatible } from "@aigw/provider";
import { describeGatewayConformance } from "@aigw/testing/conformance";
import { type ServerType, serve } from "@hono/node-server";
import { Hono } from "hono";
import { mount } from "hono/mount";

function createMockGateway(baseURL: string, options: { maxBodyBytes?: number }) {
  return createGateway({
    providers: { mock: createOpenAICompatible({ baseURL }) },
    models: { "gpt-*": { provider: "mock" } },
    ...options,
  });
}

/** `gateway.fetch` as the whole server at the root, or mounted in a Hono app under a prefix. */
function startHono(gateway: Gateway, { prefix }: { prefix: string }) {
  let fetch: (request: Request) => Response | Promise<Response> = gateway.fetch;
  if (prefix) {
    const app = new Hono();
    app.all(`${prefix}/*`, mount(gateway.fetch));
    fetch = app.fetch;
  }
  return new Promise<{ url: string; close(): Promise<void> }>((resolve) => {
    const server: ServerType = serve({ fetch, hostname: "127.0.0.1", port: 0 }, (info) => {
      resolve({
        url: `http://127.0.0.1:${info.port}`,
        close: () =>
          new Promise((closed) => {
            server.close(() => closed());
            if ("closeAllConnections" in server) server.closeAllConnections();
          }),
      });
    });
  });
}

describeGatewayConformance("fetch (hono on @hono/node-server)", {
  createGateway: createMockGateway,
  start: startHono,
});
