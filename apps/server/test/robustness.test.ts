import { readFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { connect, type Socket } from "node:net";
import { type MockUpstream, sendRaw, startMockUpstream, waitFor } from "@aigw/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { runServer, type ServerProcess, writeConfig } from "./run-server.js";

let upstream: MockUpstream;
let running: ServerProcess | undefined;
const sockets: Socket[] = [];

beforeAll(async () => {
  upstream = await startMockUpstream();
});
afterAll(() => upstream?.close());
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await running?.stop();
  running = undefined;
  upstream.reset();
});

/** The server process's resident memory, in MiB. */
async function rssMiB(server: ServerProcess): Promise<number> {
  const status = await readFile(`/proc/${server.child.pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]) / 1024;
}

function configWith(server: string, extra: string[] = []) {
  return writeConfig(
    [
      `server: ${server}`,
      "providers:",
      `  up: { type: openai-compatible, baseURL: '${upstream.baseURL}' }`,
      "  echo: { type: echo }",
      "models:",
      "  m: { provider: up }",
      "  echo: { provider: echo }",
      ...extra,
    ].join("\n"),
  );
}

function openSocket(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    sockets.push(socket);
    socket.once("connect", () => resolve(socket));
    socket.once("error", reject);
  });
}

describe("memory per request is bounded", () => {
  it("a 4 MB streamed echo read by a client that stops reading: memory stays flat, the server lives", async () => {
    running = await runServer([]);
    const server = running;
    const baseline = await rssMiB(server);
    const body = JSON.stringify({
      model: "echo",
      stream: true,
      messages: [{ role: "user", content: "word ".repeat(800_000) }],
    });
    const { port } = new URL(server.url);
    const request = httpRequest({
      host: "127.0.0.1",
      port,
      path: "/v1/chat/completions",
      method: "POST",
      headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
    });
    const firstBytes = new Promise<void>((resolve) => {
      request.on("response", (response) => {
        response.once("data", () => {
          response.pause();
          resolve();
        });
      });
    });
    request.end(body);
    await firstBytes;
    // The client reads nothing more while the server could fill its memory: watch it for a while.
    let peak = baseline;
    for (let sample = 0; sample < 20; sample++) {
      peak = Math.max(peak, await rssMiB(server));
      await new Promise((wake) => setTimeout(wake, 100));
    }
    expect(peak - baseline).toBeLessThan(150);
    request.destroy();
    const health = await fetch(`${server.url}/health`);
    expect(health.status).toBe(200);
    expect(server.child.exitCode).toBeNull();
  });
});

describe("slow and idle clients", () => {
  it("headers that never finish, a connection that sends nothing and a trickled body are all closed; slow answers are not", async () => {
    running = await runServer(["--config", await configWith("{ requestTimeoutMs: 1500 }")]);
    const { url } = running;
    const [partialHeaders, silent, trickled] = await Promise.all([
      sendRaw(url, ["POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nX-Slow: "], 6_000),
      sendRaw(url, [], 6_000),
      sendRaw(
        url,
        [
          "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 60\r\n\r\n",
          ...Array.from({ length: 40 }, () => ["{", { pauseMs: 200 }]).flat(),
        ],
        6_000,
      ),
    ]);
    for (const exchange of [partialHeaders, silent, trickled]) {
      expect(exchange.closed).toBe(true);
      expect(exchange.elapsedMs).toBeLessThan(5_000);
    }
    expect(trickled.response).toMatch(/^HTTP\/1\.1 408/);
    expect(upstream.requests).toHaveLength(0);

    // An answer that takes longer than the request timeout is still delivered.
    upstream.enqueue({ kind: "slowHeaders", delayMs: 2_500 });
    const slow = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "take your time" }] }),
    });
    expect(slow.status).toBe(200);
  });

  it("maxConnections caps open connections; closing some lets new ones in", async () => {
    running = await runServer(["--config", await configWith("{ maxConnections: 3 }")]);
    const { url } = running;
    const held = await Promise.all([openSocket(url), openSocket(url), openSocket(url)]);
    const refused = await sendRaw(url, ["GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"], 3_000);
    expect(refused.closed).toBe(true);
    expect(refused.response).toBe("");
    for (const socket of held) socket.destroy();
    const status = await waitFor(async () => {
      const response = await fetch(`${url}/health`).catch(() => undefined);
      return response?.status;
    });
    expect(status).toBe(200);
  });

  it("without maxConnections, the cap is half the open-file limit", async () => {
    running = await runServer([], {}, { openFiles: 100 });
    const { url } = running;
    const held = await Promise.all(Array.from({ length: 50 }, () => openSocket(url)));
    const refused = await sendRaw(url, ["GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"], 3_000);
    expect(refused.closed).toBe(true);
    expect(refused.response).toBe("");
    held.pop()?.destroy();
    const status = await waitFor(async () => {
      const response = await fetch(`${url}/health`).catch(() => undefined);
      return response?.status;
    });
    expect(status).toBe(200);
  });
});

describe("what a web page on the same machine can do", () => {
  it("a loopback listener serves only loopback Host names, unless allowedHosts says otherwise", async () => {
    const hostRequest = (host: string) => [
      `GET /health HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
    ];
    running = await runServer(["--config", await configWith("{}")]);
    expect((await sendRaw(running.url, hostRequest("attacker.example"))).response).toMatch(
      /^HTTP\/1\.1 403/,
    );
    expect((await sendRaw(running.url, hostRequest("localhost:8080"))).response).toMatch(
      /^HTTP\/1\.1 200/,
    );
    await running.stop();
    running = await runServer(["--config", await configWith("{ allowedHosts: '*' }")]);
    expect((await sendRaw(running.url, hostRequest("gw.example"))).response).toMatch(
      /^HTTP\/1\.1 200/,
    );
  });

  it("a text/plain body, which a page can send without asking, gets 415", async () => {
    running = await runServer([]);
    const response = await fetch(`${running.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: JSON.stringify({ model: "echo", messages: [{ role: "user", content: "hi" }] }),
    });
    expect(response.status).toBe(415);
  });

  it("refuses to start with CORS origins '*' and credentials", async () => {
    const file = await configWith("{}", ["gateway: { cors: { origins: '*', credentials: true } }"]);
    const starting = runServer(["--config", file]);
    starting.then(
      (started) => {
        running = started;
      },
      () => {},
    );
    await expect(starting).rejects.toThrow(/gateway\.cors\.credentials/);
  });
});
