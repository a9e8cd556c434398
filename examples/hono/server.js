// Run: pnpm --filter example-hono start   (then: OpenAI SDK baseURL http://127.0.0.1:3000/ai/v1)
import { createGateway } from "@aigw/core";
import { createEcho, createOpenAICompatible } from "@aigw/provider";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { logger } from "hono/logger";
import { mount } from "hono/mount";

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

const app = new Hono();
app.use(logger());
app.get("/", (context) => context.text("Hello from your app; the gateway is under /ai/v1.\n"));
// gateway.fetch takes a Web Request; mount() strips the /ai prefix from its URL.
app.all("/ai/*", mount(gateway.fetch));

const server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: Number(PORT) }, (info) => {
  console.log(`listening on http://127.0.0.1:${info.port}`);
});
process.once("SIGTERM", () => server.close(() => gateway.close()));
