import { spawnSync } from "node:child_process";
import {
  type MockUpstream,
  readChatStream,
  readSse,
  startAnthropicMock,
  startMockUpstream,
  waitFor,
} from "@aigw/testing";
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { runServer, type ServerProcess, writeConfig } from "./run-server.js";

let upstream: MockUpstream;
let running: ServerProcess | undefined;

beforeAll(async () => {
  upstream = await startMockUpstream({ apiKey: "sk-upstream-e2e" });
});
afterAll(() => upstream?.close());
afterEach(async () => {
  await running?.stop();
  running = undefined;
  upstream.reset();
});

/** A config routing model "m" to the mock upstream, with the given shutdown grace period. */
function upstreamConfig(shutdownGraceMs: number) {
  return writeConfig(
    [
      `server: { shutdownGraceMs: ${shutdownGraceMs} }`,
      "providers:",
      `  up: { type: openai-compatible, baseURL: '${upstream.baseURL}', apiKey: sk-upstream-e2e }`,
      "models:",
      "  m: { provider: up }",
    ].join("\n"),
  );
}

describe("apps/server", () => {
  it("serves the echo model with no configuration, and logs one JSON line per request", async () => {
    running = await runServer([]);
    const response = await fetch(`${running.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "echo", messages: [{ role: "user", content: "hi" }] }),
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { choices: { message: { content: string } }[] };
    expect(body.choices[0]?.message.content).toBe("hi");
    const access = await waitFor(() =>
      running?.lines
        .map((line) => JSON.parse(line))
        .find((line) => line.path === "/v1/chat/completions"),
    );
    expect(access).toMatchObject({ status: 200, model: "echo", provider: "echo", level: 30 });
    expect(access.requestId).toBe(response.headers.get("x-request-id"));
  });

  it("routes OpenAI's families when OPENAI_API_KEY is set: the SDK streams through it", async () => {
    running = await runServer([], {
      OPENAI_API_KEY: "sk-upstream-e2e",
      OPENAI_BASE_URL: upstream.baseURL,
    });
    const client = new OpenAI({ baseURL: `${running.url}/v1`, apiKey: "local", maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "stream me" }],
      stream: true,
    });
    const { text } = await readChatStream(stream);
    expect(text).toBe("mock: stream me");
    expect(upstream.requests[0]?.headers.authorization).toBe("Bearer sk-upstream-e2e");
    const prefixed = await client.chat.completions.create({
      model: "openai/gpt-4.1",
      messages: [{ role: "user", content: "x" }],
    });
    expect(prefixed.model).toBe("gpt-4.1");
  });

  // .ci/run installs promtool and sets REQUIRE_PROMTOOL, so there the check cannot be skipped.
  it.skipIf(spawnSync("promtool", ["--version"]).status !== 0 && !process.env.REQUIRE_PROMTOOL)(
    "serves /metrics, process metrics included, in a form promtool accepts",
    async () => {
      running = await runServer([]);
      const chat = await fetch(`${running.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "echo", messages: [{ role: "user", content: "hi" }] }),
      });
      expect(chat.status).toBe(200);
      const exposition = await (await fetch(`${running.url}/metrics`)).text();
      expect(exposition).toContain("process_cpu_seconds_total");
      expect(exposition).toContain("nodejs_active_handles{");
      const check = spawnSync("promtool", ["check", "metrics"], {
        input: exposition,
        encoding: "utf8",
      });
      expect(check.stdout + check.stderr).toBe("");
      expect(check.status).toBe(0);
    },
  );

  it("reads a YAML config file with ${ENV} interpolation", async () => {
    const file = await writeConfig(
      [
        "providers:",
        "  up: { type: openai-compatible, baseURL: '${UP_URL}', apiKey: '${UP_KEY}' }",
        "models:",
        "  smart: { provider: up, model: real-model }",
      ].join("\n"),
    );
    running = await runServer(["--config", file], {
      UP_URL: upstream.baseURL,
      UP_KEY: "sk-upstream-e2e",
    });
    const client = new OpenAI({ baseURL: `${running.url}/v1`, apiKey: "local", maxRetries: 0 });
    const completion = await client.chat.completions.create({
      model: "smart",
      messages: [{ role: "user", content: "from yaml" }],
    });
    expect(completion.choices[0]?.message.content).toBe("mock: from yaml");
    expect(upstream.requests[0]?.body).toMatchObject({ model: "real-model" });
  });

  it("serves OpenAI clients from an Anthropic provider, and says once which fields it left out", async () => {
    const anthropic = await startAnthropicMock({ apiKey: "sk-ant-e2e-0123456789" });
    try {
      const file = await writeConfig(
        [
          "providers:",
          `  claude: { type: anthropic, baseURL: '${anthropic.url}/v1', apiKey: sk-ant-e2e-0123456789 }`,
          "models:",
          "  'claude-*': { provider: claude }",
        ].join("\n"),
      );
      running = await runServer(["--config", file]);
      const client = new OpenAI({ baseURL: `${running.url}/v1`, apiKey: "local", maxRetries: 0 });
      for (let turn = 0; turn < 2; turn++) {
        const completion = await client.chat.completions.create({
          model: "claude-sonnet-4-5",
          messages: [{ role: "user", content: "hi" }],
          seed: 7,
        });
        expect(completion.choices[0]?.message.content).toBeTruthy();
      }
      expect(anthropic.requests[0]?.headers["x-api-key"]).toBe("sk-ant-e2e-0123456789");
      await waitFor(() => running?.lines.some((line) => line.includes('"field":"seed"')));
      const notices = running.lines.filter((line) => line.includes('"field":"seed"'));
      expect(notices).toHaveLength(1);
      expect(JSON.parse(notices[0] as string)).toMatchObject({ level: 40, provider: "claude" });
    } finally {
      await running?.stop();
      running = undefined;
      await anthropic.close();
    }
  });

  it("refuses to start on an invalid config, naming the field", async () => {
    const file = await writeConfig(
      "providers: { up: { type: openai, baseURL: 42 } }\nmodels: {}\n",
    );
    await expect(runServer(["--config", file])).rejects.toThrow(/providers\.up\.baseURL/);
  });

  it("drains on SIGTERM: /health 503, new requests 503, the open stream finishes, exit 0", async () => {
    running = await runServer(["--config", await upstreamConfig(20000)]);
    const gate = upstream.holdStream();
    const response = await fetch(`${running.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "m",
        messages: [{ role: "user", content: "slow one" }],
        stream: true,
      }),
    });
    const events = readSse(response);
    await events.next();
    await gate.reached;
    running.child.kill("SIGTERM");
    await waitFor(async () => (await fetch(`${running?.url}/health`)).status === 503);
    const refused = await fetch(`${running.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "late" }] }),
    });
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("unavailable");
    gate.release();
    const rest = [];
    for await (const event of events) rest.push(event.data);
    expect(rest.at(-1)).toBe("[DONE]");
    expect(await running.exited).toBe(0);
  });

  it("ends streams still open after the grace period with an SSE error event", async () => {
    running = await runServer(["--config", await upstreamConfig(500)]);
    upstream.enqueue({ kind: "stallStream", afterEvents: 2 });
    const response = await fetch(`${running.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "m",
        messages: [{ role: "user", content: "never ends" }],
        stream: true,
      }),
    });
    const events = readSse(response);
    await events.next();
    running.child.kill("SIGTERM");
    const rest = [];
    for await (const event of events) rest.push(event.data);
    const last = JSON.parse(rest.at(-1) ?? "{}") as { error?: { code: string } };
    expect(last.error?.code).toBe("unavailable");
    expect(await running.exited).toBe(0);
  });
});
