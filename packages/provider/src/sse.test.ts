import { describe, expect, it } from "vitest";
import { createSseEvent, parseSse } from "./sse.js";
import type { SseEvent } from "./types.js";

const encoder = new TextEncoder();

async function collect(chunks: Iterable<Uint8Array | string>): Promise<SseEvent[]> {
  async function* source() {
    yield* chunks;
  }
  const events: SseEvent[] = [];
  for await (const event of parseSse(source())) events.push(event);
  return events;
}

const summary = (events: SseEvent[]) =>
  events.map(({ raw, event, data }) => ({ raw, event, data }));

const STREAM = [
  'data: {"n":1}\n\n',
  "event: response.created\r\ndata: first line\r\ndata: second ✓ line\r\n\r\n",
  ": a keep-alive comment\n\n",
  "id: 7\nretry: 100\ndata:no space\ndata\n\n",
  "event: ping\n\n",
  "data: [DONE]\n\n",
].join("");

const EXPECTED = [
  { raw: 'data: {"n":1}\n\n', event: undefined, data: '{"n":1}' },
  {
    raw: "event: response.created\r\ndata: first line\r\ndata: second ✓ line\r\n\r\n",
    event: "response.created",
    data: "first line\nsecond ✓ line",
  },
  { raw: "id: 7\nretry: 100\ndata:no space\ndata\n\n", event: undefined, data: "no space\n" },
  { raw: "event: ping\n\n", event: "ping", data: "" },
  { raw: "data: [DONE]\n\n", event: undefined, data: "[DONE]" },
];

describe("parseSse", () => {
  it("drops a byte order mark at the start of the stream, whole or split across chunks", async () => {
    const bytes = encoder.encode(`\uFEFF${STREAM}`);
    expect(summary(await collect([bytes]))).toEqual(EXPECTED);
    expect(summary(await collect([bytes.slice(0, 2), bytes.slice(2)]))).toEqual(EXPECTED);
    expect(summary(await collect([`\uFEFF${STREAM}`]))).toEqual(EXPECTED);
  });

  it("parses events, names, multi-line data and both line endings; skips comments", async () => {
    expect(summary(await collect([STREAM]))).toEqual(EXPECTED);
  });

  it("gives the same events whichever byte the stream is split at", async () => {
    const bytes = encoder.encode(STREAM);
    for (let split = 1; split < bytes.length; split++) {
      const events = await collect([bytes.subarray(0, split), bytes.subarray(split)]);
      expect(summary(events), `split at byte ${split}`).toEqual(EXPECTED);
    }
  });

  it("parses a stream that arrives one byte at a time", async () => {
    const bytes = encoder.encode(STREAM);
    const chunks = Array.from(bytes, (_, index) => bytes.subarray(index, index + 1));
    expect(summary(await collect(chunks))).toEqual(EXPECTED);
  });

  it("accepts string chunks and \\r\\n split between chunks", async () => {
    const events = await collect(["data: a\r", "\n\r", "\ndata: b\n", "\n"]);
    expect(summary(events)).toEqual([
      { raw: "data: a\r\n\r\n", event: undefined, data: "a" },
      { raw: "data: b\n\n", event: undefined, data: "b" },
    ]);
  });

  it("drops an unterminated block at the end of the stream", async () => {
    const events = await collect(["data: whole\n\ndata: cut"]);
    expect(events.map((event) => event.data)).toEqual(["whole"]);
  });

  it("yields each event as soon as its bytes arrive", async () => {
    let releaseSecond = () => {};
    const secondSent = new Promise<void>((resolve) => {
      releaseSecond = resolve;
    });
    async function* source() {
      yield "data: 1\n\n";
      await secondSent;
      yield "data: 2\n\n";
    }
    const iterator = parseSse(source());
    const first = await iterator.next();
    expect(first.value?.data).toBe("1");
    releaseSecond();
    expect((await iterator.next()).value?.data).toBe("2");
    expect((await iterator.next()).done).toBe(true);
  });

  it("parses json() lazily and once", async () => {
    const [event] = await collect(['data: {"a":[1]}\n\n']);
    const value = event?.json();
    expect(value).toEqual({ a: [1] });
    expect(event?.json()).toBe(value);
  });
});

describe("createSseEvent", () => {
  it("serializes an object, and json() returns it", () => {
    const data = { choices: [] };
    const event = createSseEvent(data);
    expect(event.raw).toBe('data: {"choices":[]}\n\n');
    expect(event.data).toBe('{"choices":[]}');
    expect(event.json()).toBe(data);
  });

  it("writes the event name and one data line per line", async () => {
    const event = createSseEvent("one\ntwo", "error");
    expect(event.raw).toBe("event: error\ndata: one\ndata: two\n\n");
    const [parsed] = await collect([event.raw]);
    expect(summary(parsed ? [parsed] : [])).toEqual([
      { raw: event.raw, event: "error", data: "one\ntwo" },
    ]);
  });
});
