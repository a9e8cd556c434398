// Run: pnpm --filter example-fastify start   (then: OpenAI SDK baseURL http://127.0.0.1:3000/ai/v1)
import { createGateway } from "@aigw/core";
import { aigw } from "@aigw/fastify";
import { createEcho, createOpenAICompatible } from "@aigw/provider";
import Fastify from "fastify";

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

const app = Fastify({ logger: true });
// Your own routes keep Fastify's JSON parser and limits; the plugin's routes are its own.
app.get("/", async () => "Hello from your app; the gateway is under /ai/v1.\n");
app.register(aigw, { gateway, prefix: "/ai" });
app.addHook("onClose", () => gateway.close());

const url = await app.listen({ host: "127.0.0.1", port: Number(PORT) });
console.log(`listening on ${url}`);
process.once("SIGTERM", () => app.close());
