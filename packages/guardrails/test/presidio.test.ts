import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPresidioAnalyzer } from "../src/index.js";

// A stand-in for Presidio's analyzer service (it lives outside this machine): it finds the
// names it was told, and reports offsets in code points, as Presidio (Python) does.
const names = ["Zoë Müller", "Jane"];
let reply: (request: IncomingMessage, response: ServerResponse, body: string) => void;
const bodies: unknown[] = [];
const server = createServer((request, response) => {
  let body = "";
  request.on("data", (chunk) => {
    body += chunk;
  });
  request.on("end", () => reply(request, response, body));
});
let url: string;

function presidio(_request: IncomingMessage, response: ServerResponse, body: string) {
  const { text } = JSON.parse(body) as { text: string };
  bodies.push(JSON.parse(body));
  const results = [];
  for (const name of names) {
    const at = text.indexOf(name);
    if (at === -1) continue;
    const start = [...text.slice(0, at)].length;
    results.push({ entity_type: "PERSON", start, end: start + [...name].length, score: 0.85 });
  }
  response.writeHead(200, { "content-type": "application/json" });
  response.end(JSON.stringify(results));
}

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe("createPresidioAnalyzer", () => {
  it("asks /analyze and turns code point offsets into string indexes", async () => {
    reply = presidio;
    const analyze = createPresidioAnalyzer({ url, language: "de", scoreThreshold: 0.6 });
    const text = "🙂🙂 Hallo Zoë Müller, und Jane";
    const findings = await analyze(text, {});
    expect(findings.map(({ entity, start, end }) => [entity, text.slice(start, end)])).toEqual([
      ["PERSON", "Zoë Müller"],
      ["PERSON", "Jane"],
    ]);
    expect(bodies.at(-1)).toEqual({ text, language: "de", score_threshold: 0.6 });
  });

  it("fails on an error status, a late answer, or an answer that is not a list", async () => {
    const analyze = createPresidioAnalyzer({ url, timeoutMs: 300 });
    reply = (_request, response) => {
      response.writeHead(500);
      response.end("boom");
    };
    await expect(analyze("Jane", {})).rejects.toThrow("HTTP 500");
    reply = (_request, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.end('{"error":"nope"}');
    };
    await expect(analyze("Jane", {})).rejects.toThrow("no list");
    reply = () => {}; // never answers
    await expect(analyze("Jane", {})).rejects.toThrow();
  });

  it("skips findings outside the text or without a type", async () => {
    reply = (_request, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(
        JSON.stringify([
          { entity_type: "PERSON", start: 0, end: 4 },
          { entity_type: "PERSON", start: 3, end: 99 },
          { start: 0, end: 2 },
          null,
        ]),
      );
    };
    const analyze = createPresidioAnalyzer({ url });
    expect(await analyze("Jane", {})).toEqual([{ entity: "PERSON", start: 0, end: 4 }]);
  });
});
