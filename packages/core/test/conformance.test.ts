import { createServer, type RequestListener } from "node:http";
import { createOpenAICompatible } from "@aigw/provider";
import { closeServer, listen } from "@aigw/testing";
import { describeGatewayConformance } from "@aigw/testing/conformance";
import { createGateway, type Gateway } from "../src/index.js";
import { handleNodeRequest, toNodeListener } from "../src/node.js";

function createMockGateway(baseURL: string, options: { maxBodyBytes?: number }) {
  return createGateway({
    providers: { mock: createOpenAICompatible({ baseURL }) },
    models: { "gpt-*": { provider: "mock" } },
    ...options,
  });
}

/** Plain Node: the listener at the root, or `handleNodeRequest` with `path` under a prefix. */
function nodeListener(gateway: Gateway, prefix: string): RequestListener {
  if (!prefix) return toNodeListener(gateway);
  return (request, response) => {
    const url = request.url ?? "/";
    if (!url.startsWith(`${prefix}/`)) {
      response.writeHead(404).end();
      return;
    }
    handleNodeRequest(gateway, request, response, { path: url.slice(prefix.length) }).catch(() =>
      response.destroy(),
    );
  };
}

describeGatewayConformance("node http", {
  createGateway: createMockGateway,
  async start(gateway, { prefix }) {
    const server = createServer(nodeListener(gateway, prefix));
    const { url } = await listen(server);
    return { url, close: () => closeServer(server) };
  },
});
