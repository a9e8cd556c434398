// Run: pnpm --filter example-koa start   (then: OpenAI SDK baseURL http://127.0.0.1:3000/ai/v1)
import { createGateway } from "@aigw/core";
import { aigw } from "@aigw/koa";
import { createEcho, createOpenAICompatible } from "@aigw/provider";
import { bodyParser } from "@koa/bodyparser";
import Koa from "koa";

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

const app = new Koa();
// Your own middleware keeps working.
app.use(async (context, next) => {
  await next();
  console.log(context.method, context.url, context.status);
});
// The gateway before any body parser: it reads its own bodies (and answers bad JSON in
// OpenAI's shape); requests outside /ai go on to your middleware.
app.use(aigw(gateway, { prefix: "/ai" }));
app.use(bodyParser({ enableTypes: ["json"] }));
app.use((context) => {
  context.body = "Hello from your app; the gateway is under /ai/v1.\n";
});

const server = app.listen(Number(PORT), "127.0.0.1", () => {
  const address = server.address();
  console.log(`listening on http://127.0.0.1:${typeof address === "object" && address?.port}`);
});
process.once("SIGTERM", () => server.close(() => gateway.close()));
