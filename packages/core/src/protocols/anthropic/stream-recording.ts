import {
  createSseEvent,
  isObject,
  type JsonObject,
  type SseEvent,
  type TokenUsage,
} from "@aigw/provider";
import type { StreamAssembler, StreamRecording } from "../protocol.js";

/** A block as it is being streamed: tool input arrives as JSON text, in pieces. */
interface OpenBlock {
  block: JsonObject;
  json: string;
}

function appendText(block: JsonObject, field: string, piece: unknown) {
  if (typeof piece === "string") block[field] = `${String(block[field] ?? "")}${piece}`;
}

/**
 * Gathers a Messages stream into the message a JSON request gets: `message_start`'s message,
 * each block with its deltas joined (tool input parsed once its block stops), and
 * `message_delta`'s stop reason and usage. A stream with an `error` event, or without
 * `message_stop`, gives nothing.
 */
function createAssembler(maxLength: number): StreamAssembler {
  let message: JsonObject | undefined;
  const blocks = new Map<number, OpenBlock>();
  let size = 0;
  let failed = false;
  let stopped = false;

  function add(data: JsonObject) {
    switch (data.type) {
      case "message_start":
        if (isObject(data.message)) message = { ...data.message, content: [] };
        return;
      case "content_block_start":
        if (typeof data.index === "number" && isObject(data.content_block)) {
          blocks.set(data.index, { block: { ...data.content_block }, json: "" });
        }
        return;
      case "content_block_delta": {
        const open = typeof data.index === "number" ? blocks.get(data.index) : undefined;
        const delta = isObject(data.delta) ? data.delta : {};
        if (!open) return;
        if (delta.type === "text_delta") appendText(open.block, "text", delta.text);
        else if (delta.type === "thinking_delta")
          appendText(open.block, "thinking", delta.thinking);
        else if (delta.type === "signature_delta") open.block.signature = delta.signature;
        else if (delta.type === "input_json_delta" && typeof delta.partial_json === "string") {
          open.json += delta.partial_json;
        } else if (delta.type === "citations_delta" && delta.citation !== undefined) {
          const citations = Array.isArray(open.block.citations) ? open.block.citations : [];
          open.block.citations = [...citations, delta.citation];
        }
        return;
      }
      case "content_block_stop": {
        const open = typeof data.index === "number" ? blocks.get(data.index) : undefined;
        if (!open || open.json === "") return;
        try {
          open.block.input = JSON.parse(open.json);
        } catch {
          // Arguments cut short (at max_tokens): the answer is the client's, not the cache's.
          failed = true;
        }
        return;
      }
      case "message_delta":
        if (!message) return;
        if (isObject(data.delta)) Object.assign(message, data.delta);
        if (isObject(data.usage)) {
          message.usage = { ...(isObject(message.usage) ? message.usage : {}), ...data.usage };
        }
        return;
      case "message_stop":
        stopped = true;
        return;
      case "error":
        failed = true;
    }
  }

  // A data property, not a getter: V8 builds an object literal with a getter through its
  // runtime, hundreds of ns a stream.
  const assembler: StreamAssembler & { overflowed: boolean } = {
    overflowed: false,
    add(event) {
      if (assembler.overflowed || event.data === "") return;
      size += event.raw.length;
      if (size > maxLength) {
        assembler.overflowed = true;
        blocks.clear();
        return;
      }
      let data: unknown;
      try {
        data = event.json();
      } catch {
        failed = true;
        return;
      }
      if (isObject(data)) add(data);
    },
    finish(_usage: TokenUsage | undefined) {
      if (failed || assembler.overflowed || !stopped || !message) return undefined;
      const content = [...blocks.entries()]
        .sort(([left], [right]) => left - right)
        .map(([, open]) => open.block);
      return Buffer.from(JSON.stringify({ ...message, content }));
    },
  };
  return assembler;
}

/** The delta that carries a whole block, and the block as it starts (empty). */
function blockEvents(block: JsonObject, index: number): SseEvent[] {
  const start = { ...block };
  const deltas: JsonObject[] = [];
  if (block.type === "text") {
    start.text = "";
    deltas.push({ type: "text_delta", text: block.text ?? "" });
  } else if (block.type === "thinking") {
    start.thinking = "";
    start.signature = "";
    deltas.push({ type: "thinking_delta", thinking: block.thinking ?? "" });
    if (typeof block.signature === "string" && block.signature !== "") {
      deltas.push({ type: "signature_delta", signature: block.signature });
    }
  } else if (block.type === "tool_use" || block.type === "server_tool_use") {
    start.input = {};
    deltas.push({ type: "input_json_delta", partial_json: JSON.stringify(block.input ?? {}) });
  }
  return [
    createSseEvent(
      { type: "content_block_start", index, content_block: start },
      "content_block_start",
    ),
    ...deltas.map((delta) =>
      createSseEvent({ type: "content_block_delta", index, delta }, "content_block_delta"),
    ),
    createSseEvent({ type: "content_block_stop", index }, "content_block_stop"),
  ];
}

/** A stored message as a Messages stream: every block whole, in one delta each. */
function replay(answer: Uint8Array): SseEvent[] {
  const message: unknown = JSON.parse(Buffer.from(answer).toString("utf8"));
  if (!isObject(message)) return [];
  const { content, stop_reason: stopReason, stop_sequence: stopSequence, usage } = message;
  const blocks = Array.isArray(content) ? content.filter(isObject) : [];
  return [
    createSseEvent(
      {
        type: "message_start",
        message: { ...message, content: [], stop_reason: null, stop_sequence: null },
      },
      "message_start",
    ),
    ...blocks.flatMap(blockEvents),
    createSseEvent(
      {
        type: "message_delta",
        delta: { stop_reason: stopReason ?? null, stop_sequence: stopSequence ?? null },
        usage: usage ?? {},
      },
      "message_delta",
    ),
    createSseEvent({ type: "message_stop" }, "message_stop"),
  ];
}

/** Messages streams, kept as their message and replayed from it. */
export const messagesRecording: StreamRecording = {
  assemble: createAssembler,
  replay,
};
