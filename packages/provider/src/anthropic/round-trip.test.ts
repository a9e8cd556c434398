import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isObject, type JsonObject as Json } from "../json-object.js";
import { chatToMessages } from "./chat-to-messages.js";
import { ChatToMessagesStream, chatAnswerToMessage } from "./chat-to-messages-answer.js";
import { messagesRequestToChat } from "./messages-request-to-chat.js";
import { messagesToChat } from "./messages-to-chat.js";

// Random but valid Anthropic requests and OpenAI answers, translated and translated back:
// ids, names, order and content must all survive.

const text = fc.string({ minLength: 1, maxLength: 30 }).filter((value) => value.trim() !== "");
const toolId = fc.stringMatching(/^toolu_[a-zA-Z0-9_-]{1,20}$/);
// Up to 90 characters: past OpenAI's 64, so some are shortened and must come back whole.
const toolName = fc.oneof(
  fc.stringMatching(/^[a-zA-Z][a-zA-Z0-9_-]{0,20}$/),
  fc.stringMatching(/^[a-zA-Z][a-zA-Z0-9_-]{64,89}$/),
);
const input = fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), {
  maxKeys: 4,
});
const image = fc
  .base64String({ minLength: 4, maxLength: 40 })
  .map((data) => ({ type: "image", source: { type: "base64", media_type: "image/png", data } }));

interface Conversation {
  system: string | Json[] | undefined;
  names: string[];
  messages: Json[];
  toolChoice: Json | undefined;
}

const conversation: fc.Arbitrary<Conversation> = fc
  .record({
    system: fc.option(
      fc.oneof(
        text,
        fc.array(
          text.map((value) => ({ type: "text", text: value })),
          { minLength: 1, maxLength: 3 },
        ),
      ),
      { nil: undefined },
    ),
    names: fc.uniqueArray(toolName, { minLength: 1, maxLength: 4 }),
    first: fc.array(
      fc.oneof(
        text.map((value) => ({ type: "text", text: value })),
        image,
      ),
      {
        minLength: 1,
        maxLength: 3,
      },
    ),
    rounds: fc.array(
      fc.record({
        texts: fc.array(text, { maxLength: 2 }),
        calls: fc.array(fc.record({ pick: fc.nat(), input }), { maxLength: 3 }),
        results: fc.array(
          fc.oneof(text, fc.array(text, { minLength: 1, maxLength: 2 }), fc.constant(undefined)),
          { minLength: 3, maxLength: 3 },
        ),
        order: fc.nat(),
        after: fc.array(
          fc.oneof(
            text.map((value) => ({ type: "text", text: value })),
            image,
          ),
          {
            maxLength: 2,
          },
        ),
      }),
      { maxLength: 4 },
    ),
    choice: fc.option(
      fc.record({ type: fc.constantFrom("auto", "any", "none", "tool"), pick: fc.nat() }),
      { nil: undefined },
    ),
  })
  .map(({ system, names, first, rounds, choice }) => {
    const messages: Json[] = [{ role: "user", content: first }];
    let serial = 0;
    for (const round of rounds) {
      const uses = round.calls.map((call) => ({
        type: "tool_use",
        id: `toolu_${serial++}`,
        name: names[call.pick % names.length],
        input: call.input,
      }));
      const assistant = [...round.texts.map((value) => ({ type: "text", text: value })), ...uses];
      if (assistant.length === 0) assistant.push({ type: "text", text: "ok" });
      messages.push({ role: "assistant", content: assistant });
      // Results in any order, each call answered once, before the user's own blocks.
      const results = uses.map((use, index) => {
        const content = round.results[index];
        return {
          type: "tool_result",
          tool_use_id: use.id,
          ...(content === undefined
            ? {}
            : {
                content:
                  typeof content === "string"
                    ? content
                    : content.map((value) => ({ type: "text", text: value })),
              }),
        };
      });
      const shift = results.length > 0 ? round.order % results.length : 0;
      const user = [...results.slice(shift), ...results.slice(0, shift), ...round.after];
      if (user.length === 0) user.push({ type: "text", text: "go on" });
      messages.push({ role: "user", content: user });
    }
    const toolChoice = choice && {
      type: choice.type,
      ...(choice.type === "tool" ? { name: names[choice.pick % names.length] } : {}),
    };
    return { system, names, messages, toolChoice };
  });

function resultText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content.map((block) => (isObject(block) ? block.text : "")).join("\n");
}

/** A conversation as what must survive: per turn, its pieces in order, names restored. */
function pieces(messages: unknown[], names: ReadonlyMap<string, string> = new Map()) {
  return messages.filter(isObject).map((message) => {
    const blocks = (Array.isArray(message.content) ? message.content : []).filter(isObject);
    if (message.role === "assistant") {
      const joined = blocks
        .filter((block) => block.type === "text")
        .map((block) => block.text)
        .join("");
      return [
        ...(joined === "" ? [] : [{ text: joined }]),
        ...blocks
          .filter((block) => block.type === "tool_use")
          .map((block) => ({
            id: block.id,
            name: names.get(String(block.name)) ?? block.name,
            input: JSON.stringify(block.input),
          })),
      ];
    }
    return blocks.map((block) => {
      if (block.type === "tool_result") {
        return { result: block.tool_use_id, text: resultText(block.content) };
      }
      if (block.type === "image" && isObject(block.source)) return { image: block.source.data };
      return { text: block.text };
    });
  });
}

function systemText(system: unknown): string {
  return typeof system === "string" ? system : resultText(system);
}

describe("Anthropic requests through OpenAI's shape and back", () => {
  it("keep ids, names, order and content, and make OpenAI requests OpenAI accepts", () => {
    fc.assert(
      fc.property(conversation, ({ system, names, messages, toolChoice }) => {
        const request: Json = {
          model: "m",
          max_tokens: 256,
          messages,
          tools: names.map((name) => ({
            name,
            input_schema: { type: "object", properties: { q: { type: "string" } } },
          })),
          ...(system === undefined ? {} : { system }),
          ...(toolChoice ? { tool_choice: toolChoice } : {}),
        };
        const { body: chat, toolNames } = messagesRequestToChat(request);

        // What OpenAI checks: names within 64 characters of its alphabet, each tool message
        // right after the calls (or the other results) of the assistant turn that made its call.
        const chatMessages = chat.messages as Json[];
        let calls = new Set<unknown>();
        chatMessages.forEach((message, index) => {
          if (message.role === "assistant") {
            calls = new Set((message.tool_calls as Json[] | undefined)?.map((call) => call.id));
            for (const call of (message.tool_calls as Json[] | undefined) ?? []) {
              expect((call.function as Json).name).toMatch(/^[a-zA-Z0-9_-]{1,64}$/);
            }
          }
          if (message.role === "tool") {
            expect(["assistant", "tool"]).toContain(chatMessages[index - 1]?.role);
            expect(calls.has(message.tool_call_id)).toBe(true);
          }
        });
        const toolNamesSent = (chat.tools as Json[]).map((tool) => (tool.function as Json).name);
        expect(new Set(toolNamesSent).size).toBe(names.length);
        for (const name of toolNamesSent) expect(name).toMatch(/^[a-zA-Z0-9_-]{1,64}$/);

        const back = chatToMessages(chat, { defaultMaxTokens: 1 });
        expect(pieces(back.messages as Json[], toolNames)).toEqual(pieces(messages));
        expect(systemText(back.system)).toBe(system === undefined ? "" : systemText(system));
        expect(
          (back.tools as Json[]).map((tool) => toolNames.get(String(tool.name)) ?? tool.name),
        ).toEqual(names);
        if (toolChoice) {
          const choice = back.tool_choice as Json;
          expect(choice.type).toBe(toolChoice.type);
          expect(toolNames.get(String(choice.name)) ?? choice.name).toBe(toolChoice.name);
        }
      }),
      { numRuns: 500 },
    );
  });
});

interface Answer {
  reasoning: string[];
  content: string[];
  calls: { id: string; name: string; args: string; cuts: number[] }[];
  interleaving: number[];
}

const answer: fc.Arbitrary<Answer> = fc.record({
  reasoning: fc.array(text, { maxLength: 3 }),
  content: fc.array(text, { maxLength: 3 }),
  calls: fc.uniqueArray(
    fc.record({
      id: toolId,
      name: toolName,
      args: input.map((value) => JSON.stringify(value)),
      cuts: fc.array(fc.nat(), { maxLength: 4 }),
    }),
    { maxLength: 4, selector: (call) => call.id },
  ),
  interleaving: fc.array(fc.nat(), { maxLength: 40 }),
});

function shortened(calls: Answer["calls"]) {
  const toolNames = new Map<string, string>();
  const upstreamName = new Map<string, string>();
  calls.forEach((call, index) => {
    const short =
      call.name.length > 64 ? `${call.name.slice(0, 55)}_${index}`.padEnd(64, "0") : call.name;
    if (short !== call.name) toolNames.set(short, call.name);
    upstreamName.set(call.id, short);
  });
  return { toolNames, upstreamName };
}

/** The argument pieces of each call, interleaved across calls as `order` says, each call's in order. */
function interleaved({ calls, interleaving }: Answer, upstreamName: Map<string, string>) {
  const queues = calls.map((call, index) => {
    const points = [...new Set(call.cuts.map((cut) => cut % (call.args.length + 1)))].sort(
      (a, b) => a - b,
    );
    const bounds = [0, ...points, call.args.length];
    const parts = bounds.slice(1).map((end, at) => call.args.slice(bounds[at], end));
    return parts.map((part, at) => ({
      index,
      ...(at === 0 ? { id: call.id, type: "function" } : {}),
      function: { ...(at === 0 ? { name: upstreamName.get(call.id) } : {}), arguments: part },
    }));
  });
  const deltas: Json[] = [];
  let step = 0;
  for (;;) {
    const open = queues.filter((queue) => queue.length > 0);
    if (open.length === 0) return deltas;
    const queue = open[(interleaving[step++] ?? 0) % open.length] as Json[];
    deltas.push(queue.shift() as Json);
  }
}

describe("OpenAI answers in Anthropic's shape and back", () => {
  it("keep text, reasoning, tool call ids, names and arguments", () => {
    fc.assert(
      fc.property(answer, (generated) => {
        const { toolNames, upstreamName } = shortened(generated.calls);
        const chat = {
          id: "chatcmpl-1",
          model: "m",
          choices: [
            {
              index: 0,
              finish_reason: generated.calls.length > 0 ? "tool_calls" : "stop",
              message: {
                role: "assistant",
                content: generated.content.join(""),
                ...(generated.reasoning.length > 0
                  ? { reasoning_content: generated.reasoning.join("") }
                  : {}),
                tool_calls: generated.calls.map((call) => ({
                  id: call.id,
                  type: "function",
                  function: { name: upstreamName.get(call.id), arguments: call.args },
                })),
              },
            },
          ],
          usage: { prompt_tokens: 3, completion_tokens: 4 },
        };
        const message = chatAnswerToMessage(chat, { toolNames, stopSequences: [] });
        const back = messagesToChat(message, 0);
        const choice = (back.choices as Json[])[0] as Json;
        const replied = choice.message as Json;
        expect(replied.content ?? "").toBe(generated.content.join(""));
        expect(replied.reasoning_content ?? "").toBe(generated.reasoning.join(""));
        expect(
          ((replied.tool_calls as Json[] | undefined) ?? []).map((call) => ({
            id: call.id,
            name: (call.function as Json).name,
            args: JSON.parse(String((call.function as Json).arguments)),
          })),
        ).toEqual(
          generated.calls.map((call) => ({
            id: call.id,
            name: call.name,
            args: JSON.parse(call.args),
          })),
        );
        expect(choice.finish_reason).toBe(generated.calls.length > 0 ? "tool_calls" : "stop");
      }),
      { numRuns: 500 },
    );
  });

  it("streamed in any interleaving of tool-call deltas, keep Anthropic's grammar and every piece", () => {
    fc.assert(
      fc.property(answer, (generated) => {
        const { toolNames, upstreamName } = shortened(generated.calls);
        const stream = new ChatToMessagesStream({ toolNames, stopSequences: [] });
        const chunk = (delta: Json, finish: string | null = null) => ({
          id: "c",
          model: "m",
          choices: [{ index: 0, delta, finish_reason: finish }],
        });
        const chunks = [
          chunk({ role: "assistant", content: "" }),
          ...generated.reasoning.map((piece) => chunk({ reasoning_content: piece })),
          ...generated.content.map((piece) => chunk({ content: piece })),
          ...interleaved(generated, upstreamName).map((call) => chunk({ tool_calls: [call] })),
          chunk({}, generated.calls.length > 0 ? "tool_calls" : "stop"),
          { id: "c", model: "m", choices: [], usage: { prompt_tokens: 3, completion_tokens: 4 } },
        ];
        const events = [...chunks.flatMap((piece) => stream.push(piece)), ...stream.end()].map(
          (event) => ({ name: event.event, data: JSON.parse(event.data) as Json }),
        );

        expect(events[0]?.name).toBe("message_start");
        expect(events.at(-2)?.name).toBe("message_delta");
        expect(events.at(-1)?.name).toBe("message_stop");
        const blocks: Json[] = [];
        let open: number | undefined;
        for (const { name, data } of events.slice(1, -2)) {
          expect(data.type).toBe(name);
          if (name === "content_block_start") {
            expect(open).toBeUndefined();
            expect(data.index).toBe(blocks.length);
            open = data.index as number;
            blocks.push({ ...(data.content_block as Json), json: "" });
          } else if (name === "content_block_delta") {
            expect(data.index).toBe(open);
            const block = blocks[open as number] as Json;
            const delta = data.delta as Json;
            const piece = delta.text ?? delta.thinking ?? delta.partial_json;
            expect(piece).not.toBe("");
            if (delta.type === "text_delta") block.text = String(block.text) + piece;
            if (delta.type === "thinking_delta") block.thinking = String(block.thinking) + piece;
            if (delta.type === "input_json_delta") block.json = String(block.json) + piece;
          } else {
            expect(name).toBe("content_block_stop");
            expect(data.index).toBe(open);
            open = undefined;
          }
        }
        expect(open).toBeUndefined();

        const expected: Json[] = [];
        const reasoning = generated.reasoning.join("");
        if (reasoning !== "") expected.push({ type: "thinking", thinking: reasoning });
        const content = generated.content.join("");
        if (content !== "") expected.push({ type: "text", text: content });
        // Tool blocks open in the order their calls first appear upstream.
        const firstSeen = interleaved(generated, upstreamName)
          .filter((delta) => delta.id !== undefined)
          .map((delta) => generated.calls.find((call) => call.id === delta.id));
        for (const call of firstSeen) {
          if (call)
            expected.push({
              type: "tool_use",
              id: call.id,
              name: call.name,
              input: JSON.parse(call.args),
            });
        }
        expect(
          blocks.map((block) =>
            block.type === "tool_use"
              ? {
                  type: block.type,
                  id: block.id,
                  name: block.name,
                  input: JSON.parse(String(block.json)),
                }
              : block.type === "text"
                ? { type: "text", text: block.text }
                : { type: "thinking", thinking: block.thinking },
          ),
        ).toEqual(expected);
        const delta = events.at(-2)?.data as Json;
        expect((delta.delta as Json).stop_reason).toBe(
          generated.calls.length > 0 ? "tool_use" : "end_turn",
        );
        expect((delta.usage as Json).output_tokens).toBe(4);
      }),
      { numRuns: 500 },
    );
  });
});
