import type { Server } from "node:http";
import type { Socket } from "node:net";

const deadline = Symbol("aigw.requestDeadline");

type GuardedSocket = Socket & { [deadline]?: NodeJS.Timeout };

/**
 * Closes a connection whose next request's headers have not arrived in time: `firstMs` after
 * it opened, or `nextMs` after its previous answer ended (a keep-alive wait included). Node's
 * own `headersTimeout` does not end a connection that sent part of its headers and stopped,
 * nor one that sends nothing. Once the headers are in, Node's `requestTimeout` bounds the body
 * and nothing bounds the answer, so slow models and long streams are never cut.
 */
export function closeSlowConnections(server: Server, firstMs: number, nextMs: number): void {
  const arm = (socket: GuardedSocket, milliseconds: number) => {
    clearTimeout(socket[deadline]);
    socket[deadline] = setTimeout(() => socket.destroy(), milliseconds).unref();
  };
  server.on("connection", (socket: GuardedSocket) => {
    arm(socket, firstMs);
    socket.once("close", () => clearTimeout(socket[deadline]));
  });
  server.on("request", (request, response) => {
    const socket = request.socket as GuardedSocket;
    clearTimeout(socket[deadline]);
    response.once("finish", () => {
      if (!socket.destroyed) arm(socket, nextMs);
    });
  });
}
