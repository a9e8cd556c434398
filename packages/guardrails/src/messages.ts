import { type Redaction, type RedactOptions, redactText } from "./redact.js";

/** An OpenAI chat message, as far as redaction reads it; other fields are kept as they are. */
export interface ChatMessage {
  role: string;
  content?: unknown;
  tool_calls?: unknown;
  [field: string]: unknown;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * OpenAI chat messages with every text they carry redacted (`redactText`): string content,
 * text parts, and tool calls' arguments. Images, audio and unknown parts are kept as they are.
 * The result counts each entity found (`counts`), and gives the placeholders of all (`originals`).
 */
export function redactChatMessages(
  messages: readonly ChatMessage[],
  options: RedactOptions,
): {
  messages: ChatMessage[];
  counts: Record<string, number>;
  blocked: string[];
  originals: Map<string, string>;
} {
  const counts: Record<string, number> = {};
  const blocked = new Set<string>();
  const originals = new Map<string, string>();
  const redact = (text: string): string => {
    const redaction: Redaction = redactText(text, options);
    for (const finding of redaction.findings) {
      counts[finding.entity] = (counts[finding.entity] ?? 0) + 1;
    }
    for (const entity of redaction.blocked) blocked.add(entity);
    for (const [placeholder, value] of redaction.originals) originals.set(placeholder, value);
    return redaction.text;
  };
  const redacted = messages.map((message) => {
    const copy: ChatMessage = { ...message };
    if (typeof message.content === "string") copy.content = redact(message.content);
    else if (Array.isArray(message.content)) {
      copy.content = message.content.map((part) =>
        isRecord(part) && part.type === "text" && typeof part.text === "string"
          ? { ...part, text: redact(part.text) }
          : part,
      );
    }
    if (Array.isArray(message.tool_calls)) {
      copy.tool_calls = message.tool_calls.map((call) => {
        if (!isRecord(call) || !isRecord(call.function)) return call;
        const { arguments: text } = call.function;
        if (typeof text !== "string") return call;
        return { ...call, function: { ...call.function, arguments: redact(text) } };
      });
    }
    return copy;
  });
  return { messages: redacted, counts, blocked: [...blocked], originals };
}
