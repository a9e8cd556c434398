export interface SseEvent {
  event?: string;
  data: string;
}

/**
 * Parses a server-sent events body. An event left incomplete when the body ends is dropped, as
 * the SSE spec says; a body that errors (a cut connection) makes the generator throw.
 */
export async function* readSse(response: Response): AsyncGenerator<SseEvent> {
  if (!response.body) return;
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let eventName: string | undefined;
  let dataLines: string[] = [];
  let done = false;
  try {
    while (!done) {
      const chunk = await reader.read();
      done = chunk.done;
      buffer += chunk.done ? decoder.decode() : decoder.decode(chunk.value, { stream: true });
      // A trailing "\r" may be the first half of a "\r\n" still to come.
      const lines = buffer.split(/\r\n|\n|\r(?!$)/);
      buffer = lines.pop() ?? "";
      for (const line of lines) {
        if (line === "") {
          if (dataLines.length > 0) {
            const data = dataLines.join("\n");
            yield eventName === undefined ? { data } : { event: eventName, data };
          }
          eventName = undefined;
          dataLines = [];
          continue;
        }
        const colon = line.indexOf(":");
        if (colon === 0) continue;
        const field = colon === -1 ? line : line.slice(0, colon);
        const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") eventName = value;
        else if (field === "data") dataLines.push(value);
      }
    }
  } finally {
    if (!done) await reader.cancel().catch(() => {});
  }
}
