/** The parts of a streamed chat completion chunk that `readChatStream` reads. */
export interface ChatStreamChunk<Usage> {
  choices: { delta: { content?: string | null } }[];
  usage?: Usage | null;
}

/** Reads a streamed chat completion (an openai SDK stream) to its end: its text and usage. */
export async function readChatStream<Usage>(
  stream: AsyncIterable<ChatStreamChunk<Usage>>,
): Promise<{ text: string; usage: Usage | undefined }> {
  let text = "";
  let usage: Usage | undefined;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta.content ?? "";
    usage ??= chunk.usage ?? undefined;
  }
  return { text, usage };
}
