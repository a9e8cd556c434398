import { type MockUpstream, startMockUpstream, waitFor } from "@aigw/testing";
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { runServer, type ServerProcess, writeConfig } from "./run-server.js";

let upstream: MockUpstream;
const servers: ServerProcess[] = [];

beforeAll(async () => {
  upstream = await startMockUpstream();
});
afterAll(async () => {
  await upstream?.close();
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop()));
  upstream.reset();
});

function guardedConfig() {
  return writeConfig(
    [
      "providers:",
      `  up: { type: openai-compatible, baseURL: '${upstream.baseURL}' }`,
      "models:",
      "  m: { provider: up }",
      "  open: { provider: up, model: m }",
      "guardrails:",
      "  secret: ${GUARDRAILS_SECRET}",
      "  default:",
      "    pii: { actions: { US_SSN: block } }",
      "    rules:",
      "      - { name: codenames, words: [bluebird], action: block, on: input }",
      "      - { name: tickets, patterns: ['\\bT-\\d{4}\\b'], action: redact, on: output }",
      "  routes:",
      "    open: { pii: { defaultAction: allow } }",
    ].join("\n"),
  );
}

const client = (server: ServerProcess) =>
  new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "local", maxRetries: 0 });

describe("guardrails from the config file", () => {
  it("masks the same value the same way on two instances, restores it, and logs verdicts", async () => {
    const file = await guardedConfig();
    const env = { GUARDRAILS_SECRET: "shared-secret-of-the-fleet" };
    servers.push(
      await runServer(["--config", file], env),
      await runServer(["--config", file], env),
    );
    const [first, second] = servers as [ServerProcess, ServerProcess];
    const ask = {
      model: "m",
      messages: [{ role: "user" as const, content: "mail ann@corp.example about T-1234" }],
    };
    const answers = [
      await client(first).chat.completions.create(ask),
      await client(second).chat.completions.create(ask),
    ];
    for (const answer of answers) {
      expect(answer.choices[0]?.message.content).toBe(
        "mock: mail ann@corp.example about [REDACTED]",
      );
    }
    const sent = upstream.requests.map((request) => JSON.stringify(request.body));
    expect(sent[0]).not.toContain("ann@corp.example");
    expect(sent[0]).toBe(sent[1]);

    const line = await waitFor(() =>
      first.lines.map((each) => JSON.parse(each)).find((each) => each.guardrails),
    );
    expect(line.guardrails).toEqual([
      { rule: "pii", phase: "input", action: "redact", matches: 1, entities: { EMAIL_ADDRESS: 1 } },
      { rule: "tickets", phase: "output", action: "redact", matches: 1 },
    ]);
    expect(JSON.stringify(first.lines)).not.toContain("ann@corp.example");
    const metrics = await (await fetch(`${first.url}/metrics`)).text();
    expect(metrics).toContain(
      'aigw_guardrail_verdicts_total{rule="pii",phase="input",action="redact"} 1',
    );
  });

  it("refuses blocked input with 400s, and lets a route relax the policy", async () => {
    const server = await runServer(["--config", await guardedConfig()], {
      GUARDRAILS_SECRET: "shared-secret-of-the-fleet",
    });
    servers.push(server);
    const refuse = (content: string, model = "m") =>
      client(server)
        .chat.completions.create({ model, messages: [{ role: "user", content }] })
        .then(
          () => undefined,
          (error: InstanceType<typeof OpenAI.APIError>) => ({
            status: error.status,
            code: error.code,
          }),
        );
    expect(await refuse("SSN 219-09-9999")).toEqual({ status: 400, code: "pii_detected" });
    expect(await refuse("Project Bluebird status")).toEqual({
      status: 400,
      code: "content_filter",
    });
    expect(upstream.requests).toHaveLength(0);
    expect(await refuse("write to ann@corp.example", "open")).toBeUndefined();
    expect(JSON.stringify(upstream.requests[0]?.body)).toContain("ann@corp.example");
  });

  /** What a server started with this `guardrails` section says when it refuses to start. */
  async function refusal(section: string[]): Promise<string> {
    const file = await writeConfig(
      [
        "providers:",
        `  up: { type: openai-compatible, baseURL: '${upstream.baseURL}' }`,
        "models:",
        "  m: { provider: up }",
        "guardrails:",
        "  secret: sixteen-characters-at-least",
        ...section,
      ].join("\n"),
    );
    return runServer(["--config", file]).then(
      () => "started",
      (error: Error) => error.message,
    );
  }

  it("refuses to start with an entity name nothing finds, in one sentence, as check does", async () => {
    const misspelt = await refusal(["  default: { pii: { actions: { US_SNN: block } } }"]);
    expect(misspelt).toContain("guardrails.default.pii.actions.US_SNN: unknown entity 'US_SNN'");
    expect(misspelt).not.toMatch(/\n\s+at /);
    expect(await refusal(["  default: { rules: [{ name: empty, action: flag }] }"])).toContain(
      "guardrails.default.rules.0: needs words or patterns",
    );
  });

  it("refuses a configuration with a bad pattern or an unknown route, naming the field", async () => {
    const bad = await refusal([
      "  default: { rules: [{ name: broken, patterns: ['(unclosed'], action: flag }] }",
      "  routes: { nowhere: {} }",
    ]);
    expect(bad).toContain(
      "guardrails.default.rules.0.patterns.0: not a valid regular expression: Invalid regular expression",
    );
    expect(await refusal(["  routes: { nowhere: {} }"])).toContain(
      "guardrails.routes.nowhere: no route of that name",
    );
  });
});
