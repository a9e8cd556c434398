import { once } from "node:events";
import { connect, createServer, type Socket } from "node:net";

/**
 * - forward: bytes pass both ways;
 * - refuse: new connections are closed at once, open ones are cut;
 * - stall: connections are accepted (and kept), but no byte passes either way until the mode
 *   is forward again (then what waited is delivered, as after a healed partition).
 */
export type ProxyMode = "forward" | "refuse" | "stall";

export interface TcpProxy {
  readonly port: number;
  readonly mode: ProxyMode;
  setMode(mode: ProxyMode): void;
  /**
   * A one-shot fault: the next connection whose client sends bytes containing `pattern` (say
   * "INSERT INTO") still delivers them to the server, but gets nothing of the server's reply:
   * its first bytes after the trigger are swallowed and both sockets cut. The server did the
   * work, the client never hears of it. Resolves once that happened.
   */
  dropNextReply(pattern: string): Promise<void>;
  /** Client connections open through the proxy now, and accepted since it started. */
  readonly open: number;
  readonly accepted: number;
  close(): Promise<void>;
}

interface Link {
  client: Socket;
  upstream: Socket | undefined;
  /** The last bytes the client sent, so a pattern split across two chunks still matches. */
  recent: string;
  swallow: boolean;
}

/** A TCP proxy on a free port of 127.0.0.1 to `port` of `host`, with faults on demand. */
export async function startTcpProxy(target: { host?: string; port: number }): Promise<TcpProxy> {
  const host = target.host ?? "127.0.0.1";
  let mode: ProxyMode = "forward";
  let accepted = 0;
  const links = new Set<Link>();
  let armed: { pattern: string; done: () => void } | undefined;

  const cut = (link: Link) => {
    link.client.destroy();
    link.upstream?.destroy();
    links.delete(link);
  };

  function openUpstream(link: Link) {
    const upstream = connect(target.port, host);
    link.upstream = upstream;
    upstream.on("error", () => cut(link));
    upstream.on("close", () => cut(link));
    upstream.on("data", (chunk: Buffer) => {
      if (!link.swallow) {
        link.client.write(chunk);
        return;
      }
      const fault = armed;
      armed = undefined;
      cut(link);
      fault?.done();
    });
    link.client.on("data", (chunk: Buffer) => {
      if (armed && !link.swallow) {
        const seen = link.recent + chunk.toString("latin1");
        if (seen.includes(armed.pattern)) link.swallow = true;
        link.recent = seen.slice(-armed.pattern.length);
      }
      upstream.write(chunk);
    });
  }

  const server = createServer((client) => {
    accepted += 1;
    if (mode === "refuse") {
      client.destroy();
      return;
    }
    const link: Link = { client, upstream: undefined, recent: "", swallow: false };
    links.add(link);
    client.on("error", () => cut(link));
    client.on("close", () => cut(link));
    if (mode === "stall") client.pause();
    else openUpstream(link);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no proxy address");

  return {
    port: address.port,
    get mode() {
      return mode;
    },
    get open() {
      return links.size;
    },
    get accepted() {
      return accepted;
    },
    setMode(next) {
      mode = next;
      for (const link of [...links]) {
        if (next === "refuse") cut(link);
        else if (next === "stall") {
          link.client.pause();
          link.upstream?.pause();
        } else {
          if (!link.upstream) openUpstream(link);
          link.client.resume();
          link.upstream?.resume();
        }
      }
    },
    dropNextReply(pattern) {
      return new Promise((resolve) => {
        armed = { pattern, done: resolve };
      });
    },
    async close() {
      for (const link of [...links]) cut(link);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
