// Run: pnpm --filter example-express start   (then: OpenAI SDK baseURL http://127.0.0.1:3000/ai/v1)
import { createGateway } from "@aigw/core";
import { aigw } from "@aigw/express";
import { createEcho, createOpenAICompatible } from "@aigw/provider";
import express from "express";

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

const app = express();
// Your own middleware and routes keep working beside the gateway.
app.use((request, _response, next) => {
  console.log(request.method, request.originalUrl);
  next();
});
app.get("/", (_request, response) => {
  response.send("Hello from your app; the gateway is under /ai/v1.\n");
});
app.use("/ai", aigw(gateway));

const server = app.listen(Number(PORT), "127.0.0.1", () => {
  const address = server.address();
  console.log(`listening on http://127.0.0.1:${typeof address === "object" && address?.port}`);
});
process.once("SIGTERM", () => server.close(() => gateway.close()));
