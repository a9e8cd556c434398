import { createSseEvent } from "@aigw/provider";
import { describe, expect, it } from "vitest";
import { createStreamAssembler, replayEvents } from "./stream-assembly.js";

const head = { id: "chatcmpl-1", object: "chat.completion.chunk", created: 1, model: "gpt-4o" };
const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
  createSseEvent({ ...head, choices, ...extra });
const usage = { prompt_tokens: 9, completion_tokens: 4, total_tokens: 13 };
const decoded = (bytes: Uint8Array | undefined) =>
  JSON.parse(Buffer.from(bytes as Uint8Array).toString("utf8"));

const toolStream = [
  chunk([{ index: 0, delta: { role: "assistant", content: null }, finish_reason: null }]),
  chunk([
    {
      index: 0,
      delta: {
        tool_calls: [
          { index: 0, id: "call_a", type: "function", function: { name: "lookup", arguments: "" } },
        ],
      },
    },
  ]),
  chunk([{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '{"q":' } }] } }]),
  chunk([
    {
      index: 0,
      delta: {
        tool_calls: [
          { index: 1, id: "call_b", type: "function", function: { name: "time", arguments: "{}" } },
        ],
      },
    },
  ]),
  chunk([{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '"x"}' } }] } }]),
  chunk([{ index: 0, delta: {}, finish_reason: "tool_calls" }]),
  chunk([], { usage }),
  createSseEvent("[DONE]"),
];

describe("createStreamAssembler", () => {
  it("merges tool calls by index, with the finish reason and the usage chunk", () => {
    const assembler = createStreamAssembler("chat/completions", 2 ** 20);
    for (const event of toolStream) assembler.add(event);
    expect(decoded(assembler.finish(undefined))).toEqual({
      id: "chatcmpl-1",
      object: "chat.completion",
      created: 1,
      model: "gpt-4o",
      choices: [
        {
          index: 0,
          message: {
            role: "assistant",
            content: null,
            refusal: null,
            tool_calls: [
              {
                id: "call_a",
                type: "function",
                function: { name: "lookup", arguments: '{"q":"x"}' },
              },
              { id: "call_b", type: "function", function: { name: "time", arguments: "{}" } },
            ],
          },
          logprobs: null,
          finish_reason: "tool_calls",
        },
      ],
      usage,
    });
  });

  it("sets names, ids and finish reasons rather than joining them, when a server repeats or blanks them", () => {
    const call = (fields: Record<string, unknown>) =>
      chunk([{ index: 0, delta: { tool_calls: [{ index: 0, ...fields }] }, finish_reason: null }]);
    const assembler = createStreamAssembler("chat/completions", 2 ** 20);
    for (const event of [
      call({ id: "call_a", type: "function", function: { name: "lookup", arguments: '{"q":' } }),
      call({ id: "call_a", type: "function", function: { name: "lookup", arguments: '"x"}' } }),
      call({ id: "", function: { name: "", arguments: "" } }),
      chunk([{ index: 0, delta: {}, finish_reason: "tool_calls" }]),
      chunk([{ index: 0, delta: {}, finish_reason: "tool_calls" }]),
    ]) {
      assembler.add(event);
    }
    const [choice] = decoded(assembler.finish(undefined)).choices;
    expect(choice.message.tool_calls).toEqual([
      { id: "call_a", type: "function", function: { name: "lookup", arguments: '{"q":"x"}' } },
    ]);
    expect(choice.finish_reason).toBe("tool_calls");
  });

  it("withstands a hostile stream: __proto__ keys stay data, tool-call indexes only group, huge lists append", () => {
    const assembler = createStreamAssembler("chat/completions", 2 ** 24);
    const raw = (text: string) => createSseEvent(text);
    assembler.add(
      raw(
        `{"id":"x","__proto__":{"polluted":1},"choices":[{"index":0,"__proto__":{"polluted":2},"delta":{"__proto__":{"polluted":3},"content":"a"}}]}`,
      ),
    );
    const call = (index: number, fields: Record<string, unknown>) =>
      chunk([{ index: 0, delta: { tool_calls: [{ index, ...fields }] } }]);
    assembler.add(call(50_000_000, { id: "call_a", function: { name: "f", arguments: "{" } }));
    assembler.add(call(50_000_000, { function: { arguments: "}" } }));
    const many = Array.from({ length: 200_000 }, (_, n) => ({ token: `${n}`, logprob: 0 }));
    assembler.add(chunk([{ index: 0, delta: {}, logprobs: { content: many } }]));
    const answer = decoded(assembler.finish(undefined));

    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.hasOwn(answer, "__proto__")).toBe(true);
    const [choice] = answer.choices;
    expect(choice.message.tool_calls).toEqual([
      { type: "function", function: { name: "f", arguments: "{}" }, id: "call_a" },
    ]);
    expect(choice.message.content).toBe("a");
    expect(choice.logprobs.content).toHaveLength(200_000);
  });

  it("takes each top-level field's latest value that is not empty (Azure's first chunk has none)", () => {
    const assembler = createStreamAssembler("chat/completions", 2 ** 20);
    assembler.add(
      createSseEvent({
        id: "",
        object: "",
        created: 0,
        model: "",
        choices: [],
        prompt_filter_results: [{ prompt_index: 0, content_filter_results: {} }],
      }),
    );
    for (const event of toolStream) assembler.add(event);
    const answer = decoded(assembler.finish(undefined));
    expect(answer).toMatchObject({ id: "chatcmpl-1", created: 1, model: "gpt-4o" });
    expect(answer.prompt_filter_results).toHaveLength(1);
  });

  it("keeps several choices apart and takes usage the client did not see from the stream", () => {
    const assembler = createStreamAssembler("chat/completions", 2 ** 20);
    assembler.add(chunk([{ index: 1, delta: { role: "assistant", content: "B" } }]));
    assembler.add(chunk([{ index: 0, delta: { role: "assistant", content: "A" } }]));
    assembler.add(chunk([{ index: 0, delta: { content: "a" }, finish_reason: "stop" }]));
    assembler.add(chunk([{ index: 1, delta: { content: "b" }, finish_reason: "length" }]));
    const body = decoded(
      assembler.finish({ inputTokens: 2, outputTokens: 4, totalTokens: 6, estimated: false }),
    );
    expect(
      body.choices.map((choice: { message: { content: string } }) => choice.message.content),
    ).toEqual(["Aa", "Bb"]);
    expect(body.choices[1].finish_reason).toBe("length");
    expect(body.usage).toEqual({ prompt_tokens: 2, completion_tokens: 4, total_tokens: 6 });
  });

  it("leaves out an estimated usage, and refuses a stream that carried an error", () => {
    const estimated = createStreamAssembler("completions", 2 ** 20);
    estimated.add(
      createSseEvent({ ...head, object: "text_completion", choices: [{ text: "hi" }] }),
    );
    const body = decoded(
      estimated.finish({ inputTokens: 1, outputTokens: 1, totalTokens: 2, estimated: true }),
    );
    expect(body).toMatchObject({ object: "text_completion", choices: [{ text: "hi", index: 0 }] });
    expect(body.usage).toBeUndefined();

    const failed = createStreamAssembler("chat/completions", 2 ** 20);
    failed.add(chunk([{ index: 0, delta: { content: "partial" } }]));
    failed.add(createSseEvent({ error: { message: "overloaded" } }));
    expect(failed.finish(undefined)).toBeUndefined();
  });

  it("stops gathering past its limit, so an endless stream costs it no memory", () => {
    const bounded = createStreamAssembler("chat/completions", 4096);
    for (let index = 0; index < 10_000; index++) {
      bounded.add(chunk([{ index: 0, delta: { content: "x".repeat(100) } }]));
    }
    expect(bounded.overflowed).toBe(true);
    expect(bounded.finish(undefined)).toBeUndefined();
  });
});

describe("replayEvents", () => {
  it("replays an assembled answer as the stream it came from, usage only when asked", () => {
    const assembler = createStreamAssembler("chat/completions", 2 ** 20);
    for (const event of toolStream) assembler.add(event);
    const answer = decoded(assembler.finish(undefined));
    const withoutUsage = replayEvents("chat/completions", answer, false);
    expect(withoutUsage.at(-1)?.data).toBe("[DONE]");
    expect(withoutUsage.some((event) => event.data.includes('"usage"'))).toBe(false);

    const events = replayEvents("chat/completions", answer, true);
    const again = createStreamAssembler("chat/completions", 2 ** 20);
    for (const event of events) again.add(event);
    expect(decoded(again.finish(undefined))).toEqual(answer);
    expect(events).toHaveLength(6);
    expect(events.at(-2)?.json()).toMatchObject({ choices: [], usage });
  });
});
