import { describe, expect, it } from "vitest";
import { AigwError } from "../errors.js";
import { anthropicToolId, chatToMessages } from "./chat-to-messages.js";

const options = { defaultMaxTokens: 4096 };
const translate = (body: Record<string, unknown>, extra = {}) =>
  chatToMessages({ model: "claude-sonnet-4-5", ...body }, { ...options, ...extra });

function refusal(body: Record<string, unknown>, extra = {}) {
  try {
    translate(body, extra);
  } catch (error) {
    if (!AigwError.isInstance(error)) throw error;
    return { status: error.status, type: error.type, param: error.param, message: error.message };
  }
  throw new Error("expected a refusal");
}

const weather = {
  type: "function",
  function: {
    name: "get_weather",
    parameters: { type: "object", properties: { city: { type: "string" } } },
  },
};
const call = (id: string, args = '{"city":"Paris"}') => ({
  id,
  type: "function",
  function: { name: "get_weather", arguments: args },
});

describe("chatToMessages", () => {
  it("hoists system and developer messages from anywhere, cache_control and its ttl kept", () => {
    const ttl = { type: "ephemeral", ttl: "1h" };
    const body = translate({
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Hi" },
        { role: "developer", content: [{ type: "text", text: "Use metric.", cache_control: ttl }] },
        { role: "user", content: "Weather?", cache_control: ttl },
      ],
    });
    expect(body.system).toEqual([
      { type: "text", text: "Be brief." },
      { type: "text", text: "Use metric.", cache_control: ttl },
    ]);
    expect(body.messages).toEqual([
      {
        role: "user",
        content: [
          { type: "text", text: "Hi" },
          { type: "text", text: "Weather?", cache_control: ttl },
        ],
      },
    ]);
  });

  it("A.8 #8: a missing max_tokens becomes the default, never an upstream 400", () => {
    expect(translate({ messages: [{ role: "user", content: "Hi" }] }).max_tokens).toBe(4096);
    expect(
      translate({ messages: [{ role: "user", content: "Hi" }], max_completion_tokens: 50 })
        .max_tokens,
    ).toBe(50);
    const messages = [{ role: "user", content: "Hi" }];
    for (const value of [0, "100", 1.5, -3]) {
      expect(refusal({ messages, max_tokens: value }).param).toBe("max_tokens");
    }
  });

  it("A.8 #9 and #10: temperature above 1, n above 1 and logprobs are refused by name", () => {
    const messages = [{ role: "user", content: "Hi" }];
    for (const [field, value] of [
      ["temperature", 1.5],
      ["n", 2],
      ["logprobs", true],
      ["top_logprobs", 2],
    ] as const) {
      expect(refusal({ messages, [field]: value })).toMatchObject({
        status: 400,
        type: "invalid_request_error",
        param: field,
      });
      // A route may say to drop them instead.
      const dropped = translate({ messages, [field]: value }, { dropUnsupported: true });
      expect(dropped).not.toHaveProperty(field);
    }
    expect(translate({ messages, temperature: 0.4 }).temperature).toBe(0.4);
  });

  it("A.8 #3: three tool results become one user turn with three tool_result blocks, in order", () => {
    const body = translate({
      tools: [weather],
      messages: [
        { role: "user", content: "Weather in three cities?" },
        { role: "assistant", content: null, tool_calls: [call("a"), call("b"), call("c")] },
        { role: "tool", tool_call_id: "a", content: "sunny" },
        { role: "tool", tool_call_id: "b", content: "rain" },
        { role: "tool", tool_call_id: "c", content: [{ type: "text", text: "snow" }] },
        { role: "user", content: "Thanks" },
      ],
    });
    const turns = body.messages as { role: string; content: Record<string, unknown>[] }[];
    expect(turns.map((turn) => turn.role)).toEqual(["user", "assistant", "user"]);
    expect(turns[1]?.content.map((block) => block.id)).toEqual(["a", "b", "c"]);
    expect(turns[2]?.content).toEqual([
      { type: "tool_result", tool_use_id: "a", content: "sunny" },
      { type: "tool_result", tool_use_id: "b", content: "rain" },
      { type: "tool_result", tool_use_id: "c", content: [{ type: "text", text: "snow" }] },
      { type: "text", text: "Thanks" },
    ]);
  });

  it("A.8 #4: a tool result with no matching call, or a second one for a call, becomes text", () => {
    const body = translate({
      messages: [
        { role: "user", content: "Hi" },
        { role: "assistant", content: "Let me look.", tool_calls: [call("a")] },
        { role: "tool", tool_call_id: "ghost", content: "boo" },
        { role: "tool", tool_call_id: "a", content: "sunny" },
        { role: "tool", tool_call_id: "a", content: "again" },
        { role: "tool", tool_call_id: "empty", content: "" },
      ],
    });
    const turns = body.messages as { content: unknown[] }[];
    expect(turns[2]?.content).toEqual([
      { type: "tool_result", tool_use_id: "a", content: "sunny" },
      { type: "text", text: "Tool result (ghost): boo" },
      { type: "text", text: "Tool result (a): again" },
    ]);
  });

  it("A.8 #5: tool ids outside Anthropic's alphabet are normalised alike in call and result", () => {
    const id = "functions.Bash:0";
    const body = translate({
      messages: [
        { role: "user", content: "ls" },
        { role: "assistant", tool_calls: [call(id, "")] },
        { role: "tool", tool_call_id: id, content: "a.txt" },
      ],
    });
    const normalised = anthropicToolId(id);
    expect(normalised).toMatch(/^functions_Bash_0_[0-9a-f]{8}$/);
    expect(anthropicToolId("functions_Bash_0")).not.toBe(normalised);
    const turns = body.messages as { content: Record<string, unknown>[] }[];
    expect(turns[1]?.content[0]).toMatchObject({ type: "tool_use", id: normalised, input: {} });
    expect(turns[2]?.content[0]).toMatchObject({ type: "tool_result", tool_use_id: normalised });
  });

  it("A.8 #7: a function without parameters still gets an object schema", () => {
    const body = translate({
      messages: [{ role: "user", content: "Time?" }],
      tools: [
        { type: "function", function: { name: "now" } },
        {
          type: "function",
          function: { name: "typeless", parameters: { properties: {} } },
          cache_control: { type: "ephemeral" },
        },
      ],
    });
    expect(body.tools).toEqual([
      { name: "now", input_schema: { type: "object", properties: {} } },
      {
        name: "typeless",
        input_schema: { type: "object", properties: {} },
        cache_control: { type: "ephemeral" },
      },
    ]);
  });

  it("translates every tool_choice form and parallel_tool_calls: false", () => {
    const base = { messages: [{ role: "user", content: "Hi" }], tools: [weather] };
    const choice = (tool_choice: unknown, parallel_tool_calls?: boolean) =>
      translate({ ...base, tool_choice, parallel_tool_calls }).tool_choice;
    expect(choice("auto")).toEqual({ type: "auto" });
    expect(choice("required")).toEqual({ type: "any" });
    expect(choice("none")).toEqual({ type: "none" });
    expect(choice({ type: "function", function: { name: "get_weather" } })).toEqual({
      type: "tool",
      name: "get_weather",
    });
    expect(choice(undefined, false)).toEqual({ type: "auto", disable_parallel_tool_use: true });
    expect(choice("required", false)).toEqual({ type: "any", disable_parallel_tool_use: true });
    expect(choice("none", false)).toEqual({ type: "none" });
    expect(refusal({ ...base, tool_choice: "sometimes" }).param).toBe("tool_choice");
  });

  it("A.8 #11: data URL and https images, PDFs as documents", () => {
    const body = translate({
      messages: [
        {
          role: "user",
          content: [
            { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
            { type: "image_url", image_url: { url: "https://example.com/cat.jpg" } },
            {
              type: "image_url",
              image_url: { url: "data:application/pdf;name=a.pdf;base64,JVBE" },
            },
            { type: "file", file: { file_data: "data:application/pdf;base64,JVBERi0=" } },
            { type: "file", file: { file_data: "data:text/plain;base64,aGVsbG8=" } },
            { type: "text", text: "" },
          ],
        },
      ],
    });
    expect((body.messages as { content: unknown[] }[])[0]?.content).toEqual([
      { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } },
      { type: "image", source: { type: "url", url: "https://example.com/cat.jpg" } },
      { type: "document", source: { type: "base64", media_type: "application/pdf", data: "JVBE" } },
      {
        type: "document",
        source: { type: "base64", media_type: "application/pdf", data: "JVBERi0=" },
      },
      { type: "document", source: { type: "text", media_type: "text/plain", data: "hello" } },
    ]);
    expect(
      refusal({
        messages: [
          {
            role: "user",
            content: [{ type: "file", file: { file_data: "data:application/zip;base64,UEs=" } }],
          },
        ],
      }).param,
    ).toBe("messages[0].content[0].file.file_data");
    expect(
      refusal({
        messages: [
          { role: "user", content: [{ type: "image_url", image_url: { url: "ftp://x" } }] },
        ],
      }).param,
    ).toBe("messages[0].content[0].image_url.url");
    expect(
      refusal({ messages: [{ role: "user", content: [{ type: "input_audio" }] }] }).param,
    ).toBe("messages[0].content[0].type");
  });

  it("A.8 #21: an assistant prefill loses its trailing white space", () => {
    const body = translate({
      messages: [
        { role: "user", content: "Answer in JSON" },
        { role: "assistant", content: "{\n  " },
      ],
    });
    expect((body.messages as { content: unknown[] }[])[1]?.content).toEqual([
      { type: "text", text: "{" },
    ]);
  });

  it("sends thinking blocks back first and in order, signatures untouched", () => {
    const thinking = [
      { type: "thinking", thinking: "Paris is in France.", signature: "sig-1" },
      { type: "redacted_thinking", data: "opaque==" },
    ];
    const body = translate({
      messages: [
        { role: "user", content: "Weather?" },
        {
          role: "assistant",
          content: "Checking.",
          reasoning_content: "Paris is in France.",
          thinking_blocks: thinking,
          tool_calls: [call("a")],
        },
        { role: "tool", tool_call_id: "a", content: "sunny" },
      ],
      tools: [weather],
    });
    const turns = body.messages as { content: Record<string, unknown>[] }[];
    expect(turns[1]?.content.map((block) => block.type)).toEqual([
      "thinking",
      "redacted_thinking",
      "text",
      "tool_use",
    ]);
    expect(turns[1]?.content.slice(0, 2)).toEqual(thinking);
  });

  it("maps reasoning_effort, stop, response_format, user, top_p and top_k", () => {
    const body = translate({
      messages: [{ role: "user", content: "Hi" }],
      reasoning_effort: "medium",
      stop: "END",
      top_p: 0.9,
      user: "user-123",
      response_format: {
        type: "json_schema",
        json_schema: { name: "answer", schema: { type: "object" } },
      },
    });
    expect(body).toMatchObject({
      thinking: { type: "enabled", budget_tokens: 2048 },
      max_tokens: 4096 + 2048,
      stop_sequences: ["END"],
      top_p: 0.9,
      metadata: { user_id: "user-123" },
      output_config: { format: { type: "json_schema", schema: { type: "object" } } },
    });
    const messages = [{ role: "user", content: "Hi" }];
    expect(translate({ messages, top_k: 40 }).top_k).toBe(40);
    expect(translate({ messages, user: "someone@example.com" })).not.toHaveProperty("metadata");
    expect(refusal({ messages, stop: ["  "] }).param).toBe("stop");
    expect(refusal({ messages, response_format: { type: "json_object" } }).param).toBe(
      "response_format",
    );
    expect(refusal({ messages, reasoning_effort: "high", max_tokens: 4000 }).param).toBe(
      "max_tokens",
    );
  });

  it("refuses what Anthropic refuses with thinking on, by name, or leaves it out when told", () => {
    const base = { messages: [{ role: "user", content: "Hi" }], reasoning_effort: "low" };
    expect(refusal({ ...base, temperature: 0.5 }).param).toBe("temperature");
    expect(refusal({ ...base, top_k: 5 }).param).toBe("top_k");
    expect(refusal({ ...base, tools: [weather], tool_choice: "required" }).param).toBe(
      "tool_choice",
    );
    expect(translate({ ...base, temperature: 1 }).temperature).toBe(1);
    const dropped: string[] = [];
    const lenient = translate(
      { ...base, temperature: 0.5, top_k: 5, n: 3 },
      { dropUnsupported: true, onDroppedField: (name: string) => dropped.push(name) },
    );
    expect(lenient).not.toHaveProperty("temperature");
    expect(lenient).not.toHaveProperty("top_k");
    expect(dropped).toEqual(["n", "temperature", "top_k"]);
  });

  it("treats null parameters as absent", () => {
    const body = translate({
      messages: [{ role: "user", content: "Hi" }],
      n: null,
      temperature: null,
      top_p: null,
      top_k: null,
      logprobs: null,
      top_logprobs: null,
      tools: null,
      tool_choice: null,
      stop: null,
      response_format: null,
      parallel_tool_calls: false,
    });
    expect(Object.keys(body).sort()).toEqual(["max_tokens", "messages", "model"]);
  });

  it("sends back only signed thinking blocks, and tool arguments only as JSON text", () => {
    const assistant = (extra: Record<string, unknown>) => ({
      messages: [
        { role: "user", content: "Hi" },
        { role: "assistant", content: "Hello", ...extra },
      ],
    });
    expect(refusal(assistant({ thinking_blocks: [{ type: "text", text: "sneaky" }] })).param).toBe(
      "messages[1].thinking_blocks[0]",
    );
    expect(
      refusal(assistant({ thinking_blocks: [{ type: "thinking", thinking: "unsigned" }] })).param,
    ).toBe("messages[1].thinking_blocks[0]");
    expect(
      refusal(
        assistant({
          tool_calls: [{ id: "a", type: "function", function: { name: "f", arguments: { x: 1 } } }],
        }),
      ).param,
    ).toBe("messages[1].tool_calls[0].function.arguments");
  });

  it("leaves out fields Anthropic has no place for, and names each one", () => {
    const dropped: string[] = [];
    const body = translate(
      {
        messages: [{ role: "user", content: "Hi" }],
        stream: true,
        stream_options: { include_usage: true },
        seed: 7,
        frequency_penalty: 0.5,
      },
      { onDroppedField: (name: string) => dropped.push(name) },
    );
    expect(body.stream).toBe(true);
    expect(body).not.toHaveProperty("stream_options");
    expect(body).not.toHaveProperty("seed");
    expect(dropped).toEqual(["seed", "frequency_penalty"]);
  });

  it("refuses bodies that are not chat requests, naming where", () => {
    expect(refusal({ messages: "hi" }).param).toBe("messages");
    expect(refusal({ messages: [null] }).param).toBe("messages[0]");
    expect(refusal({ messages: [{ role: "function", content: "x" }] }).param).toBe(
      "messages[0].role",
    );
    expect(
      refusal({
        messages: [{ role: "assistant", tool_calls: [call("a", "{not json")] }],
      }).param,
    ).toBe("messages[0].tool_calls[0].function.arguments");
  });
});
