import { createServer } from "node:http";
import { describe, expect, it } from "vitest";
import { closeServer, getFreePort, listen } from "./server.js";
import { readSse } from "./sse.js";
import { waitFor } from "./wait-for.js";

describe("listen and closeServer", () => {
  it("serves on a free port and closes keep-alive connections", async () => {
    const server = createServer((_request, response) => response.end("ok"));
    const { url, port } = await listen(server);
    expect(url).toBe(`http://127.0.0.1:${port}`);
    expect(await (await fetch(url)).text()).toBe("ok");
    await closeServer(server);
    expect(server.listening).toBe(false);
    await closeServer(server);
  });

  it("gets a free port", async () => {
    const port = await getFreePort();
    expect(port).toBeGreaterThan(0);
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    await closeServer(server);
  });
});

describe("waitFor", () => {
  it("resolves with the first truthy result, retrying throws", async () => {
    let calls = 0;
    const result = await waitFor(
      () => {
        calls += 1;
        if (calls === 1) throw new Error("not yet");
        return calls === 3 ? "done" : undefined;
      },
      { intervalMs: 1 },
    );
    expect(result).toBe("done");
    expect(calls).toBe(3);
  });

  it("rejects with the message and the last error after the timeout", async () => {
    await expect(
      waitFor(
        () => {
          throw new Error("still broken");
        },
        { timeoutMs: 50, message: "thing never happened" },
      ),
    ).rejects.toThrow(/thing never happened after 50 ms \(last error: still broken\)/);
  });
});

describe("readSse", () => {
  it("parses events split across chunks, CRLF, comments and multi-line data", async () => {
    const chunks = [
      ": comment\r\nevent: a\r",
      "\ndata: one\r\ndata:two\r\n\r\n",
      "data: x",
      "\n\ndata: lost",
    ];
    const encoder = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
        controller.close();
      },
    });
    const events = [];
    for await (const event of readSse(new Response(body))) events.push(event);
    expect(events).toEqual([{ event: "a", data: "one\ntwo" }, { data: "x" }]);
  });
});
