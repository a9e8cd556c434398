import type { Server } from "node:http";
import { createServer as createNetServer } from "node:net";

/** Listens on a free port (port 0) and resolves with the address to reach the server. */
export function listen(server: Server, host = "127.0.0.1"): Promise<{ url: string; port: number }> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => {
      server.off("error", reject);
      const address = server.address();
      if (address === null || typeof address === "string") {
        reject(new Error(`Unexpected server address: ${String(address)}`));
        return;
      }
      const urlHost = host.includes(":") ? `[${host}]` : host;
      resolve({ url: `http://${urlHost}:${address.port}`, port: address.port });
    });
  });
}

/** Closes the server, including idle keep-alive connections; a server already closed is fine. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => {
      if (error && (error as NodeJS.ErrnoException).code !== "ERR_SERVER_NOT_RUNNING") {
        reject(error);
        return;
      }
      resolve();
    });
    server.closeAllConnections();
  });
}

export function getFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
