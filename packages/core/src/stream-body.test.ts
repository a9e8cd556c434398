import { createHash } from "node:crypto";
import { keepAliveEvent, parseSse, type SseEvent } from "@aigw/provider";
import { describe, expect, it } from "vitest";
import { StreamBody } from "./stream-body.js";

/** The events of SSE text, as the gateway's parser reads them from an upstream. */
async function eventsOf(text: string): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  const body = (async function* () {
    yield text;
  })();
  for await (const event of parseSse(body, { comments: true })) events.push(event);
  return events;
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

describe("StreamBody", () => {
  it("keeps what an SSE client dispatches: each event's data and a newline", async () => {
    const body = new StreamBody();
    const events = await eventsOf(
      'data: {"a":1}\n\n: a comment\n\nevent: ping\ndata:\n\nevent: only\n\ndata: x\ndata: y\n\ndata: [DONE]\n\n',
    );
    for (const event of [...events, keepAliveEvent]) body.add(event);
    expect(body.result()).toEqual({ text: '{"a":1}\n\nx\ny\n[DONE]\n' });
  });

  it("gives neither text nor digest when no event with data went out", async () => {
    const body = new StreamBody();
    for (const event of await eventsOf(": keep-alive\n\nevent: only\n\n")) body.add(event);
    body.add(keepAliveEvent);
    expect(body.result()).toEqual({});
  });

  it("keeps many events' data whole, joined in runs", async () => {
    const body = new StreamBody();
    const data = Array.from({ length: 200 }, (_, index) => `{"delta":"token ${index}"}`);
    for (const event of await eventsOf(data.map((line) => `data: ${line}\n\n`).join(""))) {
      body.add(event);
    }
    expect(body.result()).toEqual({ text: `${data.join("\n")}\n` });
  });

  it("hashes an answer of 64 Ki characters or more as it goes, and keeps only the digest", async () => {
    const body = new StreamBody();
    const data = Array.from({ length: 100 }, (_, index) => `${index} ${"é".repeat(1_000)}`);
    for (const event of await eventsOf(data.map((line) => `data: ${line}\n\n`).join(""))) {
      body.add(event);
    }
    expect(body.result()).toEqual({ sha256: sha256(`${data.join("\n")}\n`) });
  });
});
