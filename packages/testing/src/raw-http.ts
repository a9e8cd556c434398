import { connect } from "node:net";

/** What a server sent back over one raw connection, and whether (and when) it closed it. */
export interface RawExchange {
  response: string;
  /** The server closed the connection before `waitMs` passed. */
  closed: boolean;
  /** Milliseconds from connecting until the close (or until `waitMs`). */
  elapsedMs: number;
}

/** Bytes to send, or a pause in sending (how slow and stalled clients behave). */
export type RawPart = string | Uint8Array | { pauseMs: number };

/**
 * Opens a TCP connection to `url`'s host and port, sends `parts` in order (pausing where asked),
 * and collects what the server sends until it closes the connection or `waitMs` pass from the
 * start. For requests no HTTP client would send: stalled bodies, partial headers, odd framing.
 */
export function sendRaw(url: string, parts: RawPart[], waitMs = 5_000): Promise<RawExchange> {
  const { hostname, port } = new URL(url);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname.replace(/^\[|\]$/g, ""));
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({
        response: Buffer.concat(chunks).toString("utf8"),
        closed,
        elapsedMs: performance.now() - started,
      });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("close", () => finish(true));
    let connected = false;
    // Once connected, a reset is how the server closed the connection.
    socket.on("error", (error) => {
      if (connected) finish(true);
      else {
        clearTimeout(timer);
        reject(error);
      }
    });
    socket.on("connect", async () => {
      connected = true;
      for (const part of parts) {
        if (done) return;
        if (typeof part === "object" && "pauseMs" in part) {
          await new Promise((wake) => setTimeout(wake, part.pauseMs));
        } else if (!socket.destroyed) {
          socket.write(part);
        }
      }
    });
  });
}
