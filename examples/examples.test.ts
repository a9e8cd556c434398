import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { waitFor } from "@aigw/testing";
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";

const examples = [
  { name: "express", prefix: "/ai" },
  { name: "koa", prefix: "/ai" },
  { name: "fastify", prefix: "/ai" },
  { name: "hono", prefix: "/ai" },
  { name: "node-http", prefix: "" },
];

let child: ChildProcess | undefined;

afterEach(async () => {
  if (child && child.exitCode === null) {
    const exited = once(child, "exit");
    child.kill("SIGKILL");
    await exited;
  }
  child = undefined;
});

describe.each(examples)("examples/$name", ({ name, prefix }) => {
  it("starts with one command and serves the echo model, JSON and streamed", async () => {
    const cwd = fileURLToPath(new URL(name, import.meta.url));
    const started = spawn(process.execPath, ["server.js"], {
      cwd,
      env: { PATH: process.env.PATH, PORT: "0" },
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

    const exited = once(started, "exit");
    started.kill("SIGTERM");
    const [code, signal] = await exited;
    expect(code === 0 || signal === "SIGTERM").toBe(true);
  });
});
