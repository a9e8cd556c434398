import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createAnthropic, createOpenAICompatible } from "@aigw/provider";
import {
  type AnthropicMock,
  type MockUpstream,
  startAnthropicMock,
  startMockUpstream,
} from "@aigw/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningGateway, startGateway } from "./start-gateway.js";

// Claude Code, the real client, pointed at the gateway. Its npm package's bin is a stub that a
// postinstall fills in; the platform package holds the binary itself, fetched here, pinned.
const version = "2.1.197";
const platformPackage = "@anthropic-ai/claude-code-linux-x64";
const run = promisify(execFile);
const supported = process.platform === "linux" && process.arch === "x64";

/** The `claude` binary, unpacked once per machine into the temporary folder. */
async function claudeBinary(): Promise<string> {
  const folder = join(tmpdir(), `aigw-claude-code-${version}`);
  const binary = join(folder, "package", "claude");
  if (existsSync(binary)) return binary;
  mkdirSync(folder, { recursive: true });
  const { stdout } = await run(
    "npm",
    ["pack", `${platformPackage}@${version}`, "--pack-destination", folder, "--silent"],
    { cwd: folder, timeout: 240_000 },
  );
  await run("tar", ["xzf", stdout.trim().split("\n").at(-1) as string], { cwd: folder });
  return binary;
}

const upstreamKey = "sk-ant-upstream-for-claude-code-0123456789";
const clientKey = "sk-client-key-of-claude-code";
let binary: string;
let anthropic: AnthropicMock;
let openai: MockUpstream;
let running: RunningGateway;

beforeAll(async () => {
  if (!supported) return;
  binary = await claudeBinary();
  anthropic = await startAnthropicMock({ apiKey: upstreamKey });
  openai = await startMockUpstream();
  running = await startGateway({
    providers: {
      anthropic: createAnthropic({ apiKey: upstreamKey, baseURL: `${anthropic.url}/v1` }),
      openai: createOpenAICompatible({ baseURL: openai.baseURL }),
    },
    models: { "claude-*": { provider: "anthropic" } },
  });
}, 300_000);
afterAll(async () => {
  await running?.close();
  await anthropic?.close();
  await openai?.close();
});

async function askClaude(baseURL: string) {
  const home = mkdtempSync(join(tmpdir(), "aigw-claude-home-"));
  return run(binary, ["-p", "Say hello to the gateway"], {
    env: {
      PATH: process.env.PATH ?? "",
      HOME: home,
      ANTHROPIC_BASE_URL: baseURL,
      ANTHROPIC_API_KEY: clientKey,
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
    },
    timeout: 120_000,
  });
}

describe.skipIf(!supported)(`Claude Code ${version} against the gateway`, () => {
  it("works with an Anthropic upstream, its requests passed through", async () => {
    const { stdout } = await askClaude(running.url);
    expect(stdout).toContain("mock:");
    const sent = anthropic.requests.filter((request) => request.path.startsWith("/v1/messages"));
    expect(sent.length).toBeGreaterThan(0);
    for (const request of sent) {
      expect(request.headers["x-api-key"]).toBe(upstreamKey);
      expect(JSON.stringify(request.headers)).not.toContain(clientKey);
    }
  }, 150_000);

  it("works with an OpenAI-compatible upstream, its requests translated both ways", async () => {
    const translated = await startGateway({
      providers: { openai: createOpenAICompatible({ baseURL: openai.baseURL }) },
      models: { "claude-*": { provider: "openai", model: "gpt-4o-mini" } },
    });
    try {
      const { stdout } = await askClaude(translated.url);
      expect(stdout).toContain("mock:");
      const sent = openai.requests.filter((request) => request.path === "/v1/chat/completions");
      expect(sent.length).toBeGreaterThan(0);
      expect(sent[0]?.body).toMatchObject({ model: "gpt-4o-mini" });
    } finally {
      await translated.close();
    }
  }, 150_000);
});
