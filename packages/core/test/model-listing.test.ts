import { createEcho, createOpenAICompatible } from "@aigw/provider";
import { type MockUpstream, startMockUpstream } from "@aigw/testing";
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type GatewayOptions, hashApiKey } from "../src/index.js";
import { type RunningGateway, startGateway } from "./start-gateway.js";

let upstream: MockUpstream;
let running: RunningGateway | undefined;

beforeAll(async () => {
  upstream = await startMockUpstream();
});
afterAll(() => upstream?.close());
afterEach(async () => {
  await running?.close();
  running = undefined;
  upstream.reset();
});

function options(extra: Partial<GatewayOptions> = {}): GatewayOptions {
  return {
    providers: {
      mock: createOpenAICompatible({ baseURL: upstream.baseURL }),
      echo: createEcho(),
    },
    models: {
      "gpt-4o-mini": { provider: "mock" },
      fast: { provider: "mock", model: "gpt-4o-mini" },
      "gpt-*": { provider: "mock" },
      "openai/*": { provider: "mock" },
      echo: { provider: "echo" },
    },
    ...extra,
  };
}

const listedIds = async (client: OpenAI) =>
  (await client.models.list()).data.map((model) => model.id).sort();
const modelCalls = () => upstream.requests.filter((request) => request.path === "/v1/models");

describe("GET /v1/models", () => {
  it("expands wildcard routes with the upstream's own models, read once and kept", async () => {
    running = await startGateway(options());
    const expected = [
      "echo",
      "fast",
      "gpt-3.5-turbo-instruct",
      "gpt-4o",
      "gpt-4o-mini",
      "openai/dall-e-3",
      "openai/gpt-3.5-turbo-instruct",
      "openai/gpt-4o",
      "openai/gpt-4o-mini",
      "openai/text-embedding-3-small",
    ];
    expect(await listedIds(running.client)).toEqual(expected);
    expect(await listedIds(running.client)).toEqual(expected);
    // Two wildcard routes on one provider, two lists: one upstream call.
    expect(modelCalls()).toHaveLength(1);
    const page = await running.client.models.list();
    const listed = page.data.find((model) => model.id === "gpt-4o");
    expect(listed).toMatchObject({ object: "model", owned_by: "mock" });
    expect(listed?.created).toBeGreaterThan(0);
  });

  it("shows a tenant what it may use, wildcard matches and allowed names included", async () => {
    const key = "aigw-listing-key";
    running = await startGateway(
      options({
        models: { "gpt-*": { provider: "mock" }, echo: { provider: "echo" } },
        tenants: {
          acme: { keyHashes: [hashApiKey(key)], models: ["gpt-4o-mini", "gpt-5-preview"] },
        },
      }),
    );
    const acme = new OpenAI({ baseURL: `${running.url}/v1`, apiKey: key, maxRetries: 0 });
    // gpt-5-preview is routed by gpt-* and allowed, although the upstream does not list it.
    expect(await listedIds(acme)).toEqual(["gpt-4o-mini", "gpt-5-preview"]);
  });

  it("answers from what is configured when the upstream cannot list, without failing", async () => {
    running = await startGateway(options());
    upstream.enqueue({ kind: "status", status: 500 });
    expect(await listedIds(running.client)).toEqual(["echo", "fast", "gpt-4o-mini"]);
    // A failed listing is not asked again at once.
    expect(await listedIds(running.client)).toEqual(["echo", "fast", "gpt-4o-mini"]);
    expect(modelCalls()).toHaveLength(1);
    // One model the routes serve is still found.
    expect((await running.client.models.retrieve("gpt-4.1")).id).toBe("gpt-4.1");
  });
});

describe("GET /v1/models/{id}", () => {
  it("answers for one model the caller may use, as the SDK's models.retrieve asks", async () => {
    running = await startGateway(options());
    const { client } = running;
    expect(await client.models.retrieve("gpt-4o")).toMatchObject({
      id: "gpt-4o",
      object: "model",
      owned_by: "mock",
    });
    expect((await client.models.retrieve("fast")).id).toBe("fast");
    expect((await client.models.retrieve("echo")).owned_by).toBe("echo");
    // The SDK escapes the slash of a prefixed model.
    expect((await client.models.retrieve("openai/gpt-4o")).id).toBe("openai/gpt-4o");
    for (const missing of ["gpt-nope", "claude-3", "openai/nope", "x".repeat(300)]) {
      const error = await client.models.retrieve(missing).catch((caught: unknown) => caught);
      expect(error, missing).toBeInstanceOf(OpenAI.NotFoundError);
      expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe("model_not_found");
    }
  });

  it("is a 404 for a model outside the tenant's list", async () => {
    const key = "aigw-retrieve-key";
    running = await startGateway(
      options({ tenants: { acme: { keyHashes: [hashApiKey(key)], models: ["gpt-4o-mini"] } } }),
    );
    const acme = new OpenAI({ baseURL: `${running.url}/v1`, apiKey: key, maxRetries: 0 });
    expect((await acme.models.retrieve("gpt-4o-mini")).id).toBe("gpt-4o-mini");
    await expect(acme.models.retrieve("gpt-4o")).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });
});
