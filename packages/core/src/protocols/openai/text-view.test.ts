import { createSseEvent } from "@aigw/provider";
import { describe, expect, it } from "vitest";
import { openAIProtocol } from "./index.js";

const { requestText, answerText, eventText } = openAIProtocol;

describe("the OpenAI protocol's text view", () => {
  it("reads a chat request's messages, parts, tool calls and results in order", () => {
    const pieces = requestText("chat/completions", {
      model: "m",
      messages: [
        { role: "developer", content: "Be brief." },
        {
          role: "user",
          content: [
            { type: "text", text: "What is in" },
            { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } },
            { type: "text", text: "this picture?" },
          ],
        },
        {
          role: "assistant",
          content: null,
          reasoning_content: "Look it up.",
          tool_calls: [
            { id: "c1", type: "function", function: { name: "search", arguments: '{"q":"x"}' } },
          ],
        },
        { role: "tool", tool_call_id: "c1", content: "a cat" },
        { role: "assistant", content: [{ type: "refusal", refusal: "No." }] },
      ],
    });
    expect(pieces).toEqual([
      { role: "system", kind: "text", text: "Be brief." },
      { role: "user", kind: "text", text: "What is in" },
      { role: "user", kind: "text", text: "this picture?" },
      { role: "assistant", kind: "reasoning", text: "Look it up." },
      { role: "assistant", kind: "tool_call", text: '{"q":"x"}', name: "search" },
      { role: "tool", kind: "tool_result", text: "a cat" },
      { role: "assistant", kind: "text", text: "No." },
    ]);
  });

  it("reads prompts, inputs and Responses items", () => {
    expect(requestText("completions", { prompt: ["a", [1, 2], "b"] })).toEqual([
      { role: "user", kind: "text", text: "a" },
      { role: "user", kind: "text", text: "b" },
    ]);
    expect(requestText("embeddings", { input: "vector me" })).toEqual([
      { role: "user", kind: "text", text: "vector me" },
    ]);
    expect(
      requestText("responses", {
        instructions: "Rules.",
        input: [
          { role: "user", content: [{ type: "input_text", text: "Hi" }] },
          { type: "function_call", call_id: "c", name: "f", arguments: "{}" },
          { type: "function_call_output", call_id: "c", output: "42" },
          { type: "reasoning", summary: [{ type: "summary_text", text: "Thought." }] },
        ],
      }),
    ).toEqual([
      { role: "system", kind: "text", text: "Rules." },
      { role: "user", kind: "text", text: "Hi" },
      { role: "assistant", kind: "tool_call", text: "{}", name: "f" },
      { role: "tool", kind: "tool_result", text: "42" },
      { role: "assistant", kind: "reasoning", text: "Thought." },
    ]);
  });

  it("reads answers and stream events", () => {
    expect(
      answerText("chat/completions", {
        choices: [{ index: 0, message: { role: "assistant", content: "Hello", refusal: null } }],
      }),
    ).toEqual([{ role: "assistant", kind: "text", text: "Hello" }]);
    expect(
      answerText("responses", {
        output: [
          { type: "message", role: "assistant", content: [{ type: "output_text", text: "Yo" }] },
        ],
      }),
    ).toEqual([{ role: "assistant", kind: "text", text: "Yo" }]);
    const chunk = createSseEvent({
      choices: [
        {
          index: 0,
          delta: {
            reasoning: "hmm",
            content: "He",
            tool_calls: [{ index: 0, function: { arguments: '{"a"' } }],
          },
        },
      ],
    });
    expect(eventText("chat/completions", chunk)).toEqual([
      { role: "assistant", kind: "reasoning", text: "hmm" },
      { role: "assistant", kind: "text", text: "He" },
      { role: "assistant", kind: "tool_call", text: '{"a"' },
    ]);
    const delta = createSseEvent({ type: "response.output_text.delta", delta: "lo" });
    expect(eventText("responses", delta)).toEqual([
      { role: "assistant", kind: "text", text: "lo" },
    ]);
  });

  it("finds no text where there is none, whatever an upstream sends", () => {
    expect(eventText("chat/completions", createSseEvent("[DONE]"))).toEqual([]);
    expect(eventText("chat/completions", createSseEvent("{not json"))).toEqual([]);
    expect(eventText("responses", createSseEvent({ type: "constructor", delta: "x" }))).toEqual([]);
    expect(answerText("chat/completions", [1, 2])).toEqual([]);
    expect(requestText("chat/completions", { messages: "nope" })).toEqual([]);
  });
});
