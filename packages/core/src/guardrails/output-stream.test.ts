import { createSseEvent, type SseEvent } from "@aigw/provider";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { anthropicProtocol } from "../protocols/anthropic/index.js";
import { openAIProtocol } from "../protocols/openai/index.js";
import { createMatcher, ruleExpression } from "./matcher.js";
import { OutputStreamFilter } from "./output-stream.js";
import type { GuardrailPolicy } from "./policy.js";

const originals = new Map([
  ["<EMAIL_ADDRESS_0a1b2c3d>", "jane@example.com"],
  ["<PHONE_NUMBER_99887766>", "+1 415 555 2671"],
]);
const policy: GuardrailPolicy = {
  rules: [
    { name: "mild", words: ["darn"], action: "redact", on: "output" },
    { name: "stop", words: ["forbidden-word"], action: "block", on: "output" },
  ],
};
const expressions = new Map((policy.rules ?? []).map((rule) => [rule, ruleExpression(rule)]));

function filterFor(
  protocol = openAIProtocol,
  endpoint: "chat/completions" | "messages" = "chat/completions",
) {
  const matcher = createMatcher({
    phase: "output",
    policy,
    expressions,
    key: Buffer.alloc(32, 1),
    originals,
  });
  return new OutputStreamFilter(protocol, endpoint, matcher, 16, () => {});
}

const chunk = (content: string | undefined, finish: string | null = null) =>
  createSseEvent({
    id: "c",
    object: "chat.completion.chunk",
    choices: [{ index: 0, delta: content === undefined ? {} : { content }, finish_reason: finish }],
  });

/** Splits `text` at the given cut points. */
function pieces(text: string, cuts: number[]): string[] {
  const points = [...new Set(cuts.map((cut) => cut % (text.length + 1)))].sort((a, b) => a - b);
  const out: string[] = [];
  let from = 0;
  for (const point of [...points, text.length]) {
    if (point > from) out.push(text.slice(from, point));
    from = Math.max(from, point);
  }
  return out;
}

function run(filter: OutputStreamFilter, events: SseEvent[]): SseEvent[] {
  const out: SseEvent[] = [];
  for (const event of events) {
    const sent = filter.push(event);
    if (sent) out.push(...(Array.isArray(sent) ? sent : [sent]));
  }
  return out;
}

function contentOf(events: SseEvent[]): { text: string; finish: unknown } {
  let text = "";
  let finish: unknown;
  for (const event of events) {
    if (event.data === "[DONE]") continue;
    const data = JSON.parse(event.data);
    text += data.choices[0]?.delta?.content ?? "";
    finish = data.choices[0]?.finish_reason ?? finish;
  }
  return { text, finish };
}

const word = fc.constantFrom(
  "alpha ",
  "beta ",
  "darn ",
  "<EMAIL_ADDRESS_0a1b2c3d> ",
  "<PHONE_NUMBER_99887766>, ",
  "<EMAIL_ADDRESS_ffffffff> ",
  "gamma-delta ",
  "x\n",
);

describe("output rules on a stream", () => {
  it("gives the same text however the stream is cut into events", () => {
    fc.assert(
      fc.property(
        fc.array(word, { maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (words, cuts) => {
          const text = words.join("");
          const events = [
            ...pieces(text, cuts).map((part) => chunk(part)),
            chunk(undefined, "stop"),
          ];
          const out = run(filterFor(), [...events, createSseEvent("[DONE]")]);
          const expected = text
            .replaceAll("<EMAIL_ADDRESS_0a1b2c3d>", "jane@example.com")
            .replaceAll("<PHONE_NUMBER_99887766>", "+1 415 555 2671")
            .replaceAll("darn", "[REDACTED]");
          expect(contentOf(out)).toEqual({ text: expected, finish: "stop" });
          expect(out.at(-1)?.data).toBe("[DONE]");
        },
      ),
      { numRuns: 300 },
    );
  });

  it("withholds everything from a blocked match on, however it is cut", () => {
    fc.assert(
      fc.property(
        fc.array(word, { maxLength: 30 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (words, cuts) => {
          const text = `${words.join("")}forbidden-word ${words.join("")}`;
          const events = [
            ...pieces(text, cuts).map((part) => chunk(part)),
            chunk(undefined, "stop"),
          ];
          const { text: sent, finish } = contentOf(
            run(filterFor(), [...events, createSseEvent("[DONE]")]),
          );
          expect(finish).toBe("content_filter");
          expect(sent).not.toContain("forbidden");
          expect(sent.length).toBeLessThanOrEqual(text.indexOf("forbidden") + 40);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("holds back at most about twice its window before the first text goes out", () => {
    const filter = filterFor();
    const sent: SseEvent[] = [];
    for (let index = 0; index < 40; index++) {
      const out = filter.push(chunk("ab "));
      if (out) sent.push(...(Array.isArray(out) ? out : [out]));
      if (sent.length > 0) {
        // The window is the longest placeholder (51 characters) here, more than the 16 asked.
        expect(index * 3).toBeLessThanOrEqual(2 * 51 + 3);
        return;
      }
    }
    throw new Error("nothing was released");
  });

  it("holds events without text in order, so a match across an Anthropic ping is seen", () => {
    const event = (data: object) => createSseEvent(data, (data as { type: string }).type);
    const delta = (text: string) =>
      event({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text } });
    const out = run(filterFor(anthropicProtocol, "messages"), [
      event({ type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }),
      delta("say forbidden-"),
      event({ type: "ping" }),
      delta("word now"),
      event({ type: "content_block_stop", index: 0 }),
      event({ type: "message_delta", delta: { stop_reason: "end_turn" } }),
      event({ type: "message_stop" }),
    ]);
    expect(out.map((each) => each.data).join("")).not.toContain("forbidden");
    expect(out.map((each) => JSON.parse(each.data).type)).toEqual([
      "content_block_start",
      "ping",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
  });

  it("drops log probabilities from an answer whose text it edits", () => {
    const answer = {
      choices: [
        {
          index: 0,
          message: { role: "assistant", content: "darn" },
          logprobs: { content: [{ token: "darn" }] },
        },
      ],
    };
    openAIProtocol.editAnswerText("chat/completions", answer, () => "[REDACTED]");
    expect(answer.choices[0]).toMatchObject({ message: { content: "[REDACTED]" }, logprobs: null });
  });

  it("closes an Anthropic block it opened and ends the message as a refusal", () => {
    const event = (data: object) => createSseEvent(data, (data as { type: string }).type);
    const events = [
      event({ type: "message_start", message: { id: "m", content: [] } }),
      event({ type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }),
      event({
        type: "content_block_delta",
        index: 0,
        delta: { type: "text_delta", text: "fine " },
      }),
      event({
        type: "content_block_delta",
        index: 0,
        delta: { type: "text_delta", text: "forbidden-" },
      }),
      event({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "word" } }),
      event({ type: "content_block_stop", index: 0 }),
      event({ type: "content_block_start", index: 1, content_block: { type: "text", text: "" } }),
      event({ type: "content_block_stop", index: 1 }),
      event({
        type: "message_delta",
        delta: { stop_reason: "end_turn" },
        usage: { output_tokens: 3 },
      }),
      event({ type: "message_stop" }),
    ];
    const out = run(filterFor(anthropicProtocol, "messages"), events).map((each) =>
      JSON.parse(each.data),
    );
    expect(out.map((data) => data.type)).toEqual([
      "message_start",
      "content_block_start",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    expect(out[3].delta.stop_reason).toBe("refusal");
    expect(JSON.stringify(out)).not.toContain("forbidden");
  });
});
