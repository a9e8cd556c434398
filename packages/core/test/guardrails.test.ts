import { createMemoryCache } from "@aigw/cache";
import { createMetrics } from "@aigw/metrics";
import { createAnthropic, createOpenAICompatible } from "@aigw/provider";
import {
  type AnthropicMock,
  collectLines,
  type MockUpstream,
  startAnthropicMock,
  startMockUpstream,
} from "@aigw/testing";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createGuardrails } from "../src/guardrails.js";
import { type GuardrailVerdict, hashApiKey } from "../src/index.js";
import { type RunningGateway, startGateway } from "./start-gateway.js";

// Guardrails through a real gateway, with both official SDKs as clients. The mock upstreams
// answer "mock: <the last user message>", a word per stream event, so what the gateway sent
// up comes back down.
const email = "jane.doe@example.com";
const ssn = "219-09-9999";
const clientKey = "aigw-guarded-client-key";
const upstreamKey = "sk-ant-upstream-0123456789abcdef0123456789";
let openai: MockUpstream;
let anthropicMock: AnthropicMock;
let running: RunningGateway;
let client: OpenAI;
let claude: Anthropic;
const logLines: Record<string, unknown>[] = [];
const metrics = createMetrics();
const checked: string[] = [];
const analyzed: string[] = [];
const checkHeaders: Record<string, string>[] = [];

beforeAll(async () => {
  openai = await startMockUpstream();
  anthropicMock = await startAnthropicMock({ apiKey: upstreamKey });
  running = await startGateway({
    providers: {
      openai: createOpenAICompatible({ baseURL: openai.baseURL, retry: { maxRetries: 0 } }),
      anthropic: createAnthropic({
        apiKey: upstreamKey,
        baseURL: `${anthropicMock.url}/v1`,
        retry: { maxRetries: 0 },
      }),
    },
    models: {
      "gpt-*": { provider: "openai" },
      "text-embedding-3-small": { provider: "openai" },
      "claude-*": { provider: "anthropic" },
      "raw-model": { provider: "openai", model: "gpt-4o-mini" },
      "named-model": { provider: "openai", model: "gpt-4o-mini" },
      cached: { provider: "openai", model: "gpt-4o-mini", cache: true },
    },
    tenants: { team: { keyHashes: [hashApiKey(clientKey)] } },
    cache: { store: createMemoryCache(), enabled: false },
    metrics,
    logger: pino(
      { level: "info" },
      collectLines((line) => logLines.push(JSON.parse(line))),
    ),
    hooks: [
      createGuardrails({
        secret: "a-secret-of-at-least-16-bytes",
        policy: {
          pii: { actions: { US_SSN: "block" }, output: "redact" },
          rules: [
            { name: "project-names", words: ["Project Nightingale"], action: "block", on: "input" },
            { name: "forbidden-output", words: ["forbidden-word"], action: "block", on: "output" },
            { name: "mild-words", words: ["darn"], action: "redact", on: "output" },
            { name: "order-ids", patterns: [String.raw`\bORD-\d{6}\b`], action: "flag" },
          ],
          maxPromptChars: 20_000,
          checks: [
            {
              name: "moderation",
              action: "block",
              // A moderation model called through the gateway itself, with the check's header.
              async check({ text, headers }) {
                if (!text.includes("moderate me")) return false;
                const verdict = await new OpenAI({
                  baseURL: `${running.url}/v1`,
                  apiKey: clientKey,
                  maxRetries: 0,
                  defaultHeaders: headers,
                }).chat.completions.create({
                  model: "gpt-4o-mini",
                  messages: [{ role: "user", content: `moderate me: ${text.slice(0, 200)}` }],
                });
                checked.push(verdict.choices[0]?.message.content ?? "");
                checkHeaders.push(headers);
                return text.includes("attack");
              },
            },
          ],
        },
        routes: {
          "raw-model": { pii: { defaultAction: "allow" }, rules: [] },
          "named-model": {
            pii: {
              actions: { US_SSN: "block" },
              // An analyzer for names, as a named-entity recognizer (Presidio) would be.
              async analyzer(text) {
                analyzed.push(text);
                return [...text.matchAll(/Jane Roe/g)].map((hit) => ({
                  entity: "PERSON",
                  start: hit.index,
                  end: hit.index + hit[0].length,
                }));
              },
            },
          },
        },
      }),
    ],
  });
  client = new OpenAI({ baseURL: `${running.url}/v1`, apiKey: clientKey, maxRetries: 0 });
  claude = new Anthropic({ baseURL: running.url, apiKey: clientKey, maxRetries: 0 });
});
afterEach(() => {
  openai.reset();
  anthropicMock.reset();
  logLines.length = 0;
});
afterAll(async () => {
  await running?.close();
  await openai?.close();
  await anthropicMock?.close();
});

const sentBody = (upstream: { requests: { body: unknown }[] }, index = 0) =>
  JSON.stringify(upstream.requests[index]?.body);
const placeholderIn = (text: string) => /<EMAIL_ADDRESS_[0-9a-f]{8}>/.exec(text)?.[0];

function verdictsLogged(): GuardrailVerdict[] {
  return logLines.flatMap((line) => (line.guardrails as GuardrailVerdict[] | undefined) ?? []);
}

describe("PII on the way up and back", () => {
  it("masks an email for the upstream and restores it in a JSON answer (OpenAI SDK)", async () => {
    const answer = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: `Write to ${email} today` }],
    });
    const sent = sentBody(openai);
    expect(sent).not.toContain(email);
    const placeholder = placeholderIn(sent) as string;
    expect(placeholder).toBeDefined();
    expect(answer.choices[0]?.message.content).toBe(`mock: Write to ${email} today`);
    expect(verdictsLogged()).toEqual([
      { rule: "pii", phase: "input", action: "redact", matches: 1, entities: { EMAIL_ADDRESS: 1 } },
    ]);

    // The same value gets the same placeholder in the next turn: no state kept anywhere.
    await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: `And again: ${email}` }],
    });
    expect(placeholderIn(sentBody(openai, 1))).toBe(placeholder);
    expect(await metrics.expose()).toMatch(
      /guardrail_pii_entities_total\{entity="EMAIL_ADDRESS",phase="input"\} 2/,
    );
  });

  it("restores placeholders in a stream, word by word (OpenAI SDK)", async () => {
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      stream: true,
      messages: [{ role: "user", content: `Mail ${email} and ${"bob@corp.example"} now` }],
    });
    let text = "";
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(sentBody(openai)).not.toContain(email);
    expect(text).toBe(`mock: Mail ${email} and bob@corp.example now`);
    expect(finish).toBe("stop");
  });

  it("restores a placeholder split across stream events", async () => {
    await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: `Is ${email} right?` }],
    });
    const placeholder = placeholderIn(sentBody(openai)) as string;
    openai.reset();
    const chunk = (content: string, finish: string | null = null) => ({
      id: "c",
      object: "chat.completion.chunk",
      created: 1,
      model: "gpt-4o-mini",
      choices: [{ index: 0, delta: { content }, finish_reason: finish }],
    });
    openai.enqueue({
      kind: "events",
      events: [
        chunk("Yes, "),
        chunk(placeholder.slice(0, 5)),
        chunk(placeholder.slice(5, 17)),
        chunk(`${placeholder.slice(17)} is`),
        chunk(" right.", "stop"),
        "[DONE]",
      ],
    });
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      stream: true,
      messages: [{ role: "user", content: `Is ${email} right?` }],
    });
    let text = "";
    for await (const part of stream) text += part.choices[0]?.delta.content ?? "";
    expect(text).toBe(`Yes, ${email} is right.`);
  });

  it("refuses a request carrying a blocked entity, in each protocol, without echoing it", async () => {
    const refusal = await client.chat.completions
      .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: `My SSN is ${ssn}` }] })
      .catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(OpenAI.BadRequestError);
    const openaiError = refusal as InstanceType<typeof OpenAI.BadRequestError>;
    expect(openaiError.code).toBe("pii_detected");
    expect(openaiError.message).toContain("US_SSN (1)");
    expect(openaiError.message).not.toContain(ssn);

    const anthropicRefusal = await claude.messages
      .create({
        model: "claude-sonnet-4-5",
        max_tokens: 32,
        system: `Customer SSN: ${ssn}`,
        messages: [{ role: "user", content: "Hi" }],
      })
      .catch((error: unknown) => error);
    expect(anthropicRefusal).toBeInstanceOf(Anthropic.BadRequestError);
    expect(JSON.stringify((anthropicRefusal as { error: unknown }).error)).not.toContain(ssn);
    expect(openai.requests).toHaveLength(0);
    expect(anthropicMock.requests).toHaveLength(0);
    expect(verdictsLogged()).toContainEqual({
      rule: "pii",
      phase: "input",
      action: "block",
      matches: 1,
      entities: { US_SSN: 1 },
    });
  });

  it("masks tool results, tool-call arguments and embeddings input", async () => {
    await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [
        { role: "user", content: "Find the user" },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            {
              id: "call_1",
              type: "function",
              function: { name: "lookup", arguments: JSON.stringify({ email }) },
            },
          ],
        },
        { role: "tool", tool_call_id: "call_1", content: `Found: ${email}, +1 415 555 2671` },
      ],
    });
    const sent = sentBody(openai);
    expect(sent).not.toContain(email);
    expect(sent).not.toContain("415 555 2671");
    const sentRequest = openai.requests[0]?.body as { messages: { tool_calls?: unknown[] }[] };
    const toolCall = sentRequest.messages[1]?.tool_calls?.[0] as {
      function: { arguments: string };
    };
    expect(JSON.parse(toolCall.function.arguments).email).toMatch(/^<EMAIL_ADDRESS_/);

    // A card written as a JSON number becomes a string holding its placeholder: still JSON.
    await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [
        { role: "user", content: "Pay" },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            {
              id: "call_2",
              type: "function",
              function: { name: "pay", arguments: '{"card": 4111111111111111, "cents": 1250}' },
            },
          ],
        },
        { role: "tool", tool_call_id: "call_2", content: "paid" },
      ],
    });
    const paid = openai.requests[1]?.body as { messages: { tool_calls?: unknown[] }[] };
    const payCall = paid.messages[1]?.tool_calls?.[0] as { function: { arguments: string } };
    expect(JSON.parse(payCall.function.arguments)).toEqual({
      card: expect.stringMatching(/^<CREDIT_CARD_[0-9a-f]{8}>$/),
      cents: 1250,
    });

    await client.embeddings.create({ model: "text-embedding-3-small", input: [`a ${email}`, "b"] });
    expect(sentBody(openai, 2)).not.toContain(email);
  });

  it("lets a route turn PII masking off", async () => {
    await client.chat.completions.create({
      model: "raw-model",
      messages: [{ role: "user", content: `Write to ${email}` }],
    });
    expect(sentBody(openai)).toContain(email);
  });
});

describe("an external analyzer", () => {
  it("masks what it finds in every piece of the request, in one call, and restores it", async () => {
    const answer = await claude.messages.create({
      model: "named-model",
      max_tokens: 64,
      system: "You help Jane Roe.",
      messages: [{ role: "user", content: `I am Jane Roe, ${email}` }],
    });
    expect(analyzed).toHaveLength(1);
    const sent = sentBody(openai);
    expect(sent).not.toContain("Jane Roe");
    expect(sent).not.toContain(email);
    expect(sent.match(/<PERSON_[0-9a-f]{8}>/g)).toHaveLength(2);
    expect(answer.content).toEqual([{ type: "text", text: `mock: I am Jane Roe, ${email}` }]);
  });
});

describe("content filters", () => {
  it("blocks input by word list with content_filter, naming the rule only", async () => {
    const error = (await client.chat.completions
      .create({
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "Status of project nightingale?" }],
      })
      .catch((failure: unknown) => failure)) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(error.status).toBe(400);
    expect(error.code).toBe("content_filter");
    expect(error.message).toContain("'project-names'");
    expect(error.message).not.toMatch(/nightingale/i);
    expect(openai.requests).toHaveLength(0);
  });

  it("refuses a prompt over the size cap", async () => {
    const error = (await client.chat.completions
      .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x".repeat(20_001) }] })
      .catch((failure: unknown) => failure)) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(error.code).toBe("content_filter");
    expect(error.message).toContain("max_prompt_chars");
  });

  it("flags without changing anything", async () => {
    await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "Where is ORD-123456?" }],
    });
    expect(sentBody(openai)).toContain("ORD-123456");
    expect(verdictsLogged()).toContainEqual({
      rule: "order-ids",
      phase: "input",
      action: "flag",
      matches: 1,
    });
    expect(verdictsLogged()).toContainEqual({
      rule: "order-ids",
      phase: "output",
      action: "flag",
      matches: 1,
    });
  });

  it("redacts output words in JSON and streams", async () => {
    const answer = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "say darn it" }],
    });
    expect(answer.choices[0]?.message.content).toBe("mock: say [REDACTED] it");
    const stream = await claude.messages.stream({
      model: "claude-sonnet-4-5",
      max_tokens: 64,
      messages: [{ role: "user", content: "say darn it" }],
    });
    const message = await stream.finalMessage();
    expect(message.content).toEqual([{ type: "text", text: "mock: say [REDACTED] it" }]);
  });

  it("withholds a blocked JSON answer with finish_reason content_filter and status 200", async () => {
    const answer = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "repeat forbidden-word please" }],
    });
    expect(answer.choices[0]?.finish_reason).toBe("content_filter");
    expect(answer.choices[0]?.message.content).toBeNull();
    expect(JSON.stringify(answer)).not.toContain("forbidden-word");

    const message = await claude.messages.create({
      model: "claude-sonnet-4-5",
      max_tokens: 64,
      messages: [{ role: "user", content: "repeat forbidden-word please" }],
    });
    expect(message.stop_reason).toBe("refusal");
    expect(message.content).toEqual([]);
  });

  it("withholds a blocked stream and ends it as the providers do (OpenAI SDK)", async () => {
    const words = Array.from({ length: 60 }, (_, index) => `word${index}`).join(" ");
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: `${words} forbidden-word and more after it` }],
    });
    let text = "";
    let finish: string | null | undefined;
    let usage: unknown;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    expect(finish).toBe("content_filter");
    expect(text).not.toContain("forbidden");
    // What came well before the match went out before it was seen.
    expect(text).toContain("word10");
    expect(text).not.toContain("after it");
    expect(usage).toBeDefined();
    expect(verdictsLogged()).toContainEqual({
      rule: "forbidden-output",
      phase: "output",
      action: "block",
      matches: 1,
    });
  });

  it("withholds a blocked Anthropic pass-through stream with stop_reason refusal", async () => {
    const stream = claude.messages.stream({
      model: "claude-sonnet-4-5",
      max_tokens: 64,
      messages: [{ role: "user", content: "repeat forbidden-word please" }],
    });
    const message = await stream.finalMessage();
    expect(message.stop_reason).toBe("refusal");
    expect(JSON.stringify(message)).not.toContain("forbidden");
  });

  it("scans tool-call arguments of an Anthropic stream and masks PII in them", async () => {
    anthropicMock.enqueue({
      kind: "reply",
      content: [
        { type: "text", text: "Sending." },
        { type: "tool_use", id: "toolu_1", name: "send", input: { to: "rogue@leak.example" } },
      ],
      stopReason: "tool_use",
    });
    const message = await claude.messages
      .stream({
        model: "claude-sonnet-4-5",
        max_tokens: 64,
        messages: [{ role: "user", content: "send it" }],
      })
      .finalMessage();
    const toolUse = message.content.find((block) => block.type === "tool_use");
    expect(JSON.stringify(toolUse)).not.toContain("rogue@leak.example");
    expect((toolUse as { input: { to: string } }).input.to).toMatch(
      /^<EMAIL_ADDRESS_[0-9a-f]{8}>$/,
    );
  });

  it("masks PII in an OpenAI stream's tool-call arguments, split across events", async () => {
    const args = JSON.stringify({ to: "rogue@leak.example", body: "hi" });
    const call = (index: number, fields: object, finish: string | null = null) => ({
      id: "c",
      object: "chat.completion.chunk",
      created: 1,
      model: "gpt-4o-mini",
      choices: [{ index: 0, delta: { tool_calls: [{ index, ...fields }] }, finish_reason: finish }],
    });
    openai.enqueue({
      kind: "events",
      events: [
        call(0, { id: "call_1", type: "function", function: { name: "send", arguments: "" } }),
        ...[0, 9, 14, 21].map((from, at, cuts) =>
          call(0, { function: { arguments: args.slice(from, cuts[at + 1]) } }),
        ),
        {
          id: "c",
          object: "chat.completion.chunk",
          created: 1,
          model: "gpt-4o-mini",
          choices: [{ index: 0, delta: {}, finish_reason: "tool_calls" }],
        },
        "[DONE]",
      ],
    });
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      stream: true,
      messages: [{ role: "user", content: "send it" }],
    });
    let argumentsText = "";
    for await (const chunk of stream) {
      argumentsText += chunk.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? "";
    }
    expect(argumentsText).not.toContain("rogue@leak.example");
    expect(JSON.parse(argumentsText)).toEqual({
      to: expect.stringMatching(/^<EMAIL_ADDRESS_[0-9a-f]{8}>$/),
      body: "hi",
    });
  });

  it("runs a custom check that calls a model through the gateway, which its own rule skips", async () => {
    checked.length = 0;
    const allowed = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "moderate me: a kind word" }],
    });
    expect(allowed.choices[0]?.message.content).toBe("mock: moderate me: a kind word");
    expect(checked).toHaveLength(1);
    const error = (await client.chat.completions
      .create({
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "moderate me: attack" }],
      })
      .catch((failure: unknown) => failure)) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(error.code).toBe("content_filter");
    expect(error.message).toContain("'moderation'");
    // Two checks, one model call each; the blocked request itself never went upstream.
    expect(checked).toHaveLength(2);
    expect(openai.requests).toHaveLength(3);

    // Another instance with the same secret knows the check's header; a forged one is checked.
    let checks = 0;
    const other = await startGateway({
      providers: { openai: createOpenAICompatible({ baseURL: openai.baseURL }) },
      models: { "gpt-*": { provider: "openai" } },
      hooks: [
        createGuardrails({
          secret: "a-secret-of-at-least-16-bytes",
          policy: {
            checks: [
              {
                name: "count",
                action: "block",
                check: () => {
                  checks++;
                  return true;
                },
              },
            ],
          },
        }),
      ],
    });
    try {
      const ask = (headers: Record<string, string>) =>
        fetch(`${other.url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", ...headers },
          body: JSON.stringify({
            model: "gpt-4o-mini",
            messages: [{ role: "user", content: "hi" }],
          }),
        });
      expect((await ask(checkHeaders[0] as Record<string, string>)).status).toBe(200);
      expect(checks).toBe(0);
      expect((await ask({ "x-aigw-guardrail-check": "forged" })).status).toBe(400);
      expect(checks).toBe(1);
    } finally {
      await other.close();
    }
  });
});
