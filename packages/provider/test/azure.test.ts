import { type MockUpstream, startMockUpstream } from "@aigw/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createAzureOpenAI, type Provider } from "../src/index.js";

const API_KEY = "0123456789abcdef0123456789abcdef";
let mock: MockUpstream;
let provider: Provider;

beforeAll(async () => {
  mock = await startMockUpstream({ apiKey: API_KEY });
  provider = createAzureOpenAI({
    endpoint: mock.url,
    apiKey: API_KEY,
    apiVersion: "2024-10-21",
    deployments: { "gpt-4o-mini": "prod-mini" },
  });
});

afterEach(() => mock.reset());

afterAll(async () => {
  await provider.close();
  await mock.close();
});

describe("createAzureOpenAI", () => {
  it("sends to the model's deployment with the api-key header", async () => {
    // The mock serves /v1/... only, so these answers are 404s: the URL is what is checked.
    await provider
      .send({
        endpoint: "chat/completions",
        body: { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] },
        headers: { authorization: "Bearer client", "api-key": "client" },
      })
      .catch(() => undefined);
    await provider
      .send({ endpoint: "embeddings", body: { model: "text-embedding-3-small", input: "x" } })
      .catch(() => undefined);
    await provider.send({ endpoint: "models" }).catch(() => undefined);

    expect(mock.requests.map((request) => `${request.method} ${request.path}`)).toEqual([
      "POST /openai/deployments/prod-mini/chat/completions?api-version=2024-10-21",
      "POST /openai/deployments/text-embedding-3-small/embeddings?api-version=2024-10-21",
      "GET /openai/models?api-version=2024-10-21",
    ]);
    const headers = mock.requests[0]?.headers ?? {};
    expect(headers["api-key"]).toBe(API_KEY);
    expect(headers.authorization).toBeUndefined();
  });

  it("maps the upstream's answers like any OpenAI upstream", async () => {
    mock.enqueue({ kind: "status", status: 429, headers: { "retry-after-ms": "250" } });
    await expect(
      provider.send({ endpoint: "chat/completions", body: { model: "x", messages: [] } }),
    ).rejects.toMatchObject({ status: 429, retryAfterMs: 250 });
  });

  it("needs a model and an api version", async () => {
    await expect(
      provider.send({ endpoint: "chat/completions", body: { messages: [] } }),
    ).rejects.toMatchObject({ status: 400, param: "model" });
    expect(() =>
      createAzureOpenAI({ endpoint: mock.url, apiKey: API_KEY, apiVersion: "" }),
    ).toThrow(/apiVersion/);
    expect(provider.kind).toBe("azure");
  });
});
