import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { type MockUpstream, startMockUpstream, waitFor } from "@aigw/testing";
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

const examples = [
  { name: "express", prefix: "/ai" },
  { name: "koa", prefix: "/ai" },
  { name: "fastify", prefix: "/ai" },
  { name: "hono", prefix: "/ai" },
  { name: "node-http", prefix: "" },
];

let child: ChildProcess | undefined;
let upstream: MockUpstream;

beforeAll(async () => {
  upstream = await startMockUpstream({ apiKey: "sk-example-upstream" });
});
afterAll(() => upstream?.close());

afterEach(async () => {
  if (child && child.exitCode === null) {
    const exited = once(child, "exit");
    child.kill("SIGKILL");
    await exited;
  }
  child = undefined;
});

describe.each(examples)("examples/$name", ({ name, prefix }) => {
  it("starts with one command: echo, OpenAI models at OPENAI_BASE_URL, bad JSON answered as OpenAI does", async () => {
    const cwd = fileURLToPath(new URL(name, import.meta.url));
    const started = spawn(process.execPath, ["server.js"], {
      cwd,
      env: {
        PATH: process.env.PATH,
        PORT: "0",
        OPENAI_API_KEY: "sk-example-upstream",
        OPENAI_BASE_URL: upstream.baseURL,
      },
      stdio: ["ignore", "pipe", "inherit"],
    });
    child = started;
    let output = "";
    started.stdout?.on("data", (chunk: Buffer) => {
      output += chunk;
    });
    const url = await waitFor(() => /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1], {
      timeoutMs: 15_000,
      message: `examples/${name} did not start`,
    });

    const client = new OpenAI({ baseURL: `${url}${prefix}/v1`, apiKey: "unused", maxRetries: 0 });
    const completion = await client.chat.completions.create({
      model: "echo",
      messages: [{ role: "user", content: "hi there" }],
    });
    expect(completion.choices[0]?.message.content).toBe("hi there");
    let streamed = "";
    const stream = await client.chat.completions.create({
      model: "echo",
      messages: [{ role: "user", content: "one two" }],
      stream: true,
    });
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta.content ?? "";
    expect(streamed).toBe("one two");
    if (prefix) expect(await (await fetch(url)).text()).toContain("Hello from your app");

    // OpenAI's models go where OPENAI_BASE_URL says.
    const routed = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "through the mock" }],
    });
    expect(routed.model).toBe("gpt-4o-mini");
    expect(upstream.requests.at(-1)?.body).toMatchObject({ model: "gpt-4o-mini" });

    // Bad JSON is the gateway's to answer, in OpenAI's shape, not a body parser's.
    const bad = await fetch(`${url}${prefix}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"model": "echo", ',
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { type: "invalid_request_error" } });

    const exited = once(started, "exit");
    started.kill("SIGTERM");
    const [code, signal] = await exited;
    expect(code === 0 || signal === "SIGTERM").toBe(true);
  });
});
