// Run: pnpm --filter example-node-http start   (then: OpenAI SDK baseURL http://127.0.0.1:3000/v1)
import { createServer } from "node:http";
import { createGateway } from "@aigw/core";
import { toNodeListener } from "@aigw/core/node";
import { createEcho, createOpenAICompatible } from "@aigw/provider";

const {
  OPENAI_API_KEY,
  OPENAI_BASE_URL = "https://api.openai.com/v1",
  PORT = "3000",
} = process.env;
const gateway = createGateway({
  providers: {
    echo: createEcho(),
    ...(OPENAI_API_KEY && {
      openai: createOpenAICompatible({
        baseURL: OPENAI_BASE_URL,
        apiKey: OPENAI_API_KEY,
      }),
    }),
  },
  models: {
    echo: { provider: "echo" },
    ...(OPENAI_API_KEY && { "gpt-*": { provider: "openai" } }),
  },
});

// The whole server is the gateway. Under a prefix, call handleNodeRequest(gateway, request,
// response, { path }) from @aigw/core/node with the path below it instead.
const server = createServer(toNodeListener(gateway));
server.listen(Number(PORT), "127.0.0.1", () => {
  const address = server.address();
  console.log(`listening on http://127.0.0.1:${typeof address === "object" && address?.port}`);
});
process.once("SIGTERM", () => server.close(() => gateway.close()));
