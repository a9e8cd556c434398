import { createServer, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { type RecordedRequest, recordRequest } from "./recorded-request.js";
import { closeServer, listen } from "./server.js";
import { waitFor } from "./wait-for.js";

/** A request as a mock's handler gets it: read whole and recorded, numbered from 1. */
export interface ReceivedRequest {
  record: RecordedRequest;
  number: number;
  /** Cuts the connection, as a fault does (not counted as the client closing). */
  destroy(): void;
}

/**
 * What the mock upstreams share: an HTTP server whose requests are numbered, read whole and
 * recorded before the mock's handler runs, and whose sockets and timers are tracked, so that
 * `close()` ends everything at once, stalled answers included.
 */
export interface MockServer {
  /** Every request in arrival order (unless the mock was told not to record). */
  readonly requests: RecordedRequest[];
  /** Resolves after `delayMs`, unless `close()` comes first: the handler then stops there. */
  sleep(delayMs: number): Promise<void>;
  /** Writes `chunk` and resolves once the socket took it, so a following destroy cannot drop it. */
  write(response: ServerResponse, chunk: string): Promise<void>;
  /** Starts serving with `handle`; resolves with the root URL. */
  listen(
    host: string | undefined,
    handle: (response: ServerResponse, received: ReceivedRequest) => unknown,
  ): Promise<string>;
  waitForRequests(count: number, timeoutMs?: number): Promise<void>;
  openConnections(): number;
  close(): Promise<void>;
}

/** `name` appears in errors ("Anthropic mock expected 2 requests ..."). */
export function createMockServer(name: string, record: boolean): MockServer {
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let count = 0;
  let closing = false;
  let server: ReturnType<typeof createServer> | undefined;

  return {
    requests,
    sleep: (delayMs) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          timers.delete(timer);
          resolve();
        }, delayMs);
        timers.add(timer);
      }),
    write: (response, chunk) =>
      new Promise<void>((resolve) => response.write(chunk, () => resolve())),
    async listen(host, handle) {
      server = createServer(async (request, response) => {
        const number = ++count;
        const received = await recordRequest(request, response, () => closing);
        if (!received) return; // the client went away while sending the body
        if (record) requests.push(received.record);
        await handle(response, { ...received, number });
      });
      server.on("connection", (socket) => {
        sockets.add(socket);
        socket.on("close", () => sockets.delete(socket));
      });
      return (await listen(server, host)).url;
    },
    async waitForRequests(expected, timeoutMs = 5000) {
      try {
        await waitFor(() => requests.length >= expected, { timeoutMs });
      } catch {
        throw new Error(
          `${name} expected ${expected} requests within ${timeoutMs} ms, got ${requests.length}`,
        );
      }
    },
    openConnections: () => sockets.size,
    async close() {
      closing = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      for (const socket of sockets) socket.destroy();
      if (server) await closeServer(server);
    },
  };
}
